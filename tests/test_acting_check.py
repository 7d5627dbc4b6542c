"""`cinekit check` on acting fields (located errors with hints) and the render cache key."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from cinekit.cli import app
from tests.acting_project import acting_project, write_wav
from tests.project_factory import character_yaml

SHOTS = """\
    shots:
      - id: a
        kind: clip
        duration: 2
        prompt: "{ann} and {bob}"
        audio: line.wav
        dialogue:
          - {character: ann, at: 0.5, end: 1.5, line: "hi"}
          - {character: bobb, at: 0.5, end: 1.5}
        characters:
          - {name: ann, expression: smiel}
          - {name: bob, performance: nope.mp4, pose: {keyframes: [{at: 0, pose: stand, expression: smile}]}}
      - id: b
        prompt: "{ann}"
        dialogue: [{character: ann, at: 1.0, end: 0.5}]
        characters: [{name: ann}]
    """


def check(root):
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return CliRunner().invoke(app, ["check"])
    finally:
        os.chdir(cwd)


def test_located_errors(tmp_path):
    root = acting_project(tmp_path / "p", SHOTS)
    (root / "characters" / "bob.yaml").write_text(
        character_yaml("bob") + "expressions:\n  neutral: refs/bob.png\n  angry: refs/bob_angry.png\n"
        "  big: {image: refs/big.png, face: [10, 10, 500, 60]}\n")
    from PIL import Image

    Image.new("RGBA", (400, 400)).save(root / "characters" / "refs" / "big.png")
    res = check(root)
    out = res.output
    assert res.exit_code == 1, out
    want = [
        "characters/bob.yaml:8:12: expressions.neutral: 'neutral' is the reference's own face",
        "characters/bob.yaml:9:10: expressions.angry: file not found: refs/bob_angry.png",
        "characters/bob.yaml:10:16: expressions.big.image: the art is 400x400, larger than the reference (200x400)",
        "characters/bob.yaml:10:36: expressions.big.face: the face region [10.0, 10.0, 500.0, 60.0] reaches outside",
        "shots/ep.yaml:6:12: shots[0].audio: file not found: line.wav",
        "shots/ep.yaml:9:21: shots[0].dialogue[1].character: 'bobb' speaks but is not in the shot",
        "shots/ep.yaml:11:33: shots[0].characters[0].expression: 'ann' has no expression 'smiel'",
        "shots/ep.yaml:12:34: shots[0].characters[1].performance: file not found: nope.mp4",
        "shots/ep.yaml:12:96: shots[0].characters[1].pose.keyframes[0].expression: 'bob' has no expression 'smile'",
        "shots/ep.yaml:15:16: shots[1].dialogue[0]: 'end' must be after 'at'",
    ]
    for line in want:
        assert line in out, f"{line!r} not in\n{out}"
    assert "11 error(s)" not in out and "10 error(s)" in out      # one error per problem (no union echo)
    assert "hint: did you mean 'smile'?" in out
    assert "hint: did you mean 'bob'?" in out


def test_valid_project_checks(tmp_path):
    shots = """\
        shots:
          - id: a
            kind: clip
            duration: 2
            prompt: "{ann}"
            audio: line.wav
            dialogue: [{character: ann, at: 0.5, end: 1.5, line: "hi"}]
            characters:
              - {name: ann, pose: {keyframes: [{at: 0, pose: stand}, {at: 1, pose: wave, expression: smile}]}}
        """
    root = acting_project(tmp_path / "p", shots)
    write_wav(root / "shots" / "line.wav", [(2.0, 0.3)])
    res = check(root)
    assert res.exit_code == 0, res.output


def test_no_face_region_without_head_joints(tmp_path):
    root = acting_project(tmp_path / "p", "shots: [{id: a, prompt: '{ann}', characters: [{name: ann}]}]\n", face=False)
    text = (root / "characters" / "ann.yaml").read_text()
    for joint in ("nose", "right_eye", "left_eye", "right_ear", "left_ear"):
        text = text.replace(f"{joint}: [", f"x_{joint}: [")
    (root / "characters" / "ann.yaml").write_text(text)
    res = check(root)
    assert "expressions: no face region: the rig has no eyes and no nose" in res.output, res.output


@pytest.mark.parametrize("edit", ["art", "audio"])
def test_expression_art_and_audio_are_in_the_cache_key(tmp_path, edit):
    from cinekit.render.cache import FileDigests, job_key
    from cinekit.render.plan import Planner
    from cinekit.spec.project import load_project

    shots = """\
        shots:
          - {id: a, kind: clip, duration: 1, prompt: "{ann}", audio: line.wav, characters: [{name: ann, expression: smile}],
             dialogue: [{character: ann, at: 0, end: 1}]}
        """
    root = acting_project(tmp_path / "p", shots)
    write_wav(root / "shots" / "line.wav", [(1.0, 0.3)])

    def key():
        project = load_project(root)
        job = Planner(project).plan()[0].job
        return job_key(project, job, "1", "mp4", FileDigests())

    before = key()
    assert "characters/refs/ann_smile.png" in before.parts["inputs"] and "shots/line.wav" in before.parts["inputs"]
    if edit == "art":
        from PIL import Image

        Image.new("RGBA", (40, 32), (1, 2, 3, 255)).save(root / "characters" / "refs" / "ann_smile.png")
    else:
        write_wav(root / "shots" / "line.wav", [(0.5, 0.0), (0.5, 0.3)])
    after = key()
    assert after.key != before.key


def test_faces_are_recorded_and_reproduced(tmp_path):
    """The sidecar keeps the faces (--reproduce renders the recorded blinks and flaps after the
    shot list changed), and the job record carries their digest."""
    import json

    from tests.project_factory import render_ci

    shots = """\
        defaults: {size: [96, 96], fps: 8}
        shots:
          - id: a
            kind: clip
            duration: 3
            prompt: "{ann}"
            dialogue: [{character: ann, at: 0.5, end: 2.0, line: "one two three four"}]
            characters: [{name: ann, expression: smile}]
        """
    root = acting_project(tmp_path / "p", shots)
    res = render_ci(root)
    assert res.exit_code == 0, res.output
    record = json.loads((root / "renders" / "ep" / "a.json").read_text())
    assert record["job"]["acting"][0]["names"] == ["neutral", "smile"] and "acting_track" in record
    shot_list = root / "shots" / "ep.yaml"
    shot_list.write_text(shot_list.read_text().replace("one two three four", "one"))
    res = render_ci(root, "--reproduce", "renders/ep/a.mp4")
    assert res.exit_code == 0, res.output
    assert "identical: a.mp4" in res.stdout
