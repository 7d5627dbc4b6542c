"""Gates, masks, `cinekit score`/`report`, and the review page loaded in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cinekit.cli import app
from cinekit.errors import UserError
from cinekit.score import check_gates, read_masks, score_output, write_masks
from cinekit.score.regions import character_region, masks_path, subsample
from tests import chromium
from tests.chromium import _chromium
from tests.project_factory import make_project

runner = CliRunner()

SHOTS = """\
    shots:
      - id: s010
        prompt: "{ann} waves"
        camera: full
        characters: [{name: ann, pose: wave}]
      - id: s020
        kind: clip
        duration: 1.5
        prompt: "{ann} and {bob} walk"
        camera: wide
        characters:
          - {name: ann, position: left, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 1, pose: walk_c}]}}
          - {name: bob, position: right, pose: stand, mirror: true}
      - id: s030
        prompt: "{bob} alone"
        characters: [{name: bob, pose: stand}]
      - id: s040
        kind: clip
        duration: 1.0
        prompt: "{bob} waves"
        characters: [{name: bob, pose: {keyframes: [{at: 0, pose: stand}, {at: 1, pose: wave}]}}]
    """
CONFIG = ("output: renders\nengines: {still: previz, clip: previz}\ndefaults: {size: [256, 192], fps: 8}\n"
          "gates: {palette_delta_e: {max: 8}, flicker: {max: 0.001}, warp_error: {max: 0.05}}\n")


def render(root: Path, skip: tuple[str, ...] = ()) -> None:
    """Render every shot but ``skip`` with the previz engine, writing masks as the render layer will."""
    from cinekit.engines.base import create_engine
    from cinekit.render.outputs import main_output, write_result
    from cinekit.render.plan import Planner
    from cinekit.runtime import Runtime
    from cinekit.spec.project import load_project

    project = load_project(root)
    runtime = Runtime.for_project(project, device="cpu")
    engine = create_engine("previz", runtime)
    for planned in Planner(project).plan():
        job = planned.job
        if job.shot_id in skip:
            continue
        result = engine.render(job)
        write_result(project.output_dir, job, result, "mp4")
        write_masks(main_output(project.output_dir, job, "mp4"), result.masks, [c.name for c in job.characters])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("report") / "proj", SHOTS, config=CONFIG)
    render(root, skip=("s030",))
    return root


# --------------------------------------------------------------------------- gates
def test_check_gates_pass_fail_margin_and_skip():
    scores = {"scores": {"flicker": 0.02, "palette_delta_e": 9.5},
              "characters": {"ann": {"palette_delta_e": 9.5}, "bob": {"palette_delta_e": 3.0}}}
    gates = {"palette_delta_e": {"max": 8}, "flicker": {"max": 0.05}, "warp_error": {"max": 0.1},
             "identity_cosine": {"min": 0.8}}
    res = {(g.name, g.character): g for g in check_gates(scores, gates)}
    ann = res[("palette_delta_e", "ann")]
    assert ann.status == "fail" and ann.margin == pytest.approx(-1.5) and "by 1.5" in ann.message
    assert res[("palette_delta_e", "bob")].status == "pass" and res[("palette_delta_e", "bob")].margin == pytest.approx(5)
    assert res[("flicker", None)].status == "pass" and res[("flicker", None)].margin == pytest.approx(0.03)
    assert res[("warp_error", None)].status == "skip"
    assert {g.status for k, g in res.items() if k[0] == "identity_cosine"} == {"skip"}
    # flat mapping, min and max together: the nearest bound decides
    both = check_gates({"identity_cosine": 0.95}, {"identity_cosine": {"min": 0.8, "max": 0.9}})[0]
    assert both.status == "fail" and both.margin == pytest.approx(-0.05)


def test_check_gates_rejects_unknown_scores_with_a_suggestion():
    with pytest.raises(UserError) as err:
        check_gates({"flicker": 0.1}, {"flickr": {"max": 1}})
    assert "did you mean 'flicker'" in err.value.format()
    with pytest.raises(UserError, match="min"):
        check_gates({"flicker": 0.1}, {"flicker": {}})


def test_check_gates_accepts_project_gate_models():
    from cinekit.spec.models import ProjectConfig

    cfg = ProjectConfig.model_validate({"gates": {"warp_error": {"max": 0.01}}})
    [g] = check_gates({"warp_error": 0.02}, cfg.gates)
    assert g.status == "fail" and not g.passed


# --------------------------------------------------------------------------- masks and regions
def test_masks_file_roundtrip_and_subsampling(tmp_path):
    masks = np.zeros((40, 2, 24, 32), bool)
    masks[:, 0, 2:10, 3:9] = True
    masks[:, 1, 12:20, 20:30] = True
    path = write_masks(tmp_path / "ep" / "s020.mp4", masks, ["ann", "bob"])
    assert path == tmp_path / "ep" / "s020.masks.npz" == masks_path(tmp_path / "ep" / "s020.mp4")
    m = read_masks(tmp_path / "ep" / "s020.mp4")
    assert m.names == ["ann", "bob"] and m.masks.shape == (16, 2, 24, 32)
    assert m.frames[0] == 0 and m.frames[-1] == 39 and len(subsample(5)) == 5
    region = character_region(tmp_path / "ep" / "s020.mp4", 40, (32, 24), "bob")
    assert region.source == "masks" and region.masks[0].sum() == 80
    assert character_region(tmp_path / "ep" / "s020.mp4", 40, (32, 24)).masks[0].sum() == 48 + 80
    with pytest.raises(UserError, match="no character 'cid'"):
        character_region(tmp_path / "ep" / "s020.mp4", 40, (32, 24), "cid")
    # a user mask is resized to the output; no masks file -> whole frame
    Image.fromarray(np.pad(np.full((6, 8), 255, np.uint8), ((0, 6), (0, 8)))).save(tmp_path / "m.png")
    user = character_region(tmp_path / "other.png", 1, (32, 24), mask_file=tmp_path / "m.png")
    assert user.source == "mask file" and user.masks[0].sum() == 16 * 12
    assert character_region(tmp_path / "other.png", 1, (32, 24)).masks.all()


# --------------------------------------------------------------------------- score_output / CLI
def test_score_output_on_a_rendered_clip(rendered):
    scores = score_output(rendered / "renders" / "ep" / "s020.mp4")
    assert scores["kind"] == "clip" and scores["frames"] == 12 and scores["fps"] == 8
    assert set(scores["characters"]) == {"ann", "bob"}
    assert all(c["region"] == "masks" for c in scores["characters"].values())
    assert len(scores["pairs"]["flicker"]) == len(scores["pairs"]["warp_error"]) == 11
    assert 0 < scores["scores"]["flicker"] < 0.2 and 0 <= scores["scores"]["warp_error"] < 0.2
    assert scores["scores"]["palette_delta_e"] == max(c["palette_delta_e"] for c in scores["characters"].values())
    json.dumps(scores)  # JSON-safe
    gates = {(g.name, g.character): g.status for g in check_gates(scores, {"flicker": {"max": 0.001}})}
    assert gates == {("flicker", None): "fail"}


def test_score_cli_json_on_a_foreign_gif(tmp_path, data_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gif = data_dir / "animations" / "model_02_01.gif"
    res = runner.invoke(app, ["score", str(gif), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["frames"] == 48 and data["characters"] == {} and data["scores"]["flicker"] > 0
    # with a reference image and a mask: palette against that reference, in that region
    frame = np.asarray(Image.open(gif).convert("RGBA"))
    Image.fromarray(frame).save(tmp_path / "ref.png")
    Image.fromarray(np.full(frame.shape[:2], 255, np.uint8)).save(tmp_path / "mask.png")
    res = runner.invoke(app, ["score", str(tmp_path / "ref.png"), "--reference", str(tmp_path / "ref.png"),
                              "--mask", str(tmp_path / "mask.png"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["characters"]["reference"]["palette_delta_e"] < 0.5


def test_score_cli_table_and_errors(rendered, monkeypatch):
    monkeypatch.chdir(rendered)
    res = runner.invoke(app, ["score", "renders/ep/s020.mp4", "renders/ep/s010.png"])
    assert res.exit_code == 0, res.output
    assert "flicker" in res.output and "fail" in res.output and "ann" in res.output
    res = runner.invoke(app, ["score", "renders/ep/s010.png", "--character", "zed"])
    assert res.exit_code == 1 and "unknown character 'zed'" in res.output
    res = runner.invoke(app, ["score", "renders/ep/nothing.png"])
    assert res.exit_code == 1 and "no such file" in res.output


# --------------------------------------------------------------------------- the page
def test_report_page_and_contact_sheet(rendered, monkeypatch):
    monkeypatch.chdir(rendered)
    res = runner.invoke(app, ["report"])
    assert res.exit_code == 0, res.output
    page = rendered / "renders" / "report.html"
    text = page.read_text()
    assert "1 failed" not in res.output and "failed gate(s)" in res.output
    # storyboard in list order, media by relative path, nothing fetched from the network
    assert [m for m in re.findall(r'data-shot="(s\d+)"', text)] == ["s010", "s020", "s040"]
    assert 'src="ep/s010.png"' in text and 'src="ep/s020.mp4"' in text and 'poster="ep/s020.poster.png"' in text
    assert "http://" not in text and "https://" not in text and str(rendered) not in text.replace(str(rendered.name), "")
    assert "not rendered" in text and "s030: not rendered yet" in text
    assert 'class="chip pass" data-score="palette_delta_e"' in text
    assert 'class="chip fail" data-score="flicker"' in text and "gate failed: flicker" in text
    assert text.count("data:image/png;base64,") >= 4          # gallery: ann x2, bob x2
    assert "<h3>ann</h3>" in text and "<h3>bob</h3>" in text
    sheet = Image.open(rendered / "renders" / "ep.contact.png")
    assert sheet.size[0] == 12 + 4 * (320 + 12)                 # 4 shots in one row
    assert (os.stat(page).st_mode & 0o777) == 0o644


PROBE = """new Promise(resolve => {
  const t0 = Date.now();
  const check = () => {
    const imgs = [...document.images], vids = [...document.querySelectorAll('video')];
    const ready = imgs.every(i => i.complete) && vids.every(v => v.readyState >= 1 || v.error);
    if (ready || Date.now() - t0 > 20000) resolve(JSON.stringify({
      title: document.title,
      imgs: imgs.map(i => ({src: i.getAttribute('src').slice(0, 40), w: i.naturalWidth, panel: i.classList.contains('panel')})),
      vids: vids.map(v => ({src: v.getAttribute('src'), d: v.duration, frames: +v.dataset.frames,
                            fps: +v.dataset.fps, err: v.error && v.error.code})),
      height: document.documentElement.scrollHeight}));
    else setTimeout(check, 100);
  };
  check();
})"""


def load_in_chromium(page: Path, screenshot: Path | None = None, width: int = 1280) -> dict:
    """Open ``page`` in headless Chromium, wait for media, return the probe; optionally a full-page PNG."""
    import base64

    with chromium.open_page(page, width=width, height=900) as opened:
        dt = opened.dt
        out = dt.call("Runtime.evaluate", expression=PROBE, awaitPromise=True, returnByValue=True)
        probe = json.loads(out["result"]["value"])
        if screenshot is not None:
            dt.call("Emulation.setDeviceMetricsOverride", width=width, height=int(probe["height"]),
                    deviceScaleFactor=1, mobile=False)
            dt.call("Runtime.evaluate", expression="document.querySelectorAll('video').forEach(v => {v.pause(); v.currentTime = v.duration / 2})")
            time.sleep(0.5)
            shot = dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        return probe


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (apt-get install chromium)")
def test_report_in_headless_chromium(rendered, tmp_path):
    pytest.importorskip("websocket")
    from cinekit.score.report import build_report
    from cinekit.spec.project import load_project

    rep = build_report(load_project(rendered))
    probe = load_in_chromium(rep.html, screenshot=tmp_path / "report.png")
    assert probe["title"].startswith("cinekit review")
    panels = [i for i in probe["imgs"] if i["panel"]]
    assert len(panels) == 1 and all(i["w"] == 256 for i in panels)              # s010 (s030 not rendered)
    assert all(i["w"] > 0 for i in probe["imgs"])                               # gallery thumbnails too
    assert [v["src"] for v in probe["vids"]] == ["ep/s020.mp4", "ep/s040.mp4"]
    for v in probe["vids"]:
        assert v["err"] is None, v
        assert abs(v["d"] - v["frames"] / v["fps"]) <= 1 / v["fps"] + 1e-6, v      # within one frame
    with Image.open(tmp_path / "report.png") as im:
        assert im.size[0] >= 1200 and im.size[1] > 400
