"""Imported motions are a small YAML header plus an .npz: no command parses their frames as
YAML, ``check`` reads no frames at all, and motions imported before (inline YAML) still read."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cinekit.cli import app
from cinekit.pose import motion_store
from cinekit.pose.library import (
    PoseFileError,
    load_library,
    load_motions,
    load_pose_file,
    save_motion,
)
from tests.project_factory import make_project

CONFIG = "output: renders\nengines: {still: previz, clip: previz}\ndefaults: {size: [64, 64], fps: 8}\n"
SHOTS = """\
shots:
  - {id: s1, kind: clip, duration: 1, prompt: '{ann} walks', characters: [{name: ann, pose: {motion: walk}}]}
"""


def _motion(frames: int) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, frames)[:, None, None]
    poses = np.zeros((frames, 18, 2)) + np.sin(t + np.arange(18)[None, :, None] * 0.3) * 0.1
    poses[:, 14] = np.nan  # a missing joint
    return poses


def test_a_motion_is_stored_as_a_small_header_and_frames_that_read_back_exactly(tmp_path):
    poses = _motion(900)
    save_motion(tmp_path / "walk.yaml", poses, 24, description="walk")
    header = (tmp_path / "walk.yaml").read_text()
    assert len(header) < 300 and "frames:" not in header  # 900 frames inline were ~300 KB
    back, fps = load_pose_file(tmp_path / "walk.yaml")
    assert fps == 24.0 and np.array_equal(back, poses, equal_nan=True)
    assert np.array_equal(load_motions([tmp_path])["walk"][0], poses, equal_nan=True)


def test_a_motion_imported_before_as_inline_yaml_still_reads(tmp_path):
    row = "[" + ", ".join(["[0.1, -0.5]"] * 17 + ["null"]) + "]"
    (tmp_path / "old.yaml").write_text(f"fps: 12\nframes:\n  - {row}\n  - {row}\n")
    poses, fps = load_motions([tmp_path])["old"]
    assert fps == 12.0 and poses.shape == (2, 18, 2) and np.isnan(poses[:, 17]).all()
    assert load_library([tmp_path])["old"].shape == (2, 18, 2)


def test_a_damaged_frames_file_is_a_located_user_error_at_listing(tmp_path):
    save_motion(tmp_path / "walk.yaml", _motion(40), 24)
    npz = tmp_path / "walk.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(PoseFileError, match="walk.yaml: cannot read its frames walk.npz"):
        load_library([tmp_path])
    save_motion(tmp_path / "walk.yaml", _motion(40), 24)
    (tmp_path / "walk.yaml").write_text((tmp_path / "walk.yaml").read_text().replace("frame_count: 40", "frame_count: 41"))
    with pytest.raises(PoseFileError, match=r"header says \(41, 18, 2\)"):
        load_library([tmp_path])


def _check_cpu(root: Path) -> float:
    cwd = os.getcwd()
    os.chdir(root)
    try:
        start = time.process_time()
        result = CliRunner().invoke(app, ["check"])
        assert result.exit_code == 0, result.stdout
        return time.process_time() - start
    finally:
        os.chdir(cwd)


def test_check_does_not_grow_with_the_length_of_imported_motions(tmp_path, monkeypatch):
    short = make_project(tmp_path / "short", SHOTS, characters=("ann",), config=CONFIG)
    long = make_project(tmp_path / "long", SHOTS, characters=("ann",), config=CONFIG)
    (short / "poses").mkdir()
    (long / "poses").mkdir()
    save_motion(short / "poses/walk.yaml", _motion(10), 24)
    save_motion(long / "poses/walk.yaml", _motion(3000), 24)  # ~1 MB as inline YAML: seconds to parse
    _check_cpu(short)  # warm imports
    loads = []
    real = motion_store.load
    monkeypatch.setattr(motion_store, "load", lambda *a: loads.append(a) or real(*a))
    base = min(_check_cpu(short) for _ in range(2))
    grown = min(_check_cpu(long) for _ in range(2))
    assert loads == []  # check asks which motions exist; it reads no frames
    assert grown < 1.5 * base + 0.2, (base, grown)
