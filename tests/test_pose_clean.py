"""Physically plausible skeleton-video tracks (issue 11): One-Euro smoothing and bone-length
consistency, measured on a real decoded video and on known synthetic trajectories."""

from __future__ import annotations

import numpy as np
import pytest

from cinekit.pose.angles import REST_POSE, bone_lengths
from cinekit.pose.clean import CleanSettings, clean_track, fill_gaps, glitches, implausible
from cinekit.pose.one_euro import one_euro
from cinekit.pose.skeleton import BONES, INDEX
from tests.pose_video_tracks import FPS, decoded_track

FPS_SYN = 30.0
T = np.arange(150) / FPS_SYN
LEG_TORSO = [k for k, (_p, c) in enumerate(BONES) if c in (8, 9, 10, 11, 12, 13)]
HIPS_KNEES = ((INDEX["right_hip"], INDEX["right_knee"]), (INDEX["left_hip"], INDEX["left_knee"]))


# ------------------------------------------------------------------ the One-Euro filter
def test_one_euro_follows_a_fast_sine_without_lag():
    """1.5 Hz, amplitude 0.5 (torso lengths): a dance arm; the clean_track settings."""
    s = CleanSettings()
    x = 0.5 * np.sin(2 * np.pi * 1.5 * T)
    y = one_euro(x, FPS_SYN, s.min_cutoff, s.beta, zero_phase=True)
    assert np.abs(y - x)[15:-15].max() < 0.035               # measured 0.024
    lag = np.argmax(np.correlate(y - y.mean(), x - x.mean(), "full")) - (len(x) - 1)
    assert lag == 0
    causal = one_euro(x, FPS_SYN, s.min_cutoff, s.beta)        # the causal pass lags, boundedly
    assert np.abs(causal - x)[15:].max() < 0.2


def test_one_euro_step_settles_within_a_few_frames():
    s = CleanSettings()
    x = (T >= 2.5).astype(float)
    y = one_euro(x, FPS_SYN, s.min_cutoff, s.beta, zero_phase=True)
    k = int(np.argmax(T >= 2.5))
    assert np.abs(y - x).max() < 0.2                          # measured 0.15
    assert np.abs(y - x)[: k - 4].max() < 0.01 and np.abs(y - x)[k + 4:].max() < 0.01


def test_one_euro_removes_jitter_on_a_still_point():
    s = CleanSettings()
    noise = np.random.default_rng(0).normal(0.0, 0.01, (150, 3))
    y = one_euro(noise, FPS_SYN, s.min_cutoff, s.beta, zero_phase=True)
    assert y[10:-10].std() < 0.4 * 0.01                       # measured 0.27x


def test_one_euro_keeps_gaps_and_restarts_after_them():
    x = np.linspace(0.0, 1.0, 20)
    x[8:11] = np.nan
    y = one_euro(x, FPS_SYN)
    assert np.isnan(y[8:11]).all() and np.isfinite(y[:8]).all() and np.isfinite(y[11:]).all()
    assert y[11] == x[11]                                       # a fresh start, not a drag from 7
    with pytest.raises(ValueError):
        one_euro(x, 0.0)


# ------------------------------------------------------------------ bone-length consistency
def test_a_waving_forearm_is_not_a_glitch():
    """Fast (2 Hz, +-45 deg: 4.7 torso lengths/s at the wrist) but rigid: nothing is dropped,
    the swing is kept."""
    poses = np.broadcast_to(REST_POSE * 300.0 + 400.0, (90, 18, 2)).copy()
    elbow = poses[:, INDEX["right_elbow"]]
    a = np.pi / 4 * np.sin(2 * np.pi * 2.0 * np.arange(90) / FPS_SYN)
    forearm = np.hypot(*(REST_POSE[4] - REST_POSE[3])) * 300.0
    poses[:, INDEX["right_wrist"]] = elbow + forearm * np.stack([np.sin(a), np.cos(a)], axis=1)
    assert not glitches(poses).any()
    out = clean_track(poses, FPS_SYN)
    err = np.linalg.norm(out - poses, axis=-1)
    swing = 2 * forearm * np.sin(np.pi / 4)                     # wrist travel end to end
    assert err[5:-5].max() < 0.1 * swing, err.max() / swing


def test_fill_gaps_interpolates_short_gaps_only():
    poses = np.broadcast_to(REST_POSE, (30, 18, 2)).copy()
    poses[:, 0, 0] = np.arange(30.0)
    poses[5:8, 0] = np.nan                                      # 3 frames: filled
    poses[12:29, 0] = np.nan                                    # 17 frames (> 0.5 s): kept missing
    out = fill_gaps(poses, 30.0, max_gap=0.5)
    np.testing.assert_allclose(out[5:8, 0, 0], [5.0, 6.0, 7.0])
    assert np.isnan(out[12:29, 0]).all()


def _metrics(p: np.ndarray) -> tuple[float, float, float]:
    """(legs+torso bone-length CV, frames with an implausible leg/torso bone, knee above hip)."""
    lens = bone_lengths(p)[:, LEG_TORSO]
    cv = float(np.mean(np.nanstd(lens, axis=0) / np.nanmean(lens, axis=0)))
    bad = float(implausible(p)[:, LEG_TORSO].any(axis=1).mean())
    knee = float(np.any([(p[:, k, 1] < p[:, h, 1]) for h, k in HIPS_KNEES], axis=0).mean())
    return cv, bad, knee


def test_real_video_bones_become_consistent():
    raw = decoded_track()
    out = clean_track(raw, FPS)
    cv0, bad0, knee0 = _metrics(raw)
    cv1, bad1, knee1 = _metrics(out)
    # measured on this chunk: CV 0.101 -> 0.035, implausible frames 0.136 -> 0, knees 0 -> 0
    assert bad0 > 0.05 and bad1 == 0.0
    assert cv1 < 0.5 * cv0
    assert knee1 == 0.0
    assert np.isfinite(out[:, :14]).all()
    # Only the glitches move far: elsewhere the joints stay within a few pixels.
    moved = np.linalg.norm(out - raw, axis=-1)[:, :14]
    assert np.nanmedian(moved) < 4.0


def test_injected_knees_above_hips_are_re_estimated():
    raw = clean_track(decoded_track(), FPS, CleanSettings(smooth=False))
    broken = raw.copy()
    starts = [5, 17, 30, 44, 57]
    for t in starts:                                            # two-frame bursts, a knee flips
        for f in (t, t + 1):
            hip, knee = HIPS_KNEES[f % 2]
            broken[f, knee, 1] = broken[f, hip, 1] - 0.6 * (broken[f, knee, 1] - broken[f, hip, 1])
    assert _metrics(broken)[2] >= 0.1
    out = clean_track(broken, FPS, CleanSettings(smooth=False))
    assert _metrics(out)[2] == 0.0
    thigh = np.nanmedian(bone_lengths(raw)[:, BONES.index((8, 9))])
    err = np.linalg.norm(out - raw, axis=-1)[:, :14]
    assert np.nanmax(err) < 0.25 * thigh, np.nanmax(err) / thigh   # put back near where it was
