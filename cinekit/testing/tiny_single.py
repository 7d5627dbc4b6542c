"""The tiny model set as the single files users download (no diffusers folder anywhere).

Layout under ``DIR`` (``write_tiny_models(..., single_file=True)`` writes it to ``<tiny>/single``)::

    tiny-sd15.safetensors          ldm/A1111 checkpoint: UNet + CLIP text encoder + baked VAE
    tiny-sd15-novae.safetensors    the same without first_stage_model.* (needs ``vae:``)
    tiny-vae.safetensors           the VAE alone (encoder.* / decoder.*: like vae-ft-mse-840000)
    controlnet-openpose.safetensors  original ControlNet layout (control_model.*)
    motion-module.safetensors      AnimateDiff original layout (temporal_transformer, pos_encoder.pe)
    lora-kohya-a.safetensors, lora-kohya-b.safetensors  kohya LoRAs (lora_unet_* / lora_te_*)
    tiny-sdxl.safetensors          SDXL checkpoint (conditioner.embedders.0/1, OpenCLIP layout)
    configs/                       a cinekit config set for these tiny shapes (the layout of
                                   cinekit/model_configs: sd15/, sdxl/, controlnet_sd15/, motion_v2/)

Real files need no ``configs/``: cinekit ships the real architectures' configs. The tiny set
points its model set's ``config:`` at this folder, so the same loading code runs on both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cinekit.testing import ldm_layout
from cinekit.testing.tiny import (
    CROSS_DIM,
    LORA_RANK,
    SEED,
    tiny_controlnet,
    tiny_motion_adapter,
    tiny_scheduler,
    tiny_text_encoder,
    tiny_unet,
    tiny_vae,
)

SDXL_TE2_HIDDEN = 48   # diffusers tells SDXL's two text encoders apart by width: they must differ


@dataclass(frozen=True)
class TinySingleFiles:
    root: Path
    checkpoint: Path
    checkpoint_novae: Path
    vae: Path
    controlnet: Path
    motion_module: Path
    loras: tuple[Path, ...]
    configs: Path
    sdxl: Path | None


def _save(sd: dict[str, Any], path: Path) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in sd.items()}, str(path))
    return path


def _configs(folder: Path, family: str, unet, vae, encoders: dict[str, Any]) -> None:
    """A pipeline config folder (model_index.json + one config per component), no weights."""
    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"_class_name": "StableDiffusionXLPipeline" if family == "sdxl" else "StableDiffusionPipeline",
                             "scheduler": ["diffusers", "DDIMScheduler"], "unet": ["diffusers", "UNet2DConditionModel"],
                             "vae": ["diffusers", "AutoencoderKL"], "feature_extractor": [None, None],
                             "image_encoder": [None, None]}
    for name, model in encoders.items():
        index[name] = ["transformers", type(model).__name__]
        index["tokenizer" + name.removeprefix("text_encoder")] = ["transformers", "CLIPTokenizer"]
        model.config.save_pretrained(folder / name)
    if family == "sd15":
        index.update(safety_checker=[None, None], requires_safety_checker=False)
    (folder / "model_index.json").write_text(json.dumps(index, indent=1))
    unet.save_config(folder / "unet")
    vae.save_config(folder / "vae")
    tiny_scheduler().save_config(folder / "scheduler")


def write_single_files(folder: Path, pipe, *, sdxl: bool = True, vocab: int) -> TinySingleFiles:
    """Write ``pipe`` (the tiny SD 1.5 pipeline) and its companions as single files under ``folder``."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    configs = folder / "configs"
    unet, vae, te = pipe.unet, pipe.vae, pipe.text_encoder
    _configs(configs / "sd15", "sd15", unet, vae, {"text_encoder": te})

    parts = ldm_layout.unet_to_ldm(unet.state_dict(), dict(unet.config))
    parts.update(ldm_layout.clip_to_ldm(te.state_dict()))
    ckpt_novae = _save(parts, folder / "tiny-sd15-novae.safetensors")
    parts.update(ldm_layout.vae_to_ldm(vae.state_dict(), dict(vae.config)))
    ckpt = _save(parts, folder / "tiny-sd15.safetensors")
    vae_file = _save(ldm_layout.vae_to_ldm(vae.state_dict(), dict(vae.config), prefix=""), folder / "tiny-vae.safetensors")

    cn = tiny_controlnet(unet)
    (configs / "controlnet_sd15").mkdir(parents=True, exist_ok=True)
    cn.save_config(configs / "controlnet_sd15")
    cn_file = _save(ldm_layout.unet_to_ldm(cn.state_dict(), dict(cn.config), prefix="control_model.", controlnet=True),
                    folder / "controlnet-openpose.safetensors")

    motion = tiny_motion_adapter()
    (configs / "motion_v2").mkdir(parents=True, exist_ok=True)
    motion.save_config(configs / "motion_v2")
    motion_file = _save(ldm_layout.motion_to_original(motion.state_dict(), motion.config.motion_max_seq_length),
                        folder / "motion-module.safetensors")

    loras = tuple(_save(kohya_lora(unet, te, seed=SEED + 20 + i), folder / f"lora-kohya-{c}.safetensors")
                  for i, c in enumerate("ab"))

    sdxl_file = None
    if sdxl:
        torch.manual_seed(SEED + 30)
        xl_unet = tiny_unet(cross_attention_dim=CROSS_DIM + SDXL_TE2_HIDDEN, sdxl=True)
        xl_vae, te1 = tiny_vae(), tiny_text_encoder(vocab=vocab)
        te2 = tiny_text_encoder(True, vocab=vocab, hidden=SDXL_TE2_HIDDEN)
        _configs(configs / "sdxl", "sdxl", xl_unet, xl_vae, {"text_encoder": te1, "text_encoder_2": te2})
        parts = ldm_layout.unet_to_ldm(xl_unet.state_dict(), dict(xl_unet.config))
        parts.update(ldm_layout.clip_to_ldm(te1.state_dict(), prefix="conditioner.embedders.0.transformer."))
        parts.update(ldm_layout.open_clip_to_ldm(te2.state_dict()))
        parts.update(ldm_layout.vae_to_ldm(xl_vae.state_dict(), dict(xl_vae.config)))
        sdxl_file = _save(parts, folder / "tiny-sdxl.safetensors")
    return TinySingleFiles(folder, ckpt, ckpt_novae, vae_file, cn_file, motion_file, loras, configs, sdxl_file)


def kohya_lora(unet, text_encoder, *, seed: int, rank: int = LORA_RANK) -> dict[str, Any]:
    """A kohya (sd-scripts) SD 1.5 LoRA: attention projections of the UNet and the text encoder."""
    import torch

    def linears(model, names, strip=""):
        return {n.removeprefix(strip): m for n, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and n.endswith(names) and "processor" not in n}

    sd = ldm_layout.kohya_lora(linears(unet, ("to_q", "to_k", "to_v", "to_out.0")), "lora_unet", rank, seed)
    te = {("text_model." + n if not n.startswith("text_model.") else n): m
          for n, m in linears(text_encoder, ("q_proj", "k_proj", "v_proj", "out_proj")).items()}
    sd.update(ldm_layout.kohya_lora(te, "lora_te", rank, seed + 1))
    return sd


def modelset_single(files: TinySingleFiles, rel=str, *, baked_vae: bool = True,
                    ip_adapter: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``ModelSet``-shaped dict using only the single files (``rel`` maps a path to its YAML text)."""
    out: dict[str, Any] = {"family": "sd15", "base": rel(files.checkpoint if baked_vae else files.checkpoint_novae),
                           "config": rel(files.configs), "controlnet": {"openpose": rel(files.controlnet)},
                           "motion_adapter": rel(files.motion_module)}
    if not baked_vae:
        out["vae"] = rel(files.vae)
    if ip_adapter:
        out["ip_adapter"] = ip_adapter
    return out


__all__ = ["TinySingleFiles", "write_single_files", "kohya_lora", "modelset_single", "CROSS_DIM"]
