"""Motion without legs (issue 11): waist-up skeleton videos and OpenPose exports.

There is no "nose and ankle" requirement: the body's size comes from the bones that exist,
the floor from where the default body's feet would be, and the missing joints stay NaN
through retargeting and framing (the control map simply has no legs).
"""

from __future__ import annotations

import numpy as np
import pytest

from cinekit.pose.angles import DEFAULT_LENGTHS, REST_POSE
from cinekit.pose.camera import place
from cinekit.pose.draw import draw_control_map
from cinekit.pose.motion import MotionFormatError, import_motion, to_body_space
from cinekit.pose.retarget import Torso, retarget
from cinekit.pose.skeleton import INDEX
from cinekit.pose.skeleton_video import load_skeleton_video
from tests.pose_video_tracks import decoded_track, video_frames

UPPER = list(range(8))                                   # nose, neck, shoulders, elbows, wrists
LEGS = [INDEX[n] for n in ("right_knee", "right_ankle", "left_knee", "left_ankle")]
TORSO = Torso(along=np.array([0.02, 0.02, 0.36, 0.36]), across=np.array([-0.13, 0.13, -0.075, 0.075]))


def frame_pipeline(body: np.ndarray) -> np.ndarray:
    """Body space -> retargeted (with a rig torso) -> framed ``medium`` at 512 x 512 pixels."""
    return place([retarget(body, DEFAULT_LENGTHS, TORSO)], [0.5], None, "medium", 512, 512)[:, 0]


def test_rest_pose_without_legs_frames_like_with_them():
    pixels = REST_POSE * 300.0 + (256.0, 600.0)
    for drop in ([9, 10, 12, 13], [8, 9, 10, 11, 12, 13], [0, 9, 10, 12, 13, 14, 15, 16, 17]):
        cut = pixels.copy()
        cut[drop] = np.nan
        body = to_body_space(cut[None])[0]
        keep = [j for j in range(18) if j not in drop]
        np.testing.assert_allclose(body[keep], REST_POSE[keep], atol=1e-9)
        assert np.isnan(body[drop]).all()


def test_nothing_to_measure_is_a_located_user_error():
    lonely = np.full((3, 18, 2), np.nan)
    lonely[1, INDEX["left_wrist"]] = (10.0, 20.0)
    with pytest.raises(MotionFormatError, match="two body joints"):
        to_body_space(lonely)


def test_real_openpose_export_without_legs(data_dir):
    motion = import_motion(data_dir / "openpose" / "pose_hand_fixed.json")  # no hips, knees, ankles
    assert np.isnan(motion.poses[0, 8:14]).all() and np.isfinite(motion.poses[0, UPPER]).all()
    body = to_body_space(motion.poses)
    # The neck lands where the default body's neck stands; a plausible head and shoulders.
    assert body[0, INDEX["neck"], 1] == pytest.approx(REST_POSE[INDEX["neck"], 1])
    width = body[0, INDEX["left_shoulder"], 0] - body[0, INDEX["right_shoulder"], 0]
    assert 0.2 < width < 0.36
    px = frame_pipeline(body)
    assert np.isfinite(px[:, UPPER]).all() and np.isnan(px[:, 8:14]).all()
    assert ((px[:, UPPER] >= 0) & (px[:, UPPER] <= 512)).all()        # medium: waist up, in frame
    control = draw_control_map(px[0], 512, 512)
    assert control.any() and not control[int(px[0, INDEX["neck"], 1]) + 200:].any()  # no legs drawn


@pytest.fixture(scope="module")
def waist_up_clip(data_dir, tmp_path_factory):
    """The first frames of a real skeleton video (every 10th kept), whole and with
    everything below mid-thigh blanked, written to a temporary mp4; the full poses."""
    import cv2

    keep = slice(0, None, 10)
    frames = video_frames()[keep]
    full = decoded_track()[keep]
    cut_row = int(np.nanmin(0.5 * (full[:, [8, 11], 1].mean(1) + full[:, [9, 12], 1].mean(1))))
    path = tmp_path_factory.mktemp("legless") / "waist_up.mp4"
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 3.0, (w, h))
    for f in frames:
        g = f.copy()
        g[cut_row:] = 0
        writer.write(np.ascontiguousarray(g[..., ::-1]))
    writer.release()
    return path, full


def test_waist_up_skeleton_video(waist_up_clip):
    path, full = waist_up_clip
    motion = load_skeleton_video(path, clean=False)  # as decoded (clean_track: test_pose_clean)
    assert motion.frames == len(full)
    got = motion.poses
    assert np.isnan(got[:, [INDEX["right_ankle"], INDEX["left_ankle"]]]).all()
    # The upper body is read as from the whole frames (the re-encode moves a pixel or two).
    assert np.nanmedian(np.abs(got[:, UPPER] - full[:, UPPER])) < 2.0
    body, ref = to_body_space(got), to_body_space(full)
    # Framed from the bones that exist, the upper body stands where the full body's does.
    assert np.nanmedian(np.abs(body[:, UPPER] - ref[:, UPPER])) < 0.06
    px = frame_pipeline(body)
    assert np.isfinite(px[:, UPPER]).all()
    assert np.isnan(px[:, [INDEX["right_ankle"], INDEX["left_ankle"]]]).all()
