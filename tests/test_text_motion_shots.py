"""Text motion in shots: located check errors, planted feet on the planned (pixel) track of drawn
characters with their own proportions, several characters, and puppet renders."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cinekit.cli import app
from cinekit.pose import gait
from cinekit.pose.gait import foot_skate
from cinekit.pose.skeleton import INDEX
from cinekit.render.plan import Planner
from cinekit.spec.project import load_project
from cinekit.testing.data import shared_data_dir
from tests.project_factory import make_project

AD = shared_data_dir() / "animated-drawings" / "characters"
NECK = INDEX["neck"]
SKATE_BOUND = 0.02   # of the leg length, summed over one stance (issue 15)
runner = CliRunner()


def _ad_character(name: str) -> str:
    return (f"name: {name}\nreferences:\n  - {{image: {AD}/{name}/texture.png, mask: {AD}/{name}/mask.png}}\n"
            f"rig: {{from: {AD}/{name}/char_cfg.yaml}}\n")


def _gait_project(root: Path, chars=("ann", "char1", "char4"), fps=24) -> Path:
    shots = f"defaults: {{fps: {fps}, size: [768, 512], camera: wide}}\nshots:\n"
    for c in chars:
        for verb, seconds in (("walk", 3.8), ("run", 2.72)):
            shots += (f"  - {{id: {c}-{verb}, kind: clip, duration: {seconds}, prompt: '{{{c}}}', characters: "
                      f"[{{name: {c}, position: far_left, pose: {{motion: 'stand 0.3s, {verb} right 6 steps, stand 0.5s'}}}}]}}\n")
    extra = {f"characters/{c}.yaml": _ad_character(c) for c in chars if c.startswith("char")}
    return make_project(root, shots, characters=("ann",), extra=extra)


def _skates(root: Path) -> dict[str, tuple[float, float, float]]:
    """shot id -> (px/frame, px/stance, leg px) on the planned track, feet from the sentence."""
    planner = Planner(load_project(root, allow_outside_paths=True))
    out = {}
    for planned in planner.plan():
        ch = planned.shot.characters[0]
        text = planner.text_track(ch.pose.motion, planned.job.frames, planned.job.fps)
        track = planned.job.pose[:, 0]
        legs = [np.hypot(*(track[:, a] - track[:, b]).T) for a, b in ((8, 9), (9, 10))]
        out[planned.shot.id] = (*foot_skate(track, text.contact), float(np.median(legs[0] + legs[1])))
    return out


@pytest.fixture(scope="module")
def gait_project(tmp_path_factory) -> Path:
    return _gait_project(tmp_path_factory.mktemp("gaits") / "p")


def test_planted_feet_do_not_skate_on_drawn_characters_with_their_own_proportions(gait_project):
    skates = _skates(gait_project)
    for shot, (per_frame, per_stance, leg) in skates.items():
        assert per_stance <= SKATE_BOUND * leg, (shot, per_frame, per_stance, leg)
    planner = Planner(load_project(gait_project, allow_outside_paths=True))
    for planned in planner.plan():   # the root crosses the frame to the right, then stops
        neck = planned.job.pose[:, 0, NECK, 0]
        assert neck[-1] - neck[0] > 0.25 * planned.job.width and np.allclose(neck[-3:], neck[-1])


def test_without_the_foot_lock_or_the_pin_the_feet_slide(gait_project, monkeypatch):
    lock = gait.lock_feet
    monkeypatch.setattr(gait, "pin_feet", lambda poses, contact: poses)
    no_pin = _skates(gait_project)
    assert any(stance > SKATE_BOUND * leg for _, stance, leg in no_pin.values())  # double support drags
    # travel taken from the default body's stride before retargeting (no lock on the drawn body)
    monkeypatch.setattr(gait, "lock_feet", lambda poses, plant: np.asarray(poses, dtype=np.float64))
    monkeypatch.setattr(Planner, "body_track", lambda self, pose, frames, fps, path: lock(
        (t := self.text_track(pose.motion, frames, fps)).poses, t.plant))
    naive = _skates(gait_project)
    assert all(stance > 5 * SKATE_BOUND * leg for shot, (_, stance, leg) in naive.items() if "char" in shot)


SHOTS = """\
shots:
  - id: s1
    kind: clip
    duration: 4.5
    prompt: "{ann} and {bob}"
    characters:
      - {name: ann, position: left, pose: {motion: "stand 0.5s, walk right 2s, wave 1s, jump"}}
      - name: bob
        position: right
        pose: {motion: 'stand 0.5s, wlak left 2s'}
  - id: s2
    kind: clip
    duration: 2
    prompt: "{ann}"
    characters:
      - name: ann
        pose:
          motion: stand 0.5s, walk 2s, wave 1s
"""


def _check(root: Path):
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return runner.invoke(app, ["check"])
    finally:
        os.chdir(cwd)


def test_check_reports_a_typo_and_an_overlong_motion_at_the_word(tmp_path):
    root = make_project(tmp_path / "p", SHOTS)
    result = _check(root)
    assert result.exit_code == 1
    lines = (root / "shots" / "ep.yaml").read_text().splitlines()
    found = re.findall(r"shots/ep\.yaml:(\d+):(\d+): (\S+): (.*)\n\s+hint: (.*)", result.stderr)
    assert len(found) == 2, result.stderr
    (l1, c1, field1, msg1, hint1), (l2, c2, field2, msg2, hint2) = found
    assert field1 == "shots[0].characters[1].pose.motion" and msg1 == "unknown verb 'wlak'"
    assert hint1 == "did you mean 'walk'?" and lines[int(l1) - 1][int(c1) - 1:].startswith("wlak left 2s'")
    assert "lasts 3.5 s but the shot only 2 s" in msg2 and "duration: 3.5" in hint2
    assert lines[int(l2) - 1][int(c2) - 1:] == "walk 2s, wave 1s"   # the first clause past the end
    fixed = (root / "shots" / "ep.yaml").read_text().replace("wlak", "walk").replace("duration: 2\n", "duration: 3.5\n")
    (root / "shots" / "ep.yaml").write_text(fixed)
    assert _check(root).exit_code == 0


def test_a_name_of_a_stored_motion_keeps_meaning_the_stored_motion(tmp_path):
    from cinekit.pose.library import save_motion

    shots = textwrap.dedent("""\
        shots:
          - {id: a, kind: clip, duration: 1, prompt: '{ann}', characters: [{name: ann, pose: {motion: walk}}]}
          - {id: b, kind: clip, duration: 1, prompt: '{ann}', characters: [{name: ann, pose: {motion: 'walk 1s'}}]}
        """)
    root = make_project(tmp_path / "p", shots, characters=("ann",))
    (root / "poses").mkdir()
    stored = np.broadcast_to(np.asarray(load_library_stand()), (8, 18, 2)).copy()
    stored[:, :, 0] += np.linspace(0, 0.3, 8)[:, None]   # a stored "walk" that only slides
    save_motion(root / "poses" / "walk.yaml", stored, 8)
    assert _check(root).exit_code == 0
    planner = Planner(load_project(root))
    a, b = (p.job.pose[:, 0] for p in planner.plan())
    assert not planner.is_text_motion(planner.project.shotlists[next(iter(planner.project.shotlists))].shots[0]
                                      .characters[0].pose)
    assert np.ptp(a[:, INDEX["right_ankle"], 0]) > 1 and not np.array_equal(a, b)


def load_library_stand():
    from cinekit.pose.library import load_library

    return load_library([])["stand"]


def test_several_characters_each_follow_their_own_sentence_bit_for_bit(tmp_path):
    shots = textwrap.dedent("""\
        defaults: {camera: wide, size: [512, 256]}
        shots:
          - id: duo
            kind: clip
            duration: 3
            prompt: '{ann} {bob}'
            characters:
              - {name: ann, position: far_left, pose: {motion: 'walk right 2s, wave 1s'}}
              - {name: bob, position: far_right, pose: {motion: 'quickly run left 2s, cheer'}}
          - id: mirrored
            kind: clip
            duration: 3
            prompt: '{bob}'
            characters:
              - {name: bob, position: far_right, pose: {motion: 'quickly run right 2s, cheer'}, mirror: true}
        """)
    root = make_project(tmp_path / "p", shots)
    plans = [Planner(load_project(root)).plan() for _ in range(2)]
    duo, mirrored = (p.job for p in plans[0])
    assert duo.pose.tobytes() == plans[1][0].job.pose.tobytes()
    neck = duo.pose[:, :, NECK, 0]
    assert neck[-1, 0] - neck[0, 0] > 0.2 * duo.width and neck[-1, 1] - neck[0, 1] < -0.3 * duo.width
    # mirror: true mirrors the whole motion, travel included; the feet stay planted
    run = mirrored.pose[:, 0]
    assert run[-1, NECK, 0] - run[0, NECK, 0] < -0.3 * duo.width
    contact = Planner(load_project(root)).text_track("quickly run right 2s, cheer", duo.frames, duo.fps).contact
    legs = np.median(np.hypot(*(run[:, 8] - run[:, 10]).T))
    assert foot_skate(run, contact[:, ::-1])[1] <= SKATE_BOUND * legs   # (left and right swapped)
    assert foot_skate(run, contact)[1] > SKATE_BOUND * legs             # (not swapped: the wrong feet)


def _figure_x(frame: np.ndarray, background) -> float:
    """Mean x of the pixels that differ from the background colour."""
    diff = np.abs(frame.astype(int) - np.asarray(background)[None, None]).sum(axis=-1) > 40
    return float(np.nonzero(diff)[1].mean())


def test_the_puppet_renders_a_text_motion_of_the_example_and_a_drawn_character(tmp_path):
    import imageio.v3 as iio

    from cinekit.scaffold.art import MIKA, draw_front, yaml_for

    shots = textwrap.dedent("""\
        defaults: {fps: 8, size: [320, 208], background: "#2b3a55", camera: wide}
        shots:
          - {id: mika, kind: clip, duration: 2.5, prompt: '{mika}', characters: [{name: mika, position: far_left, pose: {motion: 'stand 0.25s, walk right 1.5s, wave 0.75s'}}]}
          - {id: ad, kind: clip, duration: 2.5, prompt: '{char1}', characters: [{name: char1, position: far_left, pose: {motion: 'stand 0.25s, walk right 1.5s, jump 0.75s'}}]}
        """)
    # the example project's mika (`cinekit init`), front art only: drawing her other views and
    # the second character would double the test's time
    front, joints = draw_front(MIKA)
    mika = "".join(line + "\n" for line in yaml_for(MIKA, joints).splitlines() if "_side" not in line and "_back" not in line)
    root = make_project(tmp_path / "p", shots, characters=(), config="engines: {still: puppet, clip: puppet}\n",
                        extra={"characters/char1.yaml": _ad_character("char1"), "characters/mika.yaml": mika})
    (root / "characters" / "refs").mkdir(parents=True)
    front.save(root / "characters" / "refs" / "mika_front.png")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = runner.invoke(app, ["shot", "shots/ep.yaml", "--allow-outside-paths"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output + result.stderr
    planner = Planner(load_project(root, allow_outside_paths=True))
    for planned in planner.plan():
        frames = iio.imread(root / "renders" / "ep" / f"{planned.shot.id}.mp4")
        assert len(frames) == planned.job.frames == 20
        moved = _figure_x(frames[14], (43, 58, 85)) - _figure_x(frames[1], (43, 58, 85))
        planned_move = planned.job.pose[14, 0, NECK, 0] - planned.job.pose[1, 0, NECK, 0]
        assert planned_move > 40 and abs(moved - planned_move) < 0.25 * planned_move, (moved, planned_move)


def test_poses_list_lists_the_verbs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["poses", "list"])
    assert result.exit_code == 0
    verbs = result.output[result.output.index("verbs of a text motion"):]
    for verb, kind in (("walk", "gait"), ("run", "gait"), ("wave", "action"), ("jump", "action"),
                       ("sit", "pose"), ("arms_crossed", "pose")):
        assert re.search(rf"^{verb}\s+{kind}", verbs, re.M), verbs
    assert not re.search(r"^walk_a", verbs, re.M)   # key drawings of the bundled gaits are not verbs
