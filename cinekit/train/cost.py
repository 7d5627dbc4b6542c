"""A training step's cost from the model's own graph, without loading a weight.

The UNet is built from its ``config.json`` on torch's ``meta`` device (shapes, no storage) and
run forward + backward once under ``FlopCounterMode`` (FLOPs) and a ``saved_tensors_hooks``
tally (bytes autograd keeps for the backward pass: the activation memory of one step, an upper
bound since a tensor saved by two ops is counted twice). Weights are counted from the
configs (meta device too). Estimates, labelled as such in the plan: allocator slack and CUDA context
(~0.5-1 GiB) come on top.
"""

from __future__ import annotations

import json
from pathlib import Path

_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def _meta_params(base: Path) -> int:
    """Numbers in the UNet, text encoder and VAE, from their configs on the meta device."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    n = 0
    with torch.device("meta"):
        for sub, build in (("unet", lambda c: UNet2DConditionModel.from_config(json.loads(c.read_text()))),
                           ("vae", lambda c: AutoencoderKL.from_config(json.loads(c.read_text()))),
                           ("text_encoder", lambda c: CLIPTextModel(CLIPTextConfig.from_json_file(str(c))))):
            cfg = base / sub / "config.json"
            if cfg.is_file():
                n += sum(p.numel() for p in build(cfg).parameters())
    return n


def lora_params(unet, rank: int, targets) -> int:
    """Trainable numbers of a rank-``rank`` LoRA on ``targets``: r * (in + out) per layer."""
    import torch

    n = 0
    for name, m in unet.named_modules():
        if not any(name == t or name.endswith("." + t) for t in targets):
            continue
        if isinstance(m, torch.nn.Linear):
            n += rank * (m.in_features + m.out_features)
        elif isinstance(m, torch.nn.Conv2d):
            n += rank * (m.in_channels * m.kernel_size[0] * m.kernel_size[1] + m.out_channels)
    return n


def step_cost(base: Path, *, size: int, batch: int, dtype: str, rank: int, targets, device: str,
              checkpointing: bool = False, trainable: int | None = None) -> dict | None:
    """FLOPs and memory of one training step on the diffusers folder ``base`` (None when it
    is not a diffusers folder: single files carry no config to build from)."""
    import torch
    from diffusers import UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    cfg_path = Path(base) / "unet" / "config.json"
    if not cfg_path.is_file():
        return None
    config = json.loads(cfg_path.read_text())
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)      # fp32 graph; bytes rescaled to ``dtype`` below
    unet.requires_grad_(False)
    for name, m in unet.named_modules():      # stand-ins for the LoRA layers: their inputs are kept
        if any(name.endswith("." + t) for t in targets) and hasattr(m, "weight"):
            m.weight.requires_grad_(True)
    n_lora = trainable if trainable is not None else lora_params(unet, rank, targets)
    lat = size // 8
    x = torch.empty(batch, unet.config.in_channels, lat, lat, device="meta")
    cross = unet.config.cross_attention_dim
    enc = torch.empty(batch, 77, cross if isinstance(cross, int) else cross[0], device="meta")
    t = torch.zeros(batch, dtype=torch.long, device="meta")
    saved = 0

    def pack(tensor):
        nonlocal saved
        saved += tensor.numel() * tensor.element_size()
        return tensor

    with FlopCounterMode(display=False) as counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        out = unet(x, t, enc).sample
        out.float().pow(2).mean().backward()
    flops = counter.get_total_flops()
    base = Path(base)
    n_weights = _meta_params(base)
    weights = n_weights * _BYTES[dtype]
    optimizer = n_lora * (4 + 4 + 8)          # fp32 weight + grad + Adam's two moments
    saved = saved * _BYTES[dtype] // 4           # autocast keeps activations in the compute dtype
    activations = saved if not checkpointing else saved // 4    # checkpointing keeps block inputs only (rough)
    return {"device": device, "dtype": dtype, "flops_per_step": int(flops), "weights_bytes": int(weights),
            "optimizer_bytes": int(optimizer), "activation_bytes": int(activations), "trainable": int(n_lora),
            "total_bytes": int(weights + optimizer + activations), "checkpointing": checkpointing}
