"""Control-map drawing (cinekit.pose.draw) against controlnet_aux's draw_bodypose."""

import numpy as np
import pytest

from cinekit.pose.camera import place
from cinekit.pose.draw import draw_control_frames, draw_control_map
from cinekit.pose.library import load_library
from cinekit.pose.skeleton import INDEX

LIB = load_library()


def _reference(poses: np.ndarray, width: int, height: int) -> np.ndarray:
    """controlnet_aux's own drawing of the same poses (normalised keypoints, None = missing)."""
    from controlnet_aux.open_pose.body import Keypoint
    from controlnet_aux.open_pose.util import draw_bodypose

    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    for pose in poses:
        kps = [None if np.isnan(p).any() else Keypoint(p[0] / width, p[1] / height) for p in pose]
        canvas = draw_bodypose(canvas, kps)
    return canvas


def _offset(poses: np.ndarray) -> np.ndarray:
    # Keep coordinates off exact integers so (x / W) * W truncates like x does.
    return poses + 0.3137


CASES = {
    "stand-512": (place([LIB["stand"]], ["center"], None, "full", 512, 512)[0], 512, 512),
    "two-wide": (place([LIB["wave"], LIB["run_a"]], ["left", "right"], [1.0, 0.85], "full", 768, 432)[0], 768, 432),
    "close-up-clipped": (place([LIB["cheer"]], ["center"], None, "close_up", 384, 512)[0], 384, 512),
}


@pytest.mark.slow
@pytest.mark.parametrize("poses, width, height", CASES.values(), ids=CASES.keys())
def test_matches_controlnet_aux(poses, width, height):
    poses = _offset(poses)
    ours = draw_control_map(poses, width, height)
    ref = _reference(poses, width, height)
    assert ours.shape == ref.shape == (height, width, 3) and ours.dtype == np.uint8
    np.testing.assert_array_equal(ours, ref)  # pixel-for-pixel


@pytest.mark.slow
def test_missing_joints_are_skipped_like_controlnet_aux():
    poses = _offset(place([LIB["point"]], ["center"], None, "full", 512, 512)[0])
    poses[0, [INDEX["left_elbow"], INDEX["right_ear"]]] = np.nan
    ours = draw_control_map(poses, 512, 512)
    np.testing.assert_array_equal(ours, _reference(poses, 512, 512))


@pytest.mark.parametrize(
    "poses, lit",
    [
        (np.full((1, 18, 2), np.nan), False),
        (np.zeros((0, 18, 2)), False),
        (np.full((1, 18, 2), 1e9), False),  # far off canvas: nothing drawn, no overflow
        (np.full((18, 2), 32.5), True),  # a single (18, 2) pose is accepted
    ],
)
def test_degenerate_inputs(poses, lit):
    img = draw_control_map(poses, 64, 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert bool(img.any()) == lit


def test_joint_and_limb_colours():
    poses = _offset(place([LIB["t_pose"]], ["center"], None, "full", 512, 512)[0])
    img = draw_control_map(poses, 512, 512)
    x, y = poses[0, INDEX["neck"]].astype(int)
    assert tuple(img[y, x]) == (255, 85, 0)  # neck joint colour
    mid = ((poses[0, INDEX["left_shoulder"]] + poses[0, INDEX["left_elbow"]]) / 2).astype(int)
    assert tuple(img[mid[1], mid[0]]) == (int(170 * 0.6), int(255 * 0.6), 0)  # limb 4 colour * 0.6


def test_draw_control_frames():
    track = np.stack([place([LIB[n], LIB["stand"]], [0.3, 0.7], None, "wide", 160, 96)[0]
                      for n in ("walk_a", "walk_b", "walk_c")])
    frames = draw_control_frames(track, 160, 96)
    assert frames.shape == (3, 96, 160, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[1], draw_control_map(track[1], 160, 96))
    assert not np.array_equal(frames[0], frames[1])
