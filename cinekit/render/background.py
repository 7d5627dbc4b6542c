"""Backgrounds: a flat colour or an image scaled to cover the frame (centre-cropped)."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np


@lru_cache(maxsize=8)
def _image_background(data: bytes, width: int, height: int) -> np.ndarray:
    # Keyed by the bytes themselves (a bytes object caches its hash): the image drawn is the one
    # whose digest is in the job's key, whatever happens to the file meanwhile.
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        scale = max(width / im.width, height / im.height)
        size = (max(width, round(im.width * scale)), max(height, round(im.height * scale)))
        im = im.resize(size, Image.LANCZOS)
        left, top = (size[0] - width) // 2, (size[1] - height) // 2
        out = np.asarray(im.crop((left, top, left + width, top + height))).copy()
    out.setflags(write=False)
    return out


def background(spec: tuple[int, int, int] | str, width: int, height: int,
               read: Callable[[Path], bytes] | None = None) -> np.ndarray:
    """``(height, width, 3)`` uint8 frame for a job's background (a fresh writable copy).

    ``read`` gives an image's bytes (the run's input snapshot, ``Runtime.files.read``); without
    it the file is read from disk.
    """
    if isinstance(spec, str):
        data = read(Path(spec)) if read is not None else Path(spec).read_bytes()
        return _image_background(data, width, height).copy()
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = spec
    return frame
