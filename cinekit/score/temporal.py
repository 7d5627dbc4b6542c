"""Temporal consistency of a clip: flicker and optical-flow warping error, per clip and per frame pair.

Both scores are mean absolute RGB differences divided by 255, so they lie in [0, 1]:
0 = consecutive frames identical (after warping, for the warping error), 1 = every pixel
flips between black and white. A still image has no temporal score.

- **flicker**: ``mean |F[t+1] - F[t]| / 255`` over the pixels (optionally inside a region)
  and the three channels; motion counts as flicker too, so compare clips of similar motion.
- **warping error**: frame ``t+1`` is warped back onto frame ``t`` along the forward
  Farneback flow (OpenCV) and compared with frame ``t`` on the pixels the flow can explain.
  Occluded and unreliable pixels are masked out by the forward-backward consistency check of
  Sundaram, Brox & Keutzer (2010), as used for video style transfer by Ruder et al. (2016):
  a pixel is kept where ``|w_f + w_b(x + w_f)|^2 <= 0.01 (|w_f|^2 + |w_b(x + w_f)|^2) + 0.5``.
  This is the warping error of Lai et al. (2018) with an L1 instead of an L2 pixel distance.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FB_ALPHA = 0.01
FB_BETA = 0.5
# Farneback parameters: pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags.
FARNEBACK = (0.5, 4, 15, 3, 5, 1.2, 0)


@dataclass
class TemporalScores:
    flicker: float | None                       # mean over frame pairs, [0, 1]
    warp_error: float | None                    # mean over frame pairs, [0, 1]
    flicker_pairs: list[float] = field(default_factory=list)     # (frames - 1,)
    warp_pairs: list[float] = field(default_factory=list)        # (frames - 1,)
    occluded: list[float] = field(default_factory=list)          # fraction masked out per pair
    scale: float = 1.0                          # resize factor applied before the flow


# --------------------------------------------------------------------------- loading
def load_frames(path: Path | str) -> tuple[np.ndarray, float | None]:
    """Any still or clip -> ``(frames (F, H, W, 3) uint8, fps or None)``.

    PNG/JPEG/WebP stills (F = 1), GIF (every frame; fps from the frame delay), MP4/WebM/MOV
    (imageio-ffmpeg), or a folder of numbered PNG frames (fps from a cinekit sidecar if any).
    """
    from PIL import Image, ImageSequence

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
        if not files:
            raise ValueError(f"{path}: no PNG frames in this folder")
        frames = [np.asarray(Image.open(f).convert("RGB")) for f in files]
        return np.stack(frames), _sidecar_fps(path)
    suffix = path.suffix.lower()
    if suffix in (".mp4", ".webm", ".mov", ".mkv", ".avi"):
        import imageio_ffmpeg

        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        w, h = meta["size"]
        frames = [np.frombuffer(buf, np.uint8).reshape(h, w, 3) for buf in reader]
        return np.stack(frames), float(meta["fps"])
    with Image.open(path) as im:
        n = getattr(im, "n_frames", 1)
        if n == 1:
            return np.asarray(im.convert("RGB"))[None].copy(), None
        frames, delays = [], []
        for frame in ImageSequence.Iterator(im):
            frames.append(np.asarray(frame.convert("RGB")).copy())
            delays.append(frame.info.get("duration", 0) or 0)
        ms = float(np.median(delays)) if delays else 0.0
        return np.stack(frames), (1000.0 / ms if ms > 0 else None)


def _sidecar_fps(path: Path) -> float | None:
    import json

    side = path.with_suffix(".json") if path.suffix else path.parent / f"{path.name}.json"
    try:
        return float(json.loads(side.read_text())["job"]["fps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --------------------------------------------------------------------------- scores
def _region_weights(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask, bool)
    return np.broadcast_to(m, shape) if m.ndim == 2 else m


def flicker_pairs(frames: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per pair ``(F-1,)``: mean ``|F[t+1] - F[t]| / 255`` over channels and pixels (inside ``mask``).

    ``frames`` ``(F, H, W, 3)`` uint8; ``mask`` ``(H, W)`` or ``(F, H, W)`` bool (pair t uses
    the union of the masks of frames t and t+1).
    """
    f = np.asarray(frames)
    if len(f) < 2:
        return np.zeros(0)
    out = np.empty(len(f) - 1)
    m = _region_weights(mask, f.shape[:3])
    for t in range(len(f) - 1):
        diff = np.abs(f[t + 1].astype(np.int16) - f[t].astype(np.int16)).mean(axis=-1)
        if m is None:
            out[t] = diff.mean() / 255.0
        else:
            sel = m[t] | m[t + 1]
            out[t] = diff[sel].mean() / 255.0 if sel.any() else 0.0
    return out


def farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense flow ``(H, W, 2)`` (dx, dy pixels) from grey frame ``a`` to ``b`` (OpenCV Farneback 2003)."""
    import cv2

    return cv2.calcOpticalFlowFarneback(a, b, None, *FARNEBACK)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at ``x + flow(x)`` (bilinear, border replicated): ``out(x) = image(x + flow(x))``."""
    import cv2

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Forward-backward check ``(H, W)`` bool: True where the flow is reliable (not occluded)."""
    back_at = warp(backward, forward)
    err = ((forward + back_at) ** 2).sum(axis=-1)
    mag = (forward ** 2).sum(axis=-1) + (back_at ** 2).sum(axis=-1)
    h, w = forward.shape[:2]
    gx, gy = np.meshgrid(np.arange(w), np.arange(h))
    inside = ((gx + forward[..., 0] >= 0) & (gx + forward[..., 0] <= w - 1)
              & (gy + forward[..., 1] >= 0) & (gy + forward[..., 1] <= h - 1))
    return (err <= FB_ALPHA * mag + FB_BETA) & inside


def warp_error_pairs(frames: np.ndarray, mask: np.ndarray | None = None,
                     max_side: int = 384) -> tuple[np.ndarray, np.ndarray, float]:
    """Per pair ``(F-1,)`` warping error in [0, 1], the occluded fraction per pair, and the scale used.

    Frames larger than ``max_side`` on their long side are downscaled first (flow is slow and
    the score is a mean). ``mask`` as in ``flicker_pairs`` (frame t's region is scored).
    """
    import cv2

    f = np.asarray(frames)
    if len(f) < 2:
        return np.zeros(0), np.zeros(0), 1.0
    h, w = f.shape[1:3]
    scale = min(1.0, max_side / max(h, w))
    m = _region_weights(mask, f.shape[:3])
    if scale < 1.0:
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        f = np.stack([cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in f])
        if m is not None:
            m = np.stack([cv2.resize(x.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0 for x in m])
    grey = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in f]

    def pair(t: int) -> tuple[float, float]:
        fwd = farneback(grey[t], grey[t + 1])
        bwd = farneback(grey[t + 1], grey[t])
        valid = consistent(fwd, bwd)
        if m is not None:
            region = m[t]
            occ = 1.0 - (valid & region).sum() / max(1, region.sum())
            valid = valid & region
        else:
            occ = 1.0 - valid.mean()
        warped = warp(f[t + 1], fwd)
        diff = np.abs(warped.astype(np.int16) - f[t].astype(np.int16)).mean(axis=-1)
        return (diff[valid].mean() / 255.0 if valid.any() else 0.0), occ

    # OpenCV releases the GIL: frame pairs run in parallel threads, results in pair order.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(pair, range(len(f) - 1)))
    errors = np.array([r[0] for r in results])
    occluded = np.array([r[1] for r in results])
    return errors, occluded, scale


def temporal_scores(frames: np.ndarray, mask: np.ndarray | None = None, max_side: int = 384) -> TemporalScores:
    """Flicker and warping error of a clip ``(F, H, W, 3)`` uint8; ``None`` scores for a still."""
    if len(frames) < 2:
        return TemporalScores(None, None)
    fl = flicker_pairs(frames, mask)
    we, occ, scale = warp_error_pairs(frames, mask, max_side)
    return TemporalScores(float(fl.mean()), float(we.mean()), [float(x) for x in fl],
                          [float(x) for x in we], [float(x) for x in occ], scale)
