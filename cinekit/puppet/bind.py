"""Bind a mesh to a COCO-18 rig: linear blend skinning with geodesic bone distances.

Why skinning and not ARAP: the pose track already fixes every bone's direction and length,
so each part's rest->target similarity is known in closed form; linear blend skinning
(Magnenat-Thalmann et al. 1988) with weights precomputed once then costs one small matrix
product per frame (deterministic, no solver, no iteration count to tune) and keeps each
part rigid away from the joints, which is what preserves a drawn identity. ARAP (Igarashi
et al. 2005, as used by AnimatedDrawings) needs a sparse solve per frame and spreads a pose
error over the whole figure; its one advantage, smoother bends, is recovered here by a
blend band at each joint and by a torso made of two frames (shoulders, hips).

Separation: a vertex's distance to a part is *geodesic*, measured inside the figure mask
(skimage's minimum-cost path, 25x the cost per pixel outside the figure), so a hand drawn
next to the hip is far from the torso and an arm does not drag the body.

Parts, in transform order (``PARTS``): the head (rigid, on the neck->nose bone; a rig without
a nose, like AnimatedDrawings', gets a head bone synthesised along the hips->neck
direction), the torso as an upper (neck/shoulders) and a lower (hips) frame blended along
the spine, then the eight limb bones. Hands and feet ride on the forearm and shin.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.graph import MCP_Geometric

from cinekit.pose.skeleton import INDEX
from cinekit.puppet.mesh import Mesh

PARTS: tuple[str, ...] = (
    "head", "torso_upper", "torso_lower",
    "right_upper_arm", "right_forearm", "left_upper_arm", "left_forearm",
    "right_thigh", "right_shin", "left_thigh", "left_shin",
)
# Limb part -> (parent joint, child joint) in COCO-18.
LIMB_BONES: dict[str, tuple[int, int]] = {
    "right_upper_arm": (2, 3), "right_forearm": (3, 4),
    "left_upper_arm": (5, 6), "left_forearm": (6, 7),
    "right_thigh": (8, 9), "right_shin": (9, 10),
    "left_thigh": (11, 12), "left_shin": (12, 13),
}
# Draw layers: groups of parts drawn together.
LAYERS: dict[str, tuple[str, ...]] = {
    "head": ("head",),
    "torso": ("torso_upper", "torso_lower"),
    "right_arm": ("right_upper_arm", "right_forearm"),
    "left_arm": ("left_upper_arm", "left_forearm"),
    "right_leg": ("right_thigh", "right_shin"),
    "left_leg": ("left_thigh", "left_shin"),
}
LAYER_NAMES: tuple[str, ...] = tuple(LAYERS)

REQUIRED_JOINTS: tuple[str, ...] = (
    "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
)

_OUTSIDE_COST = 25.0   # geodesic cost of a pixel outside the figure (vs 1 inside)
_GEO_SIDE = 256        # distances are computed on the mask resized to this longer side


def missing_joints(rig: np.ndarray | None) -> list[str]:
    """The joints the puppet needs that ``rig`` ``(18, 2)`` lacks (all of them for no rig)."""
    if rig is None:
        return list(REQUIRED_JOINTS)
    return [j for j in REQUIRED_JOINTS if not np.isfinite(rig[INDEX[j]]).all()]


@dataclass(frozen=True)
class Binding:
    """A mesh skinned to a rig; everything in the reference's pixels."""

    mesh: Mesh
    rig: np.ndarray          # (18, 2) rest pose on the reference
    hip_mid: np.ndarray      # (2,) midpoint of the hips
    head_dir: np.ndarray     # (2,) rest head bone neck -> head (nose, or synthesised)
    weights: np.ndarray      # (N, len(PARTS)) float64, rows sum to 1
    tri_layer: np.ndarray    # (T,) int index into LAYER_NAMES: the part group owning the triangle

    @property
    def has_nose(self) -> bool:
        return bool(np.isfinite(self.rig[INDEX["nose"]]).all())


def _segments_for_regions(rig: np.ndarray, hip_mid: np.ndarray, head_top: np.ndarray):
    """Seeds of each distance region: polylines (and one polygon for the torso)."""
    j = lambda n: rig[INDEX[n]]  # noqa: E731
    regions = {
        "head": {"lines": [(j("neck"), head_top)]},
        # The torso starts at the shoulder line, not at the neck joint: an AnimatedDrawings
        # "neck" sits inside the drawn head, and the chin must not follow the chest.
        "torso": {
            "lines": [(0.5 * (j("right_shoulder") + j("left_shoulder")), hip_mid),
                      (j("right_shoulder"), j("left_shoulder")),
                      (hip_mid, j("right_hip")), (hip_mid, j("left_hip"))],
            "poly": np.array([j("right_shoulder"), j("left_shoulder"), j("left_hip"), j("right_hip")]),
        },
    }
    for part, (a, b) in LIMB_BONES.items():
        regions[part] = {"lines": [(rig[a], rig[b])]}
    return regions


def geodesic_distances(mask: np.ndarray, regions: dict, points: np.ndarray) -> np.ndarray:
    """Distance ``(P, R)`` in pixels from each of ``points`` ``(P, 2)`` to each region, through the figure."""
    h, w = mask.shape
    f = min(1.0, _GEO_SIDE / max(h, w))
    sh, sw = max(2, int(round(h * f))), max(2, int(round(w * f)))
    fx, fy = sw / w, sh / h
    small = cv2.resize(mask.astype(np.uint8) * 255, (sw, sh), interpolation=cv2.INTER_AREA) > 64
    costs = np.where(small, 1.0, _OUTSIDE_COST)
    to_small = lambda p: (np.asarray(p, float) + 0.5) * (fx, fy) - 0.5  # noqa: E731
    pi = np.clip(np.round(to_small(points)).astype(int), 0, [sw - 1, sh - 1])
    out = np.empty((len(points), len(regions)))
    for r, seeds in enumerate(regions.values()):
        canvas = np.zeros((sh, sw), np.uint8)
        for a, b in seeds.get("lines", []):
            a, b = np.round(to_small(a)).astype(int), np.round(to_small(b)).astype(int)
            cv2.line(canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), 1, 1)
        if "poly" in seeds:
            cv2.fillPoly(canvas, [np.round(to_small(seeds["poly"])).astype(np.int32)], 1)
        starts = np.argwhere(canvas > 0)
        # Pixels of the figure on the seed are where distance starts; keep outside ones too
        # (a rig line may run just off a thin stroke), they are only reached at a cost.
        dist, _ = MCP_Geometric(costs, fully_connected=True).find_costs([tuple(s) for s in starts])
        out[:, r] = dist[pi[:, 1], pi[:, 0]] / f
    return out


def bind(mesh: Mesh, mask: np.ndarray, rig: np.ndarray) -> Binding:
    """Skin ``mesh`` (on a reference with figure ``mask``) to ``rig`` ``(18, 2)`` pixels."""
    missing = missing_joints(rig)
    if missing:
        raise ValueError(f"rig lacks {', '.join(missing)}")
    rig = np.asarray(rig, dtype=np.float64)
    neck = rig[INDEX["neck"]]
    hip_mid = 0.5 * (rig[INDEX["right_hip"]] + rig[INDEX["left_hip"]])
    spine = neck - hip_mid
    spine_len = max(float(np.hypot(*spine)), 1e-6)
    nose = rig[INDEX["nose"]]
    if np.isfinite(nose).all() and np.hypot(*(nose - neck)) > 1e-6:
        head_dir = nose - neck
        head_top = neck + head_dir * 1.5
    else:
        head_dir = spine / spine_len * (0.5 * spine_len)
        head_top = neck + head_dir
    regions = _segments_for_regions(rig, hip_mid, head_top)
    v = mesh.vertices
    d = geodesic_distances(mask, regions, v)              # (N, R): head, torso, 8 limbs

    limb_len = [np.hypot(*(rig[b] - rig[a])) for a, b in LIMB_BONES.values()]
    sigma = max(2.0, 0.2 * float(np.median(limb_len)))
    sig = np.full(d.shape[1], sigma)
    sig[0] = 0.3 * sigma                                  # the head stays rigid: a thin band at the neck
    nearest = d.argmin(axis=1)
    excess = d - d[np.arange(len(d)), nearest][:, None]
    pair_sigma = np.minimum(sig[None, :], sig[nearest][:, None])
    w = np.exp(-((excess / pair_sigma) ** 2))
    w[excess > 2.5 * pair_sigma] = 0.0
    # At most 3 parts per vertex.
    if w.shape[1] > 3:
        cut = np.sort(w, axis=1)[:, -3][:, None]
        w[w < cut] = 0.0
    w /= w.sum(axis=1, keepdims=True)

    # Split the torso weight into its upper and lower frames along the spine, from the
    # shoulder line (all upper: the shoulders stay where the upper frame puts them, even on
    # a rig whose neck sits high in the head) to the hips (all lower).
    t = ((v - neck) @ (hip_mid - neck)) / (spine_len ** 2)
    sh_mid = 0.5 * (rig[INDEX["right_shoulder"]] + rig[INDEX["left_shoulder"]])
    t0 = float(np.clip(((sh_mid - neck) @ (hip_mid - neck)) / (spine_len ** 2), 0.0, 0.8))
    t = np.clip((t - t0) / (1.0 - t0) * 1.25 - 0.1, 0.0, 1.0)
    t = t * t * (3 - 2 * t)
    weights = np.zeros((len(v), len(PARTS)))
    weights[:, 0] = w[:, 0]
    weights[:, 1] = w[:, 1] * (1 - t)
    weights[:, 2] = w[:, 1] * t
    weights[:, 3:] = w[:, 2:]

    # Each triangle belongs to the layer with the largest summed weight of its vertices.
    part_layer = np.array([next(i for i, parts in enumerate(LAYERS.values()) if p in parts) for p in PARTS])
    layer_w = np.zeros((len(v), len(LAYERS)))
    np.add.at(layer_w.T, part_layer, weights.T)
    tri_layer = layer_w[mesh.triangles].sum(axis=1).argmax(axis=1).astype(np.int32)
    return Binding(mesh=mesh, rig=rig, hip_mid=hip_mid, head_dir=head_dir, weights=weights, tri_layer=tri_layer)


def layer_order(view: str, mirror: bool) -> list[int]:
    """Draw order of ``LAYER_NAMES``, back to front.

    The character's far side is its left (its right when mirrored: the flipped art's
    "right" is the original left). In a front view both arms are in front of the torso
    (a hand across the chest shows), the far one under the near one; in other views the
    far arm goes behind the body. Legs are behind the torso (a skirt covers the thighs).
    """
    far, near = ("right", "left") if mirror else ("left", "right")
    if view == "front":
        names = [f"{far}_leg", f"{near}_leg", "torso", "head", f"{far}_arm", f"{near}_arm"]
    else:
        names = [f"{far}_arm", f"{far}_leg", f"{near}_leg", "torso", "head", f"{near}_arm"]
    return [LAYER_NAMES.index(n) for n in names]
