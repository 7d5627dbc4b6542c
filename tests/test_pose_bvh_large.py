"""A large BVH: the MOTION values are parsed with numpy from the bytes (not 2M Python tokens),
and a shot that needs a second of it reads only those frames' lines. Bounds are relative to
the small real file in the same run (a shared machine's speed varies, ratios do not much)."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from cinekit.pose.bvh import load_bvh, parse_bvh
from cinekit.pose.motion import MotionFormatError


def _repeat_frames(src: Path, dst: Path, frames: int) -> None:
    """``src`` with its frames repeated to ``frames`` (same skeleton, a longer clip)."""
    head, rest = src.read_text().split("MOTION", 1)
    lines = [line for line in rest.strip().splitlines()]
    rows = [line for line in lines[2:] if line.strip()]
    body = "\n".join(rows[i % len(rows)] for i in range(frames))
    dst.write_text(f"{head}MOTION\nFrames: {frames}\n{lines[1]}\n{body}\n")


def _cost(path: Path, **options) -> tuple[float, int, object]:
    tracemalloc.start()
    start = time.process_time()
    try:
        motion = load_bvh(path, view="front", **options)
        return time.process_time() - start, tracemalloc.get_traced_memory()[1], motion
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def files(data_dir, tmp_path_factory):
    small = data_dir / "animated-drawings" / "bvh" / "jumping.bvh"
    big = tmp_path_factory.mktemp("bvh") / "long.bvh"
    _repeat_frames(small, big, 8000)  # ~5 MB, 12x the small file's frames
    return small, big


def test_the_fast_parse_gives_the_token_parsers_values(files):
    small, _ = files
    from cinekit.pose.bvh import read_bvh

    ref = parse_bvh(small.read_text(), str(small))
    fast = read_bvh(small)
    assert fast.frame_time == ref.frame_time and np.array_equal(fast.motion, ref.motion)
    assert np.array_equal(read_bvh(small, (10, 40)).motion, ref.motion[10:40])


def test_a_long_file_costs_memory_in_proportion_to_its_frames_not_to_python_tokens(files):
    small, big = files
    _cost(small)  # warm imports
    _, peak, motion = _cost(big)
    assert motion.frames == 8000
    # The token parser peaked at ~24 traced bytes per byte of the file (Python str + tuple per
    # value); numpy parsing plus forward kinematics peak at ~7.
    assert peak < 12 * big.stat().st_size, (peak, big.stat().st_size)


def test_a_second_of_a_long_file_reads_only_its_frames(files):
    small, big = files
    _cost(small)
    t_small, m_small, _ = min((_cost(small) for _ in range(2)), key=lambda c: c[0])
    t_big, m_big, motion = min((_cost(big, frames=(0, 120)) for _ in range(2)), key=lambda c: c[0])
    assert motion.frames == 120
    assert m_big < 1.5 * m_small, (m_big, m_small)  # 120 of 8000 frames: less than the whole small file
    assert t_big < 2 * t_small + 0.05, (t_big, t_small)


def test_a_damaged_long_file_is_still_located(tmp_path, files):
    _, big = files
    text = big.read_text().splitlines()
    text[-5] = text[-5].replace(" ", " oops ", 1)
    bad = tmp_path / "bad.bvh"
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(MotionFormatError, match=r"bad.bvh:\d+: MOTION"):
        load_bvh(bad)
