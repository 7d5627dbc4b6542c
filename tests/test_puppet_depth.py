"""Depth order per frame: a limb crossing in front of the body is drawn over it, one swinging
behind is drawn under it; from a BVH's 3-D where the motion has it, from a keyframe's
``depth:`` where the user says so, from the rule otherwise.

The oracle reads the rendered frame where the arm's own coverage and the torso's overlap
(``PuppetEngine.part_coverage``): the arm's colour must show there when the arm is in front,
the torso's when it is behind. Which one is in front is read from the BVH's world positions
(``forward_kinematics``), not from the projection that carries the depth.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.project_factory import make_project

Rotation = pytest.importorskip("scipy.spatial.transform").Rotation
ARM, TORSO = (200, 60, 60), (60, 60, 160)     # project_factory's colours for ann


def _joint(name, offset, children="", end=None, channels="CHANNELS 3 Zrotation Xrotation Yrotation"):
    site = f"End Site {{ OFFSET {end[0]} {end[1]} {end[2]} }}" if end else ""
    return f"JOINT {name} {{ OFFSET {offset[0]} {offset[1]} {offset[2]} {channels} {children} {site} }}"


def arm_bvh(directions: list[tuple[float, float, float]]) -> str:
    """A Y-up figure facing +Z (its left is +X), arms hanging; frame k turns the right upper
    arm (elbow straight) to point along ``directions[k]``."""
    def arm(side, s):
        return _joint(f"{side}Shoulder", (s * 5, 35, 0), _joint(
            f"{side}Arm", (s * 12, 0, 0), _joint(f"{side}ForeArm", (0, -25, 0), _joint(
                f"{side}Hand", (0, -22, 0), end=(0, -8, 0)))))

    def leg(side, s):
        return _joint(f"{side}UpLeg", (s * 9, 0, 0), _joint(f"{side}Leg", (0, -42, 0), _joint(
            f"{side}Foot", (0, -42, 0), end=(0, -5, 8))))

    spine = _joint("Spine", (0, 10, 0), _joint("Neck", (0, 40, 0), _joint("Head", (0, 10, 0), end=(0, 15, 0)))
                   + arm("Left", 1) + arm("Right", -1))
    text = ("HIERARCHY\nROOT Hips { OFFSET 0 0 0 CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation "
            f"Yrotation {spine} {leg('Left', 1)} {leg('Right', -1)} }}\n")
    from cinekit.pose.bvh import parse_bvh

    n = 6 + 3 * text.count("JOINT ")
    names = [j.name for j in parse_bvh(text + "MOTION\nFrames: 1\nFrame Time: 0.1\n" + " ".join(["0"] * n)).joints]
    rows = []
    for d in directions:
        values = {name: [0.0, 0.0, 0.0] for name in names[1:]}
        rot, _ = Rotation.align_vectors([d], [[0.0, -1.0, 0.0]])
        values["RightArm"] = list(rot.as_euler("ZXY", degrees=True))
        rows.append(" ".join(f"{v:.6f}" for v in [0.0, 94.0, 0.0, 0.0, 0.0, 0.0] + [x for name in names[1:] for x in values[name]]))
    return text + f"MOTION\nFrames: {len(rows)}\nFrame Time: 0.5\n" + "\n".join(rows) + "\n"


ACROSS_FRONT, ACROSS_BACK = (0.75, -0.35, 0.55), (0.75, -0.35, -0.55)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """A two-frame clip: the right arm across the chest, then across the back."""
    from cinekit.engines.puppet import PuppetEngine
    from cinekit.render.plan import Planner
    from cinekit.runtime import Runtime
    from cinekit.spec.project import load_project

    shots = ("shots:\n  - id: a\n    kind: clip\n    duration: 1\n    fps: 2\n    size: [512, 512]\n"
             "    camera: full\n    characters: [{name: ann, pose: {bvh: arm.bvh}}]\n")
    root = make_project(tmp_path_factory.mktemp("depth") / "p", shots, characters=("ann",))
    (root / "shots" / "arm.bvh").write_text(arm_bvh([ACROSS_FRONT, ACROSS_BACK]))
    project = load_project(root)
    job = Planner(project).plan()[0].job
    engine = PuppetEngine(Runtime.for_project(project))
    return job, engine, engine.render(job)


def _overlap_shares(job, engine, result, f):
    """(arm colour share, torso share) of the frame where the right arm covers the torso; the
    torso's own pixels there are read from the same frame with that arm held out sideways
    (the torso's transforms do not depend on the arm)."""
    import dataclasses

    from cinekit.pose.skeleton import INDEX

    cov = engine.part_coverage(job, f, 0)
    arm = sum(cov[p] for p in ("right_upper_arm", "right_forearm", "right_hand") if p in cov) > 0.5
    import cv2

    both = cv2.erode((arm & (cov["torso"] > 0.5)).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # not the outlines
    assert both.sum() > 300, "the arm must cross the torso in 2-D"
    pose = job.pose.copy()
    sh, el, wr = (INDEX[f"right_{j}"] for j in ("shoulder", "elbow", "wrist"))
    reach = np.hypot(*(pose[f, 0, el] - pose[f, 0, sh]))
    pose[f, 0, el] = pose[f, 0, sh] - (reach, 0)
    pose[f, 0, wr] = pose[f, 0, sh] - (2 * reach, 0)
    alone = engine.render(dataclasses.replace(job, pose=pose)).frames[f][both].astype(int)
    px = result.frames[f][both].astype(int)
    red = lambda a: np.abs(a - ARM).max(axis=-1) < 30  # noqa: E731
    body = ~red(alone)                      # torso pixels not already in the arm's colour
    arm_share = float(red(px[body]).mean())
    torso_share = float((np.abs(px - alone).max(axis=-1) < 30).mean())
    return arm_share, torso_share


def test_the_bvh_says_which_arm_is_in_front():
    """The truth of the fixture, read from the BVH's world positions (the figure faces +Z)."""
    from cinekit.pose.bvh import forward_kinematics, parse_bvh

    bvh = parse_bvh(arm_bvh([ACROSS_FRONT, ACROSS_BACK]))
    pos = forward_kinematics(bvh)[0]
    hand = [j.name for j in bvh.joints].index("RightHand")
    assert pos[0, hand, 2] > 10 and pos[1, hand, 2] < -10


def test_an_arm_across_the_chest_is_drawn_over_the_torso(rendered):
    job, engine, result = rendered
    assert job.depth is not None
    arm, torso = _overlap_shares(job, engine, result, 0)
    # (the arm's own layer carries a little body colour at its inner edge: 0.91 measured)
    assert arm > 0.85 and torso < 0.4, (arm, torso)


def test_an_arm_across_the_back_is_drawn_under_the_torso(rendered):
    job, engine, result = rendered
    arm, torso = _overlap_shares(job, engine, result, 1)
    assert torso > 0.95 and arm < 0.05, (arm, torso)


def test_a_keyframe_puts_a_limb_behind_until_another_key_hands_it_back(tmp_path):
    from cinekit.puppet.layers import frame_order
    from cinekit.render.plan import Planner
    from cinekit.spec.project import load_project

    shots = ("shots:\n  - id: a\n    kind: clip\n    duration: 2\n    fps: 4\n"
             "    characters: [{name: ann, pose: {keyframes: [\n"
             "      {at: 0, pose: stand, depth: {left_arm: behind}},\n"
             "      {at: 1, pose: wave, depth: {left_arm: auto, right_leg: front}}]}}]\n")
    job = Planner(load_project(make_project(tmp_path / "p", shots, characters=("ann",)))).plan()[0].job
    orders = [frame_order("front", False, job.depth[f, 0]) for f in range(job.frames)]
    torso = [o.index("torso") for o in orders]
    assert all(o.index("left_upper_arm") < t for o, t in zip(orders[:4], torso[:4]))       # behind
    assert all(o.index("left_upper_arm") > t for o, t in zip(orders[4:], torso[4:]))       # the rule again
    assert all(o.index("right_thigh") > t for o, t in zip(orders[4:], torso[4:]))          # kicked in front
    assert all(o.index("right_thigh") < t for o, t in zip(orders[:4], torso[:4]))
