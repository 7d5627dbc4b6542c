"""The torch device and dtype a render runs on (``--device``, ``--dtype``; ``auto`` picks)."""

from __future__ import annotations

from cinekit.errors import UserError


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"--device {device}: CUDA is not available on this machine", hint="use --device cpu")
        if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise UserError("--device mps: MPS is not available on this machine", hint="use --device cpu")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(dtype: str, device: str):
    """CUDA: bf16 where supported, else fp16; MPS: fp16; CPU: fp32. Explicit values are checked."""
    import torch

    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
             "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype != "auto":
        if dtype not in names:
            raise UserError(f"unknown dtype {dtype!r}", hint="auto, float32, float16 or bfloat16")
        if device == "cpu" and names[dtype] == torch.float16:
            raise UserError("float16 does not run on the CPU", hint="use --dtype float32 (or bfloat16)")
        return names[dtype]
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32
