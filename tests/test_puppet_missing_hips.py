"""A frame whose track has no hips (a waist-up video, a detector that lost them) draws the
figure from what exists; a frame with nothing to hang it on holds the last drawn pose; the
figure never blinks out. Oracles: the rendered coverage and the drawn shoulder markers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cinekit.engines.puppet import PuppetEngine
from cinekit.pose.skeleton import INDEX
from tests.puppet_data import bvh_job, make_runtime

LEGS = [INDEX[j] for j in ("right_hip", "left_hip", "right_knee", "left_knee", "right_ankle", "left_ankle")]


@pytest.fixture(scope="module")
def runtime():
    return make_runtime()


def test_a_frame_without_hips_draws_the_figure_from_the_joints_that_exist(runtime):
    job = bvh_job(runtime, "char2", "wave_hello", 3, width=384, height=384)
    pose = job.pose.copy()
    pose[1, 0, LEGS] = np.nan                      # frame 1: no hips, no legs
    res = PuppetEngine(runtime).render(dataclasses.replace(job, pose=pose))
    full = PuppetEngine(runtime).render(job)
    drawn, whole = res.masks[1, 0], full.masks[1, 0]
    assert drawn.sum() > 0.8 * whole.sum(), (drawn.sum(), whole.sum())
    # the upper body lands where the full track put it: the two masks agree above the hips
    hip_y = int(np.nanmin(job.pose[1, 0, [INDEX["right_hip"], INDEX["left_hip"]], 1]))
    upper = slice(0, hip_y)
    agree = (drawn[upper] == whole[upper]).mean()
    assert agree > 0.99, agree


def test_a_frame_with_no_pose_holds_the_last_drawn_one(runtime):
    job = bvh_job(runtime, "char2", "wave_hello", 3, width=384, height=384)
    pose = job.pose.copy()
    pose[2, 0] = np.nan                            # frame 2: the track lost the body
    res = PuppetEngine(runtime).render(dataclasses.replace(job, pose=pose))
    assert res.masks[2, 0].sum() > 1000
    assert (res.frames[2] == res.frames[1]).all()  # the last drawn pose, held
    first = pose.copy()
    first[0, 0] = np.nan                           # nothing drawn before it: nothing to hold
    res = PuppetEngine(runtime).render(dataclasses.replace(job, pose=first))
    assert res.masks[0, 0].sum() == 0 and res.masks[1, 0].sum() > 1000
