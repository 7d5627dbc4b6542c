"""Temporal scores on real AnimateDiff clips: brightness jitter and shuffling raise flicker and warp error."""

from __future__ import annotations

import numpy as np
import pytest

from cinekit.score.temporal import flicker_pairs, load_frames, temporal_scores, warp_error_pairs

ANIMATIONS = ("model_01_01", "model_02_01", "model_03_01")
JITTER = (0, 4, 8, 16, 32)       # max per-frame brightness offset, in 8-bit levels
N_FRAMES = 12                    # a 12-frame segment keeps the suite fast (Farneback is ~15 ms a flow)


def brightness_jitter(frames: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """Add one random offset in [-strength, strength] to every pixel of each frame (same draw per seed)."""
    offsets = np.random.default_rng(seed).uniform(-1, 1, len(frames)) * strength
    return np.clip(frames.astype(np.float32) + offsets[:, None, None, None], 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module", params=ANIMATIONS)
def clip(request, data_dir):
    frames, fps = load_frames(data_dir / "animations" / f"{request.param}.gif")
    assert frames.shape == (48, 256, 256, 3) and fps == pytest.approx(25)
    return request.param, frames[:N_FRAMES]


def test_jitter_and_shuffle_raise_flicker_and_warp_error(clip):
    name, frames = clip
    curve = [temporal_scores(brightness_jitter(frames, s)) for s in JITTER]
    flicker = [c.flicker for c in curve]
    warp = [c.warp_error for c in curve]
    shuffled = temporal_scores(frames[np.random.default_rng(1).permutation(len(frames))])
    print(f"\n{name}: jitter {JITTER}\n  flicker {np.round(flicker, 4).tolist()} shuffled {shuffled.flicker:.4f}"
          f"\n  warp    {np.round(warp, 4).tolist()} shuffled {shuffled.warp_error:.4f}")
    assert all(b > a for a, b in zip(flicker, flicker[1:])), flicker
    assert all(b > a for a, b in zip(warp, warp[1:])), warp
    assert shuffled.flicker > flicker[0] and shuffled.warp_error > warp[0]
    # per pair: one value per consecutive pair, all in [0, 1]
    assert len(curve[0].flicker_pairs) == len(curve[0].warp_pairs) == N_FRAMES - 1
    assert all(0 <= v <= 1 for v in curve[-1].flicker_pairs + curve[-1].warp_pairs)


def test_static_clip_scores_zero_and_still_has_none():
    frames = np.repeat(np.random.default_rng(0).integers(0, 255, (1, 64, 64, 3), dtype=np.uint8), 4, axis=0)
    s = temporal_scores(frames)
    assert s.flicker == 0 and s.warp_error < 1e-3  # Farneback finds ~0 flow on a still scene
    still = temporal_scores(frames[:1])
    assert still.flicker is None and still.warp_error is None


def test_warp_error_explains_motion_that_flicker_counts():
    """A textured image panned by 3 px a frame: large flicker, small warping error."""
    rng = np.random.default_rng(0)
    import cv2

    base = cv2.GaussianBlur(rng.integers(0, 255, (96, 160, 3), dtype=np.uint8), (0, 0), 2.0)
    frames = np.stack([base[8:88, 3 * t: 3 * t + 128] for t in range(5)])
    fl = flicker_pairs(frames).mean()
    we, occluded, _ = warp_error_pairs(frames)
    assert we.mean() < 0.35 * fl
    assert (occluded < 0.3).all()  # only the entering edge is masked


def test_region_mask_limits_the_scores():
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    frames[1, :, 16:] = 255  # only the right half changes
    left = np.zeros((32, 32), bool)
    left[:, :16] = True
    assert flicker_pairs(frames, left).max() == 0
    assert flicker_pairs(frames, ~left)[0] == pytest.approx(1.0)


def test_load_frames_reads_mp4_gif_and_folders(tmp_path):
    from cinekit.render.writers import write_gif, write_mp4, write_png_sequence

    frames = np.zeros((6, 32, 48, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(6)[:, None, None] * 40
    write_mp4(tmp_path / "a.mp4", frames, 12)
    write_gif(tmp_path / "a.gif", frames, 10)
    write_png_sequence(tmp_path / "seq", frames)
    mp4, fps = load_frames(tmp_path / "a.mp4")
    assert mp4.shape == frames.shape and fps == pytest.approx(12)
    gif, fps = load_frames(tmp_path / "a.gif")
    assert gif.shape == frames.shape and fps == pytest.approx(10)
    seq, _ = load_frames(tmp_path / "seq")
    np.testing.assert_array_equal(seq, frames)
