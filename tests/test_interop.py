"""What other tools read from cinekit's outputs: A1111 ``parameters``, OpenPose JSON, no machine paths.

One previz episode is rendered (and handed on: animatic, board, timeline, review page); every
file it left is then read the way another tool would read it.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cinekit.cli import app
from cinekit.render import interop
from tests.studio_project import rendered_episode

# AUTOMATIC1111's own field pattern (modules/infotext_utils.py, parse_generation_parameters).
RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def parse_a1111(text: str) -> dict[str, str]:
    """A1111's parser in short: prompt lines, ``Negative prompt:`` lines, the last line's fields."""
    *lines, last = text.strip().split("\n")
    prompt, negative, in_neg = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_neg, line = True, line[len("Negative prompt:"):].strip()
        (negative if in_neg else prompt).append(line)
    out = {k: v.strip() for k, v in RE_PARAM.findall(last)}
    out["Prompt"], out["Negative prompt"] = "\n".join(prompt), "\n".join(negative)
    return out


@pytest.fixture(scope="module")
def episode(tmp_path_factory) -> Path:
    root = rendered_episode(tmp_path_factory.mktemp("interop") / "proj")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        for args in (["animatic", "shots/ep.yaml"], ["board", "shots/ep.yaml"], ["timeline", "shots/ep.yaml"],
                     ["report"]):
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, (args, result.output)
    finally:
        os.chdir(cwd)
    return root


def _texts_of(path: Path) -> list[bytes]:
    """What a reader of ``path`` sees: its bytes, plus what compression hides (PNG text, PDF, npz)."""
    data = path.read_bytes()
    out = [data]
    if path.suffix == ".png":
        with Image.open(path) as im:
            out += [f"{k}={v}".encode() for k, v in im.text.items()]
    elif path.suffix == ".pdf":
        from pypdf import PdfReader

        reader = PdfReader(path)
        out += [str(reader.metadata or {}).encode()] + [(p.extract_text() or "").encode() for p in reader.pages]
    elif path.suffix == ".npz":
        with zipfile.ZipFile(path) as z:
            out += [name.encode() for name in z.namelist()] + [z.read(n) for n in z.namelist()]
    return out


def test_no_output_names_the_machine(episode):
    """Every file a render and its hand-offs wrote: no absolute project path, no home folder."""
    needles = {str(episode).encode(), str(episode.resolve()).encode()}
    home = os.path.expanduser("~")
    if len(home) > 1:
        needles.add(home.encode())
    outputs = [p for p in (episode / "renders").rglob("*") if p.is_file()]
    kinds = {p.suffix for p in outputs}
    assert {".png", ".json", ".mp4", ".npz", ".otio", ".pdf", ".html"} <= kinds, kinds
    leaks = [(p.relative_to(episode), n) for p in outputs for text in _texts_of(p) for n in needles if n in text]
    assert not leaks, leaks[:5]
    # the relative paths still lead to the files (reproduce reads them)
    record = json.loads((episode / "renders/ep/s020.json").read_text())
    assert [c["spec_path"] for c in record["job"]["characters"]] == ["characters/ann.yaml", "characters/bob.yaml"]


def test_render_reproduces_from_the_relative_record(episode):
    cwd = os.getcwd()
    os.chdir(episode)
    try:
        result = CliRunner().invoke(app, ["render", "--reproduce", "renders/ep/s010.png"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert "identical" in result.output.lower()


def test_png_parameters_read_back_like_a1111(episode):
    record = json.loads((episode / "renders/ep/s010.json").read_text())
    for name in ("s010.png",):
        with Image.open(episode / "renders/ep" / name) as im:
            params = parse_a1111(im.text["parameters"])
            assert "cinekit" in im.text   # cinekit's own record stays
    job = record["job"]
    assert params["Prompt"] == job["prompt"]
    assert params["Steps"] == str(job["steps"]) and params["Seed"] == str(job["seed"])
    assert params["Size"] == f"{job['width']}x{job['height']}"
    assert params["Sampler"] == "none" and params["Model"] == "previz"   # weight-free: no sampler claimed
    with Image.open(episode / "renders/ep/s020.poster.png") as im:
        assert parse_a1111(im.text["parameters"])["Prompt"] == "ann, test character and bob, test character"
    with Image.open(episode / "renders/ep/s010.control.png") as im:
        assert "parameters" not in im.text   # a control map is not a generation


def test_a1111_text_of_a_diffusion_job_is_the_exact_format():
    job = SimpleNamespace(prompt="mira, girl  in red\nwaves", negative="blurry, lowres", steps=30, guidance=7.5,
                          seed=42, width=512, height=768, engine="diffusers", model="base", kind="still")
    text = interop.a1111_parameters(job, {"scheduler": "DPMSolverMultistepScheduler"}, "6ce0161689")
    assert text == ("mira, girl in red waves\nNegative prompt: blurry, lowres\n"
                    "Steps: 30, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 42, Size: 512x768, "
                    "Model hash: 6ce0161689, Model: base, Engine: diffusers, Version: cinekit "
                    f"{interop.__version__}")
    parsed = parse_a1111(text)
    assert parsed["Negative prompt"] == "blurry, lowres" and parsed["Model hash"] == "6ce0161689"
    assert parsed["Sampler"] == "DPM++ 2M" and parsed["CFG scale"] == "7.5"


def test_model_hash_is_autov2_of_the_checkpoint(tmp_path):
    import hashlib

    ckpt = tmp_path / "models" / "m.safetensors"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"weights")
    project = SimpleNamespace(root=tmp_path, config=SimpleNamespace(models={"base": SimpleNamespace(
        base="models/m.safetensors")}))
    sha = hashlib.sha256(b"weights").hexdigest()
    job = SimpleNamespace(engine="diffusers", model="base")
    assert interop.model_hash(project, job, {"models/m.safetensors": f"sha256:{sha}"}) == sha[:10]
    assert interop.model_hash(project, SimpleNamespace(engine="previz", model=None), {}) is None


def test_portable_paths_inside_outside_and_home(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    home = os.path.expanduser("~")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared/art.png").write_bytes(b"")
    rec = {"a": str(root / "characters/x.yaml"), "b": [str(tmp_path / "shared/art.png")],
           str(root / "k.safetensors"): 1, "prompt": "a / slash, /not-a-path here", "home": home + "/models/m.ckpt"}
    out = interop.portable(rec, root)
    assert out["a"] == "characters/x.yaml" and out["b"] == ["../shared/art.png"]
    assert "k.safetensors" in out and out["prompt"] == rec["prompt"]
    assert out["home"] == "~/models/m.ckpt"
    assert interop.absolute(out["a"], root) == str((root / "characters/x.yaml").resolve())
    assert interop.absolute(out["home"], root) == home + "/models/m.ckpt"


def test_openpose_json_reads_back_as_the_rendered_pose_track(episode):
    from cinekit.pose.openpose_json import load_openpose_json
    from cinekit.render.run import decode_pose

    for shot, frames in (("s010", 1), ("s020", 12), ("s030", 12)):
        record = json.loads((episode / f"renders/ep/{shot}.json").read_text())
        assert f"{shot}.openpose.json" in record["files"]        # tracked like every output
        track = decode_pose(record["pose_track"])                 # (frames, characters, 18, 2)
        path = episode / f"renders/ep/{shot}.openpose.json"
        doc = json.loads(path.read_text())
        first = doc if isinstance(doc, dict) else doc[0]
        assert (first["canvas_width"], first["canvas_height"]) == (256, 192)
        assert len(first["people"]) == track.shape[1] and len(first["people"][0]["pose_keypoints_2d"]) == 54
        for person in range(track.shape[1]):
            motion = load_openpose_json(path, person=person)
            assert motion.poses.shape == (frames, 18, 2)
            want = track[:, person]
            assert np.array_equal(np.isnan(motion.poses), np.isnan(want))
            assert np.nanmax(np.abs(motion.poses - want)) <= 0.005   # rounded to 1/100 px


def test_openpose_frame_marks_hidden_joints_with_zero_confidence():
    pose = np.full((1, 18, 2), 10.0)
    pose[0, 4] = np.nan
    frame = interop.openpose_frame(pose, 64, 48)
    kp = np.array(frame["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    assert kp[4].tolist() == [0.0, 0.0, 0.0] and kp[3].tolist() == [10.0, 10.0, 1.0]
