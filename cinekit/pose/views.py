"""Which drawing of a character each frame shows (``view: auto``), and the joints' depth.

Pure numpy on body-space tracks (``(frames, 18, 2)``, body heights, y down). The body's yaw
is read per frame: from a BVH's depth when the motion has it (the shoulder and hip lines in
the ground plane), else from the 2-D shoulder width against the default body's and the
nose's side of the neck. Each frame then gets the nearest view the character has art for.

Conventions: yaw 0 faces the camera, +90 deg faces the image right, 180 shows the back. A
side or three-quarter drawing faces the image right (as a BVH's side projection does); a
body facing left draws it mirrored.
"""

from __future__ import annotations

import numpy as np

from cinekit.pose.skeleton import INDEX

VIEWS = ("front", "three_quarter", "side", "back")
# Views ordered by how well each stands in for another (nearest first): identity.core's.
FALLBACK = {
    "front": ("front", "three_quarter", "side", "back"),
    "three_quarter": ("three_quarter", "front", "side", "back"),
    "side": ("side", "three_quarter", "front", "back"),
    "back": ("back", "side", "three_quarter", "front"),
}
_LIMIT_DEG = (30.0, 60.0, 120.0)    # |yaw| up to: front, three_quarter, side; beyond: back
_REST_SHOULDERS = 0.27              # the default body's shoulder width (angles.REST_POSE), heights
LIMB_JOINTS = {"right_arm": ("right_elbow", "right_wrist"), "left_arm": ("left_elbow", "left_wrist"),
               "right_leg": ("right_knee", "right_ankle"), "left_leg": ("left_knee", "left_ankle")}


def yaw_track(body: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
    """The body's yaw (radians) per frame ``(F,)`` of ``body`` (F, 18, 2); NaN where unknown.

    With ``depth`` (F, 18) (same units, toward the camera): ``atan2(-dz, dx)`` of the left
    minus right shoulder and hip vectors. Without: ``arccos`` of the shoulder width over the
    default body's (a 2-D body cannot tell turning left from right: the nose's side of the
    neck does)."""
    body = np.asarray(body, dtype=np.float64)
    rs, ls, rh, lh = (INDEX[j] for j in ("right_shoulder", "left_shoulder", "right_hip", "left_hip"))
    dx = body[:, ls, 0] - body[:, rs, 0]
    if depth is not None:
        depth = np.asarray(depth, dtype=np.float64)
        dz = depth[:, ls] - depth[:, rs]
        hx, hz = body[:, lh, 0] - body[:, rh, 0], depth[:, lh] - depth[:, rh]
        both = np.isfinite(hx) & np.isfinite(hz)
        x = np.where(both, dx + hx, dx)
        z = np.where(both, dz + hz, dz)
        with np.errstate(invalid="ignore"):
            yaw = np.arctan2(-z, x)
        if np.isfinite(yaw).all():
            return yaw
        flat = yaw_track(body)           # frames whose shoulders have no depth: read in 2-D
        return np.where(np.isfinite(yaw), yaw, flat)
    nose, neck = body[:, INDEX["nose"], 0], body[:, INDEX["neck"], 0]
    side = np.where(np.isfinite(nose) & np.isfinite(neck) & (nose < neck - 0.01), -1.0, 1.0)
    with np.errstate(invalid="ignore"):
        return side * np.arccos(np.clip(dx / _REST_SHOULDERS, -1.0, 1.0))


def wanted_view(yaw: float) -> str:
    """The view a body at ``yaw`` radians shows (``_LIMIT_DEG``)."""
    a = abs(np.degrees(yaw))
    return next((v for v, lim in zip(VIEWS, _LIMIT_DEG) if a <= lim), "back")


def choose_views(yaw: np.ndarray, art: set[str], mirror: bool, min_frames: int = 3):
    """Per-frame art for a character with drawings for the views in ``art``.

    Returns (segments ``((first frame, view, mirror), ...)``, frames per wanted view,
    frames per drawn view). A side or three-quarter drawing is mirrored where the body faces
    left; front and back drawings keep the character's ``mirror``. A run of fewer than
    ``min_frames`` frames joins the run before it (no flicker at a threshold).
    """
    wanted: dict[str, int] = {v: 0 for v in VIEWS}
    per_frame = []
    last = (next(v for v in FALLBACK["front"] if v in art), mirror)
    for y in yaw:
        if not np.isfinite(y):
            per_frame.append(last)
            continue
        want = wanted_view(float(y))
        wanted[want] += 1
        view = next(v for v in FALLBACK[want] if v in art)
        last = (view, bool(y < 0) if view in ("side", "three_quarter") else mirror)
        per_frame.append(last)
    segments: list[list] = []
    for f, (view, flip) in enumerate(per_frame):
        if segments and segments[-1][1:] == [view, flip]:
            continue
        if segments and f - segments[-1][0] < min_frames and len(segments) > 1:
            segments.pop()               # too short: the run before it goes on
            if segments[-1][1:] == [view, flip]:
                continue
        segments.append([f, view, flip])
    drawn: dict[str, int] = {v: 0 for v in VIEWS}
    bounds = [s[0] for s in segments[1:]] + [len(per_frame)]
    for (start, view, _), stop in zip(segments, bounds):
        drawn[view] += stop - start
    return tuple((int(s), v, bool(m)) for s, v, m in segments), wanted, drawn


def keyframe_depth(keys, times: np.ndarray) -> np.ndarray | None:
    """Depth ``(F, 18)`` from keyframes' ``depth: {left_arm: front, ...}`` at ``times``: a
    limb's joints half a body height in front of (behind) the body from that key on, until a
    later key names the limb again (``auto`` hands it back to the rule); None if no key does."""
    keys = sorted(keys, key=lambda k: k.at)
    if not any(k.depth for k in keys):
        return None
    out = np.full((len(times), len(INDEX)), np.nan)     # the body's own depth: 0 (``layers``)
    for limb, joints in LIMB_JOINTS.items():
        value = np.full(len(times), np.nan)
        for k in keys:
            if k.depth and limb in k.depth:
                v = {"front": 0.5, "behind": -0.5, "auto": np.nan}[k.depth[limb]]
                value[times >= k.at - 1e-9] = v
        for j in joints:
            out[:, INDEX[j]] = value
    return out
