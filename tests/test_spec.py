"""Spec loading: every problem reported at once, each at its exact file:line:col."""

from __future__ import annotations

import pytest

from cinekit.errors import SpecError
from cinekit.spec.project import load_project
from tests.project_factory import make_project

GOOD = """\
    shots:
      - id: s010
        prompt: "{ann} waves"
        camera: full
        characters:
          - {name: ann, pose: wave}
      - id: s020
        kind: clip
        duration: 1.5
        prompt: "{ann} walks to {bob}"
        characters:
          - {name: ann, position: left, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 1, pose: walk_c, ease: ease_in_out}]}}
          - {name: bob, position: right, pose: stand}
    """


def errors_of(root, **kwargs) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_project(root, **kwargs)
    return [p.format() for p in info.value.problems if p.severity == "error"]


def test_good_project_loads(tmp_path):
    project = load_project(make_project(tmp_path, GOOD))
    assert sorted(project.characters) == ["ann", "bob"]
    [shot_list] = project.shotlists.values()
    assert [s.id for s in shot_list.shots] == ["s010", "s020"]
    assert project.warnings == []


def test_five_planted_mistakes_all_reported_with_file_and_line(tmp_path):
    shots = """\
        shots:
          - id: s010
            prompt: "{ann} waves"
            camra: full
            characters:
              - {name: ann, pose: wave}
          - id: s010
            prompt: "{ann} sits"
            characters:
              - {name: ann, pose: sitt}
          - id: s030
            size: [250, 20]
            prompt: "{anne} runs"
            characters:
              - {name: anne, pose: run_a}
        """
    root = make_project(tmp_path, shots)
    # Mistake 5 is in a character file: a reference image that does not exist.
    (root / "characters" / "bob.yaml").write_text(
        (root / "characters" / "bob.yaml").read_text().replace("refs/bob.png", "refs/bobb.png"))
    errors = errors_of(root)
    expected = [
        "characters/bob.yaml:4:13: references[0].image: file not found: refs/bobb.png",
        "shots/ep.yaml:4:5: shots[0].camra: unknown key 'camra'",
        "shots/ep.yaml:7:9: shots[1].id: duplicate shot id 's010' (first at shots[0])",
        "shots/ep.yaml:10:27: shots[1].characters[0].pose: unknown pose 'sitt'",
        "shots/ep.yaml:12:11: shots[2].size: height 20 is outside 64..4096",
        "shots/ep.yaml:13:13: shots[2].prompt: the prompt names {anne}, which is not a character",
        "shots/ep.yaml:15:16: shots[2].characters[0].name: unknown character 'anne'",
    ]
    firsts = [e.split("\n")[0] for e in errors]
    for line in expected:
        assert line in firsts, f"missing: {line}\n got: {firsts}"
    assert len(firsts) == len(expected)
    hints = "\n".join(errors)
    assert "did you mean 'camera'?" in hints
    assert "did you mean 'sit'?" in hints
    assert "did you mean 'ann'?" in hints
    assert "did you mean 'bob.png'?" in hints


@pytest.mark.parametrize("snippet, expected", [
    ("shots:\n  - id: a\n    kind: clip\n    duration: 600\n", "shots/ep.yaml:4:15: shots[0].duration: 600.0 s is longer than the limit of 120.0 s"),
    ("shots:\n  - id: a\n    fps: 240\n", "shots/ep.yaml:3:10: shots[0].fps: 240.0 fps is above the limit of 60.0"),
    ("shots:\n  - id: a\n    kind: stil\n", "shots/ep.yaml:3:11: shots[0].kind: 'stil' is not one of: still, clip"),
    ("shots:\n  - id: a\n    camera: {center: [0.5, 0.5], scale: 0}\n", "shots/ep.yaml:3:41: shots[0].camera.scale: Input should be greater than 0 (got 0)"),
    ("shots:\n  - id: a\n    characters: [{name: ann, position: 1.5}]\n",
     "shots/ep.yaml:3:40: shots[0].characters[0].position: 1.5 is not valid"),
    ("shots:\n  - id: a\n    characters: [{name: ann, pose: {keyframes: [{at: 0, pose: stand}], bvh: x.bvh}}]\n",
     "shots/ep.yaml:3:36: shots[0].characters[0].pose: give exactly one of keyframes, bvh, openpose, video, detect, motion (got keyframes, bvh)"),
    ("shots:\n  - id: a\n    engine: diffuser\n", "shots/ep.yaml:3:13: shots[0].engine: unknown engine 'diffuser'"),
    ("shots:\n  - id: a\n    characters: [{name: ann, pose: {bvh: ../../outside.bvh}}]\n",
     "shots/ep.yaml:3:42: shots[0].characters[0].pose.bvh: '../../outside.bvh' points outside the project folder"),
    ("shots:\n  - id: a\n   prompt: x\n", "shots/ep.yaml:3:4: invalid YAML"),
    ("shots:\n  - id: a\n    kind: clip\n    duration: 2\n    continue_from: zz\n",
     "shots/ep.yaml:5:20: shots[0].continue_from: 'zz' is not an earlier clip of this list"),
])
def test_single_mistakes(tmp_path, snippet, expected):
    errors = errors_of(make_project(tmp_path, snippet))
    assert any(e.startswith(expected) for e in errors), errors


def test_prompt_missing_a_character_is_a_warning(tmp_path):
    root = make_project(tmp_path, "shots:\n  - id: a\n    prompt: a quiet street\n    characters: [{name: ann}]\n")
    project = load_project(root)
    [warning] = project.warnings
    assert warning.format().startswith("shots/ep.yaml:3:13: warning: shots[0].prompt: the prompt never names {ann}")


def test_pickle_lora_refused_unless_allowed(tmp_path):
    root = make_project(tmp_path, GOOD)
    (root / "characters" / "loras").mkdir()
    (root / "characters" / "loras" / "ann.ckpt").write_bytes(b"\x80\x04not really")
    path = root / "characters" / "ann.yaml"
    path.write_text(path.read_text() + "lora: [{file: loras/ann.ckpt, weight: 0.8}]\n")
    errors = errors_of(root)
    assert any("pickle checkpoint" in e and "--allow-pickle" in e for e in errors)
    load_project(root, allow_pickle=True)  # accepted with the explicit flag


def test_outside_paths_allowed_with_flag(tmp_path, data_dir):
    bvh = data_dir / "animated-drawings" / "bvh" / "wave_hello.bvh"
    root = make_project(tmp_path, f"shots:\n  - id: a\n    kind: clip\n    duration: 1\n    prompt: '{{ann}}'\n"
                                  f"    characters: [{{name: ann, pose: {{bvh: {bvh}}}}}]\n")
    assert any("outside the project" in e for e in errors_of(root))
    load_project(root, allow_outside_paths=True)
