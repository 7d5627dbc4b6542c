"""Motion: time-based resampling (trim, speed, loop, hold), body space, the import dispatcher."""

from __future__ import annotations

import numpy as np
import pytest

from cinekit.errors import UserError
from cinekit.pose.motion import Motion, MotionFormatError, import_motion, resample, to_body_space
from cinekit.pose.skeleton import INDEX


def ramp(frames: int = 11, fps: float = 10.0) -> Motion:
    """Every coordinate of frame k equals k: resampled values read back as source frame indices."""
    poses = np.broadcast_to(np.arange(frames, dtype=float)[:, None, None], (frames, 18, 2)).copy()
    return Motion(poses, fps=fps, source="ramp")


CASES = [
    # (kwargs, expected source frame index per output frame)
    (dict(fps=10), list(range(11))),
    (dict(fps=20), [k / 2 for k in range(21)]),
    (dict(fps=5), [0, 2, 4, 6, 8, 10]),
    (dict(fps=10, start=0.2, end=0.5), [2, 3, 4, 5]),
    (dict(fps=10, start=0.25, end=0.45), [2.5, 3.5, 4.5]),
    (dict(fps=10, speed=2.0), [0, 2, 4, 6, 8, 10]),
    (dict(fps=10, speed=0.5, end=0.2), [0, 0.5, 1, 1.5, 2]),
    (dict(fps=10, frames=14), list(range(11)) + [10, 10, 10]),  # hold the last frame
    (dict(fps=10, frames=14, loop=True), list(range(11)) + [0, 1, 2]),
    (dict(fps=20, frames=24, loop=True), [k / 2 for k in range(21)] + [5.0, 0, 0.5]),  # 10.5: last->first
    (dict(fps=10, start=0.2, end=0.4, frames=7, loop=True), [2, 3, 4, 2, 3, 4, 2]),
    (dict(fps=10, speed=2.0, frames=8, loop=True), [0, 2, 4, 6, 8, 10, 1, 3]),
    (dict(fps=10, frames=0), []),
]


@pytest.mark.parametrize("kwargs,expected", CASES)
def test_resample_table(kwargs, expected):
    out = resample(ramp(), **kwargs)
    assert out.shape == (len(expected), 18, 2)
    np.testing.assert_allclose(out[:, 0, 0], expected, atol=1e-9)


def test_resample_nan_only_where_a_missing_neighbour_contributes():
    m = ramp()
    m.poses[3, 4] = np.nan
    out = resample(m, fps=20)  # samples at 0, 0.5, 1, ...
    assert np.isnan(out[5, 4]).all() and np.isnan(out[6, 4]).all() and np.isnan(out[7, 4]).all()
    assert np.isfinite(out[4, 4]).all() and np.isfinite(out[8, 4]).all()
    assert np.isfinite(out[6, 5]).all()


@pytest.mark.parametrize(
    "kwargs", [dict(fps=0), dict(fps=10, speed=0), dict(fps=10, start=2.0), dict(fps=10, start=0.5, end=0.2)]
)
def test_resample_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        resample(ramp(), **kwargs)


def test_motion_validates_shape_and_fps():
    with pytest.raises(ValueError):
        Motion(np.zeros((3, 17, 2)), fps=10)
    with pytest.raises(ValueError):
        Motion(np.zeros((3, 18, 2)), fps=0)
    assert ramp().duration == pytest.approx(1.1)


def standing(height_px: float = 200.0, x: float = 300.0, floor: float = 500.0) -> np.ndarray:
    pose = np.full((18, 2), np.nan)
    pose[INDEX["nose"]] = (x, floor - height_px)
    pose[INDEX["neck"]] = (x, floor - 0.85 * height_px)
    pose[INDEX["right_ankle"]] = (x - 20, floor)
    pose[INDEX["left_ankle"]] = (x + 20, floor)
    return pose


def test_to_body_space_unit_height_floor_and_origin_keeping_root_motion():
    poses = np.stack([standing(x=300.0 + 10 * k) for k in range(12)])
    poses[6] = standing(height_px=120.0, x=360.0)  # one crouch does not change the unit
    body = to_body_space(poses)
    np.testing.assert_allclose(body[0, INDEX["nose"]], (0.0, -1.0))
    np.testing.assert_allclose(body[0, INDEX["right_ankle"]], (-0.1, 0.0))
    np.testing.assert_allclose(body[11, INDEX["nose"], 0], 110 / 200)  # travel kept, in units


def test_to_body_space_needs_some_body_joints():
    with pytest.raises(ValueError):
        to_body_space(np.full((4, 18, 2), np.nan))


def test_import_motion_dispatches_by_kind(data_dir, tmp_path):
    bvh = import_motion(data_dir / "animated-drawings" / "bvh" / "jumping_jacks.bvh", view="front")
    assert bvh.poses.shape == (125, 18, 2)
    js = import_motion(data_dir / "openpose" / "pose_hand_fixed.json")
    assert js.poses.shape == (1, 18, 2)
    (tmp_path / "clip.xyz").write_text("x")
    with pytest.raises(MotionFormatError) as err:
        import_motion(tmp_path / "clip.xyz")
    assert isinstance(err.value, ValueError) and isinstance(err.value, UserError)
    with pytest.raises(UserError, match="not found"):
        import_motion(tmp_path / "missing.bvh")


def test_detect_poses_names_the_missing_weights_and_the_setting(tmp_path):
    from cinekit.pose.detect import detect_poses

    for folder in (None, tmp_path / "nowhere", tmp_path):
        with pytest.raises(UserError) as err:
            detect_poses(tmp_path / "clip.mp4", folder)
        assert "body_pose_model.pth" in err.value.message
        assert "annotators:" in err.value.hint and "cinekit.yaml" in err.value.hint


def test_motion_modules_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, cinekit.pose.motion, cinekit.pose.bvh, cinekit.pose.openpose_json, "
        "cinekit.pose.skeleton_video, cinekit.pose.detect; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
