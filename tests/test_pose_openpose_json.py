"""OpenPose JSON import: the editor export in the real data, standard COCO-18 / BODY_25 output,
confidence 0 -> NaN, person index, normalised coordinates, per-frame file sequences."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cinekit.pose.motion import MotionFormatError
from cinekit.pose.openpose_json import BODY25_TO_COCO18, load_openpose_json
from cinekit.pose.skeleton import INDEX


def test_editor_export_with_canvas(data_dir):
    m = load_openpose_json(data_dir / "openpose" / "pose_hand_fixed.json")
    assert m.poses.shape == (1, 18, 2) and m.fps == 12.0
    np.testing.assert_allclose(m.poses[0, INDEX["nose"]], (367, 172))
    np.testing.assert_allclose(m.poses[0, INDEX["left_ear"]], (423, 176))
    legs = [INDEX[n] for n in ("right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle")]
    assert np.isnan(m.poses[0, legs]).all()  # confidence 0 in the file
    assert np.isfinite(m.poses[0, :8]).all()


def test_hand_only_export_is_a_clear_error(data_dir):
    with pytest.raises(MotionFormatError, match="no body keypoints.*left_hand"):
        load_openpose_json(data_dir / "openpose" / "output_pose.json")


def person(seed: float, n: int = 18) -> list[float]:
    flat = []
    for j in range(n):
        flat += [seed + j, 2 * seed + j, 0.0 if j == 9 else 0.9]
    return flat


def test_standard_output_person_index_and_body25(tmp_path):
    path = tmp_path / "frame.json"
    path.write_text(json.dumps({"version": 1.3, "people": [
        {"pose_keypoints_2d": person(100)}, {"pose_keypoints_2d": person(10, 25)}]}))
    first = load_openpose_json(path).poses[0]
    assert first[0].tolist() == [100, 200] and np.isnan(first[9]).all()
    second = load_openpose_json(path, person=1).poses[0]
    expected = [(10 + b, 20 + b) for b in BODY25_TO_COCO18]
    for j, xy in enumerate(expected):
        if BODY25_TO_COCO18[j] == 9:
            assert np.isnan(second[j]).all()
        else:
            assert second[j].tolist() == list(xy)
    assert np.isnan(second[INDEX["right_hip"]]).all()  # BODY_25 9 (confidence 0), not MidHip (8)
    assert second[INDEX["right_knee"]].tolist() == [20, 30]
    with pytest.raises(MotionFormatError, match="person 2 requested"):
        load_openpose_json(path, person=2)


def test_normalised_coordinates_scale_to_the_canvas(tmp_path):
    flat = [0.5, 0.25, 1.0] * 18
    path = tmp_path / "n.json"
    path.write_text(json.dumps({"canvas_width": 512, "canvas_height": 768, "people": [{"pose_keypoints_2d": flat}]}))
    np.testing.assert_allclose(load_openpose_json(path).poses[0, 0], (256, 192))


def test_folder_and_list_sequences(tmp_path):
    for k in range(3):
        (tmp_path / f"f_{k:03d}_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": person(k)}]}))
    (tmp_path / "f_003_keypoints.json").write_text(json.dumps({"people": []}))
    m = load_openpose_json(tmp_path, fps=24)
    assert m.poses.shape == (4, 18, 2) and m.fps == 24
    assert m.poses[:3, 0, 0].tolist() == [0, 1, 2] and np.isnan(m.poses[3]).all()
    files = sorted(tmp_path.glob("*.json"))[:2]
    assert load_openpose_json(files).poses.shape == (2, 18, 2)


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"people": [{"pose_keypoints_2d": [1, 2]}]}', "not a multiple of 3"),
        ('{"people": [{"pose_keypoints_2d": [1, 2, 1, 3, 4, 1]}]}', "expected 18"),
        ('{"people": [{"face_keypoints_2d": []}]}', "no pose_keypoints_2d"),
        ('{"people": [\n  {"pose_keypoints_2d": [1, 2, }]}', r"bad\.json:2: invalid JSON"),
        ("[1, 2]", "must hold JSON objects"),
    ],
)
def test_malformed_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_openpose_json(path)
