"""What keeps a long clip's memory from growing with its length (``cinekit.engines.clip_memory``).

Each piece must give the bytes diffusers' own path gives (the clip engine's bit-for-bit tests
rely on it), and must actually be what runs: the ControlNet receives uint8 frames and its
conditioning embedding float slices, the VAE decodes in chunks straight to uint8.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.diffusers_fixtures import *  # noqa: F403
from tests.diffusers_fixtures import make_runtime, write_tiny_project
from tests.test_diffusers_clip import clip_job, render


@pytest.fixture(scope="module")
def engine(tmp_path_factory, tiny_models):
    from cinekit.engines.base import create_engine

    root = write_tiny_project(tmp_path_factory.mktemp("clipmem") / "proj", tiny_models)
    return create_engine("diffusers", make_runtime(root)).engine("clip")


def _pipe(engine):
    return engine._pipeline("tiny", "animatediff_controlnet")


def test_decode_frames_gives_the_pipelines_bytes_chunk_by_chunk(engine):
    """``decode_frames`` = diffusers' ``decode_latents`` + ``postprocess_video("np")`` + the uint8
    rounding, on latents whose chunks (3 frames) do not divide the clip (7 frames)."""
    import torch

    from cinekit.engines.clip_memory import decode_frames

    pipe = _pipe(engine)
    g = torch.Generator().manual_seed(0)
    latents = torch.randn((1, pipe.vae.config.latent_channels, 7, 8, 8), generator=g) * 3.0
    calls: list[int] = []
    handle = pipe.vae.decoder.register_forward_pre_hook(lambda _m, a: calls.append(int(a[0].shape[0])))
    try:
        ours = decode_frames(pipe, latents, 3)
    finally:
        handle.remove()
    with torch.no_grad():
        video = pipe.video_processor.postprocess_video(pipe.decode_latents(latents, 3), output_type="np")
    theirs = (np.clip(video[0], 0.0, 1.0) * 255.0).round().astype(np.uint8)
    assert ours.dtype == np.uint8 and ours.shape == theirs.shape == (7, 64, 64, 3)
    assert np.array_equal(ours, theirs)
    assert calls == [3, 3, 1]                                  # chunks, never the whole clip
    assert 0 < ours.std()                                      # not a blank decode


def test_uint8_control_frames_become_the_pipelines_float_values(engine):
    """``Uint8Control.prepare`` + ``ChannelsLastCond`` give the conditioning embedding exactly the
    float tensor diffusers' ``prepare_video`` makes from PIL images (guidance rows included)."""
    import torch
    from PIL import Image

    from cinekit.engines.clip_memory import ChannelsLastCond, Uint8Control

    pipe = _pipe(engine)
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    kw = dict(width=64, height=64, batch_size=5, num_videos_per_prompt=1, device=torch.device("cpu"),
              dtype=torch.float32, do_classifier_free_guidance=True)
    theirs = pipe.prepare_video([Image.fromarray(f) for f in frames], **kw)
    ours = Uint8Control.prepare(list(frames), **kw)
    assert ours.dtype == torch.uint8 and ours.shape == theirs.shape == (10, 3, 64, 64)
    (got,) = ChannelsLastCond()(pipe.controlnet.controlnet_cond_embedding, (ours,))
    assert got.dtype == torch.float32 and got.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(got, theirs)


def test_a_long_clip_runs_on_uint8_control_and_chunked_decode(engine):
    """In a real 20-frame render (FreeNoise, frame split 16): the ControlNet is handed uint8
    frames, its conditioning embedding float slices of at most 16 rows, the VAE chunks of 8; and
    ``prepare_video`` is the pipeline's own again afterwards."""
    import torch

    pipe = _pipe(engine)
    given, embedded, decoded = [], [], []

    def hook(p, _plan):
        handles.append(p.controlnet.register_forward_pre_hook(
            lambda _m, a, k: given.append(k["controlnet_cond"].dtype), with_kwargs=True))
        handles.append(p.controlnet.controlnet_cond_embedding.conv_in.register_forward_pre_hook(
            lambda _m, a: embedded.append((a[0].dtype, int(a[0].shape[0])))))
        handles.append(p.vae.decoder.register_forward_pre_hook(lambda _m, a: decoded.append(int(a[0].shape[0]))))

    handles: list = []
    engine.pipeline_hooks.append(hook)
    try:
        res = render(engine, clip_job(20, steps=1, guidance=5.0, options={"ip_adapter": 0.0, "reference_attention": 0.0}))
    finally:
        engine.pipeline_hooks.remove(hook)
        for h in handles:
            h.remove()
    assert res.frames.shape == (20, 64, 64, 3) and res.frames.dtype == np.uint8
    assert given and set(given) == {torch.uint8}
    assert embedded and {d for d, _ in embedded} == {torch.float32} and max(n for _, n in embedded) == 16
    assert decoded == [8, 8, 4]
    assert "prepare_video" not in pipe.__dict__


def test_motion_feed_forward_never_sees_more_tokens_than_one_window(engine):
    """With FreeNoise the windows are fused before each motion block's feed-forward, which then
    ran on every frame of the clip (its GEGLU activations were the largest per-frame part of a
    long clip's own memory). In a real 40-frame render (window 16) the GEGLU of every motion
    block receives at most one window's tokens (rows x frames <= batch rows x 16), the clip's
    frames do reach it (sliced by rows, not by frames), and the frames are the bytes of the same
    render with forward chunking off."""
    from cinekit.engines.clip_memory import motion_ff_rows

    assert motion_ff_rows((512, 120, 8), 4096, 16) == 68          # 512 x 16 // 120
    assert motion_ff_rows((512, 16, 8), 4096, 16) == 4096          # one window: rows as before
    assert motion_ff_rows((8192, 120, 8), 4096, 16) == 546         # rows cap first, then the window

    seen: list[tuple[int, int]] = []

    def hook(p, _plan):
        for name, module in p.unet.named_modules():
            if "motion_modules" in name and name.endswith("ff.net.0"):
                handles.append(module.register_forward_pre_hook(
                    lambda _m, a: seen.append((int(a[0].shape[0]), int(a[0].shape[1])))))

    handles: list = []
    opts = {"ip_adapter": 0.0, "reference_attention": 0.0}
    engine.pipeline_hooks.append(hook)
    try:
        res = render(engine, clip_job(40, steps=1, guidance=5.0, options=opts))
    finally:
        engine.pipeline_hooks.remove(hook)
        for h in handles:
            h.remove()
    batch = 2 * 8 * 8                                   # guidance x latent pixels of 64x64
    assert res.info["windows"]["free_noise"] and res.info["memory"]["forward_chunking"]
    assert seen and any(f == 40 for _, f in seen)       # the fused full-clip feed-forward ran
    assert max(r * f for r, f in seen) <= batch * 16    # ... on one window's tokens at most
    whole = render(engine, clip_job(40, steps=1, guidance=5.0, options={**opts, "forward_chunking": False}))
    assert np.array_equal(res.frames, whole.frames)
