"""Keyframe in-betweening of poses: bone angles along the shortest arc, root (neck) lerped.

A key is ``(t_seconds, pose, ease)`` with ``pose`` ``(18, 2)`` in body space and ``ease`` a
name from ``easing.EASINGS`` (``(t, pose)`` means ``linear``). The ease of key ``i`` shapes the
segment from key ``i`` to key ``i + 1``: eased progress ``e = ease(u)``, ``u = (t - t_i) /
(t_{i+1} - t_i)``, drives every bone angle ``a = a_i + e * wrap(a_{i+1} - a_i)`` (shortest arc),
bone length ``l = l_i + e * (l_{i+1} - l_i)`` (constant when the keys share proportions, so
limbs never stretch) and the neck ``r = r_i + e * (r_{i+1} - r_i)``; the pose is rebuilt by
forward kinematics. Before the first key and after the last the pose holds; ``hold`` holds
key ``i`` until ``t_{i+1}``. A bone missing in one key of a segment is taken from the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cinekit.pose.angles import ROOT, bone_angles, bone_lengths, from_angles, wrap_angle
from cinekit.pose.easing import ease
from cinekit.pose.skeleton import N_JOINTS

Key = tuple  # (t_seconds: float, pose: (18, 2) body space, ease: str = "linear")


def sample_times(frames: int, fps: float) -> np.ndarray:
    """Frame times in seconds ``(frames,)``: ``i / fps`` for ``i = 0 .. frames - 1``."""
    if frames < 0 or fps <= 0:
        raise ValueError(f"need frames >= 0 and fps > 0, got frames={frames}, fps={fps}")
    return np.arange(frames, dtype=np.float64) / float(fps)


def _unpack(keys: Sequence[Key]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if len(keys) == 0:
        raise ValueError("interpolate needs at least one key")
    ts, poses, eases = [], [], []
    for key in keys:
        if len(key) not in (2, 3):
            raise ValueError(f"a key is (t, pose) or (t, pose, ease), got {len(key)} items")
        t, pose = float(key[0]), np.asarray(key[1], dtype=np.float64)
        if pose.shape != (N_JOINTS, 2):
            raise ValueError(f"key at t={t:g}s: pose must be (18, 2), got {pose.shape}")
        if np.isnan(pose[ROOT]).any():
            raise ValueError(f"key at t={t:g}s: the neck (root) is missing")
        name = str(key[2]) if len(key) == 3 else "linear"
        ease(name, 0.0)  # validates the name
        ts.append(t)
        poses.append(pose)
        eases.append(name)
    order = np.argsort(ts, kind="stable")
    t_sorted = np.asarray(ts)[order]
    if np.any(np.diff(t_sorted) <= 0):
        raise ValueError(f"key times must be distinct, got {sorted(ts)}")
    return t_sorted, np.stack(poses)[order], [eases[i] for i in order]


def interpolate(keys: Sequence[Key], times: np.ndarray) -> np.ndarray:
    """Poses at ``times`` ``(F,)`` seconds from ``keys`` -> ``(F, 18, 2)`` body space."""
    key_t, key_pose, key_ease = _unpack(keys)
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    angles, lengths = bone_angles(key_pose), bone_lengths(key_pose)  # (K, 17)
    roots = key_pose[:, ROOT, :]  # (K, 2)

    seg = np.clip(np.searchsorted(key_t, times, side="right") - 1, 0, len(key_t) - 1)
    a0, l0, r0 = angles[seg], lengths[seg], roots[seg]
    e = np.zeros_like(times)
    nxt = np.minimum(seg + 1, len(key_t) - 1)
    for i in range(len(key_t) - 1):
        sel = (seg == i) & (times >= key_t[i])
        if sel.any():
            u = (times[sel] - key_t[i]) / (key_t[i + 1] - key_t[i])
            e[sel] = ease(key_ease[i], u)
    a1, l1, r1 = angles[nxt], lengths[nxt], roots[nxt]
    # A bone missing on one side of the segment is taken from the other side.
    a0, a1 = np.where(np.isnan(a0), a1, a0), np.where(np.isnan(a1), a0, a1)
    l0, l1 = np.where(np.isnan(l0), l1, l0), np.where(np.isnan(l1), l0, l1)
    ee = e[:, None]
    a = a0 + ee * wrap_angle(a1 - a0)
    length = l0 + ee * (l1 - l0)
    root = r0 + ee * (r1 - r0)
    return from_angles(root, a, length)
