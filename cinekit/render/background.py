"""Backgrounds: a flat colour or an image scaled to cover the frame (centre-cropped)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=8)
def _image_background(path: str, width: int, height: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = max(width / im.width, height / im.height)
        size = (max(width, round(im.width * scale)), max(height, round(im.height * scale)))
        im = im.resize(size, Image.LANCZOS)
        left, top = (size[0] - width) // 2, (size[1] - height) // 2
        out = np.asarray(im.crop((left, top, left + width, top + height))).copy()
    out.setflags(write=False)
    return out


def background(spec: tuple[int, int, int] | str, width: int, height: int) -> np.ndarray:
    """``(height, width, 3)`` uint8 frame for a job's background (a fresh writable copy)."""
    if isinstance(spec, str):
        return _image_background(spec, width, height).copy()
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = spec
    return frame
