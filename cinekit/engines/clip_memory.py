"""Memory of long clips in the diffusers clip engine: what grows with the frame count, kept small.

With FreeNoise the motion modules see one window and ``frame_split`` runs the spatial layers and
the ControlNet on slices of frames; what still grew with the clip's length was the pipeline's
own handling of whole-clip tensors around them. Three pieces, each giving the same bytes:

- ``Uint8Control``: the pose frames travel as uint8, made float per ControlNet slice;
- ``ChannelsLastCond``: the channels-last copy of those frames is made per slice, not kept;
- ``decode_frames``: the VAE decodes chunk by chunk straight to uint8 frames.

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
