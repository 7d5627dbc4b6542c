"""Community single files load offline with nothing but the user's own file.

Oracles: the original-layout writers read back through diffusers' own converters tensor for
tensor; real SD 1.5 / SDXL / ControlNet / AnimateDiff architectures (meta tensors, real shapes)
are detected as what they are, agree with diffusers' detection, and the shipped configs give the
published parameter counts; a pipeline loaded from single files renders the same pixels as the
same weights loaded from diffusers folders; kohya LoRAs equal the same weights in peft layout.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from cinekit.engines.arch_detect import UnknownArchitecture, detect, read_shapes
from cinekit.engines.loader import ModelLoader
from cinekit.engines.single_file import SHIPPED
from cinekit.errors import ModelError
from cinekit.spec.models import ModelSet
from cinekit.testing import ldm_layout
from cinekit.testing.tiny import (
    modelset_dict,
    tiny_controlnet,
    tiny_motion_adapter,
    tiny_text_encoder,
    tiny_unet,
    tiny_vae,
)
from cinekit.testing.tiny_single import modelset_single
from tests.diffusers_fixtures import make_runtime, pose_at, still_job, write_tiny_project


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny set with CLIP's tokenizer, as folders and as single files (same weights)."""
    from cinekit.testing.tiny import write_tiny_models

    torch.set_num_threads(1)
    return write_tiny_models(tmp_path_factory.mktemp("tiny-single"), sdxl=False, single_file=True)


def _same(a: dict, b: dict) -> None:
    assert set(a) == set(b), (sorted(set(a) - set(b))[:3], sorted(set(b) - set(a))[:3])
    for k in a:
        assert a[k].shape == b[k].shape and torch.equal(a[k], b[k]), k


# --------------------------------------------------------------------------- layouts
def test_original_layouts_read_back_by_diffusers():
    from diffusers.loaders import single_file_utils as su

    u = tiny_unet()
    _same(su.convert_ldm_unet_checkpoint(ldm_layout.unet_to_ldm(u.state_dict(), dict(u.config)), dict(u.config)),
          u.state_dict())
    ux = tiny_unet(cross_attention_dim=80, sdxl=True)
    _same(su.convert_ldm_unet_checkpoint(ldm_layout.unet_to_ldm(ux.state_dict(), dict(ux.config)), dict(ux.config)),
          ux.state_dict())
    v = tiny_vae()
    _same(su.convert_ldm_vae_checkpoint(ldm_layout.vae_to_ldm(v.state_dict(), dict(v.config)), dict(v.config)),
          v.state_dict())
    cn = tiny_controlnet(u)
    ldm = ldm_layout.unet_to_ldm(cn.state_dict(), dict(cn.config), prefix="control_model.", controlnet=True)
    _same(su.convert_controlnet_checkpoint(ldm, dict(cn.config)), cn.state_dict())
    ma = tiny_motion_adapter()
    _same(su.convert_animatediff_checkpoint_to_diffusers(ldm_layout.motion_to_original(ma.state_dict(), 32)),
          {k: t for k, t in ma.state_dict().items() if "pos_embed" not in k})
    te2 = tiny_text_encoder(True, hidden=48)
    _same(su.convert_open_clip_checkpoint(te2, ldm_layout.open_clip_to_ldm(te2.state_dict()),
                                          prefix="conditioner.embedders.1.model."), te2.state_dict())


# --------------------------------------------------------------------------- real architectures
def _meta(cls, path):
    cfg = json.loads((SHIPPED / path).read_text())
    with torch.device("meta"):
        return cls.from_config(cfg)


def _meta_text(path, projection=False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.device("meta"):
        return (CLIPTextModelWithProjection if projection else CLIPTextModel)(
            CLIPTextConfig(**json.loads((SHIPPED / path).read_text())))


def _params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def _shapes(sd) -> dict:
    return {k: tuple(v.shape) for k, v in sd.items()}


def test_real_checkpoints_detected_from_their_keys_and_shipped_configs_are_the_published_ones():
    """SD 1.5 and SDXL with every real key at its real shape (meta tensors: no memory)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    unet, vae = _meta(UNet2DConditionModel, "sd15/unet/config.json"), _meta(AutoencoderKL, "sd15/vae/config.json")
    te = _meta_text("sd15/text_encoder/config.json")
    # published parameter counts of runwayml/stable-diffusion-v1-5's UNet, VAE and CLIP-L text encoder
    assert (_params(unet), _params(vae), _params(te)) == (859_520_964, 83_653_863, 123_060_480)
    sd = {**ldm_layout.unet_to_ldm(unet.state_dict(), dict(unet.config)),
          **ldm_layout.clip_to_ldm(te.state_dict())}
    no_vae = detect(_shapes(sd))
    sd.update(ldm_layout.vae_to_ldm(vae.state_dict(), dict(vae.config)))
    shapes = _shapes(sd)
    arch = detect(shapes)
    assert (arch.kind, arch.family, arch.config, arch.has_vae, arch.context_dim) == ("checkpoint", "sd15", "sd15", True, 768)
    assert not no_vae.has_vae and no_vae.family == "sd15"
    assert infer_diffusers_model_type(sd) == "v1"                   # diffusers' own detection agrees
    # shapes of the original file (CompVis layout: conv proj_in, 1x1-conv VAE attention)
    assert shapes["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"] == (320, 768)
    assert shapes["model.diffusion_model.input_blocks.1.1.proj_in.weight"] == (320, 320, 1, 1)
    assert shapes["first_stage_model.encoder.mid.attn_1.q.weight"] == (512, 512, 1, 1)
    assert shapes["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"] == (49408, 768)

    xl = _meta(UNet2DConditionModel, "sdxl/unet/config.json")
    te1, te2 = _meta_text("sdxl/text_encoder/config.json"), _meta_text("sdxl/text_encoder_2/config.json", True)
    assert (_params(xl), _params(te2)) == (2_567_463_684, 694_659_840)   # SDXL base UNet, OpenCLIP bigG
    sd = {**ldm_layout.unet_to_ldm(xl.state_dict(), dict(xl.config)),
          **ldm_layout.clip_to_ldm(te1.state_dict(), "conditioner.embedders.0.transformer."),
          **ldm_layout.open_clip_to_ldm(te2.state_dict()),
          **ldm_layout.vae_to_ldm(vae.state_dict(), dict(vae.config))}
    shapes = _shapes(sd)
    arch = detect(shapes)
    assert (arch.family, arch.config, arch.has_vae, arch.has_text_encoder, arch.context_dim) == ("sdxl", "sdxl", True, True, 2048)
    assert infer_diffusers_model_type(sd) == "xl_base"
    assert shapes["model.diffusion_model.label_emb.0.0.weight"] == (1280, 2816)
    assert shapes["model.diffusion_model.input_blocks.7.1.transformer_blocks.9.attn1.to_q.weight"] == (1280, 1280)
    assert shapes["model.diffusion_model.input_blocks.4.1.proj_in.weight"] == (640, 640)   # linear projection
    assert shapes["conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight"] == (3840, 1280)


def test_real_controlnets_and_motion_modules_detected():
    from diffusers import ControlNetModel, MotionAdapter
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    for family in ("sd15", "sdxl"):
        cn = _meta(ControlNetModel, f"controlnet_{family}/config.json")
        sd = ldm_layout.unet_to_ldm(cn.state_dict(), dict(cn.config), prefix="control_model.", controlnet=True)
        arch = detect(_shapes(sd))
        assert (arch.kind, arch.family, arch.config) == ("controlnet", family, f"controlnet_{family}")
        assert detect(_shapes(cn.state_dict())).layout == "diffusers"        # already-converted files too
    assert _params(_meta(ControlNetModel, "controlnet_sd15/config.json")) == 361_279_120
    expected = {"v1": ("animatediff_v1", 24), "v2": ("animatediff_v2", 32), "v3": ("animatediff_v3", 32),
                "sdxl": ("animatediff_sdxl_beta", 32)}
    for version, (diffusers_name, frames) in expected.items():
        ma = _meta(MotionAdapter, f"motion_{version}/config.json")
        sd = ldm_layout.motion_to_original(ma.state_dict(), ma.config.motion_max_seq_length)
        arch = detect(_shapes(sd))
        assert (arch.kind, arch.config, arch.seq_length) == ("motion", f"motion_{version}", frames)
        assert infer_diffusers_model_type(sd) == diffusers_name
    assert _params(_meta(MotionAdapter, "motion_v2/config.json")) == 453_209_280     # mm_sd_v15_v2


def test_detection_reads_only_the_header(tmp_path):
    """A file holding just the telling keys at their real shapes is told apart without torch."""
    base = "model.diffusion_model."
    keys = {base + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
            base + "label_emb.0.0.weight": (1280, 2816), "conditioner.embedders.1.model.positional_embedding": (77, 1280),
            "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": (768,)}
    save_file({k: torch.zeros(s, dtype=torch.float16) for k, s in keys.items()}, tmp_path / "xl.safetensors")
    assert read_shapes(tmp_path / "xl.safetensors") == keys
    arch = detect(read_shapes(tmp_path / "xl.safetensors"))
    assert arch.family == "sdxl" and not arch.has_vae


@pytest.mark.parametrize("keys, message", [
    ({"image_proj.proj.weight": (3072, 1024), "ip_adapter.1.to_k_ip.weight": (320, 768)}, "image_proj"),
    ({"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
      "cond_stage_model.model.token_embedding.weight": (49408, 1024)}, "SD 2.x"),
    ({"model.diffusion_model.input_blocks.0.0.weight": (320, 9, 3, 3),
      "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768)}, "9 input channels"),
    ({"down_blocks.0.motion_modules.0.temporal_transformer.norm.weight": (320,),
      "controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3)}, "SparseCtrl"),
])
def test_unknown_files_are_named(keys, message):
    with pytest.raises(UnknownArchitecture, match=message) as exc:
        detect(keys, "x.safetensors")
    assert "x.safetensors" in exc.value.message


# --------------------------------------------------------------------------- tokenizer
def test_clip_tokenizer_has_clips_ids():
    from cinekit.engines.clip_tokenizer import clip_tokenizer

    tok = clip_tokenizer()
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(tok) == 49408 and tok.model_max_length == 77
    assert clip_tokenizer(pad_token="!").pad_token_id == 0                # SDXL's second tokenizer


# --------------------------------------------------------------------------- loading
def _image(pipe, **kw):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    if "controlnet" in pipe.components:
        kw.setdefault("image", Image.new("RGB", (64, 64), (200, 30, 30)))
    return pipe("a red knight, masterpiece", num_inference_steps=2, height=64, width=64, generator=g,
                output_type="np", **kw).images


def test_single_files_render_what_the_folders_render(tiny):
    s = tiny.single
    loader = ModelLoader({"folder": ModelSet(**modelset_dict(tiny, None, ip_adapter=False)),
                          "single": ModelSet(**modelset_single(s)),
                          "novae": ModelSet(**modelset_single(s, baked_vae=False)),
                          "xl": ModelSet(family="sdxl", base=str(s.sdxl), config=str(s.configs))},
                         tiny.root, device="cpu")
    ref = _image(loader.pipeline("folder", "controlnet"))
    assert np.array_equal(_image(loader.pipeline("single", "controlnet")), ref)     # checkpoint + ControlNet
    assert np.array_equal(_image(loader.pipeline("novae", "controlnet")), ref)      # + VAE as its own file
    assert loader.motion_config("single")["motion_max_seq_length"] == 32            # header, not weights
    a = loader.motion_adapter("folder").state_dict()
    _same(loader.motion_adapter("single").state_dict(), a)
    assert _image(loader.pipeline("xl", "txt2img")).shape == (1, 64, 64, 3)
    assert type(loader.tokenizer("xl")).__name__ == "CLIPTokenizer"


def test_checkpoint_without_vae_needs_one(tiny, tmp_path):
    ms = ModelSet(**{**modelset_single(tiny.single, baked_vae=False), "vae": None})
    with pytest.raises(ModelError, match="no baked VAE"):
        ModelLoader({"m": ms}, tmp_path, device="cpu").components("m")


# --------------------------------------------------------------------------- LoRA
def test_kohya_loras_equal_peft_and_stack(tiny, tmp_path):
    """A kohya file gives the pixels of the same weights in peft layout; two load together."""
    from safetensors.torch import load_file

    loader = ModelLoader({"m": ModelSet(**modelset_single(tiny.single))}, tiny.root, device="cpu")
    pipe = loader.pipeline("m", "txt2img")
    base = _image(pipe)
    a, b = tiny.single.loras
    # the same LoRA in diffusers/peft names: alpha == rank, so the scale is 1
    kohya = load_file(str(a))
    peft = {}
    for name in [n for n, _ in pipe.unet.named_modules()] + ["te." + n for n, _ in pipe.text_encoder.named_modules()]:
        prefix = ("lora_te_text_model_" + name[3:] if name.startswith("te.") else "lora_unet_" + name).replace(".", "_")
        if prefix + ".lora_down.weight" in kohya:
            target = ("text_encoder." + name[3:]) if name.startswith("te.") else "unet." + name
            peft[target + ".lora_A.weight"] = kohya[prefix + ".lora_down.weight"]
            peft[target + ".lora_B.weight"] = kohya[prefix + ".lora_up.weight"]
    assert len(peft) == len(kohya) * 2 // 3
    save_file(peft, tmp_path / "peft.safetensors")
    names = [loader.lora(pipe, p) for p in (a, b, tmp_path / "peft.safetensors")]
    pipe.set_adapters(names, adapter_weights=[1.0, 0.0, 0.0])
    with_a = _image(pipe)
    pipe.set_adapters(names, adapter_weights=[0.0, 0.0, 1.0])
    assert np.allclose(_image(pipe), with_a, atol=1e-5) and not np.allclose(with_a, base, atol=1e-3)
    pipe.set_adapters(names, adapter_weights=[1.0, 1.0, 0.0])
    both = _image(pipe)
    assert not np.allclose(both, with_a, atol=1e-3)
    pipe.set_adapters(names, adapter_weights=[0.0, 0.0, 0.0])
    assert np.allclose(_image(pipe), base, atol=1e-6)
    pipe.unload_lora_weights()
    pipe.unet.__dict__.pop("_cinekit_loras", None)


# --------------------------------------------------------------------------- end to end
def test_still_and_clip_render_from_single_files_only(tiny, tmp_path):
    """A project whose models are the single files (and an IP-Adapter file + encoder folder) only:
    two characters with their own kohya LoRA, one with an A1111 embedding; a still and a clip."""
    import yaml

    from cinekit.engines.base import create_engine

    root = tmp_path / "proj"
    models = root / "models"
    shutil.copytree(tiny.single.root, models)
    shutil.copytree(tiny.ip_adapter, models / "ip-adapter")
    shutil.copy(tiny.embedding, models / "embedding.safetensors")
    weights = {p.relative_to(models).as_posix() for p in models.rglob("*.safetensors")}
    assert all("/" not in w or w.startswith("ip-adapter/") for w in weights)      # no diffusers folder
    extra = "lora:\n  - {{file: ../models/lora-kohya-{c}.safetensors, weight: 0.8, trigger: {c}style}}\n"
    write_tiny_project(root, tiny, ann_extra=extra.format(c="a"),
                       bob_extra=extra.format(c="b") + "embeddings:\n  - {file: ../models/embedding.safetensors, token: \"<bob>\"}\n")
    ip = {"path": "models/ip-adapter", "subfolder": "models", "weight": "ip-adapter_sd15.safetensors"}
    single = modelset_single(tiny.single, rel=lambda p: "models/" + p.relative_to(tiny.single.root).as_posix(),
                             ip_adapter=ip)
    (root / "cinekit.yaml").write_text(yaml.safe_dump({"output": "renders", "defaults": {"size": [128, 64]},
                                                       "models": {"tiny": single}}))
    runtime = make_runtime(root)
    engine = create_engine("diffusers", runtime)
    job = still_job(("ann", "bob"), prompt="astyle, bstyle, <bob> walking in a garden, watercolor")
    engine.check_inputs(job)
    frames = engine.render(job).frames
    assert frames.shape == (1, 64, 128, 3) and frames.std() > 0
    import dataclasses

    t = np.arange(8) / 12.0
    pose = np.stack([[pose_at(32 + 4 * np.sin(tt)), pose_at(96)] for tt in t])
    clip = dataclasses.replace(job, kind="clip", frames=8, pose=pose, shot_id="c1", output="ep/c1")
    engine.check_inputs(clip)
    out = engine.render(clip).frames
    assert out.shape == (8, 64, 128, 3) and np.abs(np.diff(out.astype(float), axis=0)).mean() > 0
    loaded = runtime.loader.components("tiny")
    assert all(not k.endswith(("sd15", "controlnet-openpose")) for k in loaded.files)   # files, not folders
    assert any(k.endswith("tiny-sd15.safetensors") for k in loaded.files)
