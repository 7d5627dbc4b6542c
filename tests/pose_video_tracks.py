"""Real skeleton-video frames and their decoded poses, decoded once per test session.

Decoding costs ~0.2-0.5 s a frame on the shared CPU, so the pose tests share one contiguous
chunk of a real video: the first ``FRAMES`` frames of ``anyone-video-1_kps.mp4`` (30 fps),
which holds the importer's typical glitches (a hip jumping up the torso for two frames).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from cinekit.pose.skeleton_video import pose_from_frame, read_frames
from cinekit.testing.data import shared_data_dir

VIDEO = "anyone-video-1_kps.mp4"
FRAMES = 66
FPS = 30.0


@lru_cache(maxsize=1)
def video_frames() -> tuple[np.ndarray, ...]:
    """The chunk's RGB frames ``(H, W, 3)`` uint8."""
    path = shared_data_dir() / "pose-videos" / VIDEO
    return tuple(f for _, f in zip(range(FRAMES), read_frames(path)))


@lru_cache(maxsize=1)
def decoded_track() -> np.ndarray:
    """The chunk's poses as decoded (no cleaning): ``(FRAMES, 18, 2)`` pixels."""
    return np.stack([pose_from_frame(f) for f in video_frames()])
