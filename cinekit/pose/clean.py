"""Physically plausible tracks from noisy pose sources (skeleton videos, detectors).

A colour-decoded or detected track has glitches no body can make: for a frame or two a hip
jumps up the torso, a knee lands above its hip, a shin doubles in length. ``clean_track``:

1. **bone-length consistency**: each bone's reference length is its median over the clip;
   a bone longer than ``long`` x or shorter than ``short`` x that (2D bones only look
   shorter when foreshortened, never much longer), or a knee above its hip, is implausible;
2. **which joint is wrong**: of an implausible bone's two joints, the one that jumped away
   from its own recent path (deviation from a running median over ``window`` frames, in
   units of the body's torso length) more than ``jump`` is marked missing; a fast but
   rigid motion (a waving wrist keeps its forearm) is never touched;
3. **re-estimation**: marked joints (and detector gaps up to ``max_gap`` seconds) are
   interpolated linearly in time from the frames either side;
4. **smoothing**: a zero-phase One-Euro filter (``one_euro``) on the whole track, in torso
   units so its parameters do not depend on the video's resolution.

Pure numpy on ``(frames, 18, 2)`` pixel tracks (NaN = missing).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from cinekit.pose.angles import bone_lengths
from cinekit.pose.one_euro import one_euro
from cinekit.pose.skeleton import BONES, INDEX

_BODY_BONES = [k for k, (_p, c) in enumerate(BONES) if c <= 13]
_KNEES = ((INDEX["right_hip"], INDEX["right_knee"]), (INDEX["left_hip"], INDEX["left_knee"]))


@dataclass(frozen=True)
class CleanSettings:
    """Thresholds of ``clean_track`` (see the module docstring)."""

    long: float = 1.4          # x reference length: longer is implausible
    short: float = 0.5         # x reference length: shorter is implausible
    jump: float = 0.15         # torso lengths away from the running median: a jump
    window: int = 7            # frames of the running median
    max_gap: float = 0.5       # seconds: longer gaps stay missing
    min_cutoff: float = 1.0    # One-Euro, Hz
    beta: float = 2.0          # One-Euro, per torso length per second
    smooth: bool = True


def _nanmedian(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices are NaN, by design
        return np.nanmedian(a, axis=axis)


def torso_length(poses: np.ndarray) -> float:
    """The body's scale ``(F, 18, 2) -> float``: median neck -> hip (else neck -> shoulder x 2.5,
    else 1.0) length over the clip, in the track's units."""
    lens = bone_lengths(poses)
    hips = lens[:, [BONES.index((1, 8)), BONES.index((1, 11))]]
    if np.isfinite(hips).any():
        return float(np.nanmedian(hips))
    sh = lens[:, [BONES.index((1, 2)), BONES.index((1, 5))]]
    return float(2.5 * np.nanmedian(sh)) if np.isfinite(sh).any() else 1.0


def running_median(poses: np.ndarray, window: int) -> np.ndarray:
    """Per-joint median position over ``window`` frames centred on each frame ``(F, 18, 2)``."""
    f = poses.shape[0]
    half = window // 2
    pad = np.concatenate([np.full((half, *poses.shape[1:]), np.nan), poses,
                          np.full((half, *poses.shape[1:]), np.nan)])
    stack = np.stack([pad[k:k + f] for k in range(2 * half + 1)])
    return _nanmedian(stack, axis=0)


def implausible(poses: np.ndarray, settings: CleanSettings = CleanSettings()) -> np.ndarray:
    """``(F, 17)`` bool: bones out of ``[short, long]`` x their clip median, and thighs whose
    knee is above the hip."""
    lens = bone_lengths(poses)
    ref = _nanmedian(lens, axis=0)
    with np.errstate(invalid="ignore"):
        r = lens / ref
        bad = (r > settings.long) | (r < settings.short)
        for hip, knee in _KNEES:
            k = BONES.index((hip, knee))
            bad[:, k] |= poses[:, knee, 1] < poses[:, hip, 1]
    bad[:, [k for k in range(len(BONES)) if k not in _BODY_BONES]] = False
    return bad


def glitches(poses: np.ndarray, settings: CleanSettings = CleanSettings()) -> np.ndarray:
    """``(F, 18)`` bool: joints judged wrong (an implausible bone's endpoint that jumped)."""
    scale = torso_length(poses)
    dev = np.linalg.norm(poses - running_median(poses, settings.window), axis=-1) / scale
    dev = np.where(np.isnan(dev), -np.inf, dev)
    bad_bones = implausible(poses, settings)
    out = np.zeros(poses.shape[:2], dtype=bool)
    for k in _BODY_BONES:
        p, c = BONES[k]
        rows = np.flatnonzero(bad_bones[:, k])
        if rows.size == 0:
            continue
        culprit = np.where(dev[rows, c] >= dev[rows, p], c, p)
        jumped = dev[rows, culprit] > settings.jump
        out[rows[jumped], culprit[jumped]] = True
    return out


def fill_gaps(poses: np.ndarray, fps: float, max_gap: float) -> np.ndarray:
    """Linear interpolation in time of missing joints across gaps of at most ``max_gap``
    seconds with a known frame on both sides; ``(F, 18, 2)`` -> same."""
    out = poses.copy()
    limit = max(1, int(round(max_gap * fps)))
    t = np.arange(poses.shape[0])
    for j in range(poses.shape[1]):
        ok = np.isfinite(poses[:, j]).all(axis=1)
        if ok.sum() < 2 or ok.all():
            continue
        known = np.flatnonzero(ok)
        nxt = np.searchsorted(known, t)                 # first known frame at or after t
        inner = (~ok) & (nxt > 0) & (nxt < known.size)
        lo, hi = known[np.clip(nxt - 1, 0, known.size - 1)], known[np.clip(nxt, 0, known.size - 1)]
        inner &= (hi - lo - 1) <= limit
        for axis in range(2):
            out[inner, j, axis] = np.interp(t[inner], known, poses[known, j, axis])
    return out


def clean_track(poses: np.ndarray, fps: float, settings: CleanSettings = CleanSettings()) -> np.ndarray:
    """A noisy ``(F, 18, 2)`` pixel track -> a plausible one (same shape and units)."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (18, 2):
        raise ValueError(f"poses must be (frames, 18, 2), got {poses.shape}")
    if poses.shape[0] < 3:
        return poses.copy()
    out = poses.copy()
    out[glitches(out, settings)] = np.nan
    out = fill_gaps(out, fps, settings.max_gap)
    if settings.smooth:
        scale = torso_length(out)
        out = one_euro(out / scale, fps, settings.min_cutoff, settings.beta, zero_phase=True) * scale
    return out
