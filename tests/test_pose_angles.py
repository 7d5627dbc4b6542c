"""Bone lengths/angles and forward kinematics (cinekit.pose.angles): tables of pure cases."""

import math

import numpy as np
import pytest

from cinekit.pose.angles import (
    DEFAULT_LENGTHS,
    REST_POSE,
    ROOT,
    body_height,
    bone_angles,
    bone_lengths,
    from_angles,
    rest_pose,
    wrap_angle,
)
from cinekit.pose.skeleton import BONES, INDEX, MIRROR


def _random_pose(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 100.0, size=(18, 2))


def _with_nan(*names: str) -> np.ndarray:
    pose = REST_POSE.copy()
    for n in names:
        pose[INDEX[n]] = np.nan
    return pose


@pytest.mark.parametrize(
    "pose, lost",
    [
        (REST_POSE, ()),
        (_random_pose(0), ()),
        (_random_pose(1) * 1e-3, ()),
        (_with_nan("right_wrist"), ("right_wrist",)),
        (_with_nan("left_elbow"), ("left_elbow", "left_wrist")),  # subtree follows its parent
        (_with_nan("nose"), ("nose", "right_eye", "left_eye", "right_ear", "left_ear")),
        (_with_nan("right_ear", "left_ankle"), ("right_ear", "left_ankle")),
    ],
    ids=["rest", "random", "tiny", "no-wrist", "no-elbow", "no-nose", "two-leaves"],
)
def test_fk_ik_round_trip(pose, lost):
    back = from_angles(pose[ROOT], bone_angles(pose), bone_lengths(pose))
    missing = {i for i in range(18) if np.isnan(back[i]).any()}
    assert missing == {INDEX[n] for n in lost}
    keep = [i for i in range(18) if i not in missing]
    np.testing.assert_allclose(back[keep], pose[keep], atol=1e-12 * max(1.0, np.abs(pose[keep]).max()))


@pytest.mark.parametrize(
    "child_offset, angle",
    [((1, 0), 0.0), ((0, 1), math.pi / 2), ((-1, 0), math.pi), ((0, -1), -math.pi / 2),
     ((1, 1), math.pi / 4), ((-3, -3), -3 * math.pi / 4)],
)
def test_bone_angle_convention(child_offset, angle):
    """atan2(dy, dx) in image coordinates: 0 = +x, +pi/2 = down (y grows downward)."""
    pose = np.zeros((18, 2))
    pose[BONES[0][1]] = child_offset  # nose relative to the neck at the origin
    assert bone_angles(pose)[0] == pytest.approx(angle)
    assert bone_lengths(pose)[0] == pytest.approx(math.hypot(*child_offset))


@pytest.mark.parametrize("shape", [(), (3,), (2, 5)])
def test_batches(shape):
    rng = np.random.default_rng(3)
    poses = rng.normal(size=(*shape, 18, 2))
    a, ln = bone_angles(poses), bone_lengths(poses)
    assert a.shape == ln.shape == (*shape, 17)
    back = from_angles(poses[..., ROOT, :], a, ln)
    np.testing.assert_allclose(back, poses, atol=1e-12)


def test_from_angles_broadcasts_lengths_and_nan_angle():
    angles = np.tile(bone_angles(REST_POSE), (4, 1))
    angles[2, 1] = np.nan  # neck -> right shoulder of frame 2
    out = from_angles(np.zeros((4, 2)), angles, DEFAULT_LENGTHS)
    assert out.shape == (4, 18, 2)
    assert np.isnan(out[2, [2, 3, 4]]).all() and not np.isnan(out[[0, 1, 3]]).any()


@pytest.mark.parametrize(
    "a, wrapped",
    [(0.0, 0.0), (math.pi, -math.pi), (-math.pi, -math.pi), (3 * math.pi / 2, -math.pi / 2),
     (-3 * math.pi / 2, math.pi / 2), (7.0, 7.0 - 2 * math.pi), (np.nan, np.nan)],
)
def test_wrap_angle(a, wrapped):
    np.testing.assert_allclose(wrap_angle(a), wrapped, atol=1e-12)


def test_default_body():
    assert DEFAULT_LENGTHS.shape == (17,) and np.all(DEFAULT_LENGTHS > 0)
    assert body_height(DEFAULT_LENGTHS) == pytest.approx(1.0, abs=1e-12)
    rest = rest_pose(DEFAULT_LENGTHS)
    np.testing.assert_allclose(rest, REST_POSE, atol=1e-12)
    # Left and right bones have equal default lengths (mirror-symmetric body).
    mirrored = {(MIRROR[p], MIRROR[c]): k for k, (p, c) in enumerate(BONES)}
    for k, bone in enumerate(BONES):
        assert DEFAULT_LENGTHS[mirrored[bone]] == DEFAULT_LENGTHS[k]


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0, 300.0])
def test_body_height_scales_linearly(scale):
    assert body_height(DEFAULT_LENGTHS * scale) == pytest.approx(scale)
