"""The order the puppet draws its parts in, frame by frame (a cut-out rig's layer stack).

``bind.draw_order`` is the rule (legs behind the body, arms in front in a front view, the far
arm behind in the others). Where the frame has depth (``Job.depth``: a BVH's 3-D, or a
keyframe's ``depth:``), a limb whose joints are clearly in front of the body is drawn over
it and one clearly behind it under it, the nearer of two limbs over the farther; limbs
without depth keep the rule.
"""

from __future__ import annotations

import numpy as np

from cinekit.pose.skeleton import INDEX
from cinekit.pose.views import LIMB_JOINTS
from cinekit.puppet.bind import draw_order

# How far (body heights) a limb's elbow and wrist (knee and ankle) must be from the body's
# depth to leave the rule: an arm hanging beside the body stays as drawn.
MARGIN = {"arm": 0.05, "leg": 0.1}
_BODY = [INDEX[j] for j in ("right_shoulder", "left_shoulder", "right_hip", "left_hip")]
_PARTS = {"right_arm": ("right_upper_arm", "right_forearm", "right_hand"),
          "left_arm": ("left_upper_arm", "left_forearm", "left_hand"),
          "right_leg": ("right_thigh", "right_shin", "right_foot"),
          "left_leg": ("left_thigh", "left_shin", "left_foot")}


def limb_depths(depth: np.ndarray) -> dict[str, float]:
    """Each limb's depth relative to the body's (body heights, + toward the camera) from one
    frame's ``depth`` (18,); limbs without depth are left out."""
    with np.errstate(all="ignore"):
        body = float(np.nanmean(depth[_BODY])) if np.isfinite(depth[_BODY]).any() else 0.0
        out = {}
        for limb, joints in LIMB_JOINTS.items():
            d = depth[[INDEX[j] for j in joints]]
            if np.isfinite(d).any():
                out[limb] = float(np.nanmean(d)) - body
    return out


def frame_order(view: str, mirror: bool, depth: np.ndarray | None = None) -> list[str]:
    """Part names back to front for one frame: ``draw_order``'s rule, limbs moved in front of
    or behind the torso and head by ``depth`` (18,) where it is clear (``MARGIN``)."""
    base = draw_order(view, mirror)
    if depth is None:
        return base
    rel = limb_depths(np.asarray(depth, dtype=np.float64))
    if not rel:
        return base
    torso = base.index("torso")
    behind, front = [], []
    for limb, parts in _PARTS.items():
        layer = -1 if base.index(parts[0]) < torso else 1
        d = rel.get(limb)
        if d is not None and abs(d) > MARGIN[limb.split("_")[1]]:
            layer = 1 if d > 0 else -1
        # nearer limbs later; a limb without depth keeps its place in the rule
        key = (d if d is not None else np.nan, base.index(parts[0]))
        (front if layer > 0 else behind).append((key, parts))

    def ordered(group):
        if all(np.isfinite(k[0]) for k, _ in group):
            group = sorted(group, key=lambda g: g[0][0])
        else:
            group = sorted(group, key=lambda g: g[0][1])
        return [p for _, parts in group for p in parts]

    return ordered(behind) + ["torso", "head"] + ordered(front)
