"""Expression words in each character's region of the prompt (diffusers engines).

A shot prompt says who is there; a character's face says how they feel, and only that
character should smile. Each character gets a *region prompt*: the shot prompt plus its
expression's words at that frame (``words``), encoded by the pipeline's own text encoder.
Every spatial cross-attention layer (attn2) then runs its processor once more per character
with that character's prompt on the conditional rows, and takes that output inside the
character's region only (the same disjoint region masks as the identity attention):

    out = inner(prompt) + sum_c  m_c * (inner(prompt_c) - inner(prompt))

so outside every region the layer's output is exactly the plain prompt's, and the
unconditional branch never changes. This is "regional prompting" as in attention couple /
Regional Prompter (hako-mikan 2023) and MultiDiffusion's region-based text (Bar-Tal et al.
2023), applied to the token sequence that the UNet cross-attends.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

# Expression name -> the words that describe it (unknown names: the name, underscores as spaces).
WORDS = {
    "smile": "smiling", "happy": "happy, smiling", "laugh": "laughing, open mouth", "angry": "angry, frowning",
    "sad": "sad", "surprised": "surprised, raised eyebrows", "blink": "closed eyes", "mouth_open": "open mouth",
    "neutral": "",
}


def expression_words(name: str, spec=None) -> str:
    """Words of expression ``name`` of a character (its art's ``words:`` when it gives them)."""
    art = (getattr(spec, "expressions", None) or {}).get(name)
    if art is not None and getattr(art, "words", None):
        return art.words
    return WORDS.get(name, name.replace("_", " "))


def frame_words(acting, f: int, spec=None) -> str:
    """A character's words at frame ``f``: its strongest expression, an open mouth, shut eyes."""
    if acting is None:
        return ""
    weights, mouth, eyes = acting.state(f)
    parts = []
    top = max(weights.items(), key=lambda kv: kv[1])[0] if weights else "neutral"
    if weights.get(top, 0) >= 0.5:
        parts.append(expression_words(top, spec))
    if mouth > 0.5 and top != "mouth_open":
        parts.append(WORDS["mouth_open"])
    if eyes > 0.5 and top != "blink":
        parts.append(WORDS["blink"])
    return ", ".join(p for p in parts if p)


def region_prompts(job, specs: list) -> list[list[str]]:
    """``[character][frame]`` region prompt text ('' where it is the shot prompt)."""
    out = []
    for i, _ in enumerate(job.characters):
        acting = job.acting[i] if job.acting else None
        row = []
        for f in range(job.frames):
            words = frame_words(acting, f, specs[i] if i < len(specs) else None)
            row.append(f"{job.prompt}, {words}" if words else "")
        out.append(row)
    return out


@dataclass
class RegionalPrompts:
    """The attn2 wrapper's state: region prompt embeddings and masks for one render."""

    table: list[list[str]]                  # [character][frame] -> text ('' = the shot prompt)
    embeds: dict[str, Any]                  # text -> (1, L, D) embedding
    masks: Any                              # (F, C, H, W) float tensor, image resolution
    latent_hw: tuple[int, int]
    do_cfg: bool
    frames: int
    hooks: list[Callable[[dict], None]] = field(default_factory=list)
    skipped: set = field(default_factory=set)   # texts whose length did not match the prompt's
    _mask_cache: dict = field(default_factory=dict)
    _saved: dict | None = None

    @property
    def active(self) -> bool:
        return any(t for row in self.table for t in row)

    def layer_masks(self, n_tokens: int, full: int, device, dtype):
        """``(full, C, n_tokens, 1)`` disjoint 0/1 region masks for a layer (row ``b``: frame ``b % F``)."""
        import torch

        from cinekit.identity.reference_attention import grid_for_tokens, masks_at

        key = (n_tokens, full, str(device), dtype)
        if key not in self._mask_cache:
            h, w = grid_for_tokens(n_tokens, *self.latent_hw)
            m = masks_at(self.masks.to(device=device, dtype=torch.float32), h, w)
            frame = torch.arange(full, device=device) % m.shape[0]
            self._mask_cache[key] = m[frame].reshape(full, m.shape[1], n_tokens, 1).to(dtype)
        return self._mask_cache[key]

    @contextmanager
    def attached(self, unet):
        """Wrap every spatial attn2 processor for the ``with`` block (restored after)."""
        saved = dict(unet.attn_processors)
        procs = {}
        for name, proc in saved.items():
            spatial = "motion_modules" not in name and "temporal" not in name
            procs[name] = RegionalPromptProcessor(self, name, proc) if spatial and name.endswith("attn2.processor") else proc
        unet.set_attn_processor(procs)
        try:
            yield self
        finally:
            unet.set_attn_processor(saved)
            self._mask_cache.clear()


class RegionalPromptProcessor:
    """attn2 processor: the inner processor's output, replaced in each character's region by its
    output for that character's region prompt (conditional rows only)."""

    def __init__(self, ctl: RegionalPrompts, name: str, inner):
        self.ctl, self.name, self.inner = ctl, name, inner

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        from cinekit.engines.frame_split import rows

        base = self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kwargs)
        ctl = self.ctl
        if encoder_hidden_states is None:
            return base
        text, rest = ((encoder_hidden_states[0], encoder_hidden_states[1:]) if isinstance(encoder_hidden_states, tuple)
                      else (encoder_hidden_states, None))
        start, stop, full = rows(hidden_states.shape[0])
        n_tokens = hidden_states.shape[1] if hidden_states.ndim == 3 else hidden_states.shape[2] * hidden_states.shape[3]
        out = base
        for c, row in enumerate(ctl.table):
            new, changed = None, False
            for b in range(start, stop):
                if ctl.do_cfg and b < full // 2:
                    continue                       # the unconditional branch keeps its prompt
                t = row[b % ctl.frames]             # row b is frame b % F (both branches)
                if not t:
                    continue
                emb = ctl.embeds[t]
                if emb.shape[1:] != text.shape[1:]:
                    ctl.skipped.add(t)
                    continue
                if new is None:
                    new = text.clone()
                new[b - start] = emb[0].to(device=text.device, dtype=text.dtype)
                changed = True
            if not changed:
                continue
            ehs = (new, *rest) if rest is not None else new
            alt = self.inner(attn, hidden_states, ehs, attention_mask, temb, **kwargs)
            m = ctl.layer_masks(n_tokens, full, base.device, base.dtype)[start:stop, c]     # (B, N, 1)
            if base.ndim == 4:                     # (B, C, H, W) output of a 4-D input
                m = m.reshape(m.shape[0], 1, hidden_states.shape[2], hidden_states.shape[3])
            delta = m * (alt - base)
            for hook in ctl.hooks:
                hook({"layer": self.name, "character": c, "mask": m, "delta": delta, "base": base})
            out = out + delta
        return out


def record(rp: RegionalPrompts | None) -> dict:
    """The render info's entry: which region texts were used (and any skipped)."""
    if rp is None:
        return {}
    return {"texts": sorted(rp.embeds), "skipped": sorted(rp.skipped)}


def build(pipe, job, specs: list, regions: np.ndarray, do_cfg: bool, device, hooks=None) -> RegionalPrompts | None:
    """The regional prompts of ``job`` (None when no character has words): every distinct
    region text encoded once with the pipeline's text encoder."""
    import torch

    table = region_prompts(job, specs)
    texts = sorted({t for row in table for t in row if t})
    if not texts:
        return None
    embeds = {}
    with torch.no_grad():
        for t in texts:
            embeds[t] = pipe.encode_prompt(prompt=t, device=device, num_images_per_prompt=1,
                                           do_classifier_free_guidance=False)[0]
    vae = pipe.vae_scale_factor
    return RegionalPrompts(table=table, embeds=embeds, masks=torch.from_numpy(regions.astype(np.float32)),
                           latent_hw=(job.height // vae, job.width // vae), do_cfg=do_cfg, frames=job.frames,
                           hooks=list(hooks or []))
