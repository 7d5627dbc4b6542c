"""Load a character's identity once: reference art, masks, rig, palette.

Every engine reads characters through an ``IdentityStore`` so references are decoded once per
run, whatever the number of shots. Heavier derived data (IP-Adapter image embeddings,
reference latents) is cached by the diffusers modules keyed on ``Reference.sha256``.
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from cinekit.errors import UserError
from cinekit.pose.rig_map import DEFAULT_MAP as ANIMATED_DRAWINGS_TO_COCO  # noqa: F401 (moved there)
from cinekit.pose.skeleton import INDEX, empty_pose
from cinekit.spec.models import CharacterSpec, parse_color

# Views ordered by how well each stands in for another (nearest first).
_VIEW_FALLBACK = {
    "front": ("front", "three_quarter", "side", "back"),
    "three_quarter": ("three_quarter", "front", "side", "back"),
    "side": ("side", "three_quarter", "front", "back"),
    "back": ("back", "side", "three_quarter", "front"),
}


@dataclass(frozen=True, eq=False)
class Reference:
    path: Path
    view: str
    rgba: np.ndarray      # (H, W, 4) uint8
    mask: np.ndarray      # (H, W) bool: the figure
    sha256: str           # of the image file bytes (and the mask file's), plus the final mask when cinekit made or cleaned it

    @property
    def size(self) -> tuple[int, int]:
        return self.rgba.shape[1], self.rgba.shape[0]


@dataclass(eq=False)
class Identity:
    name: str
    spec: CharacterSpec
    spec_path: Path
    references: list[Reference]
    rig: np.ndarray | None                       # (18, 2) pixels on references[0]; NaN = missing
    rig_extra: dict[str, tuple[float, float]] = field(default_factory=dict)
    palette: list[tuple[int, int, int]] = field(default_factory=list)
    rigs: list[np.ndarray | None] = field(default_factory=list)   # per reference: rigs[0] is ``rig``

    def reference_for(self, view: str) -> Reference:
        """The reference whose view best matches ``view`` (front/three_quarter/side/back)."""
        by_view = {r.view: r for r in reversed(self.references)}
        for candidate in _VIEW_FALLBACK.get(view, (view,)):
            if candidate in by_view:
                return by_view[candidate]
        return self.references[0]

    @property
    def files(self) -> list[Path]:
        """Every file this identity reads (for cache keys)."""
        out = [self.spec_path]
        for ref, spec in zip(self.references, self.spec.references):
            out.append(ref.path)
            if spec.mask:
                out.append(resolve(self.spec_path, spec.mask))
            if spec.parts:
                out.append(resolve(self.spec_path, spec.parts))
            if spec.rig is not None and spec.rig.from_:
                out.append(resolve(self.spec_path, spec.rig.from_))
        if self.spec.rig and self.spec.rig.from_:
            out.append(resolve(self.spec_path, self.spec.rig.from_))
        out += [resolve(self.spec_path, x.file) for x in self.spec.lora]
        out += [resolve(self.spec_path, x.file) for x in self.spec.embeddings]
        from cinekit.acting.face_art import expression_files

        return out + expression_files(self.spec, self.spec_path)


def resolve(spec_path: Path, rel: str) -> Path:
    """A path in a YAML file is relative to that file."""
    return (Path(spec_path).parent / rel).resolve()


Reader = Callable[[Path], bytes]  # a file's bytes (the render's input snapshot, so the bytes hashed are the bytes drawn)


def _read_bytes(path: Path) -> bytes:
    return Path(path).read_bytes()


def _decode(path: Path, data: bytes, mode: str) -> np.ndarray:
    """An image's pixels in ``mode`` from its bytes; a file that is not a (whole) image is the
    user's error, named by its path."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert(mode)).copy()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).split(" <_io.BytesIO")[0]  # Pillow names the buffer, not the file
        raise UserError(f"{path}: cannot read it as an image ({reason})", hint="give a PNG, JPEG or WebP file") from None


def _load_reference(spec_path: Path, image: str, view: str, mask: str | None, rig: np.ndarray | None = None,
                    cleanup: bool = True, read: Reader = _read_bytes) -> Reference:
    """Decode a reference and its figure mask (``identity.masks``: the user's mask cleaned up,
    the alpha, or an automatic mask from a flat backdrop); ``rig`` tells limb gaps from the figure.
    Every file is read once: hashed and decoded from the same bytes."""
    from cinekit.identity.masks import NoBackdropError, figure_mask

    path = resolve(spec_path, image)
    data = read(path)
    digest = hashlib.sha256(data)
    rgba = _decode(path, data, "RGBA")
    user_mask = None
    if mask:
        mask_path = resolve(spec_path, mask)
        mask_data = read(mask_path)
        digest.update(mask_data)
        m = _decode(mask_path, mask_data, "L")
        if m.shape != rgba.shape[:2]:
            raise UserError(f"{mask_path}: mask is {m.shape[1]}x{m.shape[0]}, image is {rgba.shape[1]}x{rgba.shape[0]}",
                            hint="a reference mask must have the same size as its image")
        user_mask = m > 127
    try:
        result = figure_mask(rgba, user_mask, rig, cleanup)
    except NoBackdropError as exc:
        raise UserError(f"{path}: the reference has no transparent background, no mask, and no flat backdrop "
                        f"to cut the figure from ({exc})",
                        hint="save the art with alpha, give `mask:` (white = figure), "
                             "or put the figure on a plain background") from None
    fig = result.mask.copy()
    if result.source != "alpha":
        # The mask defines the figure (an opaque scan becomes a cut-out).
        rgba[..., 3] = np.where(fig, rgba[..., 3], 0)
    if result.alpha is not None:   # the edge unmixed from the backdrop it was cut from
        rgba[..., :3] = result.rgb
        rgba[..., 3] = np.minimum(rgba[..., 3], result.alpha)
    if result.source == "auto" or result.dropped is not None and result.dropped.any():
        # The files alone do not say which mask the engines see: caches keyed on the digest
        # must follow a change of the automatic mask or the clean-up.
        digest.update(np.packbits(fig).tobytes())
    return Reference(path=path, view=view, rgba=rgba, mask=fig, sha256=digest.hexdigest())


def load_rig(spec: CharacterSpec, spec_path: Path,
             read: Reader = _read_bytes) -> tuple[np.ndarray | None, dict[str, tuple[float, float]]]:
    """The rig as a COCO-18 ``(18, 2)`` array on references[0] (pixels) plus extra named joints."""
    return load_rig_spec(spec.rig, spec_path, read)


def load_rig_spec(rig_spec, spec_path: Path,
                  read: Reader = _read_bytes) -> tuple[np.ndarray | None, dict[str, tuple[float, float]]]:
    """A ``RigSpec`` (the character's, or a reference's own) as ``(18, 2)`` pixels + extras."""
    if rig_spec is None:
        return None, {}
    if rig_spec.joints is not None:
        pose = empty_pose()
        extra = {}
        for name, xy in rig_spec.joints.items():
            if name in INDEX:
                pose[INDEX[name]] = xy
            else:
                extra[name] = tuple(xy)
        return pose, extra
    from cinekit.pose.rig_file import load_rig_mapping  # the rig's `map:` (extra limbs)

    mapping = load_rig_mapping(resolve(spec_path, rig_spec.from_), getattr(rig_spec, "map", None), read)
    return mapping.humanoid.copy(), dict(mapping.extra)


def dominant_colours(rgba: np.ndarray, mask: np.ndarray, k: int = 5) -> list[tuple[int, int, int]]:
    """The ``k`` most frequent colours inside ``mask``, quantised to 4 bits a channel (most frequent first).

    Line art (very dark pixels) is skipped so the palette shows fills, not outlines.
    """
    px = rgba[..., :3][mask].astype(np.int32)
    if px.size == 0:
        return [(128, 128, 128)]
    px = px[px.sum(axis=1) > 90] if (px.sum(axis=1) > 90).any() else px
    q = (px >> 4)
    keys = (q[:, 0] << 8) | (q[:, 1] << 4) | q[:, 2]
    counts = np.bincount(keys, minlength=4096)
    top = np.argsort(counts)[::-1][:k]
    out = []
    for key in top:
        if counts[key] == 0:
            break
        sel = px[keys == key]
        out.append(tuple(int(v) for v in sel.mean(axis=0).round()))
    return out


def load_identity(spec: CharacterSpec, spec_path: Path, read: Reader = _read_bytes) -> Identity:
    rig, extra = load_rig(spec, spec_path, read)
    # The character's rig is references[0]'s; another view may carry its own (a side drawing).
    rigs = [rig] + [load_rig_spec(r.rig, spec_path, read)[0] for r in spec.references[1:]]
    references = [_load_reference(spec_path, r.image, r.view, r.mask, rigs[i], r.mask_cleanup, read)
                  for i, r in enumerate(spec.references)]
    if spec.palette:
        palette = [parse_color(c) for c in spec.palette]
    else:
        palette = dominant_colours(references[0].rgba, references[0].mask)
    return Identity(spec.name, spec, Path(spec_path), references, rig, extra, palette, rigs)


class IdentityStore:
    """Loads each character's identity once per run (thread-safe), by name."""

    def __init__(self, characters: dict[str, tuple[CharacterSpec, Path]], read: Reader = _read_bytes):
        self._characters = characters
        self._read = read
        self._loaded: dict[str, Identity] = {}
        self._lock = threading.Lock()
        self.loads = 0  # how many identities were actually read from disk (tests assert on it)

    def get(self, name: str) -> Identity:
        with self._lock:
            if name not in self._loaded:
                spec, path = self._characters[name]
                self._loaded[name] = load_identity(spec, path, self._read)
                self.loads += 1
            return self._loaded[name]
