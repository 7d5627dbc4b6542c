"""The diffusers clip engine (AnimateDiff) on tiny offline models: each mechanism is asserted.

Exact frame counts at the requested fps through the real MP4 writer; FreeNoise engaged past
the motion window with every frame inside some window (observed on the motion blocks);
IP-Adapter / reference attention at 0 reproduce the baseline bit for bit and the reference
processor gets reference keys/values on every frame; ``continue_from`` pulls the first frame
towards the previous shot's last frame; refine runs over the puppet clip.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from cinekit.engines.freenoise import plan_windows, resolve_plan, uncovered
from cinekit.errors import UserError
from tests.diffusers_fixtures import *  # noqa: F403
from tests.diffusers_fixtures import make_runtime, pose_at, write_tiny_project

W, H = 64, 64
OFF = {"ip_adapter": 0.0, "reference_attention": 0.0}
CHEAP = dict(steps=1, guidance=1.0, options=OFF)   # frame counting only


def clip_job(frames: int, *, shot_id: str = "c1", fps: float = 12.0, seed: int = 0, steps: int = 2,
             guidance: float = 5.0, options=None, refine=None, names=("ann",)):
    """A clip whose characters sway left and right (pose track sampled at ``fps``)."""
    from cinekit.job import Job, JobCharacter

    n = len(names)
    xs = [W * (i + 0.5) / n for i in range(n)]
    t = np.arange(frames) / fps
    pose = np.stack([[pose_at(x + 6 * np.sin(2 * np.pi * 0.5 * tt), W, H) for x in xs] for tt in t])
    chars = tuple(JobCharacter(name=nm, spec_path="", position=x / W) for nm, x in zip(names, xs, strict=True))
    return Job(shot_id=shot_id, shotlist="shots/ep.yaml", kind="clip", engine="diffusers", width=W, height=H,
               fps=fps, frames=frames, seed=seed, steps=steps, guidance=guidance, prompt="a hero", negative="",
               characters=chars, pose=pose, output=f"ep/{shot_id}", model="tiny", refine=refine,
               options=dict(options or {}))


def render(engine, job):
    engine.check_inputs(job)
    return engine.render(job)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, tiny_models):
    """The clip engine (through the ``diffusers`` router) and a baseline rendered before any adapter loads."""
    from cinekit.engines.base import create_engine

    root = write_tiny_project(tmp_path_factory.mktemp("clip") / "proj", tiny_models)
    runtime = make_runtime(root)
    engine = create_engine("diffusers", runtime).engine("clip")
    baseline = render(engine, clip_job(12, options=OFF)).frames
    return SimpleNamespace(engine=engine, runtime=runtime, root=root, baseline=baseline)


# --------------------------------------------------------------------------- windows (pure)
@pytest.mark.parametrize("frames, length, stride, expected", [
    (12, 16, 4, [(0, 12)]),
    (16, 16, 4, [(0, 16)]),
    (24, 16, 4, [(0, 16), (4, 20), (8, 24)]),
    (25, 16, 4, [(0, 16), (4, 20), (8, 24), (9, 25)]),
    (42, 16, 4, [(0, 16), (4, 20), (8, 24), (12, 28), (16, 32), (20, 36), (24, 40), (26, 42)]),
    (120, 16, 8, [(s, s + 16) for s in range(0, 105, 8)]),
])
def test_plan_windows(frames, length, stride, expected):
    windows = plan_windows(frames, length, stride)
    assert windows == expected
    assert uncovered(frames, windows) == []
    assert all(e - s == min(length, frames) for s, e in windows)


def test_resolve_plan_rules():
    assert not resolve_plan(16, {}, 32).free_noise and resolve_plan(17, {}, 32).free_noise
    assert resolve_plan(30, {"free_noise": False}, 32).windows == ((0, 30),)
    with pytest.raises(ValueError, match="exceed"):
        resolve_plan(40, {"free_noise": False}, 32)
    with pytest.raises(ValueError, match="context_length"):
        resolve_plan(40, {"context_length": 64}, 32)
    with pytest.raises(ValueError, match="context_stride"):
        resolve_plan(40, {"context_stride": 20}, 32)
    assert uncovered(10, [(0, 4), (6, 10)]) == [4, 5]


# --------------------------------------------------------------------------- frames and fps
@pytest.mark.parametrize("duration, expected", [(1.0, 12), (3.5, 42), (10.0, 120)])
def test_frames_and_fps_through_the_mp4(clip, tmp_path, duration, expected):
    import imageio_ffmpeg

    from cinekit.render.outputs import write_result

    frames = round(duration * 12)
    kw = CHEAP if frames > 42 else {"options": OFF}
    job = clip_job(frames, **kw)
    res = render(clip.engine, job)
    assert res.frames.shape == (expected, H, W, 3) and res.frames.dtype == np.uint8
    assert res.extras["control"].shape == (expected, H, W, 3)
    assert res.masks.shape == (expected, 1, H, W)
    assert res.info["frames"] == expected and res.info["fps"] == 12.0
    assert res.info["windows"]["free_noise"] == (expected > 16)
    record = write_result(tmp_path, job, res, "mp4", engine_version=clip.engine.version)
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "ep" / record["outputs"]["main"]))
    meta = next(reader)
    assert sum(1 for _ in reader) == expected
    assert meta["fps"] == pytest.approx(12.0)
    assert meta["duration"] == pytest.approx(expected / 12.0, abs=0.1)


def test_free_noise_covers_every_frame(clip):
    """42 frames > 16: every motion block runs the planned 16-frame windows over all 42 frames."""
    from cinekit.engines.freenoise import WindowRecorder, free_noise_blocks

    recorder = WindowRecorder()
    seen = {}

    def hook(pipe, plan):
        seen["blocks"] = len(free_noise_blocks(pipe.unet))
        recorder.attach(pipe.unet)

    clip.engine.pipeline_hooks.append(hook)
    try:
        res = render(clip.engine, clip_job(42, options={"reference_attention": 0.8, "ip_adapter": 0.0}))
    finally:
        clip.engine.pipeline_hooks.remove(hook)
        recorder.detach()
    plan = res.info["windows"]
    assert plan["free_noise"] and plan["context_length"] == 16 and plan["context_stride"] == 4
    windows = [tuple(w) for w in plan["windows"]]
    assert windows == plan_windows(42, 16, 4) and uncovered(42, windows) == []
    assert seen["blocks"] > 0
    main = [c for c in recorder.calls if c["frames"] == 42]
    assert len(main) == seen["blocks"] * 2                           # every block, every step
    assert all(c["window_lengths"] == [16] * len(windows) for c in main)
    assert all(c["context_length"] == 16 and c["context_stride"] == 4 for c in main)
    # the reference pass runs the UNet on one-frame clips: one window of one frame
    refs = [c for c in recorder.calls if c["frames"] == 1]
    assert refs and all(c["window_lengths"] == [1] for c in refs)
    # a short shot afterwards disengages FreeNoise on the cached pipeline
    short = render(clip.engine, clip_job(12, options=OFF))
    assert not short.info["windows"]["free_noise"]
    assert np.array_equal(short.frames, clip.baseline)


# --------------------------------------------------------------------------- identity
def test_deterministic_and_progress(clip):
    calls = []
    job = clip_job(12, options=OFF)
    clip.engine.check_inputs(job)
    again = clip.engine.render(job, progress=lambda done, total: calls.append((done, total)))
    assert np.array_equal(again.frames, clip.baseline)
    assert calls == [(1, 2), (2, 2)]


def test_ip_adapter_zero_is_baseline_and_positive_changes(clip):
    on = render(clip.engine, clip_job(12, options={"ip_adapter": 1.0, "reference_attention": 0.0}))
    assert not np.array_equal(on.frames, clip.baseline)
    assert on.info["identity"]["ip_adapter"]["scales"] == {"ann": 1.0}
    off = render(clip.engine, clip_job(12, options=OFF)).frames        # IP-Adapter now loaded in the UNet
    assert np.array_equal(off, clip.baseline)


def test_reference_attention_zero_is_baseline_and_positive_changes(clip):
    on = render(clip.engine, clip_job(12, options={"ip_adapter": 0.0, "reference_attention": 0.8}))
    assert not np.array_equal(on.frames, clip.baseline)
    assert on.info["identity"]["reference_passes"] == 2
    assert np.array_equal(render(clip.engine, clip_job(12, options=OFF)).frames, clip.baseline)


def test_identity_attention_in_every_frame_is_what_each_character_asked_for(clip, monkeypatch):
    """Two characters, per-frame regions: at every spatial attention layer, in every frame, the
    hidden states after the processor are diffusers' IP-Adapter at each character's scale with
    its own tokens and the recomputed reference attention at its strength inside its region,
    and exactly the plain output outside every region; the reference pass of each step sees each
    character's reference latent noised to that step's timestep."""
    from tests.identity_oracle import (
        check_image_tokens,
        check_reference_noise,
        oracle_render,
        spatial_attention_layers,
    )

    opts = {"ip_adapter": {"ann": 1.0, "bob": 0.5}, "reference_attention": {"ann": 0.5, "bob": 1.0},
            "style_fidelity": {"ann": 0.25, "bob": 0.5}}
    job = clip_job(8, names=("ann", "bob"), options=opts)
    pipe = clip.engine._pipeline("tiny", "animatediff_controlnet")
    res, oracle, ctl = oracle_render(clip.engine, pipe, job, monkeypatch)
    assert res.frames.shape == (8, H, W, 3)
    # the two regions tile this 64x64 frame: no cell is nobody's, so "outside" is judged through
    # the other character's cells (its expectation holds no contribution of the first)
    oracle.assert_ok(spatial_attention_layers(pipe.unet), outside=False)
    check_image_tokens(clip.engine, pipe, job, oracle)
    levels = check_reference_noise(clip.engine, pipe, job, oracle, ctl)
    assert len({round(b, 4) for _, _, b in levels}) == job.steps


@pytest.mark.parametrize("frames", [17, 24, 32])
def test_free_noise_engages_just_past_the_window(clip, frames):
    """17, 24 and 32 frames (past the 16-frame window, within the motion module's 32 positions):
    every motion block runs the planned 16-frame windows over all frames, every frame covered."""
    from cinekit.engines.freenoise import WindowRecorder

    recorder = WindowRecorder()
    clip.engine.pipeline_hooks.append(lambda pipe, plan: recorder.attach(pipe.unet))
    try:
        res = render(clip.engine, clip_job(frames, **CHEAP))
    finally:
        clip.engine.pipeline_hooks.clear()
        recorder.detach()
    windows = plan_windows(frames, 16, 4)
    assert res.info["windows"]["free_noise"] and [tuple(w) for w in res.info["windows"]["windows"]] == windows
    assert uncovered(frames, windows) == []
    main = [c for c in recorder.calls if c["frames"] == frames]
    assert main, "no FreeNoise block ran over the clip"
    assert all(c["window_lengths"] == [16] * len(windows) for c in main)
    assert res.frames.shape == (frames, H, W, 3)


# --------------------------------------------------------------------------- continuity
def test_continue_from_conditions_on_the_previous_last_frame(clip):
    from cinekit.engines.continuity import last_frame
    from cinekit.render.outputs import write_result

    out = clip.runtime.project.output_dir
    first = clip_job(12, shot_id="a", seed=1, options=OFF)
    rendered = render(clip.engine, first)
    write_result(out, first, rendered, "mp4")
    prev = last_frame(out / "ep" / "a.mp4").astype(np.float64)

    plain = render(clip.engine, clip_job(12, shot_id="b", seed=2, options=OFF)).frames
    held = render(clip.engine, clip_job(12, shot_id="b", seed=2,
                                        options={**OFF, "continue_from": "a", "continue_strength": 1.0}))
    d_plain = np.abs(plain[0].astype(np.float64) - prev).mean()
    d_held = np.abs(held.frames[0].astype(np.float64) - prev).mean()
    assert d_held < 0.5 * d_plain, (d_held, d_plain)
    assert held.info["continue_from"]["file"] == "a.mp4" and held.info["continue_from"]["frames"] == 4
    assert held.info["continue_from"]["source"] == "latent"          # the exact latent of a's last frame
    assert np.array_equal(held.frames[0], rendered.frames[-1])        # the cut is seamless
    assert np.abs(held.frames[1].astype(np.float64) - rendered.frames[-1]).mean() < 0.5 * d_plain

    # without the cached latent (another machine, cache cleared) the MP4 frame is VAE-encoded:
    # frame 0 is then set by the previous shot, not by this shot's seed
    import shutil

    shutil.rmtree(clip.runtime.cache_dir / "clip-tails")
    opts = {**OFF, "continue_from": "a", "continue_strength": 1.0}
    b2 = render(clip.engine, clip_job(12, shot_id="b", seed=2, options=opts))
    b3 = render(clip.engine, clip_job(12, shot_id="b", seed=3, options=opts))
    assert b2.info["continue_from"]["source"] == "vae"
    free3 = render(clip.engine, clip_job(12, shot_id="b", seed=3, options=OFF)).frames
    assert np.array_equal(b2.frames[0], b3.frames[0]) and not np.array_equal(plain[0], free3[0])
    assert not np.array_equal(b2.frames[-1], b3.frames[-1])          # the pull fades after the opening


def test_continue_from_an_unrendered_shot_is_a_user_error(clip):
    with pytest.raises(UserError, match="has not been rendered yet"):
        clip.engine.check_inputs(clip_job(12, shot_id="z", options={"continue_from": "nope"}))


def test_refine_over_the_puppet_clip(clip):
    res = render(clip.engine, clip_job(12, refine=0.5, options=OFF))
    assert res.frames.shape == (12, H, W, 3)
    assert res.info["kind"] == "animatediff_v2v_controlnet" and res.info["refine"] == 0.5
    assert not np.array_equal(res.frames, clip.baseline)


# --------------------------------------------------------------------------- refusals
def test_check_inputs_rejects_clearly(clip):
    loader = clip.engine.loader
    tiny = loader.modelset("tiny")
    loader.models["xl"] = tiny.model_copy(update={"family": "sdxl"})
    loader.models["still_only"] = tiny.model_copy(update={"motion_adapter": None})
    with pytest.raises(UserError, match="SDXL"):
        clip.engine.check_inputs(dataclasses.replace(clip_job(12), model="xl"))
    with pytest.raises(UserError, match="motion_adapter"):
        clip.engine.check_inputs(dataclasses.replace(clip_job(12), model="still_only"))
    with pytest.raises(UserError, match="multiple of 8"):
        clip.engine.check_inputs(dataclasses.replace(clip_job(12), width=60))
    with pytest.raises(UserError, match="context_stride"):
        clip.engine.check_inputs(clip_job(40, options={"context_stride": 32}))
    with pytest.raises(UserError, match="exceed"):
        clip.engine.check_inputs(clip_job(40, options={"free_noise": False}))


def test_after_a_still_with_lora_and_ip_adapter(tmp_path, tiny_models):
    """A still loads a LoRA and the IP-Adapter into the shared UNet / text encoder; a clip of the
    same character still builds (from a pristine UNet copy) and the next still is unchanged."""
    import shutil

    from cinekit.engines.base import create_engine
    from tests.diffusers_fixtures import still_job

    chars = tmp_path / "proj" / "characters"
    chars.mkdir(parents=True)
    shutil.copy(tiny_models.lora, chars / "hero_lora.safetensors")
    root = write_tiny_project(tmp_path / "proj", tiny_models,
                              ann_extra="lora:\n  - {file: hero_lora.safetensors, weight: 1.0, trigger: lwz}\n")
    engine = create_engine("diffusers", make_runtime(root))
    ident = {"ip_adapter": 1.0, "reference_attention": 0.5}
    still = engine.render(still_job(("ann",), options=ident)).frames
    res = engine.render(clip_job(12, options=ident))
    assert res.frames.shape == (12, H, W, 3) and res.info["loras"] == {"hero_lora.safetensors": 1.0}
    assert np.array_equal(engine.render(still_job(("ann",), options=ident)).frames, still)


# --------------------------------------------------------------------------- memory
def test_spatial_layers_run_on_slices_of_frames_with_the_same_output(clip):
    """Past the window the spatial layers see at most ``frame_split`` batch rows at a time, and the
    clip equals the unsplit one: two characters with per-frame regions, IP-Adapter and reference
    attention on, guidance on (the slices cut across the guidance halves and the frames); the
    ControlNet runs on the same slices."""
    from cinekit.engines.frame_split import spatial_layers

    seen: list[int] = []
    control: list[int] = []

    def hook(pipe, plan):
        for layer in spatial_layers(pipe.unet):
            norm = getattr(layer, "norm1", None) or getattr(layer, "norm", None)
            if norm is not None:   # inside the layer: sees the slice, not the whole batch
                handles.append(norm.register_forward_pre_hook(lambda _m, a: seen.append(int(a[0].shape[0]))))
        handles.append(pipe.controlnet.conv_in.register_forward_pre_hook(
            lambda _m, a: control.append(int(a[0].shape[0]))))

    handles: list = []
    identity = {"ip_adapter": 0.6, "reference_attention": 0.8}
    clip.engine.pipeline_hooks.append(hook)
    try:
        whole = render(clip.engine, clip_job(20, names=("ann", "bob"), options={**identity, "frame_split": False}))
        whole_rows, whole_control, seen[:], control[:] = max(seen), max(control), [], []
        split = render(clip.engine, clip_job(20, names=("ann", "bob"), options={**identity, "frame_split": 16}))
    finally:
        clip.engine.pipeline_hooks.remove(hook)
        for h in handles:
            h.remove()
    assert whole.info["windows"]["free_noise"] and whole.info["memory"]["frame_split"] is None
    assert split.info["memory"]["frame_split"] == 16
    assert whole_rows == 40 and max(seen) == 16                      # 2 x 20 rows, then slices of 16
    assert whole_control == 40 and max(control) == 16                # the ControlNet likewise
    diff = np.abs(split.frames.astype(int) - whole.frames.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())
    # on by default past the window
    assert render(clip.engine, clip_job(17, **CHEAP)).info["memory"]["frame_split"] == 16
