"""`cinekit init` copies the shipped example art; the shipped files are what art.py draws."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cinekit.scaffold import CHARACTERS, scaffold

SHIPPED = sorted(p.relative_to(CHARACTERS) for p in CHARACTERS.rglob("*") if p.is_file())


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))


def test_init_copies_the_shipped_art_in_well_under_a_second(tmp_path):
    assert {p.suffix for p in SHIPPED} == {".png", ".yaml"} and len(SHIPPED) == 12   # 2 × (3 views + YAML) + 4 expressions
    start = time.perf_counter()
    scaffold(tmp_path / "new")
    seconds = time.perf_counter() - start
    assert seconds < 1.0, f"scaffold took {seconds:.2f} s"   # drawing the art took 8.4 s
    for rel in SHIPPED:
        assert (tmp_path / "new/characters" / rel).read_bytes() == (CHARACTERS / rel).read_bytes()


def test_missing_shipped_art_is_a_clear_error(tmp_path, monkeypatch):
    import cinekit.scaffold as sc
    from cinekit.errors import UserError

    monkeypatch.setattr(sc, "CHARACTERS", tmp_path / "nowhere")
    with pytest.raises(UserError, match="example art is missing"):
        sc.scaffold(tmp_path / "new")


@pytest.mark.slow
def test_shipped_art_is_what_the_drawing_script_draws(tmp_path):
    """Draw everything again (~8 s) and compare pixel by pixel and the rig YAML text by text:
    an edit of art.py without `python -m cinekit.scaffold.art --write` fails here."""
    from cinekit.scaffold.art import write_characters

    write_characters(tmp_path)
    drawn = sorted(p.relative_to(tmp_path / "characters") for p in (tmp_path / "characters").rglob("*") if p.is_file())
    assert drawn == SHIPPED
    for rel in SHIPPED:
        if rel.suffix == ".png":
            assert np.array_equal(_pixels(tmp_path / "characters" / rel), _pixels(CHARACTERS / rel)), rel
        else:
            assert (tmp_path / "characters" / rel).read_text() == (CHARACTERS / rel).read_text(), rel
