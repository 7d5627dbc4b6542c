"""The review page for dailies: failing shots flagged, A/B compare of two engines, reference art,
any output folder, warnings explained, and (in headless Chromium) every clip playing to its duration."""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cinekit.cli import app
from tests import chromium
from tests.project_factory import make_project

SHOTS = """\
    shots:
      - id: s010
        prompt: "{ann} waves"
        camera: full
        characters: [{name: ann, pose: wave}]
      - id: s020
        kind: clip
        duration: 1.0
        prompt: "{ann} and {bob} walk"
        camera: wide
        characters:
          - {name: ann, position: left, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 1, pose: walk_c}]}}
          - {name: bob, position: right, pose: stand, mirror: true}
    """
# flicker max 0.001: a walking clip fails it, a still has no flicker (passes): one failing shot.
CONFIG = ("output: renders\nengines: {still: previz, clip: previz}\ndefaults: {size: [256, 192], fps: 8}\n"
          "gates: {palette_delta_e: {max: 60}, flicker: {max: 0.001}}\n")


def cli(root: Path, *args: str):
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def dailies(tmp_path_factory) -> Path:
    """Both shots rendered with previz (the project's engine) and again with puppet."""
    root = make_project(tmp_path_factory.mktemp("dailies") / "proj", SHOTS, config=CONFIG)
    for args in (["render"], ["render", "--engine", "puppet"]):
        result = cli(root, *args)
        assert result.exit_code == 0, result.output
    return root


def test_two_engines_do_not_overwrite_each_other(dailies):
    ep = dailies / "renders/ep"
    assert (ep / "s010.png").is_file() and (ep / "puppet/s010.png").is_file()
    assert (ep / "s020.mp4").is_file() and (ep / "puppet/s020.mp4").is_file()
    import json

    assert json.loads((ep / "s010.json").read_text())["job"]["engine"] == "previz"
    assert json.loads((ep / "puppet/s010.json").read_text())["job"]["engine"] == "puppet"
    # rendering with the project's own engine again is cached: nothing was replaced
    again = cli(dailies, "render")
    assert again.exit_code == 0 and "0 rendered, 2 cached" in again.output


class Dom(HTMLParser):
    """Elements with their attributes and the text inside each flagged card."""

    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.stack: list[dict] = []
        self.flags: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag == "div" and "data-card" in a:
            self.card = a["data-card"]
        if tag == "div" and a.get("class") == "flag":
            self.flags[self.card] = ""
            self.in_flag = True

    def handle_endtag(self, tag):
        if tag == "div":
            self.in_flag = False

    def handle_data(self, data):
        if getattr(self, "in_flag", False):
            self.flags[self.card] += data

    def find(self, tag=None, **attrs):
        return [a for t, a in self.elements if (tag is None or t == tag)
                and all(a.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())]


def test_page_flags_failing_shot_compares_engines_and_shows_reference_art(dailies):
    result = cli(dailies, "report", "--ci")
    assert result.exit_code == 0, result.output
    text = (dailies / "renders/report.html").read_text()
    dom = Dom()
    dom.feed(text)
    cards = {a["data-card"]: a["class"] for a in dom.find("div") if "data-card" in a}
    assert cards == {"s010": "card", "s020": "card failed"}
    assert set(dom.flags) == {"s020"} and "FAILED 1 gate(s): flicker" in dom.flags["s020"]
    assert dom.find("span", class_="fails")[0]["data-failing"] == "1"
    abs_ = dom.find("div", class_="ab")
    # A is the shot's own engine (previz here), B the newer `render --engine puppet`
    assert [(a["data-a"], a["data-b"]) for a in abs_] == [("previz", "puppet")] * 2
    assert dom.find("img", data_shot="s010")[0]["src"] == "ep/s010.png"
    assert dom.find("img", data_compare="s010")[0]["src"] == "ep/puppet/s010.png"
    assert dom.find("video", data_compare="s020")[0]["src"] == "ep/puppet/s020.mp4"
    refs = {a["data-reference"]: a["src"] for a in dom.find("img") if "data-reference" in a}
    assert set(refs) == {"ann", "bob"} and all(s.startswith("data:image/png;base64,") for s in refs.values())
    # the CLI says what each warning is
    assert "gate failed (1): a score is outside the gates" in " ".join(result.output.split())
    assert "1 failing gates" in result.output


def test_page_from_any_output_folder_and_a_second_folder_to_compare(dailies, tmp_path):
    other = dailies / "renders-b"
    assert cli(dailies, "render", "--out", "renders-b", "--engine", "puppet").exit_code == 0
    result = cli(dailies, "report", "--ci", "--no-scores", "--out", "renders-b", "--compare", "renders")
    assert result.exit_code == 0, result.output
    dom = Dom()
    dom.feed((other / "report.html").read_text())
    ab = [(a["data-a"], a["data-b"]) for a in dom.find("div", class_="ab")]
    assert ab == [("renders-b: puppet", "renders: puppet")] * 2
    assert dom.find("img", data_shot="s010")[0]["src"] == "ep/puppet/s010.png"
    assert dom.find("img", data_compare="s010")[0]["src"] == "../renders/ep/puppet/s010.png"
    # the old meaning of --out (a page path) still works, with a note
    old = cli(dailies, "report", "--ci", "--no-scores", "--out", str(tmp_path / "page.html"))
    assert old.exit_code == 0 and (tmp_path / "page.html").is_file() and "use --file" in " ".join(old.output.split())


@pytest.mark.skipif(chromium.available() is None, reason="chromium not installed (apt-get install chromium)")
def test_review_page_in_headless_chromium(dailies):
    pytest.importorskip("websocket")
    assert cli(dailies, "report", "--ci").exit_code == 0
    with chromium.open_page(dailies / "renders/report.html") as page:
        # a failing shot is visibly flagged: red border, a banner with text, the header's count
        flagged = page.eval("""(() => { const c = document.querySelector('[data-card="s020"]');
            const f = c.querySelector('.flag'); const s = getComputedStyle(c);
            return {border: s.borderTopColor, width: parseFloat(s.borderTopWidth), flag: f.innerText,
                    flagH: f.offsetHeight, ok: getComputedStyle(document.querySelector('[data-card="s010"]')).borderTopColor,
                    head: document.querySelector('.sub').innerText}; })()""")
        assert flagged["border"] == "rgb(214, 69, 69)" and flagged["width"] >= 2 and flagged["flagH"] > 10
        assert flagged["flag"].startswith("FAILED") and flagged["ok"] == "rgba(0, 0, 0, 0)"
        assert "1 shot(s) failing gates" in flagged["head"]
        # reference art is shown beside each character's gallery
        refs = page.eval("[...document.querySelectorAll('img[data-reference]')].map(i => "
                         "[i.dataset.reference, i.naturalWidth, i.closest('.gallery').dataset.character])")
        assert sorted(r[0] for r in refs) == ["ann", "bob"] and all(r[1] > 0 and r[0] == r[2] for r in refs)
        # B lies exactly over A's picture (not stretched over the slider and labels below it)
        boxes = page.eval("""[...document.querySelectorAll('.ab')].map(ab => ['.a-side', '.b-side'].map(s => {
            const r = ab.querySelector(s + ' img, ' + s + ' video').getBoundingClientRect();
            return [r.x, r.y, r.width, r.height]; }))""")
        assert boxes and all(np.allclose(a, b, atol=1) for a, b in boxes), boxes
        # the A/B slider changes the image: all B at 0, all A at 100, half and half at 50
        sel = '[data-card="s010"] .ab'
        views = {}
        for value in (0, 100, 50):
            page.eval(f"(() => {{ const r = document.querySelector('{sel} input'); r.value = {value};"
                      " r.dispatchEvent(new Event('input')); return new Promise(ok => requestAnimationFrame(() => "
                      "requestAnimationFrame(() => ok(1)))); })()")
            views[value] = page.shot(f"{sel} .a-side").astype(int)
        a, b, half = views[100], views[0], views[50]
        w = a.shape[1]
        assert np.abs(a - b).mean() > 3                            # two engines: two pictures
        left, right = slice(0, w // 2 - 4), slice(w // 2 + 4, w)
        assert np.abs(half[:, left] - a[:, left]).mean() < 0.5 < np.abs(half[:, left] - b[:, left]).mean()
        assert np.abs(half[:, right] - b[:, right]).mean() < 0.5 < np.abs(half[:, right] - a[:, right]).mean()
        # every clip plays to its duration (played through once, not looped)
        clips = page.eval("""Promise.all([...document.querySelectorAll('video')].map(v => new Promise(ok => {
            v.loop = false; v.pause(); v.currentTime = 0;
            const t0 = performance.now();
            v.addEventListener('ended', () => ok({src: v.getAttribute('src'), d: v.duration, t: v.currentTime,
                wall: (performance.now() - t0) / 1000, frames: +v.dataset.frames, fps: +v.dataset.fps}), {once: true});
            v.play().catch(e => ok({src: v.getAttribute('src'), err: String(e)}));
        })))""", timeout_ms=60000)
        assert sorted(c["src"] for c in clips) == ["ep/puppet/s020.mp4", "ep/s020.mp4"]
        for c in clips:
            assert "err" not in c, c
            assert abs(c["d"] - c["frames"] / c["fps"]) <= 1 / c["fps"] + 1e-6, c
            assert abs(c["t"] - c["d"]) <= 1 / c["fps"] and c["wall"] >= 0.5 * c["d"], c
