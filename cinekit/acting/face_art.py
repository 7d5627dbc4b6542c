"""A character's expression art, as patches over the face region of its reference.

``expressions: {smile: refs/smile.png, blink: ..., mouth_open: ...}`` in a character file:
each image is either a whole reference (the same size as ``references[0]``: the face region
is cut from it at the same place) or a face crop (any other size: resized into the region).
The region is ``face: [x0, y0, x1, y1]`` when an entry gives one, else found from the rig's
head joints (``face_box``). Everything here is in the reference's pixels; the puppet draws
the patch with the head's transform (``puppet_face``), so the face turns with the head.

The patch of a frame: the expressions' colours blended by their weights (neutral is the
reference itself), then the mouth and the eyes: ``mouth_open`` / ``blink`` art blended in
where that art differs from the neutral face (its own mouth or eye area) by the frame's
mouth opening / eye closure; a character without that art gets a drawn mouth or eyelids
at the rig's eyes and below the nose (``draw_mouth``, ``draw_lids``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from cinekit.errors import UserError
from cinekit.pose.skeleton import INDEX

MOUTH, BLINK = "mouth_open", "blink"
_DIFF = 28            # a channel difference (0..255) that marks the mouth / eye area of their art
_QUANT = 8            # mouth / eye values are drawn in steps of 1/8 (the patch cache's key)


def art_entries(spec) -> dict[str, tuple[str, tuple[float, float, float, float] | None]]:
    """``{expression: (image path as written, face box or None)}`` of a character spec."""
    out = {}
    for name, value in (getattr(spec, "expressions", None) or {}).items():
        out[name] = (value, None) if isinstance(value, str) else (value.image, value.face)
    return out


def expression_files(spec, spec_path: Path) -> list[Path]:
    """The expression art files a character reads (cache keys)."""
    from cinekit.identity.core import resolve

    return [resolve(spec_path, image) for image, _ in art_entries(spec).values()]


def face_box(rig: np.ndarray | None, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The face region ``(x0, y0, x1, y1)`` (ints, x1/y1 exclusive) on the reference from the
    rig's head joints; None when the rig has neither eyes nor nose and neck.

    The unit is the eye distance (or half the ear span, whichever is larger); the box spans
    1.1 units either side of the eyes' midpoint, 0.6 above them (brows) to 1.2 below (chin).
    Without eyes: the nose as centre and 0.75 of the neck-to-nose length as the unit.
    """
    if rig is None:
        return None
    p = lambda n: rig[INDEX[n]]  # noqa: E731
    ok = lambda n: bool(np.isfinite(p(n)).all())  # noqa: E731
    if ok("right_eye") and ok("left_eye"):
        mid = (p("right_eye") + p("left_eye")) / 2
        unit = float(np.hypot(*(p("left_eye") - p("right_eye"))))
        if ok("right_ear") and ok("left_ear"):
            unit = max(unit, float(np.hypot(*(p("left_ear") - p("right_ear")))) / 2.1)
        cx, top, bottom = mid[0], mid[1] - 0.6 * unit, mid[1] + 1.2 * unit
    elif ok("nose") and ok("neck"):
        unit = 0.75 * float(np.hypot(*(p("nose") - p("neck"))))
        cx, top, bottom = p("nose")[0], p("nose")[1] - 0.9 * unit, p("nose")[1] + 0.6 * unit
    else:
        return None
    w, h = size
    x0, x1 = int(np.floor(max(0, cx - 1.1 * unit))), int(np.ceil(min(w, cx + 1.1 * unit)))
    y0, y1 = int(np.floor(max(0, top))), int(np.ceil(min(h, bottom)))
    return (x0, y0, x1, y1) if x1 - x0 >= 4 and y1 - y0 >= 4 else None


def decode_rgba(path: Path, data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGBA")).copy()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"{path}: cannot read it as an image ({exc})", hint="give a PNG, JPEG or WebP file") from None


def art_patch(art: np.ndarray, ref_size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """The art's face region ``(h, w, 4)`` uint8: cut at ``box`` from a whole reference, or a
    face crop resized into the box."""
    x0, y0, x1, y1 = box
    if (art.shape[1], art.shape[0]) == tuple(ref_size):
        return art[y0:y1, x0:x1].copy()
    interp = cv2.INTER_AREA if art.shape[1] > x1 - x0 else cv2.INTER_LINEAR
    return cv2.resize(art, (x1 - x0, y1 - y0), interpolation=interp)


@dataclass(eq=False)
class FaceRig:
    """A character's face patches on its reference (see the module note); ``box`` in reference
    pixels, ``region`` (h, w) float32 0..1 where patches may draw (the head part, feathered)."""

    box: tuple[int, int, int, int]
    region: np.ndarray
    neutral: np.ndarray                         # (h, w, 3) float32 the reference's face
    arts: dict[str, np.ndarray]                 # expression -> (h, w, 3) float32
    alphas: dict[str, np.ndarray]               # expression -> (h, w) float32 0..1
    eyes: list[tuple[float, float]]             # eye centres in box pixels (drawn lids)
    mouth: tuple[float, float] | None           # mouth centre in box pixels (drawn mouth)
    unit: float                                 # eye distance in pixels (drawn features' size)
    skin: tuple[float, float, float]
    _cache: dict = field(default_factory=dict)

    def areas(self, name: str) -> np.ndarray:
        """Where ``name``'s art differs from the neutral face (its mouth or eyes), feathered."""
        key = ("area", name)
        if key not in self._cache:
            diff = np.abs(self.arts[name] - self.neutral).max(axis=2) > _DIFF
            m = cv2.dilate(diff.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
            self._cache[key] = cv2.GaussianBlur(m, (0, 0), 1.0) * self.alphas[name]
        return self._cache[key]

    def patch(self, weights: dict[str, float], mouth: float, eyes: float) -> np.ndarray | None:
        """Premultiplied RGBA ``(h, w, 4)`` uint8 of the face for one frame, None at rest."""
        weights = {n: w for n, w in weights.items() if n != "neutral" and w > 0 and n in self.arts}
        m = round(float(np.clip(mouth, 0, 1)) * _QUANT) / _QUANT
        e = round(float(np.clip(eyes, 0, 1)) * _QUANT) / _QUANT
        if not weights and m == 0 and e == 0:
            return None
        key = (tuple(sorted((n, round(w, 3)) for n, w in weights.items())), m, e)
        if key in self._cache:
            return self._cache[key]
        rgb = self.neutral.copy()
        for n, w in weights.items():      # the neutral weight is what the others leave
            a = (w * self.alphas[n])[..., None]
            rgb = rgb * (1 - a) + self.arts[n] * a
        if m > 0:
            if MOUTH in self.arts:
                a = (m * self.areas(MOUTH))[..., None]
                rgb = rgb * (1 - a) + self.arts[MOUTH] * a
            elif self.mouth is not None:
                draw_mouth(rgb, self.mouth, self.unit, m)
        if e > 0:
            if BLINK in self.arts:
                a = (e * self.areas(BLINK))[..., None]
                rgb = rgb * (1 - a) + self.arts[BLINK] * a
            else:
                draw_lids(rgb, self.eyes, self.unit, e, self.skin)
        alpha = self.region[..., None]
        out = np.concatenate([rgb * alpha, alpha * 255.0], axis=2)
        out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        if len(self._cache) < 256:
            self._cache[key] = out
        return out


def draw_mouth(rgb: np.ndarray, centre: tuple[float, float], unit: float, amount: float) -> None:
    """An open mouth (dark ellipse, ``amount`` of the full opening) drawn into ``rgb`` in place."""
    s = 4   # sub-pixel bits
    c = (int(round(centre[0] * 2**s)), int(round(centre[1] * 2**s)))
    ax = (int(round(0.22 * unit * 2**s)), max(1 << s, int(round(0.22 * unit * amount * 2**s))))
    cv2.ellipse(rgb, c, ax, 0, 0, 360, (90.0, 30.0, 40.0), -1, cv2.LINE_AA, shift=s)
    cv2.ellipse(rgb, c, ax, 0, 0, 360, (44.0, 34.0, 56.0), max(1, int(unit / 30)), cv2.LINE_AA, shift=s)


def draw_lids(rgb: np.ndarray, eyes: list[tuple[float, float]], unit: float, amount: float, skin) -> None:
    """Eyelids ``amount`` shut (skin colour from above, a lash line at the lid's edge) in place."""
    rx, ry = 0.36 * unit, 0.42 * unit
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    for ex, ey in eyes:
        inside = ((xx - ex) / rx) ** 2 + ((yy - ey) / ry) ** 2 <= 1.0
        edge = ey - ry + 2 * ry * amount
        lid = inside & (yy <= edge)
        rgb[lid] = skin
        if amount >= 0.5:
            y = int(round(min(edge, ey + 0.2 * ry)))
            cv2.line(rgb, (int(ex - rx), y), (int(ex + rx), y), (44.0, 34.0, 56.0), max(1, int(unit / 14)), cv2.LINE_AA)


def build_face_rig(rgba: np.ndarray, head: np.ndarray, rig: np.ndarray | None,
                   arts: dict[str, tuple[np.ndarray, tuple | None]]) -> FaceRig | None:
    """The face rig of a reference ``rgba`` (H, W, 4) whose head part is ``head`` (H, W) bool,
    with ``arts`` ``{name: (art rgba, face box or None)}``; None when no face region is known."""
    size = (rgba.shape[1], rgba.shape[0])
    given = [b for _, b in arts.values() if b is not None]
    box = tuple(int(round(v)) for v in given[0]) if given else face_box(rig, size)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    x1, y1 = min(x1, size[0]), min(y1, size[1])
    box = (x0, y0, x1, y1)
    region = head[y0:y1, x0:x1].astype(np.uint8)
    region = cv2.erode(region, np.ones((3, 3), np.uint8)).astype(np.float32)   # stays inside the head part
    region = cv2.GaussianBlur(region, (0, 0), 0.8) * region
    region *= rgba[y0:y1, x0:x1, 3].astype(np.float32) / 255.0
    neutral = rgba[y0:y1, x0:x1, :3].astype(np.float32)
    out_arts, alphas = {}, {}
    for name, (art, _) in arts.items():
        p = art_patch(art, size, box).astype(np.float32)
        out_arts[name], alphas[name] = p[..., :3], p[..., 3] / 255.0
    eyes, unit, mouth = [], float((x1 - x0) / 2.2), None
    if rig is not None:
        pts = {n: rig[INDEX[n]] - (x0, y0) for n in ("right_eye", "left_eye", "nose")}
        eyes = [tuple(map(float, pts[n])) for n in ("right_eye", "left_eye") if np.isfinite(pts[n]).all()]
        if len(eyes) == 2:
            unit = float(np.hypot(eyes[1][0] - eyes[0][0], eyes[1][1] - eyes[0][1]))
        if np.isfinite(pts["nose"]).all():
            below = pts["nose"] - (np.mean(eyes, axis=0) if eyes else pts["nose"] - (0, 0.3 * unit))
            mouth = tuple(map(float, pts["nose"] + below))
    # skin: the median of the light, saturated-or-not face pixels between the eyes and the mouth
    band = neutral[int(0.45 * (y1 - y0)):int(0.75 * (y1 - y0))][region[int(0.45 * (y1 - y0)):int(0.75 * (y1 - y0))] > 0.5]
    band = band[band.sum(axis=1) > 450] if (band.sum(axis=1) > 450).any() else band
    skin = tuple(float(v) for v in np.median(band, axis=0)) if len(band) else (235.0, 200.0, 180.0)
    return FaceRig(box, region, neutral, out_arts, alphas, eyes, mouth, unit, skin)


def load_face_rig(identity, read=None, head: np.ndarray | None = None) -> FaceRig | None:
    """The face rig of a loaded ``Identity`` on its first reference (the rig's), art read with
    ``read`` (the render's input snapshot) or from disk; ``head`` (H, W) bool the head part
    (default: the automatic cut); None without a face region."""
    from cinekit.identity.core import resolve
    from cinekit.puppet.parts import PART_NAMES, label_parts

    ref = identity.references[0]
    arts = {}
    for name, (image, box) in art_entries(identity.spec).items():
        path = resolve(identity.spec_path, image)
        try:
            data = read(path) if read is not None else path.read_bytes()
        except OSError as exc:
            raise UserError(f"{path}: cannot read the {name!r} expression art ({exc.strerror or exc})",
                            hint="`cinekit check` lists the character's missing files") from None
        arts[name] = (decode_rgba(path, data), box)
    if head is None:
        head = label_parts(ref.mask, identity.rig) == PART_NAMES.index("head") if identity.rig is not None else ref.mask
    return build_face_rig(ref.rgba, head, identity.rig, arts)
