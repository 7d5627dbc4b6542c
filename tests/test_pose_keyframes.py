"""Easing curves and keyframe in-betweening (cinekit.pose.easing, cinekit.pose.keyframes)."""

import math

import numpy as np
import pytest

from cinekit.pose.angles import (
    DEFAULT_LENGTHS,
    REST_POSE,
    ROOT,
    bone_angles,
    bone_lengths,
    from_angles,
)
from cinekit.pose.easing import EASINGS, ease
from cinekit.pose.keyframes import interpolate, sample_times
from cinekit.pose.library import load_library

LIB = load_library()


@pytest.mark.parametrize("name", sorted(EASINGS))
def test_easing_endpoints_and_monotone(name):
    u = np.linspace(0.0, 1.0, 1001)
    f = ease(name, u)
    assert f[0] == 0.0 and f[-1] == 1.0
    assert np.all(np.diff(f) >= 0.0)
    assert np.all((f >= 0) & (f <= 1))
    np.testing.assert_array_equal(ease(name, np.array([-1.0, 2.0])), [0.0, 1.0])  # clipped


@pytest.mark.parametrize(
    "name, u, value",
    [("linear", 0.25, 0.25), ("ease_in", 0.5, 0.25), ("ease_out", 0.5, 0.75),
     ("ease_in_out", 0.5, 0.5), ("ease_in_out", 0.25, 0.15625), ("hold", 0.999, 0.0),
     ("hold", 1.0, 1.0)],
)
def test_easing_values(name, u, value):
    assert float(ease(name, u)) == pytest.approx(value)


def test_unknown_ease():
    with pytest.raises(ValueError, match="unknown ease 'bounce'"):
        ease("bounce", 0.5)


@pytest.mark.parametrize(
    "frames, fps, expected",
    [(0, 24, []), (1, 24, [0.0]), (4, 2, [0.0, 0.5, 1.0, 1.5]), (3, 8.0, [0.0, 0.125, 0.25])],
)
def test_sample_times(frames, fps, expected):
    np.testing.assert_allclose(sample_times(frames, fps), expected)


KEYSETS = {
    "walk": [(0.0, LIB["walk_a"], "linear"), (0.25, LIB["walk_b"], "linear"),
             (0.5, LIB["walk_c"], "linear"), (0.75, LIB["walk_d"], "linear"),
             (1.0, LIB["walk_a"], "linear")],
    "wave-jump": [(0.0, LIB["stand"], "ease_in_out"), (0.6, LIB["wave"], "ease_out"),
                  (1.1, LIB["jump"], "ease_in"), (1.5, LIB["fall"], "hold"),
                  (2.0, LIB["sit"], "linear")],
    "extremes": [(0.0, LIB["t_pose"]), (1.0, LIB["bow"]), (2.0, LIB["cheer"]), (3.0, LIB["run_a"])],
}


@pytest.mark.parametrize("keys", KEYSETS.values(), ids=KEYSETS.keys())
def test_inbetweens_keep_bone_lengths(keys):
    poses = interpolate(keys, sample_times(80, 24))
    assert poses.shape == (80, 18, 2) and np.isfinite(poses).all()
    assert np.abs(bone_lengths(poses) - DEFAULT_LENGTHS).max() < 1e-6


@pytest.mark.parametrize("keys", KEYSETS.values(), ids=KEYSETS.keys())
def test_keys_are_hit_and_held_outside(keys):
    times = [k[0] for k in keys]
    poses = interpolate(keys, [times[0] - 1.0, *times, times[-1] + 5.0])
    np.testing.assert_allclose(poses[0], keys[0][1], atol=1e-9)
    for i, key in enumerate(keys):
        np.testing.assert_allclose(poses[i + 1], key[1], atol=1e-9)
    np.testing.assert_allclose(poses[-1], keys[-1][1], atol=1e-9)


def _one_bone(angle: float, root=(0.0, 0.0)) -> np.ndarray:
    """Rest pose with the right forearm at ``angle`` (radians)."""
    a = bone_angles(REST_POSE).copy()
    a[3] = angle
    return from_angles(np.asarray(root, dtype=float), a, DEFAULT_LENGTHS)


@pytest.mark.parametrize(
    "a0, a1, mid",
    [
        (math.radians(170), math.radians(-170), math.pi),  # across +-pi: through pi, not 0
        (math.radians(-170), math.radians(170), math.pi),
        (math.radians(10), math.radians(-10), 0.0),
        (math.radians(-90), math.radians(100), math.radians(-175)),  # 190 deg apart -> other way
        (math.radians(0), math.radians(90), math.radians(45)),
    ],
)
def test_shortest_arc(a0, a1, mid):
    poses = interpolate([(0.0, _one_bone(a0)), (1.0, _one_bone(a1))], [0.5])
    got = bone_angles(poses)[0, 3]
    assert abs(math.remainder(got - mid, 2 * math.pi)) < 1e-9


@pytest.mark.parametrize(
    "name, t, fraction",
    [("linear", 0.5, 0.5), ("ease_in", 0.5, 0.25), ("ease_out", 0.5, 0.75),
     ("hold", 0.5, 0.0), ("hold", 0.99, 0.0), ("hold", 1.0, 1.0), ("linear", 2.0, 1.0),
     ("linear", -1.0, 0.0)],
)
def test_root_and_ease(name, t, fraction):
    a, b = _one_bone(0.0, (0.0, -0.86)), _one_bone(math.pi / 2, (2.0, -0.86))
    pose = interpolate([(0.0, a, name), (1.0, b, "linear")], [t])[0]
    np.testing.assert_allclose(pose[ROOT], [2.0 * fraction, -0.86], atol=1e-12)
    assert bone_angles(pose)[3] == pytest.approx(fraction * math.pi / 2)


def test_keys_are_sorted_and_missing_bones_taken_from_the_other_key():
    a, b = LIB["stand"].copy(), LIB["wave"].copy()
    b[4] = np.nan  # right wrist missing in the second key
    fwd = interpolate([(0.0, a), (1.0, b)], [0.5])
    rev = interpolate([(1.0, b), (0.0, a)], [0.5])
    np.testing.assert_array_equal(fwd, rev)
    assert np.isfinite(fwd).all()


@pytest.mark.parametrize(
    "keys, match",
    [
        ([], "at least one key"),
        ([(0.0, REST_POSE), (0.0, REST_POSE)], "distinct"),
        ([(0.0, REST_POSE, "bounce")], "unknown ease"),
        ([(0.0, np.zeros((17, 2)))], r"\(18, 2\)"),
        ([(0.0, np.full((18, 2), np.nan))], "neck"),
    ],
)
def test_bad_keys(keys, match):
    with pytest.raises(ValueError, match=match):
        interpolate(keys, [0.0])
