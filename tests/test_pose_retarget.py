"""Retargeting to a character's proportions and reading proportions off a rig."""

import numpy as np
import pytest

from cinekit.pose.angles import (
    DEFAULT_LENGTHS,
    REST_POSE,
    ROOT,
    body_height,
    bone_angles,
    bone_lengths,
)
from cinekit.pose.keyframes import interpolate, sample_times
from cinekit.pose.library import load_library
from cinekit.pose.retarget import lengths_from_rig, retarget
from cinekit.pose.skeleton import INDEX

LIB = load_library()
ANKLES = [INDEX["right_ankle"], INDEX["left_ankle"]]


def _body(legs=1.0, arms=1.0, head=1.0, torso=1.0) -> np.ndarray:
    """Default proportions with bone groups scaled, normalised to height 1."""
    s = np.ones(17)
    s[[8, 9, 11, 12]] = legs
    s[[2, 3, 5, 6]] = arms
    s[[0, 13, 14, 15, 16]] = head
    s[[7, 10]] = torso
    lengths = DEFAULT_LENGTHS * s
    return lengths / body_height(lengths)


BODIES = {
    "default": DEFAULT_LENGTHS.copy(),
    "chibi": _body(legs=0.55, arms=0.7, head=2.2, torso=0.8),
    "long_legs": _body(legs=1.35, head=0.9),
    "giant": _body() * 2.5,
    "tiny_child": _body(legs=0.8, head=1.5) * 0.6,
}
WALK = interpolate(
    [(0.0, LIB["walk_a"]), (0.25, LIB["walk_b"]), (0.5, LIB["walk_c"]), (0.75, LIB["walk_d"]),
     (1.0, LIB["walk_a"])], sample_times(24, 24))


@pytest.mark.parametrize("lengths", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize("pose", ["stand", "walk_a", "jump", "sit", "bow", "fall", "cheer"])
def test_lengths_exact_angles_kept(lengths, pose):
    out = retarget(LIB[pose], lengths)
    np.testing.assert_allclose(bone_lengths(out), lengths, rtol=1e-12)
    np.testing.assert_allclose(bone_angles(out), bone_angles(LIB[pose]), atol=1e-12)


@pytest.mark.parametrize("lengths", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize("pose", ["stand", "idle", "walk_a", "walk_b", "sit", "bow", "t_pose"])
def test_feet_stay_on_the_floor(lengths, pose):
    out = retarget(LIB[pose], lengths)
    assert np.nanmax(out[ANKLES, 1]) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("lengths", BODIES.values(), ids=BODIES.keys())
def test_jump_height_scales_with_the_body(lengths):
    h = body_height(lengths)
    out = retarget(LIB["jump"], lengths)
    assert np.max(out[ANKLES, 1]) == pytest.approx(h * np.max(LIB["jump"][ANKLES, 1]))


def test_identity_for_the_default_body():
    for name in ("stand", "run_b", "reach", "look_back"):
        np.testing.assert_allclose(retarget(LIB[name], DEFAULT_LENGTHS), LIB[name], atol=1e-12)


@pytest.mark.parametrize("lengths", BODIES.values(), ids=BODIES.keys())
def test_motion_root_travel_scales_with_height(lengths):
    travel = WALK.copy()
    travel[..., 0] += np.linspace(0.0, 1.0, len(WALK))[:, None]  # one body height to the right
    out = retarget(travel, lengths)
    assert out.shape == travel.shape
    dx = out[-1, ROOT, 0] - out[0, ROOT, 0]
    assert dx == pytest.approx(body_height(lengths) * 1.0, rel=1e-9)
    low = np.max(travel[:, ANKLES, 1], axis=1)  # in-betweens may lift both feet slightly
    np.testing.assert_allclose(np.max(out[:, ANKLES, 1], axis=1), body_height(lengths) * low, atol=1e-12)
    assert np.abs(bone_lengths(out) - lengths).max() < 1e-9


def test_frame_without_ankles_uses_rest_offset():
    upper = LIB["stand"].copy()
    upper[[9, 10, 12, 13]] = np.nan
    lengths = BODIES["long_legs"]
    full = retarget(LIB["stand"], lengths)
    out = retarget(upper, lengths)
    np.testing.assert_allclose(out[ROOT], full[ROOT], atol=1e-12)


def test_bad_target_lengths():
    with pytest.raises(ValueError, match="17 finite"):
        retarget(LIB["stand"], np.ones(16))


@pytest.mark.parametrize("scale, offset", [(300.0, (256.0, 480.0)), (57.5, (10.0, 90.0)), (1.0, (0.0, 0.0))])
@pytest.mark.parametrize("lengths", BODIES.values(), ids=BODIES.keys())
def test_lengths_from_rig(lengths, scale, offset):
    unit = lengths / body_height(lengths)
    rig = retarget(LIB["a_pose"], unit) * scale + np.asarray(offset)
    got, height = lengths_from_rig(rig)
    np.testing.assert_allclose(got, unit, rtol=1e-9)
    assert height == pytest.approx(scale)


def test_rig_missing_face_is_filled_from_default_proportions():
    rig = REST_POSE * 200.0 + 100.0
    rig[[INDEX["right_ear"], INDEX["left_ear"], INDEX["left_eye"]]] = np.nan
    got, height = lengths_from_rig(rig)
    np.testing.assert_allclose(got, DEFAULT_LENGTHS, rtol=1e-9)
    assert height == pytest.approx(200.0)
    rig[INDEX["nose"]] = np.nan
    got, _ = lengths_from_rig(rig)
    np.testing.assert_allclose(got, DEFAULT_LENGTHS, rtol=1e-9)


@pytest.mark.parametrize(
    "missing",
    [("right_wrist",), ("left_ankle", "left_knee"), ("neck",), ("right_hip", "left_shoulder")],
)
def test_rig_missing_body_joints(missing):
    rig = REST_POSE * 200.0
    rig[[INDEX[n] for n in missing]] = np.nan
    with pytest.raises(ValueError, match="missing body joints") as info:
        lengths_from_rig(rig)
    for n in missing:
        assert n in str(info.value)
