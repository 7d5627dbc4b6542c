"""`cinekit rig NAME --auto` on real references: a photo gets a rig within 5 % of the figure's
height of a hand-marked one, written into the YAML with minimal edits; stylised drawings the
detector cannot read are refused with a clear message and the YAML is left alone.

Hand-marked rig of real-refs/anyone-3.png (614x922): joints placed by eye on 2-4x crops of the
photo with a 10 px grid: the pupils for the eyes, the nose tip, the centre of each joint where
the limb bends (shoulder and hip joints inside the silhouette, knee caps, the ankle bones above
the sandal straps, the wrist where the hand begins; the neck as the shoulders' midpoint, as
OpenPose defines it). The ears are hidden under her hair and are not marked. Figure height: top
of the hair (y ~22) to the soles (y ~905), 883 px, so 5 % is 44 px.
"""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cinekit.capture import mediapipe_graphs
from cinekit.cli import app
from cinekit.testing.data import shared_data_dir

DATA = shared_data_dir()
PHOTO = DATA / "real-refs" / "anyone-3.png"
HAND = {
    "nose": (365, 115), "right_eye": (347, 96), "left_eye": (379, 95),
    "right_shoulder": (285, 208), "left_shoulder": (432, 210), "neck": (358.5, 209),
    "right_elbow": (277, 332), "left_elbow": (456, 335), "right_wrist": (308, 452), "left_wrist": (484, 460),
    "right_hip": (333, 430), "left_hip": (415, 430), "right_knee": (322, 645), "left_knee": (417, 635),
    "right_ankle": (285, 825), "left_ankle": (425, 830),
}
FIGURE_HEIGHT = 883
runner = CliRunner()
needs_capture = pytest.mark.skipif(not mediapipe_graphs.available(),
                                   reason="mediapipe is not installed (the capture extra, docs/capture.md)")
needs_data = pytest.mark.skipif(not PHOTO.is_file(), reason=f"test data {PHOTO} not found")


def _project(tmp_path, character: str):
    (tmp_path / "cinekit.yaml").write_text("output: out\n")
    (tmp_path / "characters").mkdir()
    path = tmp_path / "characters" / "anna.yaml"
    path.write_text(character)
    return path


@needs_capture
@needs_data
def test_rig_auto_on_a_photo_matches_the_hand_marked_rig(tmp_path, monkeypatch):
    from cinekit.spec.models import CharacterSpec

    char = _project(tmp_path, f"# a photo reference\nname: anna\nreferences:\n  - {{image: {PHOTO}, view: front}}\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["rig", "anna", "--auto"])
    assert result.exit_code == 0, result.output + result.stderr
    data = yaml.safe_load(char.read_text())
    CharacterSpec.model_validate(data)                     # the file is still a valid character
    joints = data["rig"]["joints"]
    errors = {name: float(np.hypot(*(np.asarray(joints[name]) - xy))) for name, xy in HAND.items()}
    print({k: round(v) for k, v in errors.items()}, f"max {max(errors.values()):.0f} px")
    assert max(errors.values()) <= 0.05 * FIGURE_HEIGHT, errors
    assert char.read_text().startswith("# a photo reference\nname: anna\n")
    png = tmp_path / "out" / "rigs" / "anna.png"
    from PIL import Image

    drawn = np.asarray(Image.open(png).convert("RGB")).astype(int)
    art = np.asarray(Image.open(PHOTO).convert("RGB")).astype(int)
    assert drawn.shape == art.shape
    # the bones are drawn where the joints are: the pixel at the left knee changed colour
    x, y = HAND["left_knee"]
    assert np.abs(drawn[y, x] - art[y, x]).sum() > 60


@needs_capture
@needs_data
def test_rig_auto_edits_only_the_joint_lines(tmp_path, monkeypatch):
    before = (f"name: anna   # the hero\nreferences:\n  - {{image: {PHOTO}, view: front}}\n"
              "rig:\n  joints:     # my own rig\n    nose: [1, 2]      # roughly\n    neck: [3, 4]\n"
              "    tail_tip: [5, 6]\n"
              "identity: {ip_adapter: 0.7}\n# the end\n")
    char = _project(tmp_path, before)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["rig", "anna", "--auto"])
    assert result.exit_code == 0, result.output + result.stderr
    after = char.read_text().splitlines()
    old = before.splitlines()
    assert after[:5] == old[:5]
    assert after[5].startswith("    nose: [") and after[5].endswith("]      # roughly") and after[5] != old[5]
    assert after[6].startswith("    neck: [") and after[6] != old[6]
    assert after[7] == "    tail_tip: [5, 6]"                     # a joint it does not know: kept
    added = after[8:8 + 16]
    assert all(line.startswith("    ") and ": [" in line for line in added)
    assert after[8 + 16:] == old[8:]                            # identity and the last comment
    assert "replaced" in result.output


@needs_capture
@needs_data
@pytest.mark.parametrize("drawing, message", [("char1", "found no body"), ("char3", "found no plausible body")])
def test_rig_auto_refuses_stylised_drawings(tmp_path, monkeypatch, drawing, message):
    art = DATA / "animated-drawings" / "characters" / drawing / "texture.png"
    text = f"name: anna\nreferences:\n  - {{image: {art}, view: front}}\n"
    char = _project(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["rig", "anna", "--auto"])
    assert result.exit_code == 1
    assert message in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr
    assert char.read_text() == text
    assert (tmp_path / "out" / "rigs" / "anna.png").is_file()   # the picture shows what it saw


def test_rig_auto_without_mediapipe_says_how_to_install(tmp_path, monkeypatch):
    char = _project(tmp_path, "name: anna\nreferences:\n  - {image: a.png}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mediapipe_graphs, "available", lambda: False)
    result = runner.invoke(app, ["rig", "anna", "--auto"])
    assert result.exit_code == 1
    assert "needs mediapipe 0.10.14" in result.stderr and "--no-deps" in result.stderr
    assert char.read_text() == "name: anna\nreferences:\n  - {image: a.png}\n"


def test_rig_auto_refuses_a_rig_read_from_a_file(tmp_path, monkeypatch):
    from cinekit.capture.rig_auto import RigProposal, write_rig
    from cinekit.errors import UserError

    text = "name: anna\nreferences:\n  - {image: a.png}\nrig:\n  from: char_cfg.yaml\n"
    char = _project(tmp_path, text)
    proposal = RigProposal(np.full((18, 2), 10.0), 100, 100)
    with pytest.raises(UserError, match="from:"):
        write_rig(char, proposal, "note")
    assert char.read_text() == text
    flow = "name: anna\nreferences: [{image: a.png}]\nrig: {joints: {nose: [1, 2]}}\n"
    char.write_text(flow)
    replaced, added = write_rig(char, proposal, "note")
    assert replaced == ["nose"] and len(added) == 17
    assert yaml.safe_load(char.read_text())["rig"]["joints"]["left_ankle"] == [10, 10]
