"""diffusers state dicts written back in the layouts community files use (tests and `models tiny`).

The inverse of the key conversions diffusers applies when it reads a single file: the original
Stable Diffusion (ldm/A1111) checkpoint layout (``model.diffusion_model.*``, ``first_stage_model.*``,
``cond_stage_model.transformer.*``, SDXL's ``conditioner.embedders.{0,1}.*`` with OpenCLIP's fused
attention projections), the original ControlNet (``control_model.*``), AnimateDiff's original
motion module (``*.temporal_transformer.*`` with ``pos_encoder.pe``) and kohya's LoRA naming
(``lora_unet_*.lora_down.weight`` + ``.alpha``). The rules are generic in the block counts of the
config, so tiny models get the same layout as real ones; ``tests/test_single_file.py`` checks each
writer by reading its output back through diffusers' own converters, tensor for tensor.
"""

from __future__ import annotations

import math
import re
from typing import Any

_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
           ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
               "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}


def _resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return dict(_RESNET).get(head, head) + "." + tail


def _split(key: str, n: int) -> tuple[list[str], str]:
    parts = key.split(".")
    return parts[:n], ".".join(parts[n:])


def unet_to_ldm(sd: dict[str, Any], config: dict[str, Any], prefix: str = "model.diffusion_model.",
                controlnet: bool = False) -> dict[str, Any]:
    """A ``UNet2DConditionModel`` (or ``ControlNetModel`` encoder half) state dict in ldm key names."""
    L = config["layers_per_block"]
    up_attn = [t.startswith("CrossAttn") for t in config.get("up_block_types", ())]
    out: dict[str, Any] = {}
    for key, v in sd.items():
        module, _, param = key.rpartition(".")
        if module in _UNET_FIXED:
            out[prefix + _UNET_FIXED[module] + "." + param] = v
            continue
        (a, b, c, d), rest = _split(key, 4) if key.count(".") >= 4 else ((None,) * 4, key)
        if a == "down_blocks":
            i, j = int(b), int(d)
            if c == "resnets":
                new = f"input_blocks.{1 + i * (L + 1) + j}.0.{_resnet(rest)}"
            elif c == "attentions":
                new = f"input_blocks.{1 + i * (L + 1) + j}.1.{rest}"
            else:                                   # downsamplers.0.conv.*
                new = f"input_blocks.{1 + i * (L + 1) + L}.0.op.{rest.removeprefix('conv.')}"
        elif a == "up_blocks":
            i, j = int(b), int(d)
            if c == "resnets":
                new = f"output_blocks.{i * (L + 1) + j}.0.{_resnet(rest)}"
            elif c == "attentions":
                new = f"output_blocks.{i * (L + 1) + j}.1.{rest}"
            else:                                   # upsamplers.0.conv.*
                new = f"output_blocks.{i * (L + 1) + L}.{2 if up_attn[i] else 1}.{rest}"
        elif key.startswith("mid_block."):
            (_, c, d), rest = _split(key, 3)
            new = f"middle_block.{2 * int(d)}.{_resnet(rest)}" if c == "resnets" else f"middle_block.1.{rest}"
        elif controlnet and key.startswith("controlnet_cond_embedding."):
            name = key.split(".")[1]
            idx = 0 if name == "conv_in" else 14 if name == "conv_out" else 2 * (int(key.split(".")[2]) + 1)
            new = f"input_hint_block.{idx}.{param}"
        elif controlnet and key.startswith("controlnet_down_blocks."):
            new = f"zero_convs.{key.split('.')[1]}.0.{param}"
        elif controlnet and key.startswith("controlnet_mid_block."):
            new = f"middle_block_out.0.{param}"
        else:
            raise KeyError(f"no ldm name for UNet key {key}")
        out[prefix + new] = v
    return out


def vae_to_ldm(sd: dict[str, Any], config: dict[str, Any], prefix: str = "first_stage_model.") -> dict[str, Any]:
    """An ``AutoencoderKL`` state dict in ldm key names (attention projections as 1x1 convs)."""
    n = len(config["up_block_types"])
    attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    out: dict[str, Any] = {}
    for key, v in sd.items():
        new = key.replace("conv_norm_out", "norm_out")
        m = re.match(r"(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.*)", key)
        if m:
            part, way, i, kind, j, rest = m.groups()
            i = int(i) if way == "down" else n - 1 - int(i)
            if kind == "resnets":
                new = f"{part}.{way}.{i}.block.{j}.{rest.replace('conv_shortcut', 'nin_shortcut')}"
            else:
                new = f"{part}.{way}.{i}.{'downsample' if way == 'down' else 'upsample'}.{rest}"
        m = re.match(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.*)", key)
        if m:
            part, kind, j, rest = m.groups()
            if kind == "resnets":
                new = f"{part}.mid.block_{int(j) + 1}.{rest.replace('conv_shortcut', 'nin_shortcut')}"
            else:
                module, _, param = rest.rpartition(".")
                new = f"{part}.mid.attn_1.{attn[module]}.{param}"
                if v.ndim == 2:
                    v = v[:, :, None, None]
        out[prefix + new] = v
    return out


def clip_to_ldm(sd: dict[str, Any], prefix: str = "cond_stage_model.transformer.") -> dict[str, Any]:
    """A CLIP-L ``CLIPTextModel`` under the HF names ldm checkpoints keep (``text_model.*``)."""
    return {prefix + (k if k.startswith("text_model.") else "text_model." + k): v for k, v in sd.items()
            if not k.endswith("position_ids")}


def open_clip_to_ldm(sd: dict[str, Any], prefix: str = "conditioner.embedders.1.model.") -> dict[str, Any]:
    """SDXL's second text encoder (``CLIPTextModelWithProjection``) in OpenCLIP's layout."""
    import torch

    fixed = {"text_model.embeddings.token_embedding.weight": "token_embedding.weight",
             "text_model.embeddings.position_embedding.weight": "positional_embedding",
             "text_model.final_layer_norm.weight": "ln_final.weight",
             "text_model.final_layer_norm.bias": "ln_final.bias"}
    names = {"self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2",
             "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
    out: dict[str, Any] = {}
    qkv: dict[tuple[int, str], dict[str, Any]] = {}
    for k, v in sd.items():
        if k in fixed:
            out[prefix + fixed[k]] = v
        elif k == "text_projection.weight":
            out[prefix + "text_projection"] = v.T.contiguous()
        elif k.startswith("text_model.encoder.layers."):
            (_, _, _, i), rest = _split(k, 4)
            module, _, param = rest.rpartition(".")
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                qkv.setdefault((int(i), param), {})[module[-6]] = v
            else:
                out[f"{prefix}transformer.resblocks.{i}.{names[module]}.{param}"] = v
    for (i, param), parts in qkv.items():
        out[f"{prefix}transformer.resblocks.{i}.attn.in_proj_{param}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def motion_to_original(sd: dict[str, Any], seq_length: int) -> dict[str, Any]:
    """A ``MotionAdapter`` state dict in AnimateDiff's original layout, with its sinusoidal ``pe``."""

    out: dict[str, Any] = {}
    for k, v in sd.items():
        m = re.match(r"(.*\.motion_modules\.\d+)\.(.*)", k)
        if not m or "pos_embed" in k:
            continue
        head, rest = m.groups()
        rest = (rest.replace(".attn1", ".attention_blocks.0").replace(".attn2", ".attention_blocks.1")
                .replace(".norm1", ".norms.0").replace(".norm2", ".norms.1").replace(".norm3", ".ff_norm"))
        out[f"{head}.temporal_transformer.{rest}"] = v
        pe_key = re.match(r"(.*\.attention_blocks\.\d)\.to_q\.weight$", f"{head}.temporal_transformer.{rest}")
        if pe_key:
            out[pe_key.group(1) + ".pos_encoder.pe"] = _sinusoid(seq_length, v.shape[1])
    return out


def _sinusoid(length: int, dim: int):
    """(1, length, dim) positional encoding of AnimateDiff's temporal attention (Vaswani et al.)."""
    import torch

    pos = torch.arange(length).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, length, dim)
    pe[0, :, 0::2] = torch.sin(pos * div)
    pe[0, :, 1::2] = torch.cos(pos * div)
    return pe


def kohya_lora(modules: dict[str, Any], prefix: str, rank: int, seed: int, scale: float = 0.3,
               alpha: float | None = None) -> dict[str, Any]:
    """A kohya-layout LoRA for the given ``{module name: nn.Linear}``: ``<prefix>_<name with _>``
    ``.lora_down.weight`` (rank, in), ``.lora_up.weight`` (out, rank), ``.alpha`` (scalar)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out: dict[str, Any] = {}
    for name, module in modules.items():
        base = f"{prefix}_{name.replace('.', '_')}"
        out[base + ".lora_down.weight"] = torch.randn(rank, module.in_features, generator=g) * scale
        out[base + ".lora_up.weight"] = torch.randn(module.out_features, rank, generator=g) * scale
        out[base + ".alpha"] = torch.tensor(float(alpha if alpha is not None else rank))
    return out
