"""Independent oracles for cinekit's identity attention, read on what the UNet computes.

Forward hooks on every spatial attention module of a UNet recompute, from the module's own
inputs, what its output must be, and compare it with the output the module returned (the
hidden states after cinekit's processor, not a copy a hook was given):

- ``attn2`` (IP-Adapter): diffusers' own ``IPAdapterAttnProcessor2_0`` at the scale the job
  asked for, fed only the image tokens of the character whose region holds the token; plain
  cross-attention (scale 0) where no character's region lies.
- ``attn1`` (reference attention): self-attention over the layer's tokens plus the reference
  tokens of the character whose region holds the token, the reference K/V recomputed with the
  layer's ``to_k``/``to_v`` from the input this layer received in the reference pass (row ``c``
  = character ``c``), mixed in with ``strength`` on the conditional half of the batch and
  ``strength * (1 - style_fidelity)`` on the unconditional half; plain self-attention elsewhere.

Tokens whose cell lies wholly inside one character's region (at image resolution, block
means: no cinekit helper) must match that character's expectation; tokens wholly outside every
active region must equal the plain output exactly (bit for bit). Cells cut by a region edge
are not judged. The reference pass (a UNet call nested inside the main one) is recorded: its
``sample`` and timestep, per main call, for the noise-level check.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Expected:
    """What the job asked for, per character (the oracle's only source of strengths)."""

    ip: list[float]
    reference: list[float]
    fidelity: list[float]
    cfg: bool = True


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _to_out(attn, x: torch.Tensor) -> torch.Tensor:
    return attn.to_out[1](attn.to_out[0](x)) / attn.rescale_output_factor


@dataclass
class IdentityOracle:
    """Hooks on ``unet``; ``regions`` ``(F, C, H, W)`` bool at image resolution, ``image_hw`` (H, W)."""

    unet: Any
    regions: np.ndarray
    expected: Expected
    ip_processors: dict[str, Any] = field(default_factory=dict)
    rtol: float = 1e-4
    depth: int = 0
    ref_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    passes: list[dict[str, Any]] = field(default_factory=list)       # one per main UNet call
    inside: dict[tuple[str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    outside: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    worst: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    failures: list[str] = field(default_factory=list)
    image_embeds: list[torch.Tensor] = field(default_factory=list)
    _handles: list[Any] = field(default_factory=list)

    # ---- attaching
    def attach(self) -> "IdentityOracle":
        self._handles.append(self.unet.register_forward_pre_hook(self._enter, with_kwargs=True))
        self._handles.append(self.unet.register_forward_hook(self._leave))
        for name, module in self.unet.named_modules():
            if "motion_modules" in name or type(module).__name__ != "Attention":
                continue
            if name.endswith("attn1") or name.endswith("attn2"):
                self._handles.append(module.register_forward_hook(self._layer(name), with_kwargs=True))
        return self

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self):
        return self.attach()

    def __exit__(self, *exc):
        self.detach()

    # ---- UNet calls: the main pass (depth 1) and the reference pass nested in it (depth 2)
    def _enter(self, _module, args, kwargs):
        self.depth += 1
        sample = args[0] if args else kwargs["sample"]
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        t = float(torch.as_tensor(t).flatten()[0])
        if self.depth == 1:
            self.passes.append({"t": t, "reference_sample": None, "reference_t": None})
            added = kwargs.get("added_cond_kwargs") or {}
            if "image_embeds" in added:
                self.image_embeds.append(added["image_embeds"][0].detach().clone())
        elif self.depth == 2:
            self.ref_inputs.clear()
            self.passes[-1].update(reference_sample=sample.detach().clone(), reference_t=t)

    def _leave(self, _module, _args, _output):
        self.depth -= 1

    # ---- token classes at a layer
    def _coverage(self, n_tokens: int, batch: int) -> torch.Tensor:
        """``(batch, C, n_tokens)`` share of each token's cell inside each character's region."""
        frames, chars, H, W = self.regions.shape
        for d in (2 ** i for i in range(10)):         # image pixels per token cell, per side
            if H % d == 0 and W % d == 0 and (H // d) * (W // d) == n_tokens:
                m = torch.from_numpy(self.regions.astype(np.float32)).view(frames * chars, 1, H, W)
                cov = F.avg_pool2d(m, d).view(frames, chars, n_tokens)
                return cov[torch.arange(batch) % frames]
        raise AssertionError(f"no grid for {n_tokens} tokens of a {H}x{W} image")

    def _judge(self, kind: str, name: str, out: torch.Tensor, plain: torch.Tensor,
               per_char: dict[int, torch.Tensor]) -> None:
        """``out``/``plain``/``per_char[c]``: ``(B, N, D)``. Inside c's cells: ``per_char[c]``;
        outside every active character's cells: ``plain`` bit for bit."""
        cov = self._coverage(out.shape[1], out.shape[0])
        active = list(per_char)
        free = (cov[:, active] == 0).all(dim=1)                                    # (B, N)
        if free.any():
            if not torch.equal(out[free], plain[free]):
                diff = (out[free] - plain[free]).abs().max().item()
                self.failures.append(f"{kind} {name}: output differs from no contribution outside every "
                                     f"region (max |diff| {diff:.3g})")
            self.outside[(kind, name)] += int(free.sum())
        for c, expect in per_char.items():
            sel = cov[:, c] == 1
            if not sel.any():
                continue
            err = (out[sel] - expect[sel]).abs().max().item()
            scale = expect[sel].abs().max().item() + 1e-6
            self.worst[(kind, name)] = max(self.worst[(kind, name)], err / scale)
            if err > self.rtol * scale:
                self.failures.append(f"{kind} {name}: character {c}: output differs from the expectation "
                                     f"inside its region (max |diff| {err:.3g}, |expected| {scale:.3g})")
            self.inside[(kind, name, c)] += int(sel.sum())

    def _layer(self, name: str):
        def hook(attn, args, kwargs, output):
            x = args[0] if args else kwargs["hidden_states"]
            if self.depth == 2 and name.endswith("attn1"):
                self.ref_inputs[name] = x.detach().clone()
            elif self.depth == 1 and x.ndim == 3:
                with torch.no_grad():
                    if name.endswith("attn1"):
                        self._check_reference(name, attn, x, output)
                    else:
                        self._check_ip(name, attn, x, kwargs, output)
        return hook

    # ---- attn1: reference attention
    def _check_reference(self, name, attn, x, out):
        e = self.expected
        if not any(s > 0 for s in e.reference):
            return
        heads, batch = attn.heads, x.shape[0]
        q, k, v = _heads(attn.to_q(x), heads), _heads(attn.to_k(x), heads), _heads(attn.to_v(x), heads)
        plain = _merge(F.scaled_dot_product_attention(q, k, v)).to(q.dtype)
        ref_x = self.ref_inputs.get(name)
        if ref_x is None:
            self.failures.append(f"reference {name}: no reference pass reached this layer")
            return
        per_char = {}
        for c, s in enumerate(e.reference):
            if s <= 0:
                continue
            kr = _heads(attn.to_k(ref_x[c:c + 1]).expand(batch, -1, -1), heads)
            vr = _heads(attn.to_v(ref_x[c:c + 1]).expand(batch, -1, -1), heads)
            both = _merge(F.scaled_dot_product_attention(q, torch.cat([k, kr], 2), torch.cat([v, vr], 2))).to(q.dtype)
            w = torch.full((batch, 1, 1), float(s), dtype=x.dtype)
            if e.cfg:
                w[: batch // 2] = s * (1.0 - e.fidelity[c])
            per_char[c] = _to_out(attn, plain + (both - plain) * w)
        self._judge("reference", name, out, _to_out(attn, plain), per_char)

    # ---- attn2: IP-Adapter
    def _check_ip(self, name, attn, x, kwargs, out):
        e = self.expected
        ehs = kwargs.get("encoder_hidden_states")
        if not any(s > 0 for s in e.ip) or not isinstance(ehs, tuple):
            return
        text, ip = ehs[0], ehs[1][0]                                       # ip: (B, C, tokens, dim)
        proc = self.ip_processors[name + ".processor"]
        saved = proc.scale

        def diffusers(scale: float, c: int) -> torch.Tensor:
            proc.scale = [scale]
            try:
                return proc(attn, x, encoder_hidden_states=(text, [ip[:, c:c + 1]]),
                            attention_mask=kwargs.get("attention_mask"))
            finally:
                proc.scale = saved

        per_char = {c: diffusers(s, c) for c, s in enumerate(e.ip) if s > 0}
        self._judge("ip_adapter", name, out, diffusers(0.0, 0), per_char)

    # ---- after the render
    def assert_ok(self, unet_layers: list[str], kinds=("reference", "ip_adapter"), outside: bool = True) -> None:
        """No failure; every layer judged inside every active character's region and (``outside``)
        on tokens outside all of them."""
        assert not self.failures, "\n".join(self.failures[:12])
        e = self.expected
        for kind in kinds:
            strengths = e.reference if kind == "reference" else e.ip
            suffix = "attn1" if kind == "reference" else "attn2"
            for layer in (n for n in unet_layers if n.endswith(suffix)):
                for c, s in enumerate(strengths):
                    if s > 0:
                        assert self.inside[(kind, layer, c)] > 0, f"{kind} {layer}: no token inside character {c}"
                assert self.outside[(kind, layer)] > 0 or not outside, f"{kind} {layer}: no token outside every region"


def spatial_attention_layers(unet) -> list[str]:
    return [n for n, m in unet.named_modules() if type(m).__name__ == "Attention" and "motion_modules" not in n
            and (n.endswith("attn1") or n.endswith("attn2"))]


def noise_levels(passes: list[dict[str, Any]], x0: torch.Tensor, noise: torch.Tensor) -> list[tuple[float, float, float]]:
    """Per main UNet call: ``(t, a, b)`` fitted by least squares so that the reference pass's
    sample is ``a * x0 + b * noise`` (per character pooled)."""
    out = []
    for p in passes:
        s = p["reference_sample"].reshape(x0.shape[0], -1).double()
        basis = torch.stack([x0.reshape(x0.shape[0], -1).double(), noise.reshape(noise.shape[0], -1).double()], -1)
        sol = torch.linalg.lstsq(basis.reshape(-1, 2), s.reshape(-1, 1)).solution.flatten()
        out.append((p["t"], float(sol[0]), float(sol[1])))
    return out


def oracle_render(engine, pipe, job, monkeypatch):
    """Render ``job`` under an ``IdentityOracle`` on the pipeline's UNet; returns (result, oracle, controller)."""
    from cinekit.engines import diffusers_common as common
    from cinekit.identity.reference_attention import pose_region_masks

    procs = engine.loader.ip_adapter(job.model, pipe)["processors"]
    names = [c.name for c in job.characters]

    def per(key, default):
        value = job.options.get(key, default)
        return [float(value.get(n, default) if isinstance(value, dict) else value) for n in names]

    expected = Expected(ip=per("ip_adapter", 0.0), reference=per("reference_attention", 0.0),
                        fidelity=per("style_fidelity", 0.5), cfg=job.guidance > 1)
    regions = pose_region_masks(job.pose, job.width, job.height, [c.z for c in job.characters])
    captured = {}
    real = common.identity_attention

    def spy(*args, **kwargs):
        ctl, info = real(*args, **kwargs)
        captured["ctl"] = ctl
        return ctl, info

    monkeypatch.setattr(common, "identity_attention", spy)
    oracle = IdentityOracle(pipe.unet, regions, expected, procs)
    with oracle:
        engine.check_inputs(job)
        res = engine.render(job)
    monkeypatch.setattr(common, "identity_attention", real)
    assert np.array_equal(res.masks, regions)
    return res, oracle, captured.get("ctl")


def check_reference_noise(engine, pipe, job, oracle: IdentityOracle, ctl) -> list[tuple[float, float, float]]:
    """The reference pass of every main UNet call ran on each character's own reference latent
    (encoded here, independently) noised to that call's timestep: ``sqrt(a_t) x0 + sqrt(1 - a_t) n``.
    Returns the fitted ``(t, a, b)`` per step (the noise level actually used)."""
    from cinekit.identity.embeddings import ReferenceLatents

    ids = [engine.runtime.identities.get(c.name) for c in job.characters]
    unit = pipe.vae_scale_factor * 2 ** (len(pipe.unet.config.block_out_channels) - 1)
    side = max(unit, min(job.width, job.height) // unit * unit)
    latents = ReferenceLatents(None, pipe.vae, "oracle")
    x0 = torch.cat([latents.latent(i.reference_for(c.view), (side, side)) for i, c in zip(ids, job.characters)])
    assert torch.equal(ctl.reference_latents, x0), "reference latents are not each character's own reference"
    noise = ctl.reference_noise
    alphas = pipe.scheduler.alphas_cumprod
    levels = noise_levels(oracle.passes, x0, noise)
    assert len(levels) == job.steps, f"{len(levels)} reference passes for {job.steps} steps"
    for (t, a, b), p in zip(levels, oracle.passes, strict=True):
        ac = alphas[int(t)].double()
        assert p["reference_t"] == t, f"reference pass at t={p['reference_t']}, main call at t={t}"
        sample = p["reference_sample"].reshape(x0.shape).double()
        expect = ac.sqrt() * x0.double() + (1 - ac).sqrt() * noise.double()
        assert torch.allclose(sample, expect, atol=1e-5), f"step t={t}: reference sample is not x0 noised to t"
        assert abs(a - float(ac.sqrt())) < 1e-4 and abs(b - float((1 - ac).sqrt())) < 1e-4, (t, a, b)
    return levels


def check_image_tokens(engine, pipe, job, oracle: IdentityOracle) -> None:
    """The image embeddings reaching the UNet: character ``c``'s slot holds the embedding of
    character ``c``'s own references (encoded here), in every call (conditional half)."""
    from cinekit.identity.embeddings import ReferenceEncoder

    ip = engine.loader.ip_adapter(job.model, pipe)
    enc = ReferenceEncoder(None, ip["image_encoder"], ip["feature_extractor"], "oracle", ip["hidden_states"])
    own = [enc.character(engine.runtime.identities.get(c.name), c.view)[0] for c in job.characters]
    assert oracle.image_embeds, "no image embeddings reached the UNet"
    for emb in oracle.image_embeds:
        for c, e in enumerate(own):
            assert torch.allclose(emb[-1, c].float(), e[0].float(), atol=1e-5), f"slot {c} holds another embedding"
