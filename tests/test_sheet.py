"""`cinekit sheet`: the model sheet through the diffusers engine (tiny models) and through previz."""

from __future__ import annotations

import json

from PIL import Image

from tests.diffusers_fixtures import *  # noqa: F403
from tests.diffusers_fixtures import make_runtime


def test_diffusers_sheet_has_turnaround_and_expressions(tiny_project, tmp_path):
    from cinekit.render.sheet import render_sheet

    rt = make_runtime(tiny_project)
    out = render_sheet(rt, "ann", "diffusers", tmp_path / "ann.png", size=(64, 64), steps=1)
    page = Image.open(out)
    record = json.loads(next(v for k, v in page.text.items()))
    ids = [p["shot_id"] for p in record["panels"]]
    assert ids == ["turn-front", "turn-three_quarter", "turn-side", "turn-back",
                   "expr-neutral", "expr-happy", "expr-sad", "expr-angry", "expr-surprised"]
    views = [p["characters"][0]["view"] for p in record["panels"][:4]]
    assert views == ["front", "three_quarter", "side", "back"]
    assert "side view" in record["panels"][2]["prompt"] and "happy expression" in record["panels"][5]["prompt"]
    assert page.width > 5 * 64 and page.height > 2 * 64
    assert rt.stats["pipeline_loads"] == 1


def test_previz_sheet_via_cli(tiny_project):
    from typer.testing import CliRunner

    from cinekit.cli import app

    res = CliRunner().invoke(app, ["sheet", "ann", "--project", str(tiny_project), "--engine", "previz",
                                   "--width", "64", "--height", "96"])
    assert res.exit_code == 0, res.output
    page = Image.open(tiny_project / "renders" / "sheets" / "ann.png")
    record = json.loads(next(iter(page.text.values())))
    assert record["engine"] == "previz" and len(record["panels"]) >= 4
