"""`render --ci` with `gates:`: outputs are scored, shots that miss a gate fail (exit 3, JUnit)."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from cinekit.cli import app
from tests.project_factory import CONFIG, make_project

SHOTS = """\
    shots:
      - id: s010
        prompt: "{ann} waves"
        camera: full
        characters: [{name: ann, pose: wave}]
    """


def _render(root, monkeypatch):
    monkeypatch.chdir(root)
    return CliRunner().invoke(app, ["render", "--ci", "--engine", "puppet", "--junit", "report.xml"])


def test_masks_are_written_next_to_outputs(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", SHOTS)
    assert _render(root, monkeypatch).exit_code == 0
    # --engine puppet on a previz project: its own folder (two engines never overwrite each other)
    with np.load(root / "renders/ep/puppet/s010.masks.npz") as data:
        assert list(data["names"]) == ["ann"] and data["masks"].shape == (1, 1, 192, 256)
        assert data["masks"].mean() > 0.01


def test_a_missed_gate_fails_the_shot_and_says_by_how_much(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", SHOTS, config=CONFIG + "gates: {palette_delta_e: {max: 0.001}}\n")
    result = _render(root, monkeypatch)
    assert result.exit_code == 3, result.output + result.stderr
    junit = (root / "report.xml").read_text()
    assert "palette_delta_e" in junit and "max 0.001" in junit and "by " in junit
    # Still failing on the next run, when the output is cached.
    assert _render(root, monkeypatch).exit_code == 3


def test_a_met_gate_passes(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", SHOTS, config=CONFIG + "gates: {palette_delta_e: {max: 60}}\n")
    result = _render(root, monkeypatch)
    assert result.exit_code == 0, result.output + result.stderr
    assert 'failures="0"' in (root / "report.xml").read_text()
