"""BVH motion capture -> COCO-18 2D poses: forward kinematics, joint mapping, projection.

The parser (``parse_bvh``, ``read_bvh``, ``Bvh``, ``BvhJoint``) lives in ``cinekit.pose.bvh_parse``
and is re-exported here.

BVH conventions (Biovision; as written by CMU/ASF converters, MotionBuilder, Blender):
a joint's local transform is ``T(offset + position channels) @ R``, with ``R`` the product
of its rotation channels in the order they are listed (``Zrotation Xrotation Yrotation``
-> ``Rz @ Rx @ Ry``), angles in degrees; a child's origin is its OFFSET in the parent's frame.
The up axis is found from the motion, not from the rest skeleton: the direction from the
feet to the head over the clip, snapped to a coordinate axis, so Y-up (CMU) and Z-up (FAIR /
AnimatedDrawings) files both work, and so does a file whose rest skeleton lies along another
axis than the one its root rotation stands it up on (exporters that rotate the armature at
the root, e.g. a Z-up rig written into a Y-up scene).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cinekit.pose.bvh_parse import Bvh, BvhJoint, parse_bvh, read_bvh  # noqa: F401  (re-exported)
from cinekit.pose.motion import Motion, MotionFormatError
from cinekit.pose.skeleton import INDEX, N_JOINTS

_AXES = {"X": 0, "Y": 1, "Z": 2}

# COCO joint -> candidate BVH joint names (first present wins; compared without case or a
# "prefix:" namespace such as "mixamorig:"). FAIR/Mixamo names come before CMU ones where
# they clash (FAIR "RightShoulder" is the clavicle, CMU "RightShoulder" the shoulder).
NAME_MAP: dict[str, tuple[str, ...]] = {
    "right_shoulder": ("RightArm", "RightUpArm", "RightShoulder", "RShoulder"),
    "right_elbow": ("RightForeArm", "RightElbow", "RightLowArm", "RElbow"),
    "right_wrist": ("RightHand", "RightWrist", "RWrist"),
    "left_shoulder": ("LeftArm", "LeftUpArm", "LeftShoulder", "LShoulder"),
    "left_elbow": ("LeftForeArm", "LeftElbow", "LeftLowArm", "LElbow"),
    "left_wrist": ("LeftHand", "LeftWrist", "LWrist"),
    "right_hip": ("RightUpLeg", "RightHip", "RightThigh", "RightUpperLeg", "RHip"),
    "right_knee": ("RightLeg", "RightKnee", "RightShin", "RightLowerLeg", "RKnee"),
    "right_ankle": ("RightFoot", "RightAnkle", "RAnkle"),
    "left_hip": ("LeftUpLeg", "LeftHip", "LeftThigh", "LeftUpperLeg", "LHip"),
    "left_knee": ("LeftLeg", "LeftKnee", "LeftShin", "LeftLowerLeg", "LKnee"),
    "left_ankle": ("LeftFoot", "LeftAnkle", "LAnkle"),
}
HEAD_NAMES = ("Head", "head")
NECK_NAMES = ("Neck", "neck", "UpperNeck", "LowerNeck")

# Face points from the head: fractions of the head length (head joint -> head end site)
# along the head's (up, forward, left) axes; a generic adult head.
FACE_OFFSETS: dict[str, tuple[float, float, float]] = {
    "nose": (0.40, 0.45, 0.0),
    "right_eye": (0.55, 0.38, -0.16),
    "left_eye": (0.55, 0.38, 0.16),
    "right_ear": (0.48, 0.0, -0.36),
    "left_ear": (0.48, 0.0, 0.36),
}


def axis_rotation(axis: int, degrees: np.ndarray) -> np.ndarray:
    """Rotation matrices (N,3,3) about coordinate ``axis`` (0=X,1=Y,2=Z), right-handed."""
    a = np.radians(np.asarray(degrees, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    m = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


def forward_kinematics(bvh: Bvh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global joint positions (F,J,3), rotations (F,J,3,3) and end sites (F,J,3) (NaN if none)."""
    f = bvh.motion.shape[0]
    nj = len(bvh.joints)
    pos = np.zeros((f, nj, 3))
    rot = np.zeros((f, nj, 3, 3))
    ends = np.full((f, nj, 3), np.nan)
    for j, joint in enumerate(bvh.joints):
        local_r = np.broadcast_to(np.eye(3), (f, 3, 3)).copy()
        local_t = np.broadcast_to(joint.offset, (f, 3)).copy()
        for k, ch in enumerate(joint.channels):
            col = bvh.motion[:, joint.channel_start + k]
            axis = _AXES[ch[0]]
            if ch.endswith("rotation"):
                local_r = local_r @ axis_rotation(axis, col)
            else:
                local_t[:, axis] += col
        if joint.parent < 0:
            rot[:, j], pos[:, j] = local_r, local_t
        else:
            pr = rot[:, joint.parent]
            rot[:, j] = pr @ local_r
            pos[:, j] = pos[:, joint.parent] + np.einsum("fij,fj->fi", pr, local_t)
        if joint.end_site is not None:
            ends[:, j] = pos[:, j] + np.einsum("fij,j->fi", rot[:, j], joint.end_site)
    return pos, rot, ends


def rest_positions(bvh: Bvh) -> np.ndarray:
    """Joint positions (J,3) of the rest skeleton (offsets only, no channels)."""
    out = np.zeros((len(bvh.joints), 3))
    for j, joint in enumerate(bvh.joints):
        out[j] = joint.offset + (out[joint.parent] if joint.parent >= 0 else 0.0)
    return out


def _find(names: list[str], candidates: tuple[str, ...]) -> int | None:
    bare = [n.split(":")[-1].lower() for n in names]
    for c in candidates:
        if c.lower() in bare:
            return bare.index(c.lower())
    return None


def map_joints(bvh: Bvh) -> dict[str, int]:
    """COCO body joint name -> BVH joint index, plus ``head`` and ``neck`` when present.

    Raises ``MotionFormatError`` listing the COCO joints it cannot find.
    """
    names = bvh.names
    found: dict[str, int] = {}
    missing = []
    for coco, cands in NAME_MAP.items():
        j = _find(names, cands)
        if j is None:
            missing.append(coco)
        else:
            found[coco] = j
    if missing:
        raise MotionFormatError(
            f"BVH skeleton has no joint for {', '.join(missing)} (joints: {', '.join(names)})",
            hint="supported naming: CMU (LeftShoulder/LeftElbow/LeftWrist, LeftHip/LeftKnee/"
            "LeftAnkle), FAIR/Mixamo (LeftArm/LeftForeArm/LeftHand, LeftUpLeg/LeftLeg/LeftFoot)",
        )
    for key, cands in (("head", HEAD_NAMES), ("neck", NECK_NAMES)):
        j = _find(names, cands)
        if j is not None:
            found[key] = j
    return found


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def _snap(v: np.ndarray) -> np.ndarray:
    """The signed coordinate axis nearest to ``v`` (3,)."""
    axis = int(np.argmax(np.abs(v)))
    out = np.zeros(3)
    out[axis] = np.sign(v[axis]) or 1.0
    return out


def up_axis(bvh: Bvh, pos: np.ndarray, jmap: dict[str, int]) -> np.ndarray:
    """World up (a signed coordinate axis, (3,)) from the motion ``pos`` (F,J,3).

    Per frame, the vector from the feet (ankle midpoint) to the head (or the shoulder
    midpoint): up is the axis along which it is largest over the clip (median of the unit
    vectors; the feet are where gravity points). Only when the clip has no consistent
    head-over-feet direction (median shorter than 0.3: tumbling, cartwheels) does the rest
    skeleton decide, as a last resort.
    """
    if "head" in jmap:
        top = pos[:, jmap["head"]]
    else:
        top = 0.5 * (pos[:, jmap["left_shoulder"]] + pos[:, jmap["right_shoulder"]])
    feet = 0.5 * (pos[:, jmap["left_ankle"]] + pos[:, jmap["right_ankle"]])
    v = np.median(_unit(top - feet), axis=0)
    if np.linalg.norm(v) > 0.3:
        return _snap(v)
    rest = rest_positions(bvh)
    top_j = jmap.get("head", jmap["left_shoulder"])
    return _snap(rest[top_j] - 0.5 * (rest[jmap["left_hip"]] + rest[jmap["right_hip"]]))


def body_frame(bvh: Bvh, pos: np.ndarray, jmap: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World ``up`` (``up_axis``: from the motion) and the figure's ``left`` and ``forward``
    (horizontal unit vectors) from hips and shoulders in frame 0."""
    up = up_axis(bvh, pos, jmap)
    p0 = pos[0]
    left = (p0[jmap["left_hip"]] - p0[jmap["right_hip"]]) + (
        p0[jmap["left_shoulder"]] - p0[jmap["right_shoulder"]]
    )
    left = _unit(left - up * (left @ up))
    forward = np.cross(left, up)
    return up, left, forward


def coco_points_3d(bvh: Bvh) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """COCO-18 joints in 3D (F,18,3) in BVH units, and the body frame (up, left, forward)."""
    pos, rot, ends = forward_kinematics(bvh)
    jmap = map_joints(bvh)
    up, left, forward = body_frame(bvh, pos, jmap)
    f = pos.shape[0]
    out = np.full((f, N_JOINTS, 3), np.nan)
    for coco in NAME_MAP:
        out[:, INDEX[coco]] = pos[:, jmap[coco]]
    out[:, INDEX["neck"]] = 0.5 * (out[:, INDEX["left_shoulder"]] + out[:, INDEX["right_shoulder"]])
    head = jmap.get("head")
    if head is not None:
        base = pos[:, head]
        if bvh.joints[head].end_site is not None:
            top = ends[:, head]
        else:  # no end site: continue the neck -> head direction by the same length
            neck = pos[:, bvh.joints[head].parent]
            top = base + (base - neck)
        length = np.linalg.norm(top - base, axis=-1, keepdims=True)
        # The head's axes: the rest body frame carried by the head joint's rotation since rest.
        r0 = rot[0, head]
        rel = rot[:, head] @ r0.T  # rotation from frame 0 (where the frame was measured)
        h_up = _unit(top - base)
        h_fwd = np.einsum("fij,j->fi", rel, forward)
        h_fwd = _unit(h_fwd - h_up * np.sum(h_fwd * h_up, axis=-1, keepdims=True))
        h_left = np.cross(h_up, h_fwd)  # up x forward = left for a right-handed frame
        for name, (a, b, c) in FACE_OFFSETS.items():
            out[:, INDEX[name]] = base + length * (a * h_up + b * h_fwd + c * h_left)
    return out, (up, left, forward)


def project(points: np.ndarray, frame: tuple[np.ndarray, np.ndarray, np.ndarray], view: str,
            follow: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Orthographic projection of (F,18,3) to ((F,18,2) y down, (F,18) depth toward the camera).

    ``front``: the camera looks at the figure's front (its left on the image right);
    ``side``: the camera is at the figure's right, the figure faces the image right.
    ``follow``: the camera turns with the body (its hips and shoulders, about the up axis)
    frame by frame, so the figure keeps facing it (art drawn from one side only, never shown
    in a profile it has no drawing for); the hips still travel along the fixed axes.
    """
    up, left, forward = frame
    right_axis, toward = {"front": (left, forward), "side": (forward, -left)}[view]
    if not follow:
        return np.stack([points @ right_axis, -(points @ up)], axis=-1), points @ toward
    hips = 0.5 * (points[:, INDEX["right_hip"]] + points[:, INDEX["left_hip"]])     # (F, 3)
    across = (points[:, INDEX["left_hip"]] - points[:, INDEX["right_hip"]]
              + points[:, INDEX["left_shoulder"]] - points[:, INDEX["right_shoulder"]])
    across = across - np.outer(across @ up, up)
    # yaw of the body about up, from frame 0's facing (the fixed camera's)
    yaw = np.arctan2(across @ -forward, across @ left)[:, None]                  # (F, 1)
    yaw = np.where(np.isfinite(yaw), yaw, 0.0)
    rel = points - hips[:, None]
    # un-turn each frame's body about the up axis through its hips
    a, b = rel @ left, rel @ forward
    c, s = np.cos(yaw), np.sin(yaw)
    unturned = hips[:, None] + (a * c - b * s)[..., None] * left + (a * s + b * c)[..., None] * forward \
        + (rel @ up)[..., None] * up
    return np.stack([unturned @ right_axis, -(unturned @ up)], axis=-1), unturned @ toward


def _spread(p2: np.ndarray) -> float:
    """Total motion spread: the sum over joints of the per-axis variance over frames."""
    return float(np.nansum(np.nanvar(p2, axis=0)))


def load_bvh(path: str | Path, view: str = "auto", frames: tuple[int, int] | None = None,
             follow: bool = False) -> Motion:
    """A BVH file -> ``Motion`` of COCO-18 2D poses (BVH units, y down) with each joint's depth.

    ``view``: ``front``, ``side`` or ``auto`` (the side view only when it shows clearly more
    motion spread, > 1.5x, than the front view). ``frames``: ``(first, stop)`` reads only
    those frames (the up axis and the view are then found from them). ``follow``: the camera
    turns with the body (``project``).
    """
    if view not in ("front", "side", "auto"):
        raise ValueError(f"view must be front, side or auto, got {view!r}")
    p = Path(path)
    bvh = read_bvh(p, frames)
    if bvh.motion.shape[0] == 0:
        raise MotionFormatError(f"{p}: no frames" + (f" in {frames[0]}..{frames[1]}" if frames else ""))
    pts, frame = coco_points_3d(bvh)
    if view == "auto":
        front, side = project(pts, frame, "front")[0], project(pts, frame, "side")[0]
        view = "side" if _spread(side) > 1.5 * _spread(front) else "front"
    xy, depth = project(pts, frame, view, follow)
    return Motion(xy, fps=bvh.fps, source=f"{p} (view={view}{', following the body' if follow else ''})",
                  depth=depth)
