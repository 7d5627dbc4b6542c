"""Offline model loading: checks without weights, pickle refusal, device/dtype, caching, CLI."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from cinekit.engines.loader import ModelLoader, pick_dtype
from cinekit.engines.model_check import check_model_set, detect_family, resolve_model_path
from cinekit.errors import ModelError, UserError
from cinekit.spec.models import ModelSet
from cinekit.testing.tiny import modelset_dict
from tests.diffusers_fixtures import *  # noqa: F403


def _fields(problems):
    return {p.field for p in problems if p.severity == "error"}


def test_tiny_set_checks_clean(tiny_models):
    ms = ModelSet(**modelset_dict(tiny_models, tiny_models.root))
    assert check_model_set("tiny", ms, tiny_models.root) == []
    xl = ModelSet(family="sdxl", base=str(tiny_models.sdxl))
    assert check_model_set("xl", xl, tiny_models.root) == []


def test_check_finds_planted_problems(tiny_models, tmp_path):
    root = tmp_path
    # a pickle base, an unreadable single file
    (root / "model.ckpt").write_bytes(b"not really")
    (root / "model.safetensors").write_bytes(b"junk")
    # a broken IP-Adapter file (no image_proj keys) and a motion adapter for other blocks
    from safetensors.torch import save_file

    (root / "ip" / "models").mkdir(parents=True)
    save_file({"something.weight": torch.zeros(2)}, root / "ip" / "models" / "ip.safetensors")
    motion = root / "motion"
    motion.mkdir()
    cfg = json.loads((tiny_models.motion_adapter / "config.json").read_text())
    cfg["block_out_channels"] = [16, 32]
    (motion / "config.json").write_text(json.dumps(cfg))
    base = str(tiny_models.base)

    cases = {
        "models.a.base": ModelSet(base="missing/folder"),
        "models.b.base": ModelSet(base="model.ckpt", config=base),
        "models.c.base": ModelSet(base="model.safetensors"),
        "models.k.config": ModelSet(base=base, config="no/such/configs"),
        "models.d.family": ModelSet(family="sdxl", base=base),
        "models.e.controlnet.openpose": ModelSet(base=base, controlnet={"openpose": "nope"}),
        "models.f.ip_adapter.weight": ModelSet(base=base, ip_adapter={"path": "ip", "weight": "ip.safetensors"}),
        "models.g.ip_adapter.image_encoder": ModelSet(base=base, ip_adapter={"path": "ip", "weight": "ip.safetensors"}),
        "models.h.motion_adapter": ModelSet(base=base, motion_adapter="motion"),
        "models.i.scheduler": ModelSet(base=base, scheduler="FancyScheduler"),
    }
    for key, ms in cases.items():
        name = key.split(".")[1]
        assert key in _fields(check_model_set(name, ms, root)), key
    # with --allow-pickle the .ckpt is accepted as a format
    assert "models.b.base" not in _fields(check_model_set("b", cases["models.b.base"], root, allow_pickle=True))
    # an SDXL ControlNet on an SD 1.5 base: cross-attention widths differ
    cn = root / "cn-xl"
    shutil.copytree(tiny_models.controlnet, cn)
    c = json.loads((cn / "config.json").read_text())
    c["cross_attention_dim"] = 2048
    (cn / "config.json").write_text(json.dumps(c))
    assert "models.j.controlnet.openpose" in _fields(
        check_model_set("j", ModelSet(base=base, controlnet={"openpose": str(cn)}), root))


def test_unsafe_formats_gated_at_load(tiny_models, tmp_path):
    (tmp_path / "m.ckpt").write_bytes(b"x")
    loader = ModelLoader({"p": ModelSet(base="m.ckpt", config=str(tiny_models.base))}, tmp_path, device="cpu")
    with pytest.raises(ModelError, match="pickle"):
        loader.components("p")
    with pytest.raises(ModelError, match="pickle"):
        loader.lora(None, tmp_path / "m.ckpt")
    permissive = ModelLoader({"p": ModelSet(base="m.ckpt", config=str(tiny_models.base))}, tmp_path,
                             device="cpu", allow_pickle=True)
    with pytest.raises(ModelError) as exc:     # passes the pickle gate, then fails on the junk bytes
        permissive.components("p")
    assert "; refused" not in exc.value.message and "loading failed" in exc.value.message


def test_hub_id_must_be_in_local_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    path, how = resolve_model_path("someone/some-model", tmp_path)
    assert path is None and how == "missing"
    problems = check_model_set("h", ModelSet(base="someone/some-model"), tmp_path)
    assert any("cache" in (p.hint or "") for p in problems)


def test_family_and_dtype_rules():
    assert detect_family({"cross_attention_dim": 768}) == "sd15"
    assert detect_family({"cross_attention_dim": 2048, "addition_embed_type": "text_time"}) == "sdxl"
    assert detect_family({"cross_attention_dim": 1024}) == "sd2"
    assert pick_dtype("auto", "cpu") == torch.float32
    assert pick_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(UserError, match="float16"):
        pick_dtype("float16", "cpu")


def test_pipelines_share_components_and_load_once(tiny_models):
    stats: dict[str, int] = {}
    ms = ModelSet(**modelset_dict(tiny_models, tiny_models.root))
    loader = ModelLoader({"tiny": ms}, tiny_models.root, device="cpu", stats=stats)
    a = loader.pipeline("tiny", "controlnet")
    assert loader.pipeline("tiny", "controlnet") is a
    b = loader.pipeline("tiny", "controlnet_img2img")
    assert b.unet is a.unet and b.vae is a.vae and b.scheduler is not a.scheduler
    assert stats == {"model_loads": 1, "pipeline_loads": 2}
    # the video engine builds AnimateDiff pipelines from the same loader
    anim = loader.pipeline("tiny", "animatediff_controlnet")
    assert type(anim).__name__ == "AnimateDiffControlNetPipeline"
    assert anim.motion_adapter is loader.motion_adapter("tiny")
    with pytest.raises(UserError, match="unknown model set"):
        loader.components("other")
    with pytest.raises(ModelError, match="no 'animatediff_v2v' pipeline"):
        ModelLoader({"xl": ModelSet(family="sdxl", base=str(tiny_models.sdxl))}, tiny_models.root,
                    device="cpu").pipeline("xl", "animatediff_v2v")


def test_models_cli(tiny_models, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from cinekit.cli.models import app

    runner = CliRunner()
    project = tmp_path / "p"
    project.mkdir()
    good = {"models": {"tiny": modelset_dict(tiny_models, project)}}
    (project / "cinekit.yaml").write_text(yaml.safe_dump(good))
    ok = runner.invoke(app, ["check", "--project", str(project)])
    assert ok.exit_code == 0, ok.output
    bad = {"models": {"tiny": {**modelset_dict(tiny_models, project), "family": "sdxl"}}}
    (project / "cinekit.yaml").write_text(yaml.safe_dump(bad))
    res = runner.invoke(app, ["check", "--project", str(project)])
    assert res.exit_code == 1 and "models.tiny.family" in res.output


def test_models_tiny_cli_prints_a_usable_snippet(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from cinekit.cli.models import app

    res = CliRunner().invoke(app, ["tiny", str(tmp_path / "m"), "--single-file"])
    assert res.exit_code == 0, res.output
    text = res.output[res.output.index("models:"):]          # (progress bars of diffusers may precede it)
    snippet = yaml.safe_load(text)
    for name in ("tiny", "tiny-single", "tiny-single-xl"):
        ms = ModelSet(**snippet["models"][name])
        assert check_model_set(name, ms, tmp_path) == [], name
    single = snippet["models"]["tiny-single"]
    assert single["base"].endswith("tiny-sd15.safetensors") and single["motion_adapter"].endswith(".safetensors")
    # the tiny set reads ordinary prompts: CLIP's BPE, not one token per character
    tok = ModelLoader({"t": ModelSet(**snippet["models"]["tiny"])}, tmp_path, device="cpu").tokenizer("t")
    assert len(tok("a watercolor painting of a knight", add_special_tokens=False).input_ids) == 6
