"""OpenPose control maps (the images pose ControlNets were trained on), drawn with cv2 only.

Same geometry and colours as ``controlnet_aux.open_pose.util.draw_bodypose``: on a black
RGB canvas, per character, each limb of ``skeleton.LIMBS`` is a filled ellipse (half-axes
``length / 2`` and ``stickwidth``) in ``COLORS[i] * 0.6``, then each joint a filled circle of
radius 4 in ``COLORS[j]``; coordinates are truncated to int like the original. Missing (NaN)
joints and the limbs touching them are skipped.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from cinekit.pose.skeleton import COLORS, LIMBS

_LIMIT = 1e6  # clamp absurd coordinates so cv2's int arithmetic cannot overflow


def _draw_one(canvas: np.ndarray, pose: np.ndarray, stickwidth: int) -> None:
    """Draw one ``(18, 2)`` pixel pose onto ``canvas`` ``(H, W, 3)`` uint8 in place."""
    ok = np.isfinite(pose).all(axis=-1)
    pose = np.clip(np.where(ok[:, None], pose, 0.0), -_LIMIT, _LIMIT)
    for (a, b), color in zip(LIMBS, COLORS, strict=False):
        if not (ok[a] and ok[b]):
            continue
        xa, ya = float(pose[a, 0]), float(pose[a, 1])
        xb, yb = float(pose[b, 0]), float(pose[b, 1])
        mx, my = (xa + xb) / 2, (ya + yb) / 2
        length = math.hypot(xa - xb, ya - yb)
        angle = math.degrees(math.atan2(ya - yb, xa - xb))
        polygon = cv2.ellipse2Poly((int(mx), int(my)), (int(length / 2), stickwidth),
                                   int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, [int(float(c) * 0.6) for c in color])
    for j, color in enumerate(COLORS):
        if ok[j]:
            cv2.circle(canvas, (int(pose[j, 0]), int(pose[j, 1])), 4, color, thickness=-1)


def draw_control_map(poses: np.ndarray, width: int, height: int, stickwidth: int = 4) -> np.ndarray:
    """Characters' poses ``(C, 18, 2)`` (or one ``(18, 2)``) in pixels -> ``(H, W, 3)`` uint8 RGB."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim == 2:
        poses = poses[None]
    canvas = np.zeros((int(height), int(width), 3), dtype=np.uint8)
    for pose in poses:
        _draw_one(canvas, pose, int(stickwidth))
    return canvas


def draw_control_frames(track: np.ndarray, width: int, height: int, stickwidth: int = 4) -> np.ndarray:
    """A pose track ``(F, C, 18, 2)`` pixels -> control frames ``(F, H, W, 3)`` uint8 RGB."""
    track = np.asarray(track, dtype=np.float64)
    out = np.zeros((track.shape[0], int(height), int(width), 3), dtype=np.uint8)
    for f in range(track.shape[0]):
        out[f] = draw_control_map(track[f], width, height, stickwidth)
    return out
