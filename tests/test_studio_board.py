"""`cinekit board --pdf`: read the PDF back with pypdf (pages, each panel's text, each panel's pixels)."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pypdf
import pytest
from PIL import Image
from typer.testing import CliRunner

from cinekit.cli import app
from cinekit.spec.project import load_project
from cinekit.studio import media
from cinekit.studio.board import write_board
from cinekit.studio.episode import load_episode
from tests.studio_project import rendered_episode

runner = CliRunner()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return rendered_episode(tmp_path_factory.mktemp("board") / "p")


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def test_board_pdf_text_and_panels(project, monkeypatch):
    monkeypatch.chdir(project)
    out = project / "board.pdf"
    result = runner.invoke(app, ["board", "shots/ep.yaml", "--pdf", "--panels", "4", "-o", str(out)])
    assert result.exit_code == 0, result.output
    reader = pypdf.PdfReader(out)
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    lines = text.splitlines()
    # each panel's caption in shot order, then its notes
    heads = [ln for ln in lines if ln.startswith("s0")]
    assert [h.split()[0] for h in heads] == ["s010", "s020", "s030"]
    assert "2.00 s (still)" in heads[0] and "full" in heads[0]
    assert "1.50 s" in heads[1] and "wide" in heads[1]
    assert "1.00 s" in heads[2] and "medium" in heads[2]
    assert "Action: Ann waves at the camera." in lines and "Dialogue: ANN: Hello there!" in lines
    assert "Action: Ann walks towards Bob." in lines and "Dialogue: BOB: Bye." in lines
    assert lines.index("Dialogue: BOB: Bye.") > lines.index(heads[2]) > lines.index("Action: Ann walks towards Bob.")
    assert str(project) not in str(reader.metadata) and str(project) not in text   # no absolute paths
    # panels: the still itself, a clip's middle frame (decoded from the clip, not taken on trust)
    images = [_pixels(im.image) for im in reader.pages[0].images]
    assert len(images) == 3
    still = _pixels(Image.open(project / "renders" / "ep" / "s010.png"))
    assert np.array_equal(images[0], still)
    clip = list(media.iter_frames(project / "renders" / "ep" / "s020.mp4"))
    errs = [np.abs(images[1].astype(int) - f).mean() for f in clip]
    assert int(np.argmin(errs)) == len(clip) // 2 and errs[len(clip) // 2] < 2.0   # H.264 vs the lossless poster


@pytest.mark.parametrize("panels", [3, 4, 5, 6])
def test_pages_hold_the_configured_number_of_panels(project, tmp_path, panels):
    proj = load_project(project)
    ep = load_episode(proj, project / "shots" / "ep.yaml")
    # an 8-shot episode from the three renders
    ep.shots = [replace(ep.shots[i % 3], index=i, shot=ep.shots[i % 3].shot.model_copy(update={"id": f"x{i:02d}"}))
                for i in range(8)]
    res = write_board(ep, tmp_path / "b.pdf", panels=panels)
    reader = pypdf.PdfReader(tmp_path / "b.pdf")
    assert res.pages == len(reader.pages) == math.ceil(8 / panels)
    for p, page in enumerate(reader.pages):
        ids = [f"x{i:02d}" for i in range(p * panels, min(8, (p + 1) * panels))]
        text = page.extract_text()
        assert [w for w in text.split() if w.startswith("x")] == ids
        drawn = re.findall(rb"/I\d+ Do", page.get_contents().get_data())   # identical panels share one image
        assert len(drawn) == len(ids)


def test_bad_panel_count_and_unrendered(project, monkeypatch, tmp_path):
    monkeypatch.chdir(project)
    result = runner.invoke(app, ["board", "shots/ep.yaml", "--panels", "9"])
    assert result.exit_code == 1 and "choose 3, 4, 5 or 6" in result.output
    result = runner.invoke(app, ["board", "shots/ep.yaml", "--renders", str(tmp_path)])
    assert result.exit_code == 1 and "not rendered yet" in result.output and "cinekit render shots/ep.yaml" in result.output
