"""Skeleton-video import: COCO-18 body joints recovered by colour from rendered OpenPose videos.

Acceptance (issue 3): re-drawing the recovered poses in the same colours and width covers
>= 60 % of each source frame's body-limb pixels, with >= 60 % of the drawn pixels on them
(averaged over frames; hands and face excluded by colour).
"""

from __future__ import annotations

import numpy as np
import pytest

from cinekit.pose.skeleton import COLORS, LIMBS, N_JOINTS
from cinekit.pose.skeleton_video import limb_mask, load_skeleton_video, pose_from_frame, read_frames

VIDEOS = ["anyone-video-1_kps.mp4", "anyone-video-2_kps.mp4"]
STEP = 10  # every 10th frame keeps the suite fast


def draw(poses: np.ndarray, width: int, height: int) -> np.ndarray:
    """OpenPose-style render (limb ellipses in 0.6 x colour, joint discs), via cinekit.pose.draw."""
    from cinekit.pose.draw import draw_control_map

    return draw_control_map(np.asarray(poses)[None] if np.ndim(poses) == 2 else poses, width, height)


def overlap(source: np.ndarray, pose: np.ndarray) -> tuple[float, float]:
    """(coverage, precision) of the re-drawn pose's limb pixels against the source's."""
    src = limb_mask(source)
    drawn = limb_mask(draw(pose, source.shape[1], source.shape[0]))
    inter = np.count_nonzero(src & drawn)
    return inter / max(np.count_nonzero(src), 1), inter / max(np.count_nonzero(drawn), 1)


@pytest.mark.parametrize("name", VIDEOS)
def test_redrawn_poses_cover_the_source_limbs(data_dir, name):
    scores = []
    for k, frame in enumerate(read_frames(data_dir / "pose-videos" / name)):
        if k % STEP == 0:
            pose = pose_from_frame(frame)
            assert np.isfinite(pose[:14]).all(), f"frame {k}: a body joint is missing"
            scores.append(overlap(frame, pose))
    coverage, precision = np.mean(scores, axis=0)
    assert coverage >= 0.6 and precision >= 0.6, (coverage, precision)
    assert min(s[0] for s in scores) >= 0.5 and min(s[1] for s in scores) >= 0.5


def known_pose(dx: float = 0.0, scale: float = 1.0) -> np.ndarray:
    pts = np.array([
        (200, 90), (200, 140), (160, 142), (130, 200), (120, 260), (240, 142), (275, 195), (300, 150),
        (175, 260), (170, 350), (168, 440), (225, 260), (240, 350), (250, 440),
        (190, 80), (210, 80), (178, 86), (222, 86),
    ], dtype=float)
    return (pts - (200, 260)) * scale + (200 + dx, 260)


def test_synthetic_render_round_trips_within_a_few_pixels():
    pose = known_pose()
    frame = draw(pose, 400, 512)
    got = pose_from_frame(frame)
    assert np.isfinite(got).all()
    assert np.abs(got - pose).max() < 2.0


def test_hands_and_face_colours_are_not_body_limbs():
    import cv2

    frame = draw(known_pose(), 400, 512)
    only_body = limb_mask(frame).copy()
    for k in range(20):  # DWPose-style hand edges (full-value rainbow) and face dots (white)
        hue = np.array([[[int(180 * k / 20), 255, 255]]], np.uint8)
        colour = cv2.cvtColor(hue, cv2.COLOR_HSV2RGB)[0, 0].tolist()
        cv2.line(frame, (10 + 5 * k, 480), (10 + 5 * k, 500), colour, 2)
    cv2.circle(frame, (350, 30), 3, (255, 255, 255), -1)
    assert (limb_mask(frame) == only_body).all()


def test_person_index_picks_largest_first():
    big, small = known_pose(dx=-100, scale=1.0), known_pose(dx=150, scale=0.6)
    frame = draw(np.stack([big, small]), 600, 512)
    first, second = pose_from_frame(frame, person=0), pose_from_frame(frame, person=1)
    assert np.abs(first - big).max() < 2.5
    assert np.isfinite(second[:14]).all()  # a tiny figure's 8 px ear limbs may be lost
    assert np.nanmax(np.abs(second - small)) < 2.5
    assert np.isnan(pose_from_frame(frame, person=2)).all()


def test_load_video_file(tmp_path):
    import imageio.v3 as iio

    frames = [draw(known_pose(dx=4 * k), 400, 512) for k in range(5)]
    path = tmp_path / "walk.gif"
    iio.imwrite(path, np.stack(frames), duration=100, loop=0)
    m = load_skeleton_video(path)
    assert m.poses.shape == (5, N_JOINTS, 2) and m.fps == pytest.approx(10)
    np.testing.assert_allclose(np.diff(m.poses[:, 1, 0]), 4, atol=1.0)


def test_limb_colours_are_the_standard_ones():
    assert len(LIMBS) == 17 and COLORS[0] == (255, 0, 0)
