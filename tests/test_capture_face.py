"""Face capture on real footage (footage/talkinghead-1.mp4): mouth opening follows the voice,
blinks are found where a person sees them, no face reads NaN.

The clip is read at 25/3 fps (every third source frame) to keep the test fast. Hand labels,
marked by eye on crops of the eye region of those frames (source frames counted from 0 at
25 fps): eyes shut at 42, 117 and 171 (three blinks, each 3 frames long: 42-44, 117-119,
169-171); eyes open at 39, 90, 114, 165, 168, 201 and 240 (45 and 120 are half shut, unlabelled);
from frame 269 on the clip shows an end card with no face.
"""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from cinekit.capture import mediapipe_graphs
from cinekit.capture.face import MOUTH_CLOSED, MOUTH_WIDE, performance_from_ratios
from cinekit.testing.data import shared_data_dir

CLIP = shared_data_dir() / "footage" / "talkinghead-1.mp4"
FPS = 25.0 / 3
needs_capture = pytest.mark.skipif(not mediapipe_graphs.available(),
                                   reason="mediapipe is not installed (the capture extra, docs/capture.md)")
needs_clip = pytest.mark.skipif(not CLIP.is_file(), reason=f"test data {CLIP} not found")


def loudness(path, fps: float, n: int) -> np.ndarray:
    """RMS of the soundtrack over each output frame's 1/fps window (ffmpeg of imageio-ffmpeg)."""
    import imageio_ffmpeg

    rate = 16000
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn", "-ac", "1",
                          "-ar", str(rate), "-f", "s16le", "-"], capture_output=True, check=True).stdout
    audio = np.frombuffer(raw, np.int16).astype(np.float64) / 32768.0
    out = np.full(n, np.nan)
    for i in range(n):
        a, b = int((i - 0.5) / fps * rate), int((i + 0.5) / fps * rate)
        if a >= 0 and b <= audio.size:
            out[i] = np.sqrt(np.mean(audio[a:b] ** 2))
    return out


@pytest.fixture(scope="module")
def perf():
    from cinekit.capture.face import read_face_performance

    return read_face_performance(CLIP, FPS)


def _at(perf, source_frame: int) -> int:
    return int(round(source_frame * FPS / 25.0))


@needs_capture
@needs_clip
def test_mouth_opening_follows_the_voice(perf):
    n = len(perf)
    loud = loudness(CLIP, FPS, n)
    ok = np.isfinite(perf.mouth_open) & np.isfinite(loud)
    assert ok.sum() > 70
    r = np.corrcoef(perf.mouth_open[ok], loud[ok])[0, 1]
    print(f"r(mouth_open, loudness) = {r:.3f} over {ok.sum()} frames")
    assert r >= 0.3
    # while he speaks the mouth is open, in the pauses it is (nearly) closed
    speaking, silent = ok & (loud > 0.03), ok & (loud < 0.003)
    assert speaking.sum() >= 10 and silent.sum() >= 10
    m_speak, m_silent = np.median(perf.mouth_open[speaking]), np.median(perf.mouth_open[silent])
    print(f"median mouth_open speaking {m_speak:.3f} ({speaking.sum()} frames), silent {m_silent:.3f} "
          f"({silent.sum()} frames)")
    assert m_speak > 1.5 * m_silent


@needs_capture
@needs_clip
def test_blinks_are_found_where_a_person_sees_them(perf):
    for shut in (42, 117, 171):
        assert perf.eyes_closed[_at(perf, shut)] > 0.6, shut
    for open_ in (39, 90, 114, 165, 168, 201, 240):
        assert perf.eyes_closed[_at(perf, open_)] < 0.3, open_
    blinks = np.flatnonzero(perf.eyes_closed > 0.6)
    assert len(blinks) <= 6   # no blink where the eyes are open


@needs_capture
@needs_clip
def test_no_face_reads_nan_and_the_length_follows_the_request(perf):
    assert np.isnan(perf.mouth_open[_at(perf, 272):]).all()     # the end card
    assert np.isfinite(perf.mouth_open[: _at(perf, 265)]).all()
    from cinekit.capture.face import read_face_performance

    long = read_face_performance(CLIP, 2.0, n_frames=30)          # 15 s asked of a 12 s clip
    assert len(long) == 30 and long.fps == 2.0
    assert np.isnan(long.mouth_open[25:]).all() and np.isfinite(long.mouth_open[:13]).all()


@pytest.mark.parametrize("ratio, expected", [(0.0, 0.0), (MOUTH_CLOSED, 0.0), (MOUTH_WIDE, 1.0), (1.0, 1.0),
                                             ((MOUTH_CLOSED + MOUTH_WIDE) / 2, 0.5)])
def test_mouth_ratio_maps_onto_unit_range(ratio, expected):
    eyes = np.full(20, 0.3)
    perf = performance_from_ratios(np.full(20, ratio), eyes, 25.0)
    assert perf.mouth_open[0] == pytest.approx(expected)


def test_eye_closure_is_relative_to_the_performers_open_eyes():
    narrow = np.full(40, 0.18)            # narrow eyes, always open: not "half closed"
    narrow[10] = 0.18 * 0.3                # one blink to 30 % of the aperture
    perf = performance_from_ratios(np.full(40, 0.1), narrow, 25.0)
    assert perf.eyes_closed[10] == pytest.approx(1.0)
    assert np.delete(perf.eyes_closed, 10).max() == pytest.approx(0.0)
    with_nan = performance_from_ratios(np.array([np.nan, 0.1]), np.array([np.nan, 0.28]), 25.0)
    assert np.isnan(with_nan.mouth_open[0]) and np.isnan(with_nan.eyes_closed[0])
