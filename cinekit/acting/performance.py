"""A face performance: per-frame mouth openness and eye closure, the meeting point of its sources.

Sources produce it (dialogue timing, an audio file's loudness, face landmarks captured from
footage); the engines consume it (the puppet swaps the mouth/eye art, the diffusers engines add
prompt words and face keypoints). Keeping one small value type between them lets each side be
tested alone: a capture test checks the numbers it measures, an engine test feeds numbers in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FacePerformance:
    """Sampled at `fps`; both arrays have one value per frame in [0, 1] (NaN: not seen that frame)."""

    fps: float
    mouth_open: np.ndarray      # 0 closed … 1 wide open
    eyes_closed: np.ndarray     # 0 open … 1 shut (a blink)

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise ValueError("fps must be positive")
        if self.mouth_open.shape != self.eyes_closed.shape or self.mouth_open.ndim != 1:
            raise ValueError("mouth_open and eyes_closed must be 1-D arrays of the same length")

    def __len__(self) -> int:
        return int(self.mouth_open.shape[0])

    def resampled(self, fps: float, n_frames: int) -> "FacePerformance":
        """The same performance at another frame rate and length (nearest sample; held past the end)."""
        if len(self) == 0:
            nan = np.full(n_frames, np.nan)
            return FacePerformance(fps, nan, nan.copy())
        src = np.clip(np.round(np.arange(n_frames) * self.fps / fps).astype(int), 0, len(self) - 1)
        return FacePerformance(fps, self.mouth_open[src].copy(), self.eyes_closed[src].copy())
