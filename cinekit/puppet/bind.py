"""Bind reference art to a COCO-18 rig as a stack of part layers (a cut-out puppet).

Why parts and not one skinned sheet: real art has hands on hips and arms against the body;
one sheet skinned by distance drags the torso with a rising arm and stretches whatever lies
between them. Here (``parts``) the figure is cut along the rig into head, torso, upper and
lower arms, hands, thighs, shins and feet; each part is its own triangle mesh and texture
(with what other parts hid in the reference painted in), moves rigidly with its bone, and
blends towards its parent only in a band on its own side of the joint.

Why rigid per bone and not ARAP: the pose track fixes every bone's direction and length, so
each bone's rest -> target similarity is known in closed form (``deform``); a rigid part
keeps the drawing's identity, costs one ``cv2.warpAffine`` per frame (``raster``) and needs
no solver. Each part's mesh is split once into *cores* (triangles whose vertices all follow
one transform: drawn as a single affine warp of their texture) and a *band* (the blended
triangles at the joint: rasterised), so only the joints pay for a mesh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from cinekit.pose.skeleton import INDEX
from cinekit.puppet.mesh import build_mesh
from cinekit.puppet.parts import (
    PART_NAMES,
    SLOTS,
    Weights,
    fill_hidden,
    fill_unlabelled,
    head_axis,
    hidden_region,
    label_parts,
)

PARTS = SLOTS   # the per-frame transforms, in ``deform.part_transforms`` order
# Limb transform -> (parent joint, child joint) in COCO-18.
LIMB_BONES: dict[str, tuple[int, int]] = {
    "right_upper_arm": (2, 3), "right_forearm": (3, 4),
    "left_upper_arm": (5, 6), "left_forearm": (6, 7),
    "right_thigh": (8, 9), "right_shin": (9, 10),
    "left_thigh": (11, 12), "left_shin": (12, 13),
}
REQUIRED_JOINTS: tuple[str, ...] = (
    "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
)


def missing_joints(rig: np.ndarray | None) -> list[str]:
    """The joints the puppet needs that ``rig`` ``(18, 2)`` lacks (all of them for no rig)."""
    if rig is None:
        return list(REQUIRED_JOINTS)
    return [j for j in REQUIRED_JOINTS if not np.isfinite(rig[INDEX[j]]).all()]


@dataclass(eq=False)
class Crop:
    """A premultiplied RGBA piece of the reference (origin ``x0, y0`` in reference pixels)
    with lazily built pre-filtered levels for drawing it smaller (steps of sqrt 2)."""

    rgba: np.ndarray
    x0: int
    y0: int
    _levels: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)

    def level(self, scale: float) -> tuple[np.ndarray, float]:
        """(pixels, factor) of the smallest level not below ``scale``; a reference point ``p``
        lies at ``(p - origin + 0.5) * factor - 0.5`` in it."""
        k = 0 if scale >= 1 else min(12, int(np.floor(-2 * np.log2(max(scale, 1e-3)) + 1e-9)))
        if k not in self._levels:
            h, w = self.rgba.shape[:2]
            f = 2.0 ** (-k / 2)
            sw, sh = max(1, int(round(w * f))), max(1, int(round(h * f)))
            img = self.rgba if k == 0 else cv2.resize(self.rgba, (sw, sh), interpolation=cv2.INTER_AREA)
            self._levels[k] = (img, sw / w)
        return self._levels[k]


@dataclass(eq=False)
class PartLayer:
    """One part: its mesh (reference pixels), per-vertex weights over ``PARTS``, and what
    to draw: rigid cores ``(slot, crop)`` and the blended band triangles over ``texture``."""

    name: str
    vertices: np.ndarray        # (N, 2) float64
    triangles: np.ndarray       # (T, 3) int32
    weights: np.ndarray         # (N, len(PARTS))
    texture: Crop               # the whole part, hidden pixels painted in
    cores: list[tuple[int, Crop]]
    band: np.ndarray            # (B,) indices into triangles


@dataclass(eq=False)
class Binding:
    """Reference art bound to a rig; everything in the reference's pixels."""

    rig: np.ndarray             # (18, 2) rest pose on the reference
    hip_mid: np.ndarray         # (2,)
    head_dir: np.ndarray        # (2,) rest head bone neck -> head (nose, or synthesised)
    labels: np.ndarray          # (H, W) int8 part index (``PART_NAMES``), -1 outside the figure
    parts: dict[str, PartLayer]

    @property
    def has_nose(self) -> bool:
        return bool(np.isfinite(self.rig[INDEX["nose"]]).all())

    @property
    def n_triangles(self) -> int:
        return sum(len(p.triangles) for p in self.parts.values())


def figure_alpha(rgba: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The figure's alpha (H, W) float32 0..255: the art's alpha inside ``mask``, feathered by
    half a pixel at the outline (antialiasing)."""
    alpha = np.where(mask, rgba[..., 3], 0).astype(np.float32)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.5)
    return np.where(cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0, alpha, 0)


def premultiply(rgb: np.ndarray, alpha: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA (H, W, 4) uint8 of ``rgb`` with ``alpha`` (0..255) inside ``region``
    and transparent outside: a part's cuts are hard (its neighbour, drawn identically, lies
    under the overlap), only the figure's outline is feathered (``figure_alpha``)."""
    alpha = np.where(region, alpha, 0).astype(np.float32)
    rgba = np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)])
    out = np.empty(rgba.shape, np.uint8)
    out[..., :3] = np.clip(rgba[..., :3].astype(np.float32) * (alpha / 255.0)[..., None] + 0.5, 0, 255)
    out[..., 3] = np.clip(alpha + 0.5, 0, 255)
    return out


def own_edge(own: np.ndarray, mask: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The feathered rim just outside the figure ``mask`` next to ``own`` (``alpha`` > 0 there)."""
    grown = cv2.dilate(own.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return grown & (alpha > 0) & ~mask


def _crop(full: np.ndarray, keep: np.ndarray) -> Crop:
    """The bounding box of ``keep`` (with a 2 px border) cut from ``full`` (H, W, 4)."""
    ys, xs = np.nonzero(keep)
    h, w = keep.shape
    y0, y1 = max(0, ys.min() - 2), min(h, ys.max() + 3)
    x0, x1 = max(0, xs.min() - 2), min(w, xs.max() + 3)
    piece = np.where(keep[y0:y1, x0:x1, None], full[y0:y1, x0:x1], 0).astype(np.uint8)
    return Crop(np.ascontiguousarray(piece), int(x0), int(y0))


def _coverage(vertices: np.ndarray, triangles: np.ndarray, shape) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    if len(triangles):
        polys = np.round(vertices[triangles] * 16).astype(np.int32)
        cv2.fillPoly(out, list(polys), 1, lineType=cv2.LINE_8, shift=4)
    return out > 0


def bind(rgba: np.ndarray, mask: np.ndarray, rig: np.ndarray, labels: np.ndarray | None = None) -> Binding:
    """Cut reference art ``rgba`` (H, W, 4) with figure ``mask`` (H, W) into parts along
    ``rig`` ``(18, 2)`` pixels; ``labels`` (H, W) part indices (-1: unlabelled) override the
    automatic cut where they label a pixel."""
    missing = missing_joints(rig)
    if missing:
        raise ValueError(f"rig lacks {', '.join(missing)}")
    rig = np.asarray(rig, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    auto = label_parts(mask, rig, rgba[..., :3])
    # A user's map overrides the cut where it labels a pixel; the rest is cut automatically.
    labels = auto if labels is None else fill_unlabelled(np.where(mask, labels, -1).astype(np.int8), auto, mask)
    hip_mid = 0.5 * (rig[INDEX["right_hip"]] + rig[INDEX["left_hip"]])
    head_dir, _ = head_axis(rig)
    weights = Weights(labels, rig)
    alpha = figure_alpha(rgba, mask)
    ys, xs = np.nonzero(mask)
    step = max(4.0, max(np.ptp(xs) + 1, np.ptp(ys) + 1) / 40.0)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    parts: dict[str, PartLayer] = {}
    front = draw_order("front", False)
    for k, name in enumerate(PART_NAMES):
        own = labels == k
        if own.sum() < 4:
            continue
        # What the parts drawn over this one hide of it is painted in (a torso behind an arm).
        over = [PART_NAMES.index(n) for n in front[front.index(name) + 1:]]
        hidden = hidden_region(labels, k, over)
        rgb = fill_hidden(rgba[..., :3], own, hidden)
        # 3 px past its cuts (drawn identically by the neighbour there), so no seam shows even
        # on a texture level drawn at a third of its size.
        region = (cv2.dilate(own.astype(np.uint8), disk, iterations=3) > 0) & mask | hidden
        full = premultiply(rgb, np.where(hidden, 255.0, alpha), region | own_edge(own, mask, alpha))
        mesh = build_mesh(region, step=step)
        w = weights(name, mesh.vertices)
        # Cores: triangles whose three vertices follow one transform exactly.
        tw = w[mesh.triangles]                                    # (T, 3, S)
        one = (tw.max(axis=2) > 1 - 1e-9).all(axis=1)
        slot = tw[:, 0].argmax(axis=1)
        core = one & (slot[:, None] == tw.argmax(axis=2)).all(axis=1)
        texture = _crop(full, region | hidden)
        cores = []
        for s in np.unique(slot[core]):
            cov = _coverage(mesh.vertices, mesh.triangles[core & (slot == s)], mask.shape)
            # The band is drawn over its core; the core reaches 3 px under the band (where the
            # band's transform still equals the core's), so no seam opens between them.
            keep = (cv2.dilate(cov.astype(np.uint8), disk, iterations=3) > 0) & (full[..., 3] > 0)
            if keep.any():
                cores.append((int(s), _crop(full, keep)))
        parts[name] = PartLayer(name=name, vertices=mesh.vertices, triangles=mesh.triangles, weights=w,
                                texture=texture, cores=cores, band=np.nonzero(~core)[0].astype(np.int32))
    return Binding(rig=rig, hip_mid=hip_mid, head_dir=head_dir, labels=labels, parts=parts)


def draw_order(view: str, mirror: bool) -> list[str]:
    """Part names back to front.

    The character's far side is its left (its right when mirrored: the flipped art's
    "right" is the original left). Legs are behind the torso (a skirt covers the thighs);
    in a front view both arms are in front of the torso (a hand across the chest shows),
    the far one under the near one; in other views the far arm goes behind the body.
    Within a limb, the child is over its parent (a forearm over its upper arm at the elbow).
    """
    far, near = ("right", "left") if mirror else ("left", "right")
    leg = lambda s: [f"{s}_thigh", f"{s}_shin", f"{s}_foot"]  # noqa: E731
    arm = lambda s: [f"{s}_upper_arm", f"{s}_forearm", f"{s}_hand"]  # noqa: E731
    if view == "front":
        return leg(far) + leg(near) + ["torso", "head"] + arm(far) + arm(near)
    return arm(far) + leg(far) + leg(near) + ["torso", "head"] + arm(near)
