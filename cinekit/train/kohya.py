"""The result files, in the layouts other tools read, written atomically.

LoRA: kohya/A1111 keys (what sd-scripts writes and A1111, ComfyUI and diffusers'
``load_lora_weights`` read): ``lora_unet_<module path, dots as underscores>.lora_down.weight``
(peft's ``lora_A``), ``.lora_up.weight`` (``lora_B``) and ``.alpha`` (a scalar: the tools
scale ``up @ down`` by ``alpha / rank``), plus sd-scripts' ``ss_*`` metadata.
Embedding: A1111's one-tensor file ``{"emb_params": (vectors, dim)}``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PREFIXES = {"unet": "lora_unet_", "text_encoder": "lora_te_"}


def kohya_name(module: str, prefix: str = "lora_unet_") -> str:
    """``down_blocks.0.attentions.0.proj_in`` -> ``lora_unet_down_blocks_0_attentions_0_proj_in``."""
    return prefix + module.replace(".", "_")


def to_kohya(peft_state: dict, alpha: float, prefix: str = "lora_unet_") -> dict:
    """peft's ``<module>.lora_A.weight`` / ``.lora_B.weight`` -> kohya's down / up / alpha keys."""
    import torch

    out = {}
    for key, value in peft_state.items():
        for part, kohya_part in ((".lora_A.weight", ".lora_down.weight"), (".lora_B.weight", ".lora_up.weight")):
            if key.endswith(part):
                name = kohya_name(key[: -len(part)], prefix)
                out[name + kohya_part] = value.detach().to("cpu", torch.float32).contiguous()
                out[name + ".alpha"] = torch.tensor(float(alpha))
                break
        else:
            raise ValueError(f"not a peft LoRA key: {key}")
    return out


def atomic_write(path: Path, write) -> Path:
    """``write(tmp_path)`` into a temporary file beside ``path``, then ``os.replace`` it into place:
    a reader sees the old file or the whole new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_lora(path: Path, peft_state: dict, *, rank: int, alpha: float, base: str, meta: dict | None = None) -> Path:
    from safetensors.torch import save_file

    tensors = to_kohya(peft_state, alpha)
    metadata = {"ss_network_module": "networks.lora", "ss_network_dim": str(rank),
                "ss_network_alpha": str(alpha), "ss_base_model_version": base,
                **{f"cinekit_{k}": str(v) for k, v in (meta or {}).items()}}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def save_embedding(path: Path, vectors, *, token: str, meta: dict | None = None) -> Path:
    """An A1111 embedding (``emb_params``; loads with ``load_textual_inversion(path, token=...)``)."""
    import torch
    from safetensors.torch import save_file

    tensors = {"emb_params": vectors.detach().to("cpu", torch.float32).contiguous()}
    metadata = {"name": token, **{f"cinekit_{k}": str(v) for k, v in (meta or {}).items()}}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
