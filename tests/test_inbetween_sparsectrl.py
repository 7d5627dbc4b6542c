"""SparseCtrl on drawn keys in the diffusers clip engine, on tiny offline models.

The SparseCtrl model receives the key drawings at exactly the key frame indices (read off its
conditioning embedding's input: images there, zeros and mask 0 elsewhere); strength 0 gives
the pipeline's output without keys bit for bit; strength 1 changes the frames.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.diffusers_fixtures import *  # noqa: F403
from tests.diffusers_fixtures import make_runtime, pose_at, write_tiny_project

W, H, FRAMES, KEYS = 64, 64, 8, (0, 5)
OFF = {"ip_adapter": 0.0, "reference_attention": 0.0}


def clip_job(keys=None, **options):
    from cinekit.job import Job, JobCharacter

    t = np.arange(FRAMES) / 12.0
    pose = np.stack([[pose_at(W / 2 + 6 * np.sin(np.pi * tt), W, H)] for tt in t])
    opts = {**OFF, **options}
    if keys is not None:
        opts["keys"] = keys
    return Job(shot_id="k1", shotlist="shots/ep.yaml", kind="clip", engine="diffusers", width=W, height=H,
               fps=12.0, frames=FRAMES, seed=0, steps=2, guidance=5.0, prompt="a hero", negative="",
               characters=(JobCharacter(name="ann", spec_path="", position=0.5),), pose=pose, output="ep/k1",
               model="tiny", options=opts)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, tiny_models):
    import torch
    from diffusers import UNet2DConditionModel

    from cinekit.engines.base import create_engine
    from cinekit.testing.tiny_sparsectrl import write_tiny_sparsectrl

    root = write_tiny_project(tmp_path_factory.mktemp("keys") / "proj", tiny_models)
    config = yaml.safe_load((root / "cinekit.yaml").read_text())
    base = root / config["models"]["tiny"]["base"]
    unet = UNet2DConditionModel.from_pretrained(str(base), subfolder="unet", local_files_only=True)
    write_tiny_sparsectrl(unet, root / "models" / "sparsectrl")
    config["models"]["tiny"]["sparsectrl"] = "models/sparsectrl"
    (root / "cinekit.yaml").write_text(yaml.safe_dump(config))
    records, images = [], []
    rng = np.random.default_rng(3)
    for k, frame in enumerate(KEYS):
        image = (rng.random((H, W, 3)) * 255).astype(np.uint8)
        path = root / "shots" / f"key{k}.png"
        Image.fromarray(image).save(path)
        records.append({"at": frame / 12.0, "frame": frame, "image": f"shots/key{k}.png", "character": "ann",
                        "sha256": "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()})
        images.append(image)
    engine = create_engine("diffusers", make_runtime(root)).engine("clip")
    torch.manual_seed(0)
    baseline = engine.render(clip_job()).frames
    return engine, records, np.stack(images), baseline


def test_strength_0_is_the_baseline_bit_for_bit(keyed):
    engine, records, _, baseline = keyed
    frames = engine.render(clip_job(records, key_strength=0.0)).frames
    assert engine.key_hooks[-1].calls, "the SparseCtrl hook never ran"
    assert np.array_equal(frames, baseline)


def test_sparsectrl_sees_exactly_the_key_frames_and_changes_the_clip(keyed):
    engine, records, images, baseline = keyed
    seen = []
    model = next(iter(engine._sparsectrl.values()))
    handle = model.controlnet_cond_embedding.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    try:
        result = engine.render(clip_job(records, key_strength=1.0))
    finally:
        handle.remove()
    hook = engine.key_hooks[-1]
    assert hook.calls and all(c == list(KEYS) for c in hook.calls)
    x = seen[0]                                      # (batch x frames, 3 + mask, H, W), frame-major per batch
    assert x.shape[0] % FRAMES == 0 and x.shape[1] == 4
    for b in range(x.shape[0] // FRAMES):
        for f in range(FRAMES):
            row = x[b * FRAMES + f]
            if f in KEYS:
                want = images[KEYS.index(f)].astype(np.float32) / 255.0
                assert np.allclose(row[:3].permute(1, 2, 0).numpy(), want, atol=1e-6)
                assert bool((row[3] == 1).all())
            else:
                assert bool((row == 0).all())
    assert result.info["keys"]["frames"] == list(KEYS)
    diff = np.abs(result.frames.astype(int) - baseline).mean()
    assert diff > 0.5, diff


def test_keys_without_a_sparsectrl_model_are_a_clear_error(keyed, monkeypatch):
    from cinekit.errors import UserError

    engine, records, _, _ = keyed
    ms = engine.loader.modelset("tiny")
    monkeypatch.setattr(engine.loader, "modelset", lambda name: ms.model_copy(update={"sparsectrl": None}))
    with pytest.raises(UserError, match="SparseCtrl model"):
        engine.render(clip_job(records))


def test_scribble_mode_turns_dark_lines_into_white_on_black():
    from cinekit.inbetween.sparsectrl import condition_images

    paper = np.full((16, 16, 3), 245, np.uint8)
    paper[8, :] = (30, 30, 40)                      # one pencil line
    rgb, scribble = condition_images([paper], "rgb")[0], condition_images([paper], "scribble")[0]
    assert np.allclose(rgb, paper / 255.0)
    assert (scribble[8] == 1).all() and scribble[:8].sum() == 0 and scribble[9:].sum() == 0


def test_a_missing_sparsectrl_folder_is_a_clear_error(keyed, monkeypatch):
    from cinekit.errors import UserError

    engine, records, _, _ = keyed
    ms = engine.loader.modelset("tiny")
    monkeypatch.setattr(engine.loader, "modelset", lambda name: ms.model_copy(update={"sparsectrl": "models/nope"}))
    with pytest.raises(UserError, match="sparsectrl: cannot load models/nope"):
        engine.render(clip_job(records))


def test_check_reads_the_frame_limit_the_render_enforces(keyed):
    """`cinekit check` (inbetween.check) and the render agree: a real SparseCtrl folder passes the
    model-set check, and the check's frame limit is the loaded model's, one frame over refused."""
    import contextlib
    import dataclasses
    import types
    from pathlib import Path

    import torch

    from cinekit.engines.model_check import check_model_set
    from cinekit.errors import UserError
    from cinekit.inbetween.check import sparsectrl_frames
    from cinekit.inbetween.sparsectrl import condition_on_keys

    engine, records, _, _ = keyed
    root = Path(engine.runtime.project.root)
    ms = engine.loader.modelset("tiny")
    assert [p for p in check_model_set("tiny", ms, root) if "sparsectrl" in p.field] == []
    limit = sparsectrl_frames(root / ms.sparsectrl)
    pipe = types.SimpleNamespace(unet=types.SimpleNamespace(dtype=torch.float32))
    job = dataclasses.replace(clip_job(records), frames=limit + 1)
    with contextlib.ExitStack() as stack, pytest.raises(UserError, match=f"{limit + 1} frames; SparseCtrl conditions "
                                                                          f"at most {limit} frames"):
        condition_on_keys(stack, engine, pipe, job, "cpu")
    model = engine._sparsectrl[str((root / ms.sparsectrl).resolve())]
    assert limit == model.config.motion_max_seq_length == 32
