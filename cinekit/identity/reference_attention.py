"""Identity attention: cinekit's reference-only attention and regional IP-Adapter processors.

Reference attention (the "reference-only" idea: ControlNet's reference preprocessor, Zhang
et al. 2023): before each UNet call, a *reference pass* runs the UNet on each character's
reference latent, noised to the same timestep, and every spatial self-attention layer (attn1)
stores its keys and values. In the generation pass each attn1 layer attends to its own tokens
plus one character's reference tokens; the difference to plain self-attention is that
character's contribution, added with its ``reference_attention`` strength and masked to its
region. ``style_fidelity`` blends the unconditional half of classifier-free guidance back to
plain attention (1 = the reference only drives the conditional branch, so guidance pushes
towards it; 0 = both branches see it).

Regional IP-Adapter: the cross-attention layers (attn2) keep diffusers' IP-Adapter weights
(``to_k_ip``/``to_v_ip`` of the processor that ``load_ip_adapter`` installed: wrapped, not
replaced) but each character's image tokens are attended separately and their output is
multiplied by the character's exact region mask at the layer's resolution, so outside the
region the contribution is exactly zero (diffusers' own masks are bicubic-resampled and leak).

Shapes: region masks are ``(frames, characters, H, W)`` at image or latent resolution; an
attention layer with ``N`` tokens gets them area-resampled to its grid and made disjoint
(each cell to the character covering most of it). Batch element ``b`` is frame ``b % frames``
and, with guidance, the first half of the batch is the unconditional branch: the same layout
for a still (frames = 1) and for AnimateDiff's spatial layers (batch = 2 x frames).

Strength 0 must be bit-identical to no reference: callers do not attach at all then.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

Hook = Callable[[dict[str, Any]], None]


# --------------------------------------------------------------------------- regions
def pose_region_masks(pose: np.ndarray, width: int, height: int, z: list[int] | None = None,
                      margin: float = 0.18) -> np.ndarray:
    """Each character's region from its pose: ``(F, C, 18, 2)`` pixels -> ``(F, C, H, W)`` bool.

    The box around the visible joints grows by ``margin`` x its height on each side (half as
    much below the feet) and twice that above the nose (hair, hats). Overlaps go to the
    character drawn in front (higher ``z``; later wins ties), so regions are disjoint.
    """
    frames, chars = pose.shape[:2]
    z = list(z) if z is not None else [0] * chars
    order = sorted(range(chars), key=lambda i: (z[i], i))
    out = np.zeros((frames, chars, height, width), bool)
    for f in range(frames):
        owner = np.full((height, width), -1, np.int64)
        for c in order:
            pts = pose[f, c]
            pts = pts[np.isfinite(pts).all(axis=1)]
            if len(pts) == 0:
                continue
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            h = max(y1 - y0, 0.25 * height / max(chars, 1), 8.0)
            m = margin * h
            xa, xb = int(math.floor(x0 - m)), int(math.ceil(x1 + m))
            ya, yb = int(math.floor(y0 - 2 * m)), int(math.ceil(y1 + 0.5 * m))
            xa, ya = max(xa, 0), max(ya, 0)
            xb, yb = min(xb, width), min(yb, height)
            if xb > xa and yb > ya:
                owner[ya:yb, xa:xb] = c
        for c in range(chars):
            out[f, c] = owner == c
    return out


def grid_for_tokens(n_tokens: int, height: int, width: int) -> tuple[int, int]:
    """The (h, w) grid of a UNet level with ``n_tokens`` tokens, for a latent of ``height`` x ``width``."""
    for level in range(8):
        s = 2 ** level
        h, w = -(-height // s), -(-width // s)
        if h * w == n_tokens:
            return h, w
    raise ValueError(f"no UNet level of a {height}x{width} latent has {n_tokens} tokens")


def masks_at(masks: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``(F, C, H, W)`` float masks -> disjoint 0/1 masks ``(F, C, h, w)`` (majority of area)."""
    if masks.shape[-2:] == (h, w):
        cov = masks
    else:
        cov = F.interpolate(masks, size=(h, w), mode="area")
    best = cov.argmax(dim=1, keepdim=True)
    onehot = torch.zeros_like(cov).scatter_(1, best, 1.0)
    return onehot * (cov.gather(1, best) >= 0.5).to(cov.dtype)


# --------------------------------------------------------------------------- settings
@dataclass
class CharacterAttention:
    """One character's identity attention settings in a job."""

    reference: float = 0.0          # reference-attention strength (0 = off)
    style_fidelity: float = 0.5
    ip_scale: float = 0.0           # IP-Adapter scale (0 = off)


@dataclass
class IdentityAttention:
    """Per-job controller shared by the processors of one UNet.

    ``masks``: ``(frames, characters, H, W)`` 0/1 (image or latent resolution); ``None`` = whole frame.
    ``latent_hw``: the generation latent's (h, w), to map token counts to grids.
    ``reference_latents``: ``(characters, 4, h_r, w_r)`` scaled VAE latents (any size) and
    ``reference_noise`` of the same shape; ``scheduler`` noises them to each step's timestep.
    ``hooks`` receive a dict per contribution (tests: what each processor saw and added).
    """

    characters: list[CharacterAttention]
    latent_hw: tuple[int, int]
    masks: torch.Tensor | None = None
    do_cfg: bool = True
    frames: int = 1
    reference_latents: torch.Tensor | None = None
    reference_noise: torch.Tensor | None = None
    scheduler: Any = None
    ip_processors: dict[str, Any] = field(default_factory=dict)   # name -> diffusers IP processor
    hooks: list[Hook] = field(default_factory=list)
    mode: str = "off"                                              # off | write | read
    bank: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    reference_passes: int = 0
    _mask_cache: dict[tuple, torch.Tensor] = field(default_factory=dict)
    _saved: dict[str, Any] | None = None
    _handle: Any = None
    _busy: bool = False

    @property
    def uses_reference(self) -> bool:
        return self.reference_latents is not None and any(c.reference > 0 for c in self.characters)

    @property
    def uses_ip(self) -> bool:
        return bool(self.ip_processors) and any(c.ip_scale > 0 for c in self.characters)

    # ---- masks and weights
    def layer_masks(self, n_tokens: int, batch: int, device, dtype) -> torch.Tensor:
        """``(batch, characters, n_tokens, 1)`` region masks for a layer with ``n_tokens`` tokens
        (rows of the full batch when the layer runs on a slice of it: ``frame_split.rows``)."""
        from cinekit.engines.frame_split import rows

        start, stop, batch = rows(batch)
        key = (n_tokens, batch, str(device), dtype)
        if key not in self._mask_cache:
            c = len(self.characters)
            if self.masks is None:
                m = torch.ones(batch, c, n_tokens, 1, device=device, dtype=dtype)
            else:
                h, w = grid_for_tokens(n_tokens, *self.latent_hw)
                m = masks_at(self.masks.to(device=device, dtype=torch.float32), h, w)   # (F, C, h, w)
                frame = torch.arange(batch, device=device) % m.shape[0]
                m = m[frame].reshape(batch, c, n_tokens, 1).to(dtype)
            self._mask_cache[key] = m
        return self._mask_cache[key][start:stop]

    def branch_weights(self, batch: int, strength: float, fidelity: float, device, dtype) -> torch.Tensor:
        """``(batch, 1, 1)``: ``strength`` on the conditional half, ``strength * (1 - fidelity)`` on the
        other (halves of the full batch when the layer runs on a slice of it)."""
        from cinekit.engines.frame_split import rows

        start, stop, batch = rows(batch)
        w = torch.full((batch, 1, 1), float(strength), device=device, dtype=dtype)
        if self.do_cfg and batch % 2 == 0:
            w[: batch // 2] = strength * (1.0 - fidelity)
        return w[start:stop]

    def emit(self, **info) -> None:
        for hook in self.hooks:
            hook(info)

    # ---- attaching to a UNet
    def attach(self, unet) -> "IdentityAttention":
        """Install the processors (wrapping the current ones) and the reference-pass hook.

        A UNet with an IP-Adapter loaded but unused in this job must run inside
        ``ip_adapter_bypassed`` instead (and get no ``ip_processors`` here)."""
        saved = dict(unet.attn_processors)
        self._saved = saved
        procs: dict[str, Any] = {}
        for name, proc in saved.items():
            spatial = "motion_modules" not in name and "temporal" not in name
            if spatial and name.endswith("attn1.processor") and self.uses_reference:
                procs[name] = ReferenceSelfAttnProcessor(self, name, proc)
            elif spatial and name.endswith("attn2.processor") and self.uses_ip and name in self.ip_processors:
                procs[name] = RegionalIPAdapterProcessor(self, name, self.ip_processors[name])
            else:
                procs[name] = proc
        unet.set_attn_processor(procs)
        if self.uses_reference:
            self._handle = unet.register_forward_pre_hook(self._reference_pass, with_kwargs=True)
        self.mode = "read"
        self._unet = unet
        return self

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self._saved is not None:
            self._unet.set_attn_processor(self._saved)
            self._saved = None
        self.mode = "off"
        self.bank.clear()
        self._mask_cache.clear()

    @contextmanager
    def attached(self, unet):
        self.attach(unet)
        try:
            yield self
        finally:
            self.detach()

    # ---- the reference pass
    def _reference_pass(self, unet, args, kwargs):
        if self._busy or self.mode != "read":
            return None
        names = ("sample", "timestep", "encoder_hidden_states")
        call = dict(zip(names, args, strict=False))
        call.update({k: v for k, v in kwargs.items() if k in names})
        self.write_references(unet, call["sample"], call["timestep"], call["encoder_hidden_states"],
                              kwargs.get("added_cond_kwargs"))
        return None

    def write_references(self, unet, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor,
                         added_cond_kwargs: dict[str, Any] | None = None) -> None:
        """Run the UNet on the noised reference latents at ``timestep``; attn1 layers store K/V.

        The conditional prompt (last batch entry) conditions every reference; ControlNet residuals
        are not applied. 5-D samples (AnimateDiff) get the references as one-frame videos."""
        refs = self.reference_latents.to(device=sample.device, dtype=sample.dtype)
        n = refs.shape[0]
        t = timestep if torch.is_tensor(timestep) else torch.tensor(timestep)
        t = t.flatten()[:1].to(sample.device)
        noise = self.reference_noise.to(device=sample.device, dtype=sample.dtype)
        noisy = self.scheduler.add_noise(refs, noise, t.expand(n))
        if hasattr(self.scheduler, "scale_model_input"):
            noisy = self.scheduler.scale_model_input(noisy, t[0])
        if sample.ndim == 5:
            noisy = noisy.unsqueeze(2)

        def take(x):
            if torch.is_tensor(x) and x.ndim >= 1 and x.shape[0] == encoder_hidden_states.shape[0]:
                return x[-1:].expand(n, *x.shape[1:])
            if isinstance(x, (list, tuple)):
                return type(x)(take(v) for v in x)
            return x

        added = {k: take(v) for k, v in (added_cond_kwargs or {}).items()} or None
        self.bank.clear()
        self.mode, self._busy = "write", True
        try:
            unet(noisy, t[0], encoder_hidden_states=take(encoder_hidden_states), added_cond_kwargs=added,
                 return_dict=False)
        finally:
            self.mode, self._busy = "read", False
        self.reference_passes += 1


# --------------------------------------------------------------------------- processors
def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _begin(attn, hidden_states, temb):
    """The common prologue of diffusers' AttnProcessor2_0: norms and (B, C, H, W) -> (B, N, C)."""
    residual = hidden_states
    if attn.spatial_norm is not None:
        hidden_states = attn.spatial_norm(hidden_states, temb)
    shape = None
    if hidden_states.ndim == 4:
        b, c, h, w = hidden_states.shape
        shape = (b, c, h, w)
        hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
    if attn.group_norm is not None:
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
    return residual, hidden_states, shape


def _end(attn, hidden_states, residual, shape):
    hidden_states = attn.to_out[0](hidden_states)
    hidden_states = attn.to_out[1](hidden_states)
    if shape is not None:
        hidden_states = hidden_states.transpose(-1, -2).reshape(*shape)
    if attn.residual_connection:
        hidden_states = hidden_states + residual
    return hidden_states / attn.rescale_output_factor


def _qk_norm(attn, q, k):
    if attn.norm_q is not None:
        q = attn.norm_q(q)
    if attn.norm_k is not None:
        k = attn.norm_k(k)
    return q, k


class ReferenceSelfAttnProcessor:
    """attn1: stores reference K/V in the reference pass; adds masked reference contributions after."""

    def __init__(self, ctl: IdentityAttention, name: str, inner):
        self.ctl, self.name, self.inner = ctl, name, inner

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        ctl = self.ctl
        if ctl.mode not in ("write", "read") or encoder_hidden_states is not None or attention_mask is not None:
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kwargs)
        residual, x, shape = _begin(attn, hidden_states, temb)
        heads = attn.heads
        q = _heads(attn.to_q(x), heads)
        k_lin, v_lin = attn.to_k(x), attn.to_v(x)
        k, v = _heads(k_lin, heads), _heads(v_lin, heads)
        q, k = _qk_norm(attn, q, k)
        plain = _merge(F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=False)).to(q.dtype)
        if ctl.mode == "write":
            ctl.bank[self.name] = (k_lin.detach(), v_lin.detach())
            return _end(attn, plain, residual, shape)
        bank = ctl.bank.get(self.name)
        out = plain
        if bank is not None:
            k_ref_all, v_ref_all = bank
            batch, n = x.shape[0], x.shape[1]
            masks = ctl.layer_masks(n, batch, x.device, plain.dtype)
            for c, ch in enumerate(ctl.characters):
                if ch.reference <= 0:
                    continue
                k_ref = k_ref_all[c : c + 1].expand(batch, -1, -1)
                v_ref = v_ref_all[c : c + 1].expand(batch, -1, -1)
                kr, vr = _heads(k_ref, heads), _heads(v_ref, heads)
                if attn.norm_k is not None:
                    kr = attn.norm_k(kr)
                both = F.scaled_dot_product_attention(q, torch.cat([k, kr], dim=2), torch.cat([v, vr], dim=2),
                                                      dropout_p=0.0, is_causal=False)
                delta = _merge(both).to(q.dtype) - plain
                weight = ctl.branch_weights(batch, ch.reference, ch.style_fidelity, x.device, plain.dtype)
                contribution = delta * (weight * masks[:, c])
                if ctl.hooks:
                    ctl.emit(kind="reference", layer=self.name, character=c, contribution=contribution,
                             mask=masks[:, c], k_ref=k_ref_all[c : c + 1], v_ref=v_ref_all[c : c + 1],
                             k_self=k_lin, hidden=x)
                out = out + contribution
        return _end(attn, out, residual, shape)


class RegionalIPAdapterProcessor:
    """attn2: text cross-attention plus each character's IP tokens, masked to its region.

    Uses the ``to_k_ip[0]``/``to_v_ip[0]`` weights of the wrapped diffusers IP-Adapter processor;
    image tokens arrive as diffusers passes them: ``encoder_hidden_states = (text, [ip])`` with
    ``ip`` ``(batch, characters, tokens, dim)``.
    """

    def __init__(self, ctl: IdentityAttention, name: str, inner):
        self.ctl, self.name, self.inner = ctl, name, inner

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        ctl = self.ctl
        ip_states = None
        if isinstance(encoder_hidden_states, tuple):
            encoder_hidden_states, ip_states = encoder_hidden_states
        residual, x, shape = _begin(attn, hidden_states, temb)
        batch = x.shape[0]
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, encoder_hidden_states.shape[1], batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        context = x if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        heads = attn.heads
        q = _heads(attn.to_q(x), heads)
        k, v = _heads(attn.to_k(context), heads), _heads(attn.to_v(context), heads)
        q, k = _qk_norm(attn, q, k)
        out = _merge(F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask, dropout_p=0.0,
                                                    is_causal=False)).to(q.dtype)
        if ctl.mode == "read" and ip_states is not None:
            tokens = ip_states[0]                                  # one adapter
            n = x.shape[1]
            masks = ctl.layer_masks(n, batch, x.device, out.dtype)
            to_k_ip, to_v_ip = self.inner.to_k_ip[0], self.inner.to_v_ip[0]
            for c, ch in enumerate(ctl.characters):
                if ch.ip_scale <= 0 or c >= tokens.shape[1]:
                    continue
                tok = tokens[:, c]
                ki, vi = _heads(to_k_ip(tok), heads), _heads(to_v_ip(tok), heads)
                ip_out = _merge(F.scaled_dot_product_attention(q, ki, vi, dropout_p=0.0, is_causal=False)).to(q.dtype)
                contribution = ip_out * (ch.ip_scale * masks[:, c])
                if ctl.hooks:
                    ctl.emit(kind="ip_adapter", layer=self.name, character=c, contribution=contribution,
                             mask=masks[:, c], tokens=tok)
                out = out + contribution
        return _end(attn, out, residual, shape)


@contextmanager
def ip_adapter_bypassed(unet):
    """Run a UNet that has an IP-Adapter loaded exactly as if it had none (plain attn2, no image projection)."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    proj = getattr(unet, "encoder_hid_proj", None)
    if proj is None or getattr(unet.config, "encoder_hid_dim_type", None) != "ip_image_proj":
        yield unet
        return
    saved = dict(unet.attn_processors)
    unet.set_attn_processor({n: (AttnProcessor2_0() if type(p).__name__.startswith("IPAdapter") else p)
                             for n, p in saved.items()})
    unet.encoder_hid_proj = None
    unet.config.encoder_hid_dim_type = None
    try:
        yield unet
    finally:
        unet.encoder_hid_proj = proj
        unet.config.encoder_hid_dim_type = "ip_image_proj"
        unet.set_attn_processor(saved)
