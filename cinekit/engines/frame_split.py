"""Run the motion UNet's spatial layers and the ControlNet on chunks of frames (memory, same math).

AnimateDiff's spatial layers (resnets, spatial transformers, down/up samplers) see the whole
clip as one batch of ``2 x frames`` images (with guidance), so their activations grow with the
clip's length while FreeNoise keeps the motion modules to one window. Every one of those layers
works on each image alone (GroupNorm, convolutions and attention are per batch row), so running
them on slices of rows and concatenating gives the same result with a peak of one slice.

diffusers' ``enable_free_noise_split_inference`` does this by replacing the modules with
wrappers, which renames every parameter (LoRA / IP-Adapter loading into the cached pipeline
would no longer find them), cannot be undone, and hands each slice to the attention processors
as if it were the whole batch: cinekit's identity processors map batch row ``b`` to frame
``b % frames`` and to the guidance branch by ``b < batch / 2``. Here each layer's ``forward`` is
wrapped per instance (names unchanged, the size switchable per job) and the slice being run is
published in ``current_rows`` so those processors index the full batch (``rows``).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

# (start, stop, full batch) of the slice a split layer is running now; None outside a split.
current_rows: ContextVar[tuple[int, int, int] | None] = ContextVar("cinekit_split_rows", default=None)


def rows(batch: int) -> tuple[int, int, int]:
    """``(start, stop, full)`` of a layer input of ``batch`` rows: the running slice of the full
    batch inside a split layer, ``(0, batch, batch)`` otherwise."""
    now = current_rows.get()
    if now is not None and now[1] - now[0] == batch:
        return now
    return 0, batch, batch


def _slice(x: Any, batch: int, start: int, stop: int) -> Any:
    """``x`` with every tensor whose first dimension is the batch cut to rows ``start:stop``."""
    import torch

    if torch.is_tensor(x):
        return x[start:stop] if x.ndim >= 1 and x.shape[0] == batch else x
    if isinstance(x, (list, tuple)):
        return type(x)(_slice(v, batch, start, stop) for v in x)
    if isinstance(x, dict):
        return {k: _slice(v, batch, start, stop) for k, v in x.items()}
    return x


def _join(parts: list[Any]) -> Any:
    import torch

    first = parts[0]
    if torch.is_tensor(first):
        return torch.cat(parts)
    if isinstance(first, (tuple, list)):
        return type(first)(_join([p[i] for p in parts]) for i in range(len(first)))
    if hasattr(first, "sample"):  # Transformer2DModelOutput
        return type(first)(sample=torch.cat([p.sample for p in parts]))
    raise TypeError(f"cannot join split outputs of type {type(first).__name__}")


def spatial_layers(unet):
    """Every per-image layer of a ``UNetMotionModel``'s blocks (not the motion modules)."""
    for block in [*unet.down_blocks, unet.mid_block, *unet.up_blocks]:
        for group in ("resnets", "attentions", "downsamplers", "upsamplers"):
            yield from getattr(block, group, None) or []


def split_spatial_layers(unet, size: int | None, controlnet=None) -> None:
    """Run the spatial layers (and the ControlNet, a per-image 2-D model too) on slices of
    ``size`` batch rows (``None``: whole batch)."""
    for layer in [*spatial_layers(unet), *([controlnet] if controlnet is not None else [])]:
        if not hasattr(layer, "_cinekit_split"):
            _wrap(layer)
        layer._cinekit_split = size


def _wrap(layer) -> None:
    inner = layer.forward

    def forward(*args, **kwargs):
        size = layer._cinekit_split
        hidden = args[0] if args else kwargs.get("hidden_states", kwargs.get("input_tensor", kwargs.get("sample")))
        batch = int(hidden.shape[0])
        if not size or batch <= size or current_rows.get() is not None:
            return inner(*args, **kwargs)
        parts = []
        for start in range(0, batch, size):
            stop = min(start + size, batch)
            token = current_rows.set((start, stop, batch))
            try:
                parts.append(inner(*_slice(args, batch, start, stop), **_slice(kwargs, batch, start, stop)))
            finally:
                current_rows.reset(token)
        return _join(parts)

    layer.forward = forward
