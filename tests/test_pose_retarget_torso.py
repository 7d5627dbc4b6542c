"""Retargeting onto a rig whose torso is shaped unlike the source's (issue 11).

An AnimatedDrawings rig puts its ``neck`` at the base of the head, far above the shoulders,
while every motion source puts it between them. Keeping the source's neck->shoulder angles
with the rig's bone lengths put the track's shoulders (and so elbows and wrists) 0.2-0.4
figure heights away from the drawn ones. With the rig's ``Torso`` the retargeted track must
have the rig's own shape: bone lengths and rest-pose joints within 2 % of the figure height.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from cinekit.pose.angles import REST_POSE, bone_lengths
from cinekit.pose.motion import import_motion, to_body_space
from cinekit.pose.retarget import (
    Torso,
    lengths_from_rig,
    retarget,
    torso_coords,
    torso_from_rig,
)
from cinekit.pose.skeleton import BONES, INDEX, empty_pose

CHARS = ["char1", "char2", "char3", "char4"]
AD_TO_COCO = {"neck": "neck", "right_hand": "right_wrist", "left_hand": "left_wrist",
              "right_foot": "right_ankle", "left_foot": "left_ankle"}
LIMB_BONES = [k for k, (p, c) in enumerate(BONES) if p != INDEX["neck"] and c <= 13]
NECK = INDEX["neck"]


def ad_rig(data_dir, name: str) -> np.ndarray:
    """The COCO-18 rig (pixels) of an AnimatedDrawings character."""
    cfg = yaml.safe_load((data_dir / "animated-drawings" / "characters" / name / "char_cfg.yaml").read_text())
    rig = empty_pose()
    for joint in cfg["skeleton"]:
        coco = AD_TO_COCO.get(joint["name"], joint["name"])
        if coco in INDEX:
            rig[INDEX[coco]] = joint["loc"]
    return rig


def figure_height(rig: np.ndarray) -> float:
    """Pixels from the highest to the lowest rig joint (the head top is higher still, so a
    tolerance in these units is stricter than one in true figure heights)."""
    return float(np.nanmax(rig[:14, 1]) - np.nanmin(rig[:14, 1]))


@pytest.mark.parametrize("name", CHARS)
def test_rest_pose_retargets_to_the_rigs_own_shape(data_dir, name):
    rig = ad_rig(data_dir, name)
    lengths, height = lengths_from_rig(rig)
    out = retarget(REST_POSE, lengths, torso_from_rig(rig))
    fig = figure_height(rig) / height                       # figure height in body units
    # Shoulders and hips where drawn, in the torso's axes (the source's upright spine turns
    # the rig's slightly tilted one upright: the puppet turns the drawn torso the same way).
    along, across = torso_coords(out)
    rig_along, rig_across = torso_coords(rig)
    err = np.hypot(along - rig_along / height, across - rig_across / height)
    assert err.max() <= 0.02 * fig, (name, err / fig)
    got = bone_lengths(out)
    want = bone_lengths(rig) / height
    body = [k for k, (_p, c) in enumerate(BONES) if 0 < c <= 13]  # no nose on these rigs
    np.testing.assert_allclose(got[body], want[body], atol=0.02 * fig)
    np.testing.assert_allclose(got[LIMB_BONES], lengths[LIMB_BONES], rtol=1e-9)


@pytest.mark.parametrize("name", ["char1", "char4"])
def test_motion_keeps_the_rigs_torso_and_the_sources_limb_directions(data_dir, name):
    rig = ad_rig(data_dir, name)
    lengths, height = lengths_from_rig(rig)
    torso = torso_from_rig(rig)
    motion = import_motion(data_dir / "animated-drawings" / "bvh" / "jumping_jacks.bvh", view="front")
    src = to_body_space(motion.poses[::3])
    out = retarget(src, lengths, torso)
    fig = figure_height(rig) / height
    # The torso joints in the torso's own axes: the rig's, give or take the source's small
    # shrugs and turns (median within 2 % of the figure height).
    along, across = torso_coords(out)
    err = np.hypot(along - torso.along, across - torso.across)
    assert np.median(err) <= 0.02 * fig, np.median(err, axis=0)
    # Limb bones: the rig's lengths, the source's directions.
    np.testing.assert_allclose(bone_lengths(out)[:, LIMB_BONES], np.broadcast_to(lengths[LIMB_BONES], (len(out), len(LIMB_BONES))), rtol=1e-9)
    v_src = src[:, [c for _, c in BONES]] - src[:, [p for p, _ in BONES]]
    v_out = out[:, [c for _, c in BONES]] - out[:, [p for p, _ in BONES]]
    ang = np.arctan2(v_src[..., 1], v_src[..., 0]) - np.arctan2(v_out[..., 1], v_out[..., 0])
    np.testing.assert_allclose(np.angle(np.exp(1j * ang[:, LIMB_BONES])), 0.0, atol=1e-9)


def test_without_the_torso_the_shoulders_land_far_from_the_rig(data_dir):
    """The failure the torso fixes, measured the same way: it must be large."""
    rig = ad_rig(data_dir, "char1")
    lengths, height = lengths_from_rig(rig)
    out = retarget(REST_POSE, lengths)
    along, across = torso_coords(out)
    rig_along, rig_across = torso_coords(rig)
    off = np.hypot(along - rig_along / height, across - rig_across / height)[:2]
    assert off.min() > 0.15 * figure_height(rig) / height


def test_a_turn_narrows_and_a_back_view_swaps_the_shoulders():
    torso = Torso(along=np.array([0.1, 0.1, 0.4, 0.4]), across=np.array([-0.1, 0.1, -0.06, 0.06]))
    lengths = bone_lengths(REST_POSE)
    front = REST_POSE.copy()
    turned = REST_POSE.copy()
    for j in (INDEX["right_shoulder"], INDEX["left_shoulder"]):   # shoulders at half width
        turned[j, 0] *= 0.5
    back = REST_POSE.copy()
    back[:, 0] *= -1                                               # seen from behind
    clip = np.stack([front, front, front, turned, back])
    out = retarget(clip, lengths, torso)
    _, across = torso_coords(out)
    np.testing.assert_allclose(across[0], torso.across, atol=1e-9)
    np.testing.assert_allclose(across[3, :2], 0.5 * torso.across[:2], atol=1e-9)
    np.testing.assert_allclose(across[4], -torso.across, atol=1e-9)


def test_missing_hips_keep_the_shoulders_on_the_shoulder_line():
    torso = Torso(along=np.array([0.1, 0.1, 0.4, 0.4]), across=np.array([-0.1, 0.1, -0.06, 0.06]))
    upper = REST_POSE.copy()
    upper[8:14] = np.nan
    out = retarget(upper, bone_lengths(REST_POSE), torso)
    assert np.isnan(out[8:14]).all()
    along, across = torso_coords(out)
    np.testing.assert_allclose(along[:2], torso.along[:2], atol=1e-9)
    np.testing.assert_allclose(across[:2], torso.across[:2], atol=1e-9)


def test_a_clip_seen_from_the_side_keeps_its_profile(data_dir):
    """A profile all clip long has no frontal frame to measure the width against: the
    default body's width stands in, so the shoulders stay close together (not the rig's
    full frontal width, which would turn the profile into a front view)."""
    rig = ad_rig(data_dir, "char1")
    lengths, _ = lengths_from_rig(rig)
    torso = torso_from_rig(rig)
    motion = import_motion(data_dir / "animated-drawings" / "bvh" / "jumping_jacks.bvh", view="side")
    out = retarget(to_body_space(motion.poses[::3]), lengths, torso)
    _, across = torso_coords(out)
    assert np.median(np.abs(across[:, :2] / torso.across[:2])) < 0.15
    front = import_motion(data_dir / "animated-drawings" / "bvh" / "jumping_jacks.bvh", view="front")
    _, across = torso_coords(retarget(to_body_space(front.poses[::3]), lengths, torso))
    assert np.median(np.abs(across[:, :2] / torso.across[:2])) > 0.8
