"""The One-Euro filter: speed-adaptive low-pass smoothing of noisy tracked points.

Casiez, Roussel and Vogel, "1 Euro Filter: A Simple Speed-based Low-pass Filter for Noisy
Input in Interactive Systems", CHI 2012. An exponential smoother whose cutoff rises with the
signal's speed: ``fc = min_cutoff + beta * |dx/dt|`` (the speed itself low-passed at
``d_cutoff``), smoothing factor ``alpha = 1 / (1 + tau / Te)`` with ``tau = 1 / (2 pi fc)``
and ``Te = 1 / fps``. Slow motion is smoothed hard (jitter goes), fast motion passes with
little lag.

Pure numpy, vectorised over every point of a frame; a missing sample (NaN) stays missing
and restarts the filter for that coordinate. ``zero_phase`` averages a forward and a
backward pass over the clip padded by odd reflection (offline clips only), so a steady
motion is not delayed, at the clip's ends either.
"""

from __future__ import annotations

import numpy as np


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray:
    """Smoothing factor of an exponential filter at ``cutoff`` Hz sampled at ``fps``."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau * fps)


def _forward(x: np.ndarray, fps: float, min_cutoff: float, beta: float, d_cutoff: float) -> np.ndarray:
    out = np.full_like(x, np.nan)
    prev = np.full(x.shape[1:], np.nan)        # last filtered value, per coordinate
    dprev = np.zeros(x.shape[1:])              # last filtered speed (units / s)
    a_d = _alpha(d_cutoff, fps)
    for t in range(x.shape[0]):
        cur = x[t]
        fresh = np.isnan(prev)                 # first sample, or the first after a gap
        dx = np.where(fresh, 0.0, (cur - np.where(fresh, cur, prev)) * fps)
        dx_hat = np.where(fresh, 0.0, a_d * dx + (1.0 - a_d) * dprev)
        a = _alpha(min_cutoff + beta * np.abs(dx_hat), fps)
        filt = np.where(fresh, cur, a * cur + (1.0 - a) * prev)
        missing = np.isnan(cur)
        out[t] = np.where(missing, np.nan, filt)
        prev = np.where(missing, np.nan, filt)
        dprev = np.where(missing, 0.0, dx_hat)
    return out


def one_euro(
    x: np.ndarray,
    fps: float,
    min_cutoff: float = 1.0,
    beta: float = 0.5,
    d_cutoff: float = 1.0,
    zero_phase: bool = False,
) -> np.ndarray:
    """One-Euro filter ``x`` ``(frames, ...)`` along axis 0 -> same shape and units.

    ``min_cutoff`` (Hz): the cutoff at rest (lower = smoother still points); ``beta`` (per
    unit of ``x``): how fast the cutoff grows with speed (higher = less lag on fast moves);
    ``d_cutoff`` (Hz): the speed estimate's own cutoff. NaN stays NaN.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if not (min_cutoff > 0 and d_cutoff > 0 and beta >= 0):
        raise ValueError("min_cutoff and d_cutoff must be > 0 and beta >= 0")
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] == 0:
        return x.copy()
    if not zero_phase:
        return _forward(x, fps, min_cutoff, beta, d_cutoff)
    # Odd-reflected padding (as scipy's filtfilt): a motion still going at the clip's ends
    # (a walk) continues into the padding, so each pass has settled when the clip starts
    # and the two passes' lags cancel up to the first and last frame.
    f = x.shape[0]
    n = min(f - 1, int(np.ceil(3.0 * fps / (2.0 * np.pi * min_cutoff))) + 1)
    xp = np.concatenate([2.0 * x[:1] - x[n:0:-1], x, 2.0 * x[-1:] - x[-2:-n - 2:-1]]) if n > 0 else x
    fwd = _forward(xp, fps, min_cutoff, beta, d_cutoff)
    bwd = _forward(xp[::-1], fps, min_cutoff, beta, d_cutoff)[::-1]
    return (0.5 * (fwd + bwd))[n:n + f]
