"""The bundled pose library and project pose files (cinekit.pose.library)."""

import subprocess
import sys

import numpy as np
import pytest

from cinekit.pose.angles import DEFAULT_LENGTHS, bone_lengths
from cinekit.pose.camera import mirror, place
from cinekit.pose.draw import draw_control_map
from cinekit.pose.library import (
    PoseFileError,
    bundled_descriptions,
    load_library,
    load_motions,
    load_pose_file,
    pose_names,
    save_motion,
    save_pose,
)
from cinekit.pose.skeleton import INDEX

REQUIRED = ("stand idle walk_a walk_b walk_c walk_d run_a run_b wave point sit jump "
            "arms_crossed bow look_back reach fall t_pose a_pose cheer think").split()
SYMMETRIC = ("stand", "jump", "t_pose", "a_pose", "cheer")
LIB = load_library()
ANKLES = [INDEX["right_ankle"], INDEX["left_ankle"]]


def test_required_names_and_descriptions():
    assert set(REQUIRED) <= set(pose_names())
    desc = bundled_descriptions()
    assert all(desc[n] for n in REQUIRED)


@pytest.mark.parametrize("name", REQUIRED)
def test_bundled_pose_is_complete_and_default_length(name):
    pose = LIB[name]
    assert pose.shape == (18, 2) and np.isfinite(pose).all()
    assert np.abs(bone_lengths(pose) - DEFAULT_LENGTHS).max() < 1e-6


@pytest.mark.parametrize("name", SYMMETRIC)
def test_symmetric_poses_are_exact(name):
    np.testing.assert_array_equal(mirror(LIB[name], 0.0), LIB[name])


@pytest.mark.parametrize("name", [n for n in REQUIRED if n != "jump"])
def test_grounded_poses_stand_on_the_floor(name):
    assert np.max(LIB[name][ANKLES, 1]) == pytest.approx(0.0, abs=1e-9)


def test_jump_is_in_the_air():
    assert np.max(LIB["jump"][ANKLES, 1]) < -0.1


@pytest.mark.parametrize(
    "name, side, check",
    [
        ("wave", "right_wrist", lambda p, j: p[j, 1] < p[INDEX["nose"], 1]),
        ("cheer", "left_wrist", lambda p, j: p[j, 1] < p[INDEX["nose"], 1]),
        ("point", "left_wrist", lambda p, j: p[j, 0] > 0.4),
        ("t_pose", "right_wrist", lambda p, j: abs(p[j, 1] - p[INDEX["neck"], 1]) < 0.03),
        ("reach", "left_wrist", lambda p, j: p[j, 1] < -1.1),
        ("sit", "right_hip", lambda p, j: abs(p[j, 1] - p[INDEX["right_knee"], 1]) < 0.03),
        ("walk_a", "right_ankle", lambda p, j: p[j, 0] > p[INDEX["left_ankle"], 0]),
        ("walk_c", "left_ankle", lambda p, j: p[j, 0] > p[INDEX["right_ankle"], 0]),
    ],
)
def test_pose_semantics(name, side, check):
    assert check(LIB[name], INDEX[side])


@pytest.mark.parametrize("name", ["walk_a", "walk_b", "walk_c", "walk_d", "run_a", "run_b", "sit", "bow"])
def test_knees_bend_forward_in_side_views(name):
    """Facing +x: the shin never points further forward than the thigh (no backward knees)."""
    p = LIB[name]
    for hip, knee, ankle in (("right_hip", "right_knee", "right_ankle"), ("left_hip", "left_knee", "left_ankle")):
        thigh = p[INDEX[knee]] - p[INDEX[hip]]
        shin = p[INDEX[ankle]] - p[INDEX[knee]]
        cross = thigh[0] * shin[1] - thigh[1] * shin[0]  # > 0: shin turned clockwise = backward
        assert cross >= -1e-9, (name, hip)


@pytest.mark.parametrize("name", REQUIRED)
def test_every_pose_draws_inside_a_512_frame(name):
    px = place([LIB[name]], ["center"], None, "full", 512, 512)[0]
    assert np.all((px >= 8) & (px <= 504))
    img = draw_control_map(px, 512, 512)
    lit = np.argwhere(img.any(axis=-1))
    assert len(lit) > 2000
    assert lit.min() > 0 and lit[:, 0].max() < 511 and lit[:, 1].max() < 511


def test_load_library_returns_copies():
    a = load_library()
    a["stand"][0, 0] = 99.0
    assert load_library()["stand"][0, 0] != 99.0


def test_project_pose_and_motion_round_trip(tmp_path):
    pose = LIB["wave"].copy()
    pose[INDEX["left_ear"]] = np.nan
    save_pose(tmp_path / "my_wave.yaml", pose, description="a wave")
    motion = np.stack([LIB["walk_a"], LIB["walk_b"]])
    motion[1, INDEX["nose"]] = np.nan
    save_motion(tmp_path / "shuffle.yaml", motion, fps=12)
    save_pose(tmp_path / "stand.yaml", LIB["t_pose"])  # project overrides bundled

    got, fps = load_pose_file(tmp_path / "my_wave.yaml")
    assert fps is None
    np.testing.assert_allclose(got, pose, atol=1e-6)
    lib = load_library([tmp_path])
    np.testing.assert_allclose(lib["shuffle"], motion, atol=1e-6)
    np.testing.assert_allclose(lib["stand"], LIB["t_pose"], atol=1e-6)
    assert {"my_wave", "shuffle", "walk_a"} <= set(pose_names([tmp_path]))
    motions = load_motions([tmp_path])
    assert list(motions) == ["shuffle"] and motions["shuffle"][1] == 12.0


@pytest.mark.parametrize(
    "text, match",
    [
        ("joints: {nose: [0, 1], elbow: [1, 2]}", "unknown joint 'elbow'"),
        ("joints: {nose: [0]}", r"expected \[x, y\]"),
        ("joints: {nose: [0, 1]}\nframes: []", "either"),
        ("frames: [[null]]\nfps: 24", "expected 18"),
        ("frames: []\nfps: 24", "non-empty"),
        ("frames: [[null, null]]", "fps"),
        ("joints: {nose: [0, 1]}\nfps: 24", "fps"),
        ("[1, 2]", "mapping"),
        ("joints: {nose: [0, 1]\n", "cannot read"),
        ("joints: {nose: [0, 1]}\ncolour: red", "unknown keys: colour"),
    ],
)
def test_bad_pose_files(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PoseFileError, match=match) as info:
        load_pose_file(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_pose_modules_do_not_import_torch():
    code = ("import sys, cinekit.pose.library, cinekit.pose.keyframes, cinekit.pose.retarget, "
            "cinekit.pose.draw, cinekit.pose.camera; "
            "bad = [m for m in ('torch', 'diffusers', 'controlnet_aux') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
