"""Model-caused render failures reported by `cinekit check` / `models check` before any render,
each at the YAML line that causes it (the model set in cinekit.yaml, the character's LoRA line,
the shot's prompt line), with a did-you-mean for misspelled paths."""

from __future__ import annotations

import re

import pytest
import torch
import yaml
from safetensors.torch import save_file
from typer.testing import CliRunner

from cinekit.cli import app
from cinekit.engines.model_check import check_model_set, suggest_path
from cinekit.spec.models import ModelSet
from cinekit.testing import ldm_layout
from cinekit.testing.tiny import modelset_dict, tiny_controlnet, tiny_motion_adapter, tiny_unet
from tests.diffusers_fixtures import *  # noqa: F403
from tests.diffusers_fixtures import write_tiny_project

runner = CliRunner()

SHOTS = """\
shots:
  - id: s1
    prompt: "{ann} waves"
    characters: [{name: ann, pose: wave}]
  - id: c1
    kind: clip
    duration: 0.5
    prompt: "{ann} walks"
    characters: [{name: ann, pose: stand}]
"""


def _project(root, tiny_models, *, shots=SHOTS, ann_extra="", **model_changes):
    write_tiny_project(root, tiny_models, ann_extra=ann_extra)
    ms = {**modelset_dict(tiny_models, root), **model_changes}
    ms = {k: v for k, v in ms.items() if v is not None}
    text = yaml.safe_dump({"output": "renders", "engines": {"still": "diffusers", "clip": "diffusers"},
                           "defaults": {"size": [128, 64]}, "models": {"tiny": ms}}, sort_keys=False)
    (root / "cinekit.yaml").write_text(text)
    (root / "shots" / "ep.yaml").write_text(shots)
    return root


def _line(path, pattern: str) -> int:
    """1-based line of the first match of ``pattern`` in a file."""
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if re.search(pattern, line):
            return i
    raise AssertionError(f"{pattern!r} not in {path}")


def _check(root, *args):
    return runner.invoke(app, ["check", str(root), *args])


# --------------------------------------------------------------------------- paths
def test_did_you_mean_on_misspelled_paths(tmp_path):
    (tmp_path / "models" / "sd15-anime").mkdir(parents=True)
    (tmp_path / "models" / "openpose.safetensors").write_bytes(b"")
    assert "models/sd15-anime" in suggest_path("models/sd15-anmie", tmp_path)
    assert "models" in suggest_path("modles/sd15-anime", tmp_path)             # a misspelled folder above
    assert suggest_path("models/zzz", tmp_path) is None
    problems = check_model_set("m", ModelSet(base="models/sd15-anmie", controlnet={"openpose": "models/openpos.safetensors"}),
                               tmp_path)
    hints = {p.field: p.hint for p in problems}
    assert "did you mean 'models/sd15-anime'?" == hints["models.m.base"]
    assert "models/openpose.safetensors" in hints["models.m.controlnet.openpose"]


# --------------------------------------------------------------------------- single files
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny ControlNet, motion module and two synthetic checkpoints' headers, as single files."""
    root = tmp_path_factory.mktemp("files")
    unet = tiny_unet()
    cn = tiny_controlnet(unet)
    save_file(ldm_layout.unet_to_ldm(cn.state_dict(), dict(cn.config), prefix="control_model.", controlnet=True),
              root / "cn.safetensors")
    save_file(ldm_layout.motion_to_original(tiny_motion_adapter().state_dict(), 32), root / "mm.safetensors")
    z = lambda *s: torch.zeros(s, dtype=torch.float16)  # noqa: E731
    sd15 = {"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": z(320, 768),
            "cond_stage_model.transformer.text_model.final_layer_norm.weight": z(768)}
    save_file(sd15, root / "sd15-novae.safetensors")
    save_file({**sd15, "first_stage_model.decoder.conv_in.weight": z(4)}, root / "sd15.safetensors")
    save_file({"model.diffusion_model.label_emb.0.0.weight": z(1280, 2816),
               "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": z(768),
               "conditioner.embedders.1.model.ln_final.weight": z(1280),
               "first_stage_model.decoder.conv_in.weight": z(4)}, root / "xl.safetensors")
    save_file({"image_proj.proj.weight": z(4, 4), "ip_adapter.1.to_k_ip.weight": z(4, 4)}, root / "ip.safetensors")
    (root / "old.ckpt").write_bytes(b"pickle")
    return root


@pytest.mark.parametrize("modelset, field, message", [
    ({"base": "cn.safetensors"}, "base", "is an SD 1.5 ControlNet, not a checkpoint"),
    ({"base": "ip.safetensors"}, "base", "not a model cinekit can load: 2 tensors: image_proj.proj.* (1)"),
    ({"base": "xl.safetensors"}, "family", "is an SDXL checkpoint (with a baked VAE), configured as sd15"),
    ({"base": "sd15-novae.safetensors"}, "vae", "has no baked VAE"),
    ({"base": "old.ckpt"}, "base", "pickle file (.ckpt): refused"),
    ({"base": "sd15.safetensors", "controlnet": {"openpose": "mm.safetensors"}}, "controlnet.openpose",
     "is an AnimateDiff motion module v2 (SD 1.5), not a controlnet"),
    ({"base": "sd15.safetensors", "motion_adapter": "cn.safetensors"}, "motion_adapter", "not a motion"),
    ({"base": "sd15.safetensors", "controlnet": {"openpose": "cn.safetensors"}}, "controlnet.openpose",
     "cross-attention width 32"),      # the tiny ControlNet on a 768-wide base
])
def test_single_file_problems(files, modelset, field, message):
    problems = [p for p in check_model_set("m", ModelSet(**modelset), files) if p.severity == "error"]
    assert any(p.field == f"models.m.{field}" and message in p.message for p in problems), problems


def test_single_files_that_fit_pass(files):
    ok = ModelSet(base="sd15.safetensors", motion_adapter="mm.safetensors")
    assert check_model_set("m", ok, files) == []
    assert check_model_set("m", ModelSet(base="old.ckpt"), files, allow_pickle=True) == []


# --------------------------------------------------------------------------- what the shots need
def test_check_reports_missing_components_at_the_model_set(tiny_models, tmp_path):
    root = _project(tmp_path / "p", tiny_models, controlnet={}, motion_adapter=None)
    res = _check(root)
    assert res.exit_code == 1, res.output
    line = _line(root / "cinekit.yaml", r"^  tiny:")
    assert f"cinekit.yaml:{line}:3: models.tiny: has no openpose ControlNet" in res.stderr
    assert f"cinekit.yaml:{line}:3: models.tiny: has no motion module; clips need one (shots/ep.yaml:c1)" in res.stderr
    # the same project, complete, passes both commands
    good = _project(tmp_path / "q", tiny_models)
    assert _check(good).exit_code == 0, _check(good).output
    res = runner.invoke(app, ["models", "check", "--project", str(good)])
    assert res.exit_code == 0, res.output


def test_check_reports_model_set_problems_at_their_line(tiny_models, tmp_path):
    root = _project(tmp_path / "p", tiny_models, base=str(tiny_models.base) + "x")
    res = _check(root)
    assert res.exit_code == 1
    line = _line(root / "cinekit.yaml", r"^    base:")
    assert f"cinekit.yaml:{line}:11: models.tiny.base: " in res.stderr and "did you mean" in res.stderr
    res = runner.invoke(app, ["models", "check", "--project", str(root)])
    assert res.exit_code == 1 and f"cinekit.yaml:{line}:11: models.tiny.base" in res.output


def test_check_reports_a_lora_for_another_family(tiny_models, tmp_path):
    """An SDXL-width kohya LoRA (attn2 to_k takes 2048) on the SD 1.5 base."""
    root = tmp_path / "p"
    lora = root / "characters" / "xl_lora.safetensors"
    lora.parent.mkdir(parents=True)
    save_file({"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": torch.zeros(4, 2048),
               "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight": torch.zeros(640, 4),
               "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(4, 1280)}, lora)
    _project(root, tiny_models, ann_extra="lora:\n  - {file: xl_lora.safetensors, weight: 1.0}\n")
    res = _check(root)
    assert res.exit_code == 1
    line = _line(root / "characters" / "ann.yaml", r"xl_lora")
    assert re.search(rf"characters/ann.yaml:{line}:\d+: lora\[0\].file: xl_lora.safetensors is a LoRA for "
                     r"cross-attention width SDXL \(2048\); model set 'tiny' \(sd15\) has 32", res.stderr), res.stderr


def test_check_reports_prompts_longer_than_the_encoder_takes(tiny_models, tmp_path):
    # the tiny set's tokenizer: one token per character; stills chunk up to 8 x 75, clips take 75
    shots = SHOTS.replace('"{ann} waves"', '"' + "b" * 601 + '"').replace('"{ann} walks"', '"{ann} ' + "c" * 70 + '"')
    root = _project(tmp_path / "p", tiny_models, shots=shots)
    res = _check(root)
    assert res.exit_code == 1
    still, clip = _line(root / "shots" / "ep.yaml", "bbbb"), _line(root / "shots" / "ep.yaml", "cccc")
    assert f"shots/ep.yaml:{still}:13: shots[0].prompt: the prompt is 601 tokens" in res.stderr
    assert "at most 600" in res.stderr
    # "ann the tester" (the description substituted for {ann}: 12 tokens) + 70: 82 tokens
    assert re.search(rf"shots/ep.yaml:{clip}:13: shots\[1\].prompt: the prompt is 82 tokens .*clips take at most 75",
                     res.stderr), res.stderr
    ok = _project(tmp_path / "q", tiny_models, shots=shots.replace("b" * 601, "b" * 600).replace("c" * 70, "c" * 30))
    assert _check(ok).exit_code == 0


def test_check_warns_that_a_lora_acts_on_the_whole_frame(tiny_models, tmp_path):
    import shutil

    root = tmp_path / "p"
    (root / "characters").mkdir(parents=True)
    shutil.copy(tiny_models.lora, root / "characters" / "ann_lora.safetensors")
    shots = SHOTS.replace("characters: [{name: ann, pose: wave}]",
                          "characters: [{name: ann, pose: wave}, {name: bob, pose: stand}]")
    _project(root, tiny_models, shots=shots, ann_extra="lora:\n  - {file: ann_lora.safetensors, weight: 0.8}\n")
    res = _check(root)
    assert res.exit_code == 0, res.output
    line = _line(root / "shots" / "ep.yaml", "name: bob")
    assert re.search(rf"shots/ep.yaml:{line}:\d+: warning: shots\[0\].characters: the LoRA of ann acts on the "
                     r"whole frame \(also on bob\)", res.stderr), res.stderr
