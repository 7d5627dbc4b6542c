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


def _attn1(unet):
    return [(n, m) for n, m in unet.named_modules() if n.endswith("attn1") and type(m).__name__ == "Attention"]


def test_attention_uses_each_characters_reference_keys_values(monkeypatch):
    """The K/V that reach ``scaled_dot_product_attention`` in the generation pass (not the
    bank's copy): the layer's own tokens followed by ``to_k``/``to_v`` of the input this layer
    received in the reference pass, row ``c`` for character ``c``, at every attn1 layer."""
    import torch.nn.functional as F

    unet = _unet()
    ctl = _controller(masks=_halves())
    layers = _attn1(unet)
    ref_in, current, used = {}, {}, []

    def record(name):
        def pre(_m, args):
            current["layer"] = name if name.endswith("attn1") else None
            if ctl.mode == "write" and name.endswith("attn1"):
                ref_in[name] = args[0].detach().clone()
        return pre

    handles = [m.register_forward_pre_hook(record(n)) for n, m in unet.named_modules()
               if type(m).__name__ == "Attention"]
    real = F.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        if ctl.mode == "read" and current.get("layer") and k.shape[2] != q.shape[2]:
            used.append((current["layer"], q.shape[2], k, v))
        return real(q, k, v, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    sample, text = _inputs()
    try:
        with torch.no_grad(), ctl.attached(unet):
            unet(sample, 500, encoder_hidden_states=text)
    finally:
        for h in handles:
            h.remove()
    assert ctl.reference_passes == 1 and sorted(ref_in) == sorted(n for n, _ in layers)
    modules = dict(layers)
    calls: dict[str, list] = {}
    for name, n_self, k, v in used:
        calls.setdefault(name, []).append((n_self, k, v))
    assert sorted(calls) == sorted(modules)                      # every attn1 layer, one call per character
    for name, per_char in calls.items():
        attn = modules[name]
        assert len(per_char) == 2
        for c, (n_self, k, v) in enumerate(per_char):
            x_ref = ref_in[name][c:c + 1]
            heads = attn.heads
            k_ref = attn.to_k(x_ref).view(1, -1, heads, k.shape[-1]).transpose(1, 2)
            v_ref = attn.to_v(x_ref).view(1, -1, heads, v.shape[-1]).transpose(1, 2)
            assert k.shape[2] == n_self + x_ref.shape[1]
            assert torch.allclose(k[:, :, n_self:], k_ref.expand(k.shape[0], -1, -1, -1), atol=1e-6), (name, c)
            assert torch.allclose(v[:, :, n_self:], v_ref.expand(v.shape[0], -1, -1, -1), atol=1e-6), (name, c)
    # the two references are distinguishable: routing to the wrong one would show above
    first = ref_in[layers[0][0]]
    assert not torch.allclose(first[0], first[1])
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


def test_outputs_inside_and_outside_each_region_at_every_layer():
    """On the hidden states each attn1 layer returns (not a hook's copy): inside each region,
    the recomputed reference attention of that region's character at its strength (1 and 0.5);
    in the columns that belong to nobody, exactly the output without any contribution."""
    from tests.identity_oracle import Expected, IdentityOracle, spatial_attention_layers

    unet = _unet()
    masks = torch.zeros(1, 2, 8, 16)
    masks[:, 0, :, :6] = 1                                   # A: columns 0-5, B: 10-15, 6-9 nobody's
    masks[:, 1, :, 10:] = 1
    ctl = _controller(masks=masks, strength=1.0)
    ctl.characters[1].reference = 0.5
    ctl.characters[0].style_fidelity = 0.25
    expected = Expected(ip=[0.0, 0.0], reference=[1.0, 0.5], fidelity=[0.25, 0.5])
    sample, text = _inputs()
    oracle = IdentityOracle(unet, masks.numpy() > 0, expected)
    with torch.no_grad(), oracle, ctl.attached(unet):
        unet(sample, 500, encoder_hidden_states=text)
    oracle.assert_ok(spatial_attention_layers(unet), kinds=("reference",))


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
    """The SDXL UNet (added conditions): every attn1 output is the recomputed reference attention."""
    from tests.identity_oracle import Expected, IdentityOracle, spatial_attention_layers

    unet = _unet(sdxl=True)
    masks = _halves()
    masks[:, 1, :, 8:10] = 0                                  # two columns nobody's: exact-zero cells
    ctl = _controller(masks=masks)
    sample, text = _inputs(ctx=64)
    added = {"text_embeds": torch.zeros(2, 32), "time_ids": torch.tensor([[64, 128, 0, 0, 64, 128]] * 2, dtype=torch.float32)}
    oracle = IdentityOracle(unet, masks.numpy() > 0, Expected(ip=[0.0, 0.0], reference=[1.0, 1.0], fidelity=[0.5, 0.5]))
    with torch.no_grad():
        base = unet(sample, 500, encoder_hidden_states=text, added_cond_kwargs=added).sample
        with oracle, ctl.attached(unet):
            out = unet(sample, 500, encoder_hidden_states=text, added_cond_kwargs=added).sample
    oracle.assert_ok(spatial_attention_layers(unet), kinds=("reference",))
    assert not torch.equal(base, out)
