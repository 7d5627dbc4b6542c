"""`parts:` label maps (a reference's part layers for the puppet) are checked by `cinekit check`
(file there, the reference's size, only known colours: a located error with a hint) and read by
render through the run's snapshot; the cache key covers them (tests/test_cache_inputs.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cinekit.cli import app
from tests.project_factory import make_project

runner = CliRunner()


def _project(tmp_path, label_map: np.ndarray | None, rel: str = "refs/ann_parts.png"):
    root = make_project(tmp_path / "p", "shots:\n  - id: a\n    characters: [{name: ann, pose: wave}]\n",
                        characters=("ann",))
    if label_map is not None:
        Image.fromarray(label_map).save(root / "characters" / "refs" / "ann_parts.png")
    y = root / "characters" / "ann.yaml"
    y.write_text(y.read_text().replace("{image: refs/ann.png, view: front}",
                                       f"{{image: refs/ann.png, view: front, parts: {rel}}}"))
    return root


def _good_map(size=(400, 200)) -> np.ndarray:
    from cinekit.puppet.part_map import PART_COLOURS

    m = np.zeros((*size, 3), np.uint8)
    m[100:220, 70:130] = PART_COLOURS["torso"]
    m[100:160, 130:160] = PART_COLOURS["left_upper_arm"]
    return m


def _check(root):
    result = runner.invoke(app, ["check", str(root)])
    return result.exit_code, result.output


def test_a_good_part_map_passes_check(tmp_path):
    code, out = _check(_project(tmp_path, _good_map()))
    assert code == 0, out


@pytest.mark.parametrize("case, expected", [
    ("missing", "references[0].parts:"),
    ("size", "references[0].parts: the part label map is 100x200, the reference is 200x400"),
    ("colour", "references[0].parts: 1.1 % of the part label map is in colours no part has (most of it (10, 200, 90))"),
    ("empty", "references[0].parts: the part label map has no part colour: it labels nothing"),
])
def test_check_locates_a_bad_part_map(tmp_path, case, expected):
    label_map = {"missing": None, "size": _good_map((200, 100)), "empty": np.zeros((400, 200, 3), np.uint8)}.get(case)
    if case == "colour":
        label_map = _good_map()
        label_map[300:330, 50:80] = (10, 200, 90)     # 900 px: no part's colour
    code, out = _check(_project(tmp_path, label_map))
    assert code == 1, out
    line = next(ln for ln in out.splitlines() if "references[0].parts" in ln)
    assert line.startswith("characters/ann.yaml:4:") and expected in line, out
    if case == "colour":
        assert "nearest part colour is left_shin (0, 160, 160)" in out   # the hint


def test_antialiased_outlines_are_not_a_stray_colour(tmp_path):
    """A few blended pixels along a part's outline (a tool's antialiasing) are no error."""
    label_map = _good_map()
    label_map[99, 70:130] = (128, 0, 0)                 # half-torso red along one edge: 60 px
    code, out = _check(_project(tmp_path, label_map))
    assert code == 0, out
