"""The example project end to end (what `make demo` does): every output decoded and checked."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from cinekit.cli import app
from cinekit.spec.project import load_project
from tests.project_factory import frame_count


def test_demo_renders_every_shot_with_the_right_size_frames_and_fps(example_project, monkeypatch):
    monkeypatch.chdir(example_project)
    result = CliRunner().invoke(app, ["render", "--ci"])
    assert result.exit_code == 0, result.output + result.stderr

    project = load_project(example_project)
    [shot_list] = project.shotlists.values()
    assert len(shot_list.shots) >= 6
    kinds = {s.kind for s in shot_list.shots}
    assert kinds == {"still", "clip"}
    assert {len(s.characters) for s in shot_list.shots} >= {1, 2}
    out = example_project / "renders" / "episode01"
    for shot in shot_list.shots:
        width, height = shot.size or shot_list.defaults.size or project.config.defaults.size
        fps = shot.fps or shot_list.defaults.fps or project.config.defaults.fps
        record = json.loads((out / f"{shot.id}.json").read_text())
        assert record["engine"]["name"] == "puppet"  # the demo's default engine
        if shot.kind == "still":
            with Image.open(out / f"{shot.id}.png") as im:
                assert im.size == (width, height)
                pixels = np.asarray(im.convert("RGB"))
            # The characters' own art is on the panel: far more colours than a flat background.
            assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500
        else:
            frames, got_fps, size = frame_count(out / f"{shot.id}.mp4")
            assert frames == round(shot.duration * fps), shot.id
            assert got_fps == fps and size == (width, height)
            with Image.open(out / f"{shot.id}.poster.png") as im:
                assert im.size == (width, height)
