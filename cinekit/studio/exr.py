"""OpenEXR frames for compositors: half-float, scene-linear RGB (``cinekit animatic -f exr``).

EXR holds linear light by convention (Nuke, Resolve, After Effects read it so); the episode's
frames are sRGB, so each is linearised with the sRGB transfer function (IEC 61966-2-1) before it is
stored as 16-bit half floats, ZIP-compressed. Needs the ``openexr`` package (imported on use).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def srgb_to_linear(frame: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 sRGB -> float32 linear in [0, 1] (IEC 61966-2-1)."""
    c = np.asarray(frame, dtype=np.float32) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """The inverse, back to uint8 (for checks and previews)."""
    c = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    s = np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)
    return np.clip(np.round(s * 255.0), 0, 255).astype(np.uint8)


def write_exr(path: Path, frame: np.ndarray) -> Path:
    """One frame -> a half-float linear RGB EXR (ZIP compression)."""
    from cinekit.studio import require

    exr = require("OpenEXR", "openexr")
    header = {"compression": exr.ZIP_COMPRESSION, "type": exr.scanlineimage}
    with exr.File(header, {"RGB": srgb_to_linear(frame).astype(np.float16)}) as f:
        f.write(str(path))
    return Path(path)
