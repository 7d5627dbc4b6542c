"""Expressions in the diffusers engines (tiny offline models): words in the character's region of
the prompt only, face keypoints in the openpose control map."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from cinekit.acting.face_keypoints import draw_faces, face_keypoints
from cinekit.acting.performance import FacePerformance
from cinekit.acting.timeline import CharacterActing
from tests.diffusers_fixtures import *  # noqa: F403
from tests.diffusers_fixtures import still_job

OFF = {"ip_adapter": 0.0, "reference_attention": 0.0}


def acting(frames=1, smile=1.0, mouth=0.0, eyes=0.0):
    w = np.array([[1.0 - smile, smile]] * frames)
    return CharacterActing(("neutral", "smile"), w, FacePerformance(12.0, np.full(frames, mouth), np.full(frames, eyes)))


def smiling_job(**kw):
    job = still_job(("ann", "bob"), options=OFF, **kw)
    return dataclasses.replace(job, acting=(acting(), None))


def test_words_act_only_in_the_characters_region(shared_engine):
    """One UNet call, with and without the region prompts: at the first cross-attention layer
    (same input both times) the output inside ann's region is attention over the text encoder's
    embedding of "a hero, smiling" (recomputed here with the layer's own processor), and outside
    it, and on the unconditional row, the plain prompt's output, bit for bit."""
    from cinekit.acting import regional_prompt
    from cinekit.identity.reference_attention import grid_for_tokens, masks_at, pose_region_masks

    engine = shared_engine.engine("still")
    pipe = engine.loader.pipeline("tiny", "controlnet")
    job = smiling_job()
    specs = [shared_engine.runtime.identities.get(c.name).spec for c in job.characters]
    regions = pose_region_masks(job.pose[:1], job.width, job.height)
    rp = regional_prompt.build(pipe, job, specs, regions, True, "cpu")
    assert rp.table == [["a hero, smiling"], [""]]                 # ann's words; bob has none

    with torch.no_grad():
        plain = pipe.encode_prompt(prompt="a hero", device="cpu", num_images_per_prompt=1,
                                   do_classifier_free_guidance=False)[0]
        smiling = pipe.encode_prompt(prompt="a hero, smiling", device="cpu", num_images_per_prompt=1,
                                     do_classifier_free_guidance=False)[0]
    assert not torch.equal(plain, smiling)
    name = next(n for n in pipe.unet.attn_processors if n.endswith("attn2.processor"))
    module = pipe.unet.get_submodule(name.rsplit(".processor", 1)[0])
    seen, outs = {}, []

    def keep_input(m, a, k):
        seen.setdefault("x", (a[0] if a else k["hidden_states"]).clone())

    pre = module.register_forward_pre_hook(keep_input, with_kwargs=True)
    handle = module.register_forward_hook(lambda m, a, o: outs.append(o.clone()))
    g = torch.Generator("cpu").manual_seed(0)
    sample = torch.randn(2, 4, job.height // 8, job.width // 8, generator=g)
    ehs = torch.cat([plain, plain])
    try:
        with torch.no_grad():
            pipe.unet(sample, 10, encoder_hidden_states=ehs)
            x = seen.pop("x")
            with rp.attached(pipe.unet):
                pipe.unet(sample, 10, encoder_hidden_states=ehs)
            assert torch.equal(seen["x"], x)                       # the first layer saw the same input
            proc = module.processor
            want_plain = proc(module, x, encoder_hidden_states=ehs)
            want_smile = proc(module, x, encoder_hidden_states=torch.cat([plain, smiling]))
    finally:
        handle.remove()
        pre.remove()
    before, after = outs[0], outs[1]
    torch.testing.assert_close(before, want_plain, rtol=0, atol=0)
    h, w = grid_for_tokens(x.shape[1], job.height // 8, job.width // 8)
    m = masks_at(torch.from_numpy(regions.astype(np.float32)), h, w)[0, 0].reshape(-1).bool()   # ann
    assert 0 < m.sum() < m.numel()
    assert torch.equal(after[0], before[0])                        # unconditional row: unchanged
    assert torch.equal(after[1][~m], before[1][~m])                # outside ann's region: unchanged
    torch.testing.assert_close(after[1][m], want_smile[1][m], rtol=1e-5, atol=1e-6)   # inside: her words
    assert (after[1][m] - before[1][m]).abs().mean() > 1e-4


def test_render_with_and_without_words(shared_engine, monkeypatch):
    """The same smiling job (same control map) rendered with and without the region prompts:
    the words change the picture; a job at rest gets none."""
    from cinekit.acting import regional_prompt

    engine = shared_engine.engine("still")
    plain = engine.render(still_job(("ann", "bob"), options=OFF))
    smile = engine.render(smiling_job())
    assert smile.info["expression_prompts"] == {"texts": ["a hero, smiling"], "skipped": []}
    assert "expression_prompts" not in plain.info
    monkeypatch.setattr(regional_prompt, "build", lambda *a, **k: None)
    no_words = engine.render(smiling_job())
    assert np.array_equal(no_words.extras["control"], smile.extras["control"])
    assert not np.array_equal(no_words.frames, smile.frames)


def test_control_map_mouth_opens():
    """The openpose map gets the 70 face points; an open mouth moves the lower lip's points
    down, so the map changes below the nose (at the mouth) and not around the eyes."""
    base = still_job(("ann",), width=256, height=256)
    pose = base.pose.copy()
    pose[0, 0] = (pose[0, 0] - pose[0, 0, 0]) * 3.0 + (128, 60)    # a close-up: the face ~50 px wide
    base = dataclasses.replace(base, pose=pose)
    shut = dataclasses.replace(base, acting=(acting(smile=0.0, mouth=0.0),))
    wide = dataclasses.replace(base, acting=(acting(smile=0.0, mouth=1.0),))
    body = np.zeros((1, 256, 256, 3), np.uint8)
    a, b = draw_faces(body.copy(), shut), draw_faces(body.copy(), wide)
    assert (a > 0).sum() > 70 * 5                                  # the face points are drawn
    assert np.array_equal(draw_faces(body.copy(), base), body)     # no acting: the body-only map
    diff = np.abs(a.astype(int) - b.astype(int)).max(axis=3)[0] > 0
    ys, xs = np.nonzero(diff)
    pts = face_keypoints(pose[0, 0])
    assert diff.sum() > 20
    x0, x1 = pts[48, 0] - 6, pts[54, 0] + 6                       # the mouth: corner to corner,
    y0, y1 = pts[33, 1], pts[8, 1] + 8                             # nostrils to chin
    at_mouth = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
    assert at_mouth.mean() > 0.7, at_mouth.mean()                  # (the rest: the jaw drops a little)
    ex0, ex1 = pts[36:48, 0].min() - 4, pts[36:48, 0].max() + 4
    ey0, ey1 = pts[17:27, 1].min() - 4, pts[36:48, 1].max() + 4
    assert not diff[int(ey0):int(ey1) + 1, int(ex0):int(ex1) + 1].any()   # eyes and brows: unchanged
    lips = face_keypoints(pose[0, 0], mouth=1.0)[[57, 66]] - pts[[57, 66]]
    assert (lips[:, 1] > 3).all()                                  # lower lip moved down


def test_face_keypoints_follow_the_head():
    pose = still_job(("ann",)).pose[0, 0].copy()
    pts = face_keypoints(pose)
    assert pts.shape == (70, 2)
    eyes = pose[[14, 15]]
    np.testing.assert_allclose(pts[[68, 69]], eyes)               # pupils on the track's eyes
    assert np.all(pts[8, 1] > pts[27, 1])                          # chin below the nose bridge
    shut = face_keypoints(pose, eyes=1.0)
    assert np.isnan(shut[68:]).all()                               # shut eyes: no pupils
    lid = np.abs(shut[37, 1] - shut[41, 1])
    assert lid < 0.1 * np.abs(pts[37, 1] - pts[41, 1]) + 1e-9      # upper lid down on the lower


def test_region_prompts_follow_the_frames_of_a_clip():
    """AnimateDiff's spatial layers see ``2 x frames`` rows (unconditional frames, then
    conditional ones): row ``b`` takes frame ``b % F``'s region text, on conditional rows only,
    inside the character's region only. A stand-in processor returns each row's text vector at
    every token, so the output says which text each row and token saw."""
    from cinekit.acting.regional_prompt import RegionalPromptProcessor, RegionalPrompts

    frames, D = 3, 4
    masks = torch.zeros(frames, 1, 16, 16)
    masks[:, 0, :, :8] = 1.0                                       # the character: left half
    rp = RegionalPrompts(table=[["", "x", "y"]], embeds={"x": torch.full((1, 2, D), 1.0), "y": torch.full((1, 2, D), 2.0)},
                         masks=masks, latent_hw=(2, 2), do_cfg=True, frames=frames)

    def inner(attn, hs, ehs, mask=None, temb=None, **kw):
        return ehs[:, :1, :].expand(hs.shape[0], hs.shape[1], D).clone()

    proc = RegionalPromptProcessor(rp, "x.attn2.processor", inner)
    text = torch.full((2 * frames, 2, D), -1.0)
    out = proc(None, torch.zeros(2 * frames, 4, D), text)          # 4 tokens: a 2x2 grid
    left, right = [0, 2], [1, 3]
    assert (out[:frames] == -1).all()                              # unconditional rows: the prompt
    assert (out[frames:, right] == -1).all()                       # outside the region: the prompt
    assert (out[frames + 0, left] == -1).all()                     # frame 0 has no words
    assert (out[frames + 1, left] == 1).all() and (out[frames + 2, left] == 2).all()
