"""cinekit's reference-attention and regional IP-Adapter processors, on bare tiny UNets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cinekit.identity.reference_attention import (
    CharacterAttention,
    IdentityAttention,
    ReferenceSelfAttnProcessor,
    grid_for_tokens,
    masks_at,
    pose_region_masks,
)
from tests.diffusers_fixtures import *  # noqa: F403
from tests.diffusers_fixtures import pose_at


# --------------------------------------------------------------------------- regions
def test_pose_regions_are_disjoint_and_front_character_wins():
    pose = np.stack([pose_at(50, 128, 64), pose_at(70, 128, 64)])[None]     # overlapping figures
    back_first = pose_region_masks(pose, 128, 64, z=[0, 1])
    assert back_first.shape == (1, 2, 64, 128)
    assert not (back_first[0, 0] & back_first[0, 1]).any()
    assert back_first[0, 1, 30, 70] and not back_first[0, 0, 30, 70]
    front_first = pose_region_masks(pose, 128, 64, z=[1, 0])
    assert front_first[0, 0, 30, 60]                                          # the overlap goes to z=1
    # every visible joint lies in its owner's region unless covered by the front character
    nose = pose[0, 0, 0].astype(int)
    assert back_first[0, 0, nose[1], nose[0]] or back_first[0, 1, nose[1], nose[0]]


def test_missing_joints_give_an_empty_region():
    pose = np.full((1, 1, 18, 2), np.nan)
    assert not pose_region_masks(pose, 64, 64).any()


@pytest.mark.parametrize("n,hw", [(8 * 16, (8, 16)), (4 * 8, (4, 8)), (2 * 4, (2, 4)), (5 * 9, (5, 9))])
def test_grid_for_tokens(n, hw):
    latent = (8, 16) if n != 45 else (9, 17)
    assert grid_for_tokens(n, *latent) == hw


def test_masks_at_are_disjoint_majority():
    m = torch.zeros(1, 2, 8, 8)
    m[0, 0, :, :5] = 1
    m[0, 1, :, 5:] = 1
    small = masks_at(m, 2, 2)
    assert small[0, 0].tolist() == [[1, 0], [1, 0]] and small[0, 1].tolist() == [[0, 1], [0, 1]]
    assert (small.sum(1) <= 1).all()


# --------------------------------------------------------------------------- processors on a UNet
def _unet(sdxl=False):
    from cinekit.testing.tiny import tiny_unet

    torch.manual_seed(0)
    return tiny_unet(cross_attention_dim=64 if sdxl else 32, sdxl=sdxl).eval()


def _controller(n_chars=2, strength=1.0, masks=None, latent_hw=(8, 16), frames=1, hooks=None):
    from diffusers import DDIMScheduler

    g = torch.Generator().manual_seed(3)
    sched = DDIMScheduler()
    sched.set_timesteps(10)
    return IdentityAttention(
        characters=[CharacterAttention(reference=strength, style_fidelity=0.5) for _ in range(n_chars)],
        latent_hw=latent_hw, masks=masks, do_cfg=True, frames=frames,
        reference_latents=torch.randn(n_chars, 4, 8, 8, generator=g), reference_noise=torch.randn(n_chars, 4, 8, 8, generator=g),
        scheduler=sched, hooks=hooks or [])


def _halves(h=8, w=16, frames=1):
    m = torch.zeros(frames, 2, h, w)
    m[:, 0, :, : w // 2] = 1
    m[:, 1, :, w // 2:] = 1
    return m


def _inputs(batch=2, h=8, w=16, ctx=32):
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, 4, h, w, generator=g), torch.randn(batch, 77, ctx, generator=g)


def test_processor_receives_the_reference_keys_values():
    unet = _unet()
    written, received = {}, {}
    ctl = _controller(hooks=[lambda i: received.setdefault((i["layer"], i["character"]), i["k_ref"])])
    sample, text = _inputs()
    with torch.no_grad(), ctl.attached(unet):
        # capture the bank as the reference pass leaves it
        orig = ctl.write_references

        def spy(*a, **k):
            orig(*a, **k)
            written.update({n: kv[0].clone() for n, kv in ctl.bank.items()})
        ctl.write_references = spy
        unet(sample, 500, encoder_hidden_states=text)
    attn1 = [n for n in unet.attn_processors if n.endswith("attn1.processor")]
    assert sorted(written) == sorted(attn1) and ctl.reference_passes == 1
    for name in attn1:
        for c in (0, 1):
            assert torch.equal(received[(name, c)], written[name][c:c + 1])
    # the reference pass uses the reference latents: 2 characters x (8*8 tokens at level 0)
    assert written[attn1[0]].shape[:2] == (2, 64)
    # detached: the UNet's own processors are back, no hook left
    assert not any(isinstance(p, ReferenceSelfAttnProcessor) for p in unet.attn_processors.values())
    assert not unet._forward_pre_hooks


def test_detached_unet_is_bit_identical_to_before():
    unet = _unet()
    sample, text = _inputs()
    with torch.no_grad():
        before = unet(sample, 500, encoder_hidden_states=text).sample
        with _controller().attached(unet):
            during = unet(sample, 500, encoder_hidden_states=text).sample
        after = unet(sample, 500, encoder_hidden_states=text).sample
    assert torch.equal(before, after) and not torch.equal(before, during)


def test_contributions_are_zero_outside_each_region_at_every_layer():
    unet = _unet()
    seen = set()

    def hook(info):
        c, m = info["contribution"], info["mask"]
        assert (c * (1 - m)).abs().max().item() == 0.0
        assert (c * m).abs().sum().item() > 0
        seen.add((info["layer"], info["character"]))

    ctl = _controller(masks=_halves(), hooks=[hook])
    sample, text = _inputs()
    with torch.no_grad(), ctl.attached(unet):
        unet(sample, 500, encoder_hidden_states=text)
    attn1 = [n for n in unet.attn_processors if n.endswith("attn1.processor")]
    assert seen == {(n, c) for n in attn1 for c in (0, 1)}


def test_perturbing_a_reference_changes_a_layer_only_inside_its_region():
    """One attn1 layer, same input, A's reference keys/values perturbed: the output moves only in A's region."""
    unet = _unet()
    name = next(n for n in unet.attn_processors if n.endswith("attn1.processor"))
    attn = unet.get_submodule(name.removesuffix(".processor"))
    ctl = _controller(masks=_halves())
    ctl.mode = "read"
    proc = ReferenceSelfAttnProcessor(ctl, name, attn.processor)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 8 * 16, attn.to_q.in_features, generator=g)
    k_ref = torch.randn(2, 64, attn.to_k.out_features, generator=g)
    v_ref = torch.randn(2, 64, attn.to_v.out_features, generator=g)
    with torch.no_grad():
        ctl.bank[name] = (k_ref, v_ref)
        out1 = proc(attn, x)
        k2, v2 = k_ref.clone(), v_ref.clone()
        k2[0] += torch.randn(k2[0].shape, generator=g)
        v2[0] += torch.randn(v2[0].shape, generator=g)
        ctl.bank[name] = (k2, v2)
        out2 = proc(attn, x)
    diff = (out1 - out2).abs().sum(-1).view(2, 8, 16)
    assert diff[:, :, 8:].max().item() == 0.0          # B's half: untouched
    assert diff[:, :, :8].min().item() > 0               # A's half: every token moves


def test_video_batches_use_per_frame_masks():
    """AnimateDiff's spatial layers see batch = 2 x frames: batch b is frame b % frames."""
    masks = _halves(frames=3)
    masks[1] = masks[1].flip(-1)                           # frame 1: characters swapped
    ctl = _controller(masks=masks, frames=3)
    m = ctl.layer_masks(8 * 16, 6, "cpu", torch.float32)  # (6, C, N, 1)
    assert m.shape == (6, 2, 128, 1)
    for b in range(6):
        assert torch.equal(m[b], m[b % 3])
    assert not torch.equal(m[0], m[1])
    w = ctl.branch_weights(6, 0.8, 0.25, "cpu", torch.float32)
    assert w[:3].flatten().tolist() == pytest.approx([0.6] * 3) and w[3:].flatten().tolist() == pytest.approx([0.8] * 3)


def test_sdxl_unet_with_reference_attention():
    unet = _unet(sdxl=True)
    seen = set()
    ctl = _controller(masks=_halves(), hooks=[lambda i: seen.add(i["layer"])])
    sample, text = _inputs(ctx=64)
    added = {"text_embeds": torch.zeros(2, 32), "time_ids": torch.tensor([[64, 128, 0, 0, 64, 128]] * 2, dtype=torch.float32)}
    with torch.no_grad():
        base = unet(sample, 500, encoder_hidden_states=text, added_cond_kwargs=added).sample
        with ctl.attached(unet):
            out = unet(sample, 500, encoder_hidden_states=text, added_cond_kwargs=added).sample
    assert not torch.equal(base, out)
    assert seen == {n for n in unet.attn_processors if n.endswith("attn1.processor")}
