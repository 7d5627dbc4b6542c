"""Memory of long clips in the diffusers clip engine: what grows with the frame count, kept small.

With FreeNoise the motion modules see one window and ``frame_split`` runs the spatial layers and
the ControlNet on slices of frames; what still grew with the clip's length was the pipeline's
own handling of whole-clip tensors around them. Three pieces, each giving the same bytes:

- ``Uint8Control``: the pose frames travel as uint8, made float per ControlNet slice;
- ``ChannelsLastCond``: the channels-last copy of those frames is made per slice, not kept;
- ``decode_frames``: the VAE decodes chunk by chunk straight to uint8 frames;
- ``chunk_feed_forward``: the transformer blocks' feed-forward on slices; the motion blocks'
  (which FreeNoise runs on the whole fused clip) to one window's tokens (``motion_ff_rows``).

Measured on the tiny models (``benchmarks/bench_clip.py``): a 120-frame clip's own growth over
the loaded pipeline went from 4.1x a 16-frame one's to the ratio that bench reports.
"""

from __future__ import annotations

import contextlib

import numpy as np

from cinekit.engines import frame_split
from cinekit.errors import EngineError


class ChannelsLastCond:
    """Pre-hook of the ControlNet's conditioning embedding: the pose frames in channels-last
    layout. Its full-resolution convolutions run about twice as fast so on CPU (oneDNN) as on
    the NCHW tensor the pipeline prepares; the values are the same. Hooked on the embedding,
    not the ControlNet, so that with ``frame_split`` each slice is converted as it runs (a
    slice of a channels-last tensor has the same strides, hence the same convolution): no
    second full-clip copy of the control frames stays alive during denoising. An unsplit
    ControlNet gets the same tensor at every step; it is converted once per render."""

    def __init__(self):
        self._source = self._converted = None

    def __call__(self, module, args):
        import torch

        cond = args[0] if args else None
        if not (torch.is_tensor(cond) and cond.ndim == 4):
            return None
        if cond is self._source:
            return (self._converted, *args[1:])
        if cond.dtype == torch.uint8:      # Uint8Control's frames: the pipeline's float values
            cond = (cond.to(torch.float32) / 255.0).to(next(module.parameters()).dtype)
        converted = cond.contiguous(memory_format=torch.channels_last)
        if frame_split.current_rows.get() is None:   # the whole batch: the same tensor each step
            self._source, self._converted = cond, converted
        return (converted, *args[1:])


class Uint8Control:
    """The pose frames handed to the ControlNet as uint8, made float per slice (memory).

    ``AnimateDiffControlNetPipeline.prepare_video`` turns the frames into one float32 tensor of
    ``2 x frames`` rows (guidance), alive for the whole denoising, after up to three more float
    copies while it is made: at 512x512 that is 6 MB per frame (and the PIL images besides),
    the largest part of a long clip's own memory. Within ``on(pipe)`` the pipeline's
    ``prepare_video`` gives the same rows as uint8 (a quarter of the size), and
    ``ChannelsLastCond`` makes each slice float as the ControlNet's conditioning embedding
    runs: ``u8 / 255`` in float32, cast to the ControlNet's dtype, exactly the values diffusers'
    ``VideoProcessor`` (``do_normalize=False``) gives."""

    @staticmethod
    @contextlib.contextmanager
    def on(pipe):
        pipe.prepare_video = Uint8Control.prepare
        try:
            yield
        finally:
            del pipe.prepare_video

    @staticmethod
    def prepare(video, width, height, batch_size, num_videos_per_prompt, device, dtype,
                do_classifier_free_guidance=False, guess_mode=False):
        """``prepare_video``'s rows (repeat, guidance copy) from ``video`` (list of (H, W, 3) uint8)."""
        import torch

        frames = np.stack(video)
        if frames.dtype != np.uint8 or frames.shape[1:] != (height, width, 3):
            raise EngineError(f"control frames of {frames.shape} {frames.dtype}, expected (F, {height}, {width}, 3) uint8")
        x = torch.from_numpy(frames).permute(0, 3, 1, 2)
        x = x.repeat_interleave(batch_size if x.shape[0] == 1 else num_videos_per_prompt, dim=0).to(device)
        if do_classifier_free_guidance and not guess_mode:
            x = torch.cat([x] * 2)
        return x


def decode_frames(pipe, latents, chunk: int) -> np.ndarray:
    """``latents`` ``(1, C, F, h, w)`` -> frames ``(F, H, W, 3)`` uint8, ``chunk`` frames at a time.

    The same operations, in the same order, as the pipeline's ``decode_latents`` (scale, VAE
    decode in chunks of ``chunk``), its ``postprocess_video(output_type="np")`` and the uint8
    rounding: the same bytes. Why not let the pipeline decode: it concatenates every chunk, then
    makes float32 copies of the whole clip (cast, denormalise, numpy, stack) before the uint8
    conversion; a 120-frame clip's own memory was mostly those copies."""
    import torch

    z = 1 / pipe.vae.config.scaling_factor * latents
    b, c, f, h, w = z.shape
    z = z.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    out = None
    with torch.no_grad():
        for i in range(0, b * f, chunk):
            x = pipe.vae.decode(z[i : i + chunk]).sample                    # (k, 3, H, W)
            x = x[None].permute(0, 2, 1, 3, 4).float()                      # (1, 3, k, H, W)
            video = pipe.video_processor.postprocess_video(video=x, output_type="np")[0]
            if out is None:
                out = np.empty((b * f, *video.shape[1:]), np.uint8)
            out[i : i + len(video)] = (np.clip(video, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return out


def chunk_feed_forward(unet, frames: int | None, tokens: int = 4096, rebuilt: bool = False) -> None:
    """Run every transformer block's feed-forward on slices of the batch (memory, same math).

    Spatial blocks see ``(batch x frames, tokens, C)``: slices of ``frames`` rows (frames); motion
    blocks see ``(batch x pixels, frames, C)``: slices of ``tokens`` rows, fewer when FreeNoise hands
    them the whole fused clip (``motion_ff_rows``: one window's tokens at most). ``None`` turns it off.
    diffusers' ``enable_forward_chunking`` needs sizes that divide the batch and would also chunk
    the one-frame reference pass; this wraps ``ff.forward`` per instance (module names unchanged,
    so LoRA and IP-Adapter loading are unaffected). ``rebuilt``: whether FreeNoise is engaged
    (switching it on or off replaces the motion blocks, whose new ``ff`` need wrapping)."""
    import torch

    state = (frames, tokens, rebuilt)
    if getattr(unet, "_cinekit_ff_state", None) == state:
        return
    unet._cinekit_ff_state = state

    for name, block in unet.named_modules():
        ff = getattr(block, "ff", None)
        if ff is None or not type(block).__name__.endswith("TransformerBlock"):
            continue
        size = (tokens if "motion_modules" in name else frames) if frames else None
        if not hasattr(ff, "_cinekit_chunk"):
            inner = ff.forward

            def forward(hidden_states, *args, _ff=ff, _inner=inner, **kwargs):
                size = _ff._cinekit_chunk
                if size and getattr(_ff, "_cinekit_window", None) and hidden_states.ndim == 3:
                    size = motion_ff_rows(hidden_states.shape, size, _ff._cinekit_window)
                if not size or hidden_states.shape[0] <= size:
                    return _inner(hidden_states, *args, **kwargs)
                return torch.cat([_inner(part, *args, **kwargs) for part in hidden_states.split(size, 0)])

            ff.forward = forward
        ff._cinekit_chunk = size
        ff._cinekit_window = frames if "motion_modules" in name else None


def motion_ff_rows(shape, rows: int, window: int) -> int:
    """Rows per slice of a motion block's feed-forward input ``(batch x pixels, frames, C)``.

    With FreeNoise the windows are fused *before* the feed-forward, which then runs on every
    frame of the clip at once: its GEGLU activations (``8 x C`` floats per token) were the
    largest part of a long clip's own growth (about 0.26 MB per frame on the tiny models at
    128x128, 40 % of the UNet's). Slicing the rows so that a slice never holds more tokens
    than ``rows`` rows of one ``window`` keeps that peak the same as a one-window clip's; the
    feed-forward is per token, so the values are the same."""
    batch, seq = int(shape[0]), int(shape[1])
    if seq <= window:             # one window (or FreeNoise off): rows as before
        return rows
    return max(1, min(batch, rows) * window // seq)
