"""Reading footage for capture: a video, a GIF or one still image, optionally subsampled in time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cinekit.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
STILL_FPS = 12.0   # the rate given to a single image (one frame)


def source_fps(path: Path) -> float:
    """The footage's own frame rate (``STILL_FPS`` for an image)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return STILL_FPS
    from cinekit.pose.skeleton_video import fps_of

    try:
        return fps_of(path)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file is the user's input, not a bug
        raise UserError(f"{path}: cannot read this footage: {exc}") from None


def read_image(path: Path) -> np.ndarray:
    """An image file -> ``(H, W, 3) uint8`` RGB."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"{path}: cannot read this image")
    return np.ascontiguousarray(img[..., ::-1])


def frames(path: str | Path, step: float = 1.0) -> Iterator[tuple[int, np.ndarray]]:
    """``(source index, RGB frame)`` of the footage, keeping source frames ``round(k * step)``
    (``step`` > 1 subsamples: skipped video frames are only grabbed, not decoded to RGB)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: footage not found")
    if p.suffix.lower() in IMAGE_SUFFIXES:
        yield 0, read_image(p)
        return
    wanted = 0.0

    def keep(i: int) -> bool:
        nonlocal wanted
        if i >= round(wanted):
            wanted += step
            return True
        return False

    if p.suffix.lower() == ".gif":
        from cinekit.pose.skeleton_video import read_frames

        for i, rgb in enumerate(read_frames(p)):
            if keep(i):
                yield i, rgb
        return
    import cv2

    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise UserError(f"{p}: cannot open this video")
    try:
        i = 0
        while cap.grab():
            if keep(i):
                ok, bgr = cap.retrieve()
                if ok:
                    yield i, np.ascontiguousarray(bgr[..., ::-1])
            i += 1
    finally:
        cap.release()


def looks_like_footage(path: str | Path) -> bool:
    """A picture or video of the world rather than a rendered skeleton video (coloured limbs on
    black): less than half of its first frame is near-black."""
    for _i, rgb in frames(path):
        return float((rgb.max(axis=-1) < 40).mean()) < 0.5
    return False
