"""Frames in and out of rendered files, one at a time (constant memory), and SMPTE timecode."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np


def iter_frames(path: Path, limit: int | None = None) -> Iterator[np.ndarray]:
    """Decode ``path`` frame by frame as ``(H, W, 3)`` uint8: PNG, a PNG-frame folder, GIF or MP4.

    ``limit``: decode at most that many frames (ffmpeg stops by itself: closing its pipe early
    costs imageio-ffmpeg a polling wait per file).
    """
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        for frame in sorted(path.glob("*.png")):
            with Image.open(frame) as im:
                yield np.asarray(im.convert("RGB"))
    elif path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        with Image.open(path) as im:
            yield np.asarray(im.convert("RGB"))
    elif path.suffix.lower() == ".gif":
        from PIL import ImageSequence

        with Image.open(path) as im:
            for frame in ImageSequence.Iterator(im):
                yield np.asarray(frame.convert("RGB"))
    else:
        import imageio_ffmpeg

        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24",
                                            output_params=["-frames:v", str(limit)] if limit else None)
        meta = next(reader)
        w, h = meta["size"]
        try:
            for buf in reader:
                yield np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
        finally:
            reader.close()


def first_frame(path: Path) -> np.ndarray:
    gen = iter_frames(path, limit=1)
    try:
        return next(gen)
    finally:
        gen.close()


def source_indices(n_out: int, src_frames: int, src_fps: float, out_fps: float) -> np.ndarray:
    """``(n_out,)`` source frame shown at each output frame: the one on screen at ``i / out_fps``.

    Resampling by time, not by count: a 12 fps clip at 24 fps shows each frame twice, at 8 fps
    drops every third; the last source frame is held if the output is a frame longer.
    """
    t = np.arange(n_out) / out_fps
    return np.minimum(np.floor(t * src_fps + 1e-6).astype(np.int64), max(src_frames - 1, 0))


def resampled(path: Path, indices: np.ndarray) -> Iterator[np.ndarray]:
    """The frames of ``path`` at ``indices`` (non-decreasing), decoding the file once, in order."""
    want = iter(indices.tolist())
    target = next(want, None)
    last = None
    for k, frame in enumerate(iter_frames(path, limit=int(indices[-1]) + 1 if len(indices) else 1)):
        last = frame
        while target is not None and target == k:
            yield frame
            target = next(want, None)
        if target is None:
            return
    while target is not None and last is not None:  # the file had fewer frames than its record says
        yield last
        target = next(want, None)


def fit(frame: np.ndarray, size: tuple[int, int], background=(0, 0, 0)) -> np.ndarray:
    """``frame`` scaled to fit ``size`` (width, height), centred, letterboxed: ``(H, W, 3)`` uint8."""
    from PIL import Image

    w, h = size
    fh, fw = frame.shape[:2]
    if (fw, fh) == (w, h):
        return frame
    s = min(w / fw, h / fh)
    nw, nh = max(1, round(fw * s)), max(1, round(fh * s))
    canvas = np.empty((h, w, 3), np.uint8)
    canvas[:] = background
    img = np.asarray(Image.fromarray(frame).resize((nw, nh), Image.BILINEAR))
    y, x = (h - nh) // 2, (w - nw) // 2
    canvas[y:y + nh, x:x + nw] = img
    return canvas


def smpte(frame: int, fps: float, start: int = 0) -> str:
    """SMPTE ``HH:MM:SS:FF`` of a frame count (non-drop-frame, nominal rate ``round(fps)``).

    29.97 / 59.94 material is labelled at 30 / 60 frames a second, as non-drop timecode does.
    """
    rate = max(1, round(fps))
    n = frame + start
    ff = n % rate
    s = n // rate
    return f"{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{ff:02d}"


def parse_smpte(text: str, fps: float) -> int:
    """``HH:MM:SS:FF`` -> frame count at the nominal rate ``round(fps)``; ValueError if malformed."""
    parts = text.replace(";", ":").split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not HH:MM:SS:FF")
    hh, mm, ss, ff = (int(p) for p in parts)
    rate = max(1, round(fps))
    if mm >= 60 or ss >= 60 or ff >= rate:
        raise ValueError(f"{text!r} is not a valid timecode at {rate} fps")
    return ((hh * 60 + mm) * 60 + ss) * rate + ff


def frame_count(seconds: float, fps: float) -> int:
    """Frames covering ``seconds`` at ``fps`` (rounded to the nearest frame)."""
    return int(math.floor(seconds * fps + 0.5))
