"""The planner: resolved jobs, pose tracks in pixels, travel, prompts."""

from __future__ import annotations

import numpy as np
import pytest

from cinekit.pose.angles import bone_lengths
from cinekit.pose.retarget import lengths_from_rig
from cinekit.pose.skeleton import INDEX, pose_from_dict
from cinekit.render.plan import Planner
from cinekit.spec.project import load_project
from tests.project_factory import RIG, make_project

SHOTS = """\
    defaults: {fps: 10}
    shots:
      - id: still
        prompt: "{ann} waves"
        camera: full
        characters: [{name: ann, pose: wave}]
      - id: walk
        kind: clip
        duration: 2.0
        prompt: "{ann} walks to {bob}"
        camera: wide
        seed: 7
        characters:
          - {name: ann, position: 0.2, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 0.5, pose: walk_b}, {at: 1.0, pose: walk_c, position: 0.6}]}}
          - {name: bob, position: right, pose: wave, mirror: true, scale: 0.8}
    """


@pytest.fixture
def jobs(tmp_path):
    project = load_project(make_project(tmp_path, SHOTS))
    return {p.job.shot_id: p.job for p in Planner(project).plan()}


def test_frames_sizes_seeds(jobs):
    assert jobs["still"].frames == 1 and jobs["still"].pose.shape == (1, 1, 18, 2)
    walk = jobs["walk"]
    assert walk.frames == 20 and walk.fps == 10 and walk.pose.shape == (20, 2, 18, 2)
    assert (walk.width, walk.height, walk.seed, jobs["still"].seed) == (256, 192, 7, 0)
    assert walk.output == "ep/walk" and walk.engine == "previz"


def test_prompt_gets_identity_tokens(jobs):
    assert jobs["walk"].prompt == "ann, test character walks to bob, test character"
    assert jobs["walk"].raw_prompt == "{ann} walks to {bob}"


def test_pose_track_keeps_the_rig_proportions(jobs):
    rig_lengths, _ = lengths_from_rig(pose_from_dict({k: tuple(v) for k, v in RIG.items()}))
    for f in range(20):
        lengths = bone_lengths(jobs["walk"].pose[f, 0])
        scale = np.nanmedian(lengths / rig_lengths)
        assert np.allclose(lengths, rig_lengths * scale, rtol=0.02, equal_nan=True)


def test_travel_follows_position_keys_then_holds(jobs):
    neck_x = jobs["walk"].pose[:, 0, INDEX["neck"], 0] / 256
    assert neck_x[0] == pytest.approx(0.2, abs=0.03)
    assert neck_x[10] == pytest.approx(0.6, abs=0.03)         # t = 1.0 s: at the waypoint
    assert np.all(np.diff(neck_x[:10]) > 0)                    # travels right, no jump
    assert np.allclose(neck_x[10:], neck_x[10], atol=0.01)     # then stays


def test_mirror_waves_the_other_hand_and_scale_shrinks(jobs):
    from cinekit.pose.library import load_library

    wave = load_library()["wave"]
    raised = "right_wrist" if wave[INDEX["right_wrist"], 1] < wave[INDEX["left_wrist"], 1] else "left_wrist"
    other = "left_wrist" if raised == "right_wrist" else "right_wrist"
    bob = jobs["walk"].pose[0, 1]
    # A mirror image of a front view waves with the other hand, on the other side of the body.
    assert bob[INDEX[other], 1] < bob[INDEX[raised], 1]
    side = np.sign(wave[INDEX[raised], 0] - wave[INDEX["neck"], 0])
    assert np.sign(bob[INDEX[other], 0] - bob[INDEX["neck"], 0]) == -side
    ann_height = np.ptp(jobs["walk"].pose[0, 0, :, 1])
    assert np.ptp(bob[:, 1]) < ann_height


def test_unknown_shot_id_suggests(tmp_path):
    from cinekit.errors import UserError

    project = load_project(make_project(tmp_path, SHOTS))
    with pytest.raises(UserError, match="no shot with id wlak") as info:
        Planner(project).plan(["wlak"])
    assert info.value.hint == "did you mean 'walk'?"
