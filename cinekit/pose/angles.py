"""Bone lengths and angles of COCO-18 poses, and forward kinematics over ``skeleton.BONES``.

A pose is ``(..., 18, 2)`` (x right, y down, NaN = missing joint); bone ``k`` goes from
``BONES[k][0]`` (parent) to ``BONES[k][1]`` (child), so per-bone arrays are ``(..., 17)``.
Angles are ``atan2(dy, dx)`` in image coordinates (radians; 0 = +x, pi/2 = down).
Everything is pure numpy and works on any leading batch shape.
"""

from __future__ import annotations

import numpy as np

from cinekit.pose.skeleton import BONES, INDEX, N_JOINTS, pose_from_dict

N_BONES = len(BONES)
_PARENTS = np.array([p for p, _ in BONES])
_CHILDREN = np.array([c for _, c in BONES])
ROOT = INDEX["neck"]
"""Forward kinematics starts at the neck (the root of ``skeleton.BONES``)."""

REST_POSE: np.ndarray = pose_from_dict({
    "nose": (0.0, -1.0), "neck": (0.0, -0.86),
    "right_shoulder": (-0.135, -0.845), "right_elbow": (-0.165, -0.655),
    "right_wrist": (-0.18, -0.485),
    "left_shoulder": (0.135, -0.845), "left_elbow": (0.165, -0.655),
    "left_wrist": (0.18, -0.485),
    "right_hip": (-0.075, -0.5), "right_knee": (-0.08, -0.25), "right_ankle": (-0.085, 0.0),
    "left_hip": (0.075, -0.5), "left_knee": (0.08, -0.25), "left_ankle": (0.085, 0.0),
    "right_eye": (-0.032, -1.03), "left_eye": (0.032, -1.03),
    "right_ear": (-0.085, -1.0), "left_ear": (0.085, -1.0),
})
"""The default anime body standing at rest, front view, body space ``(18, 2)``: ankles on
the floor (y = 0) either side of x = 0, nose at y = -1 (ankles-to-nose height 1.0);
about 6.5 heads tall with long legs."""


def bone_vectors(pose: np.ndarray) -> np.ndarray:
    """Child minus parent joint per bone: ``(..., 18, 2) -> (..., 17, 2)`` (same units)."""
    pose = np.asarray(pose, dtype=np.float64)
    return pose[..., _CHILDREN, :] - pose[..., _PARENTS, :]


def bone_lengths(pose: np.ndarray) -> np.ndarray:
    """Euclidean bone lengths: ``(..., 18, 2) -> (..., 17)``; NaN where a bone end is missing."""
    v = bone_vectors(pose)
    return np.hypot(v[..., 0], v[..., 1])


def bone_angles(pose: np.ndarray) -> np.ndarray:
    """Bone directions ``atan2(dy, dx)`` in radians: ``(..., 18, 2) -> (..., 17)``, in (-pi, pi]."""
    v = bone_vectors(pose)
    out = np.arctan2(v[..., 1], v[..., 0])
    return np.where(np.isnan(v).any(axis=-1), np.nan, out)


def from_angles(root_xy: np.ndarray, angles: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Forward kinematics: neck at ``root_xy`` ``(..., 2)``, bone ``angles`` ``(..., 17)`` rad and
    ``lengths`` ``(..., 17)`` (broadcast) -> pose ``(..., 18, 2)``.

    ``child = parent + length * (cos a, sin a)`` in ``BONES`` order (parents first). NaN-safe:
    a NaN angle or length, or a missing parent, leaves the child (and its subtree) missing.
    """
    root_xy = np.asarray(root_xy, dtype=np.float64)
    angles = np.asarray(angles, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)
    batch = np.broadcast_shapes(root_xy.shape[:-1], angles.shape[:-1], lengths.shape[:-1])
    angles = np.broadcast_to(angles, (*batch, N_BONES))
    lengths = np.broadcast_to(lengths, (*batch, N_BONES))
    pose = np.full((*batch, N_JOINTS, 2), np.nan)
    pose[..., ROOT, :] = np.broadcast_to(root_xy, (*batch, 2))
    step = lengths[..., None] * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    for k, (p, c) in enumerate(BONES):
        pose[..., c, :] = pose[..., p, :] + step[..., k, :]
    return pose


DEFAULT_LENGTHS: np.ndarray = bone_lengths(REST_POSE)
"""``(17,)`` bone lengths of ``REST_POSE`` in body-space units (ankles-to-nose height 1.0)."""
DEFAULT_LENGTHS.setflags(write=False)
REST_ANGLES: np.ndarray = bone_angles(REST_POSE)
"""``(17,)`` bone angles (rad) of the rest stance; used to measure a body's standing height."""
REST_ANGLES.setflags(write=False)
REST_POSE.setflags(write=False)

_ANKLES = np.array([INDEX["right_ankle"], INDEX["left_ankle"]])


def rest_pose(lengths: np.ndarray) -> np.ndarray:
    """The rest stance with these bone ``lengths`` ``(..., 17)``, lowest ankle on y = 0 and the
    ankles centred on x = 0: ``(..., 18, 2)`` in the units of ``lengths``."""
    lengths = np.asarray(lengths, dtype=np.float64)
    pose = from_angles(np.zeros(2), REST_ANGLES, lengths)
    ankles = pose[..., _ANKLES, :]
    shift = np.stack([ankles[..., 0].mean(axis=-1), ankles[..., 1].max(axis=-1)], axis=-1)
    return pose - shift[..., None, :]


def body_height(lengths: np.ndarray) -> np.ndarray:
    """Standing ankles-to-nose height of a body with bone ``lengths`` ``(..., 17)`` -> ``(...)``,
    measured on its rest stance (1.0 for ``DEFAULT_LENGTHS``)."""
    pose = rest_pose(lengths)
    return -pose[..., INDEX["nose"], 1]


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Wrap radians into [-pi, pi): ``(a + pi) mod 2 pi - pi`` (elementwise, NaN passes)."""
    return np.mod(np.asarray(a, dtype=np.float64) + np.pi, 2 * np.pi) - np.pi
