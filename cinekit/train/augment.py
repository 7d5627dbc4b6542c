"""Identity-preserving augmentation of a character image (pure numpy; shapes in docstrings).

What may change without changing who the character is: where it stands in the frame and how
big (crops, scales), what is behind it (background swaps through its mask), and -- only when the
design is symmetric (``train.symmetric``) -- its handedness (flips). Colours, proportions and
the art itself are never touched: a hue shift would teach the model another character.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentSettings:
    flip: bool = False              # only for symmetric designs
    scale: tuple[float, float] = (0.75, 1.0)   # figure height / canvas height
    backgrounds: int = 6            # plain colours and gradients to swap in
    jitter: float = 0.08            # horizontal placement, fraction of the canvas


def fit_figure(rgb: np.ndarray, mask: np.ndarray, pad: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``rgb`` (H, W, 3) uint8 and ``mask`` (H, W) bool to the figure's bounding box."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return rgb, mask
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, mask.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, mask.shape[1])
    return rgb[y0:y1, x0:x1], mask[y0:y1, x0:x1]


def background(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A plain or vertically graded background (size, size, 3) uint8, colours from ``rng``."""
    a = rng.integers(30, 246, 3).astype(np.float32)
    if kind % 2 == 0:
        return np.broadcast_to(a.astype(np.uint8), (size, size, 3)).copy()
    b = rng.integers(30, 246, 3).astype(np.float32)
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    return np.broadcast_to(a * (1 - t) + b * t, (size, size, 3)).round().astype(np.uint8)


def _resize(img: np.ndarray, w: int, h: int, nearest: bool = False) -> np.ndarray:
    from PIL import Image

    mode = Image.NEAREST if nearest else Image.LANCZOS
    return np.asarray(Image.fromarray(img).resize((w, h), mode))


def augment(rgb: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator,
            settings: AugmentSettings = AugmentSettings()) -> tuple[np.ndarray, dict]:
    """One variant of the figure: (size, size, 3) uint8 and what was done (for the plan).

    The figure (``mask`` (H, W) bool over ``rgb`` (H, W, 3)) is cut out, maybe flipped, scaled
    to a height in ``settings.scale`` of the canvas, placed with a horizontal jitter (its feet
    kept in the frame) and composited over a swapped background."""
    fig, m = fit_figure(rgb, mask)
    flipped = bool(settings.flip and rng.random() < 0.5)
    if flipped:
        fig, m = fig[:, ::-1], m[:, ::-1]
    fh, fw = m.shape
    lo, hi = settings.scale
    s = float(rng.uniform(lo, hi)) * size / max(fh, fw * 0.9)   # a wide pose stays inside
    h, w = max(1, min(size, round(fh * s))), max(1, min(size, round(fw * s)))
    fig = _resize(np.ascontiguousarray(fig), w, h)
    alpha = _resize(np.ascontiguousarray(m).astype(np.uint8) * 255, w, h).astype(np.float32)[..., None] / 255.0
    slack = size - w
    x = int(np.clip(round(slack / 2 + rng.uniform(-1, 1) * settings.jitter * size), 0, slack))
    y = int(rng.integers(0, size - h + 1))
    kind = int(rng.integers(0, max(1, settings.backgrounds)))
    canvas = background(kind, size, rng).astype(np.float32)
    region = canvas[y:y + h, x:x + w]
    canvas[y:y + h, x:x + w] = region * (1 - alpha) + fig.astype(np.float32) * alpha
    info = {"flip": flipped, "scale": round(h / size, 3), "x": x, "y": y, "background": kind}
    return np.clip(canvas.round(), 0, 255).astype(np.uint8), info
