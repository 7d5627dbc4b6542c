"""BVH import: parser, forward kinematics against hand-computed cases, joint mapping of the CMU
and FAIR skeletons in the real test clips, projection, and located errors."""

from __future__ import annotations

import numpy as np
import pytest

from cinekit.pose.bvh import coco_points_3d, forward_kinematics, load_bvh, parse_bvh, project
from cinekit.pose.motion import MotionFormatError
from cinekit.pose.skeleton import INDEX

CLIPS = {  # name: (frames, frame time) from each file's MOTION header
    "jumping_jacks": (125, 0.03333),
    "wave_hello": (839, 0.008342),
    "jumping": (654, 0.008342),
}
BODY = list(range(14))  # the non-face COCO joints
BONES_3D = [(2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (11, 12), (12, 13), (8, 11)]
# (shoulder width is not rigid: the FAIR clavicles rotate)


@pytest.fixture(scope="module")
def clips(data_dir):
    folder = data_dir / "animated-drawings" / "bvh"
    return {name: parse_bvh((folder / f"{name}.bvh").read_text(), name) for name in CLIPS}


@pytest.mark.parametrize("name", CLIPS)
def test_real_clips_parse_with_header_frames_and_fps(clips, name):
    frames, frame_time = CLIPS[name]
    bvh = clips[name]
    assert bvh.motion.shape == (frames, sum(len(j.channels) for j in bvh.joints))
    assert bvh.fps == pytest.approx(1 / frame_time)


@pytest.mark.parametrize("name", CLIPS)
def test_both_skeletons_map_every_body_joint_with_rigid_bones(clips, name):
    pts, (up, left, forward) = coco_points_3d(clips[name])
    assert np.isfinite(pts[:, BODY]).all()
    for a, b in BONES_3D:
        length = np.linalg.norm(pts[:, a] - pts[:, b], axis=-1)
        assert np.abs(length / np.median(length) - 1).max() < 0.01, (name, a, b)
    assert abs(up @ left) < 1e-9 and abs(up @ forward) < 1e-9


@pytest.mark.parametrize("name,up_axis", [("jumping_jacks", 1), ("wave_hello", 2)])
def test_up_axis_found_for_y_up_cmu_and_z_up_fair(clips, name, up_axis):
    _, (up, _, _) = coco_points_3d(clips[name])
    assert np.argmax(np.abs(up)) == up_axis and up[up_axis] == 1


@pytest.mark.parametrize("name", CLIPS)
def test_front_view_is_upright_and_faces_camera(data_dir, name):
    poses = load_bvh(data_dir / "animated-drawings" / "bvh" / f"{name}.bvh", view="front").poses
    ankle_y = poses[:, [INDEX["right_ankle"], INDEX["left_ankle"]], 1].mean(axis=1)
    assert (poses[:, INDEX["nose"], 1] < poses[:, INDEX["neck"], 1]).all()  # y down: head on top
    assert (poses[:, INDEX["neck"], 1] < ankle_y).all()
    # Facing the camera, the character's left is on the image right.
    assert np.median(poses[:, INDEX["left_hip"], 0] - poses[:, INDEX["right_hip"], 0]) > 0
    assert np.isfinite(poses).all()  # eyes and ears are synthesised from the head


def test_jumping_jacks_arms_go_up_and_down(data_dir):
    m = load_bvh(data_dir / "animated-drawings" / "bvh" / "jumping_jacks.bvh")
    assert "view=front" in m.source  # auto: the arms and legs spread most in the front plane
    for wrist, shoulder in (("right_wrist", "right_shoulder"), ("left_wrist", "left_shoulder")):
        above = m.poses[:, INDEX[wrist], 1] < m.poses[:, INDEX[shoulder], 1]  # y down
        assert above.any() and (~above).any()
        assert np.count_nonzero(np.diff(above.astype(int))) >= 4  # at least two full jumps
    wrist_y = m.poses[:, INDEX["right_wrist"], 1]
    height = np.median(m.poses[:, INDEX["right_ankle"], 1] - m.poses[:, INDEX["nose"], 1])
    assert np.ptp(wrist_y) > 0.5 * height


def synthetic(root_channels: str, values: str) -> str:
    return f"""HIERARCHY
ROOT Hips
{{
  OFFSET 0 0 0
  CHANNELS {len(root_channels.split())} {root_channels}
  JOINT Chest
  {{
    OFFSET 0 1 0
    CHANNELS 3 Yrotation Xrotation Zrotation
    End Site
    {{
      OFFSET 0 0 2
    }}
  }}
}}
MOTION
Frames: 1
Frame Time: 0.04
{values}
"""


# Rx(90): y -> z, z -> -y.  Rz(90): x -> y, y -> -x.  Ry(90): z -> x, x -> -z.
FK_CASES = [
    # Zrotation Xrotation Yrotation = (90, 90, 0): R = Rz Rx; Rz Rx (0,1,0) = Rz (0,0,1) = (0,0,1)
    ("Xposition Yposition Zposition Zrotation Xrotation Yrotation", "1 2 3 90 90 0 0 0 0", (1, 2, 4)),
    # Xrotation Yrotation Zrotation = (90, 0, 90): R = Rx Rz; Rx Rz (0,1,0) = Rx (-1,0,0) = (-1,0,0)
    ("Xposition Yposition Zposition Xrotation Yrotation Zrotation", "1 2 3 90 0 90 0 0 0", (0, 2, 3)),
    # rotations before positions in the channel list: the same transform
    ("Zrotation Xrotation Yrotation Xposition Yposition Zposition", "90 90 0 1 2 3 0 0 0", (1, 2, 4)),
]


@pytest.mark.parametrize("channels,values,chest", FK_CASES)
def test_fk_channel_order_matches_hand_computation(channels, values, chest):
    pos, rot, ends = forward_kinematics(parse_bvh(synthetic(channels, values)))
    np.testing.assert_allclose(pos[0, 1], chest, atol=1e-9)


def test_fk_composes_parent_and_child_rotations_for_end_sites():
    # Root Zrotation 90; chest Yrotation 90 (channels Y X Z): end = root + Rz (0,1,0) + Rz Ry (0,0,2)
    # Rz (0,1,0) = (-1,0,0); Ry (0,0,2) = (2,0,0); Rz (2,0,0) = (0,2,0)  ->  (-1, 2, 0)
    text = synthetic("Xposition Yposition Zposition Zrotation Xrotation Yrotation", "0 0 0 90 0 0 90 0 0")
    pos, _, ends = forward_kinematics(parse_bvh(text))
    np.testing.assert_allclose(pos[0, 1], (-1, 0, 0), atol=1e-9)
    np.testing.assert_allclose(ends[0, 1], (-1, 2, 0), atol=1e-9)


@pytest.mark.parametrize(
    "bad,replacement,line,message",
    [
        ("OFFSET 0 1 0", "OFFSET 0 one 0", 8, "expected a number"),
        ("CHANNELS 3 Yrotation", "CHANNELS 3 Wrotation", 9, "unknown channel"),
        ("Frames: 1", "Frames: 2", 19, "Frames: 2"),
        ("Frame Time: 0.04", "Frame Time: 0", 18, "Frame Time"),
        ("  JOINT Chest", "  BONE Chest", 6, "unexpected 'BONE'"),
    ],
)
def test_malformed_files_name_the_line(bad, replacement, line, message):
    text = synthetic("Xposition Yposition Zposition Zrotation Xrotation Yrotation", "0 0 0 0 0 0 0 0 0")
    assert bad in text
    with pytest.raises(ValueError, match=rf"clip\.bvh:{line}: .*{message}"):
        parse_bvh(text.replace(bad, replacement), "clip.bvh")


def test_truncated_file_and_unknown_skeleton(tmp_path):
    with pytest.raises(MotionFormatError, match="unexpected end of file"):
        parse_bvh("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n", "x.bvh")
    path = tmp_path / "robot.bvh"
    path.write_text(synthetic("Xposition Yposition Zposition Zrotation Xrotation Yrotation", "0 " * 9))
    with pytest.raises(MotionFormatError, match="no joint for right_shoulder"):
        load_bvh(path)


def test_side_view_shows_the_forward_jump(data_dir):
    path = data_dir / "animated-drawings" / "bvh" / "jumping.bvh"
    pts, frame = coco_points_3d(parse_bvh(path.read_text()))
    front, side = project(pts, frame, "front")[0], project(pts, frame, "side")[0]
    travel = lambda p: np.ptp(p[:, INDEX["neck"], 0])  # noqa: E731
    assert travel(side) > 3 * travel(front)
    assert "view=side" in load_bvh(path, view="auto").source
