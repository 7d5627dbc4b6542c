"""`cinekit check` finds what the SparseCtrl path refuses at render time (docs/inbetween.md):
a keyed diffusers clip longer than the SparseCtrl model's frames, a keyed diffusers clip whose
model set has no `sparsectrl:`, and a `sparsectrl:` folder that is missing (with a did-you-mean),
not a folder, or has no config.json. No weight is read: the model folders are configs and empty
weight files, which is all the checks look at."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from tests.project_factory import CONFIG, make_project

MODELS = """\
models:
  anime:
    base: models/base
    motion_adapter: models/motion
    controlnet: {openpose: models/openpose}
    sparsectrl: models/sparsectrl-rgb
  bare:
    base: models/base
    motion_adapter: models/motion
    controlnet: {openpose: models/openpose}
"""

SHOTS = """\
    defaults: {engine: diffusers}
    shots:
      - id: long
        kind: clip
        duration: 5.0
        model: anime
        prompt: "{ann}"
        characters: [{name: ann}]
        keys: [{at: 0.0, image: k.png}]
      - id: fits
        kind: clip
        duration: 4.0
        model: anime
        prompt: "{ann}"
        characters: [{name: ann}]
        keys: [{at: 0.0, image: k.png}]
      - id: nokeymodel
        kind: clip
        duration: 1.0
        model: bare
        prompt: "{ann}"
        characters: [{name: ann}]
        keys: [{at: 0.0, image: k.png}]
      - id: puppetlong
        kind: clip
        engine: puppet
        duration: 5.0
        prompt: "{ann}"
        characters: [{name: ann}]
        keys: [{at: 0.0, image: k.png}]
      - id: bareunkeyed
        kind: clip
        duration: 1.0
        model: bare
        prompt: "{ann}"
        characters: [{name: ann}]
    """


def _folder(path: Path, config: dict, weight: str | None = "diffusion_pytorch_model.safetensors") -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    if weight:
        (path / weight).write_bytes(b"")


def _models(root: Path, sparsectrl_frames: int = 32) -> None:
    """Model folders as the checks see them (configs, file names), without weights."""
    base = root / "models" / "base"
    base.mkdir(parents=True)
    (base / "model_index.json").write_text("{}")
    _folder(base / "unet", {"cross_attention_dim": 768, "block_out_channels": [320, 640, 1280, 1280]})
    _folder(base / "vae", {})
    _folder(base / "text_encoder", {"hidden_size": 768}, "model.safetensors")
    _folder(root / "models" / "motion", {"block_out_channels": [320, 640, 1280, 1280]})
    _folder(root / "models" / "openpose", {"cross_attention_dim": 768})
    _folder(root / "models" / "sparsectrl-rgb", {"_class_name": "SparseControlNetModel", "cross_attention_dim": 768,
                                                 "motion_max_seq_length": sparsectrl_frames})


def _project(tmp_path: Path, models: str = MODELS, shots: str = SHOTS, sparsectrl_frames: int = 32) -> Path:
    root = make_project(tmp_path / "p", shots, characters=("ann",), config=CONFIG + models)
    _models(root, sparsectrl_frames)
    Image.new("RGB", (256, 192), "white").save(root / "shots" / "k.png")
    return root


def _line(path: Path, needle: str, nth: int = 0) -> int:
    return [i + 1 for i, line in enumerate(path.read_text().splitlines()) if needle in line][nth]


def _run(root: Path, monkeypatch, *args: str):
    from cinekit.cli import app

    monkeypatch.chdir(root)
    return CliRunner().invoke(app, list(args))


def test_check_finds_what_the_sparsectrl_render_refuses_at_the_shot(tmp_path, monkeypatch):
    root = _project(tmp_path)
    result = _run(root, monkeypatch, "check")
    out = result.output
    assert result.exit_code == 1, out
    ep = root / "shots" / "ep.yaml"
    # 5 s at 8 fps = 40 frames > 32, at the keyed diffusers shot's duration line, with the render's hint
    assert f"ep.yaml:{_line(ep, 'duration: 5.0')}:" in out
    assert "40 frames; SparseCtrl conditions at most 32 frames at once" in out
    assert "split the shot at a key" in out
    assert out.count("SparseCtrl conditions at most") == 1   # 4 s = 32 frames fits; the puppet has no limit
    # the model set without sparsectrl: named at the keyed shot's keys line (not the unkeyed shot)
    assert "model set 'bare' has no `sparsectrl:`" in out and f"ep.yaml:{_line(ep, 'keys:', 2)}:" in out
    assert out.count("has no `sparsectrl:`") == 1
    assert "add `sparsectrl: PATH`" in out
    assert "Traceback" not in out


def test_the_frame_limit_is_the_sparsectrl_models_own(tmp_path, monkeypatch):
    shots = SHOTS.split("      - id: fits")[0]
    root = _project(tmp_path, shots=shots.replace("duration: 5.0", "duration: 3.0"), sparsectrl_frames=16)
    result = _run(root, monkeypatch, "check")
    assert result.exit_code == 1 and "24 frames; SparseCtrl conditions at most 16" in result.output, result.output
    root2 = _project(tmp_path / "ok", shots=shots.replace("duration: 5.0", "duration: 3.0"))
    result = _run(root2, monkeypatch, "check")
    assert result.exit_code == 0, result.output


def test_a_misspelled_sparsectrl_folder_is_found_with_a_did_you_mean(tmp_path, monkeypatch):
    models = MODELS.replace("models/sparsectrl-rgb", "models/sparsectrl-rbg")
    shots = SHOTS.split("      - id: fits")[0].replace("duration: 5.0", "duration: 1.0")
    root = _project(tmp_path, models=models, shots=shots)
    line = f"cinekit.yaml:{_line(root / 'cinekit.yaml', 'sparsectrl:')}:"
    for args in (["check"], ["models", "check"]):
        result = _run(root, monkeypatch, *args)
        out = result.output
        assert result.exit_code == 1, (args, out)
        assert "'models/sparsectrl-rbg' not found" in out and "did you mean 'models/sparsectrl-rgb'?" in out, (args, out)
        assert line in out, (args, out)
        assert "Traceback" not in out


def test_a_sparsectrl_path_that_is_not_a_sparsectrl_folder(tmp_path, monkeypatch):
    shots = SHOTS.split("      - id: fits")[0].replace("duration: 5.0", "duration: 1.0")
    root = _project(tmp_path, shots=shots)
    folder = root / "models" / "sparsectrl-rgb"
    (folder / "config.json").unlink()
    result = _run(root, monkeypatch, "models", "check")
    assert result.exit_code == 1 and "has no config.json" in result.output, result.output
    (folder / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel"}))
    result = _run(root, monkeypatch, "models", "check")
    assert "holds a ControlNetModel, not a SparseControlNetModel" in result.output, result.output
    (folder / "config.json").write_text(json.dumps({"_class_name": "SparseControlNetModel"}))
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    result = _run(root, monkeypatch, "models", "check")
    assert "has no weight file" in result.output, result.output
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    (folder / "config.json").write_text(json.dumps({"_class_name": "SparseControlNetModel", "cross_attention_dim": 2048}))
    result = _run(root, monkeypatch, "models", "check")
    assert "SparseCtrl cross_attention_dim 2048 does not match the base UNet's 768" in result.output, result.output
