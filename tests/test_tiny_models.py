"""The tiny offline model set: real formats, deterministic, every part loadable."""

from __future__ import annotations

import json

import torch
from safetensors import safe_open

from cinekit.spec.models import ModelSet
from cinekit.testing.tiny import modelset_dict, tiny_controlnet, tiny_unet
from tests.diffusers_fixtures import *  # noqa: F403


def _keys(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_slice(k).get_shape() for k in f.keys()}


def test_layout(tiny_models):
    base = tiny_models.base
    index = json.loads((base / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    for sub in ("unet", "vae", "text_encoder", "scheduler", "tokenizer"):
        assert (base / sub).is_dir()
    assert not list(tiny_models.root.rglob("*.bin")) and not list(tiny_models.root.rglob("*.ckpt"))
    assert (tiny_models.controlnet / "config.json").is_file()
    assert (tiny_models.image_encoder / "config.json").is_file()
    assert json.loads((tiny_models.sdxl / "unet" / "config.json").read_text())["addition_embed_type"] == "text_time"


def test_tokenizer_is_a_valid_clip_tokenizer(tiny_models):
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(tiny_models.base / "tokenizer", local_files_only=True)
    assert tok.model_max_length == 77
    ids = tok("ab c", padding="max_length", max_length=77).input_ids
    assert len(ids) == 77 and ids[0] == tok.bos_token_id and tok.eos_token_id in ids
    assert tok.decode(tok("a cat").input_ids, skip_special_tokens=True).replace(" ", "") == "acat"


def test_ip_adapter_file_has_one_pair_per_cross_attention(tiny_models):
    keys = _keys(tiny_models.ip_adapter / "models" / "ip-adapter_sd15.safetensors")
    unet = tiny_unet()
    n_cross = sum(n.endswith("attn2.processor") for n in unet.attn_processors)
    ids = sorted({int(k.split(".")[1]) for k in keys if k.startswith("ip_adapter.")})
    assert ids == list(range(1, 2 * n_cross, 2))
    assert keys["image_proj.proj.weight"] == [4 * 32, 32]


def test_lora_and_embedding_formats(tiny_models):
    keys = _keys(tiny_models.lora)
    assert any(k.startswith("unet.") and k.endswith("lora_A.weight") for k in keys)
    assert any(k.startswith("text_encoder.") and k.endswith("lora_B.weight") for k in keys)
    assert _keys(tiny_models.embedding) == {"emb_params": [2, 32]}


def test_deterministic_components():
    a, b = tiny_unet().state_dict(), tiny_unet().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    cn = tiny_controlnet(tiny_unet())
    # the zero-initialised output convolutions were given weights (so the control matters)
    assert cn.controlnet_mid_block.weight.abs().sum() > 0


def test_motion_adapter_fits_the_unet(tiny_models):
    motion = json.loads((tiny_models.motion_adapter / "config.json").read_text())
    unet = json.loads((tiny_models.base / "unet" / "config.json").read_text())
    assert motion["block_out_channels"] == unet["block_out_channels"]
    assert motion["motion_layers_per_block"] == unet["layers_per_block"]


def test_modelset_dict_is_a_modelset(tiny_models):
    ms = ModelSet(**modelset_dict(tiny_models, tiny_models.root))
    assert ms.family == "sd15" and ms.controlnet.openpose and ms.ip_adapter and ms.motion_adapter
    assert not ms.base.startswith("/")           # relative to the given root
