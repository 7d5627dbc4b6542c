"""Framing presets, placement and mirroring (cinekit.pose.camera)."""

import numpy as np
import pytest

from cinekit.pose.angles import ROOT
from cinekit.pose.camera import FRAMINGS, mirror, place, position_value
from cinekit.pose.library import load_library
from cinekit.pose.skeleton import INDEX, MIRROR

LIB = load_library()
SIZES = [(512, 512), (768, 432), (432, 768), (1024, 576)]
NOSE, NECK = INDEX["nose"], INDEX["neck"]
HIPS = [INDEX["right_hip"], INDEX["left_hip"]]
ANKLES = [INDEX["right_ankle"], INDEX["left_ankle"]]
SHOULDERS = [INDEX["right_shoulder"], INDEX["left_shoulder"]]


def _inside(px: np.ndarray, w: int, h: int, margin: float = 0.0) -> bool:
    x, y = px[..., 0], px[..., 1]
    return bool(np.all((x >= margin) & (x <= w - margin) & (y >= margin) & (y <= h - margin)))


@pytest.mark.parametrize("camera", ["full", "wide"])
@pytest.mark.parametrize("size", SIZES)
def test_whole_body_inside_for_full_and_wide(camera, size):
    w, h = size
    for name, pose in LIB.items():
        px = place([pose], ["center"], None, camera, w, h)
        assert px.shape == (1, 1, 18, 2)
        assert _inside(px, w, h, margin=5.0), name


@pytest.mark.parametrize("size", [(512, 512), (768, 432), (1024, 576)])
def test_wide_body_is_about_45_percent(size):
    w, h = size
    px = place([LIB["stand"]], ["center"], None, "wide", w, h)[0, 0]
    figure = (px[ANKLES, 1].max() - px[NOSE, 1]) * 1.14  # head top to feet ~ 1.14 units
    assert figure / h == pytest.approx(0.45, abs=0.01)


@pytest.mark.parametrize("size", SIZES)
def test_close_up_and_medium(size):
    w, h = size
    close = place([LIB["stand"]], ["center"], None, "close_up", w, h)[0, 0]
    assert _inside(close[[NOSE, NECK, *SHOULDERS]], w, h)
    assert np.all(close[HIPS, 1] > h)  # head & shoulders fill the frame
    assert close[SHOULDERS, 1].min() > 0.6 * h
    med = place([LIB["stand"]], ["center"], None, "medium", w, h)[0, 0]
    assert _inside(med[[NOSE, NECK, *SHOULDERS, *HIPS]], w, h)  # waist up
    assert np.all(med[ANKLES, 1] > h)


@pytest.mark.parametrize("camera", list(FRAMINGS))
def test_taller_character_stays_taller_on_a_shared_floor(camera):
    px = place([LIB["stand"], LIB["stand"]], ["left", "right"], [1.0, 0.8], camera, 640, 480)[0]
    heights = px[:, ANKLES, 1].max(axis=1) - px[:, NOSE, 1]
    assert heights[1] / heights[0] == pytest.approx(0.8)
    assert px[0, ANKLES, 1].max() == pytest.approx(px[1, ANKLES, 1].max())  # same floor
    np.testing.assert_allclose(px[:, NECK, 0], [0.3 * 640, 0.7 * 640])


def test_scales_are_relative_to_the_tallest():
    a = place([LIB["stand"]], ["center"], [2.0], "full", 512, 512)
    b = place([LIB["stand"]], ["center"], None, "full", 512, 512)
    np.testing.assert_allclose(a, b)


def test_tracks_frames_and_held_poses():
    track = np.stack([LIB["walk_a"], LIB["walk_b"], LIB["walk_c"]])
    px = place([track, LIB["stand"]], [0.25, "far_right"], None, "full", 512, 512)
    assert px.shape == (3, 2, 18, 2)
    np.testing.assert_allclose(px[0, 1], px[2, 1])


@pytest.mark.parametrize(
    "camera",
    [{"center": [0.5, 0.5], "scale": 1.0}, {"scale": 1.0}, {"base": "full"}],
)
def test_custom_identity_equals_full(camera):
    a = place([LIB["wave"]], ["left"], None, camera, 640, 360)
    b = place([LIB["wave"]], ["left"], None, "full", 640, 360)
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_custom_zoom_magnifies_about_center():
    full = place([LIB["stand"]], ["center"], None, "full", 512, 512)[0, 0]
    cam = {"center": [0.5, full[NOSE, 1] / 512], "scale": 3.0}
    zoom = place([LIB["stand"]], ["center"], None, cam, 512, 512)[0, 0]
    np.testing.assert_allclose(zoom[NOSE], [256.0, 256.0], atol=1e-9)
    np.testing.assert_allclose(zoom[NECK] - zoom[NOSE], 3.0 * (full[NECK] - full[NOSE]))


@pytest.mark.parametrize(
    "camera, match",
    [("extreme_close_up", "unknown camera"), ({"scale": 0}, "> 0"), ({"zoom": 2}, "center, scale"),
     (3, "preset name or a mapping")],
)
def test_bad_cameras(camera, match):
    with pytest.raises(ValueError, match=match):
        place([LIB["stand"]], ["center"], None, camera, 64, 64)


@pytest.mark.parametrize(
    "position, value",
    [("left", 0.3), ("center", 0.5), ("right", 0.7), ("far_left", 0.15), ("far_right", 0.85),
     (0.42, 0.42), (1, 1.0), (-0.2, -0.2)],
)
def test_position_value(position, value):
    assert position_value(position) == value


@pytest.mark.parametrize("position", ["middle", "LEFT", float("nan")])
def test_bad_position(position):
    with pytest.raises(ValueError):
        position_value(position)


@pytest.mark.parametrize("name", sorted(LIB))
@pytest.mark.parametrize("axis", [0.0, 0.37, 256.0])
def test_mirror_twice_is_identity(name, axis):
    pose = LIB[name]
    np.testing.assert_allclose(mirror(mirror(pose, axis), axis), pose, atol=1e-12)


def test_mirror_swaps_sides_and_flips():
    pose = LIB["wave"]  # right hand up
    m = mirror(pose, 0.0)
    np.testing.assert_array_equal(m[INDEX["left_wrist"]], [-pose[INDEX["right_wrist"], 0], pose[INDEX["right_wrist"], 1]])
    assert m[ROOT, 0] == -pose[ROOT, 0]
    batch = mirror(np.stack([pose, pose]), 1.0)
    assert batch.shape == (2, 18, 2)
    assert list(MIRROR[i] for i in MIRROR) == list(range(18))
