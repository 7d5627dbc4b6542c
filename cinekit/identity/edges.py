"""Edge decontamination of a figure cut from an opaque backdrop: no halo of the old backdrop.

The pixels along a figure's edge in an opaque image are mixtures of the figure and the backdrop
(anti-aliasing, JPEG, motion blur). Kept as they are, the puppet draws a purple (or white)
outline round the character on every new background. Each edge pixel is unmixed instead, as
matting tools do: with ``C = a F + (1 - a) B`` (``B`` the backdrop plate behind it, ``F`` the
figure's colour just inside), ``a`` is the projection of ``C - B`` onto ``F - B`` and the pixel
becomes colour ``F``-ish with alpha ``a``. Pixels in the figure's interior are not touched.
"""

from __future__ import annotations

import cv2
import numpy as np

EDGE_PX = 2            # the edge band: pixels of the figure within this distance of its outside
_SEPARABLE = 12.0      # |F - B| (RGB units) below which figure and backdrop cannot be told apart


def decontaminate(rgb: np.ndarray, mask: np.ndarray, plate_lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rgb ``(H, W, 3)`` uint8, alpha ``(H, W)`` uint8) of a figure ``mask`` on backdrop
    ``plate_lab`` ``(H, W, 3)`` Lab: edge pixels unmixed, interior unchanged, outside alpha 0."""
    k = 2 * EDGE_PX + 1
    inner = cv2.erode(mask.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    band = mask & ~inner
    out = rgb.copy()
    alpha = np.where(mask, 255, 0).astype(np.uint8)
    if not band.any():
        return out, alpha
    c = rgb.astype(np.float32)
    # F: the mean colour of the interior pixels near each edge pixel (normalised box filter).
    w = cv2.boxFilter(inner.astype(np.float32), -1, (2 * k + 1, 2 * k + 1), normalize=False)
    f = cv2.boxFilter(c * inner[..., None], -1, (2 * k + 1, 2 * k + 1), normalize=False)
    ys, xs = np.nonzero(band)
    has_inside = w[ys, xs] > 0.5
    ys, xs = ys[has_inside], xs[has_inside]     # a thin stroke with no interior is left as it is
    fg = f[ys, xs] / w[ys, xs][:, None]
    bg = cv2.cvtColor(plate_lab[ys, xs][None].astype(np.float32), cv2.COLOR_LAB2RGB)[0] * 255.0
    px = c[ys, xs]
    span = fg - bg
    norm2 = (span * span).sum(axis=1)
    a = np.clip(((px - bg) * span).sum(axis=1) / np.maximum(norm2, 1e-6), 0.0, 1.0)
    a = np.where(norm2 < _SEPARABLE ** 2, 1.0, a)
    # C = a F' + (1 - a) B  =>  F' = B + (C - B) / a (clipped); an almost empty pixel takes F.
    unmixed = np.where(a[:, None] > 0.05, bg + (px - bg) / np.maximum(a, 1e-6)[:, None], fg)
    out[ys, xs] = np.clip(unmixed + 0.5, 0, 255).astype(np.uint8)
    alpha[ys, xs] = np.round(a * 255).astype(np.uint8)
    return out, alpha
