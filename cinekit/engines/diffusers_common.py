"""What the diffusers still and clip engines share: identity settings per character, LoRA and
textual inversion, IP-Adapter image embeddings, reference latents, the identity-attention
controller, the denoising context and the identity record of the result.

Plain functions over the engine's runtime, loader and pipeline (no base class): each engine's
``render`` stays one method with numbered steps and calls these for the identity steps.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cinekit.engines.model_check import is_pickle
from cinekit.errors import ModelError, UserError
from cinekit.identity.core import resolve
from cinekit.job import Job


def setup(engine, runtime) -> None:
    """The engine's runtime, its (shared) model loader, identity-attention hooks and caches."""
    from cinekit.engines.loader import ModelLoader

    engine.runtime = runtime
    if runtime.loader is None:
        runtime.loader = ModelLoader.for_runtime(runtime)
    engine.loader = runtime.loader
    engine.hooks = []                       # identity-attention hooks (tests, debugging)
    engine.assets = IdentityAssets(runtime, engine.loader)


def option(job: Job, key: str, name: str, default: float) -> float:
    """``job.options[key]``: a number for every character or ``{name: number}``; else ``default``."""
    value = job.options.get(key)
    if isinstance(value, dict):
        value = value.get(name)
    return float(default if value is None else value)


# ---- check_inputs ----------------------------------------------------------------------
def check_file(loader, path: Path, what: str) -> None:
    """A LoRA or embedding file exists and is not a refused pickle."""
    if not path.is_file():
        raise UserError(f"{what} file {path} not found")
    if is_pickle(path) and not loader.allow_pickle:
        raise ModelError(f"{what}: {path.name} is a pickle file ({path.suffix}); refused",
                         hint="convert it to .safetensors, or pass --allow-pickle if you trust the file")


def prompt_token_count(runtime, loader, job: Job, family: str) -> int:
    """Tokens of the longer of prompt and negative, each textual-inversion token counted as its
    vectors; checks every character's LoRA and embedding files on the way."""
    vectors = 0
    text = job.prompt
    for ch in job.characters:
        identity = runtime.identities.get(ch.name)
        for spec in identity.spec.lora:
            check_file(loader, resolve(identity.spec_path, spec.file), f"{ch.name}: lora")
        for spec in identity.spec.embeddings:
            path = resolve(identity.spec_path, spec.file)
            check_file(loader, path, f"{ch.name}: embedding")
            if family != "sd15":
                raise UserError(f"{ch.name}: textual-inversion embeddings need an sd15 model set")
            vectors += text.count(spec.token) * embedding_vectors(path)
            text = text.replace(spec.token, " ")
    tokenizer = loader.tokenizer(job.model)
    return max(len(tokenizer(t, add_special_tokens=False).input_ids) for t in (text, job.negative)) + vectors


def embedding_vectors(path: Path) -> int:
    """How many token vectors a textual-inversion file holds (header only)."""
    if path.suffix != ".safetensors":
        return 1
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        shapes = [f.get_slice(k).get_shape() for k in f.keys()]
    return int(shapes[0][0]) if shapes and len(shapes[0]) == 2 else 1


# ---- render: identity steps --------------------------------------------------------------
def character_settings(job: Job, identities, modelset) -> list:
    """One ``CharacterAttention`` per character: spec values, overridden by ``job.options``;
    IP-Adapter scale 0 when the model set has no IP-Adapter."""
    from cinekit.identity.reference_attention import CharacterAttention

    settings = [CharacterAttention(
        reference=option(job, "reference_attention", ch.name, idt.spec.identity.reference_attention),
        style_fidelity=option(job, "style_fidelity", ch.name, idt.spec.identity.style_fidelity),
        ip_scale=option(job, "ip_adapter", ch.name, idt.spec.identity.ip_adapter),
    ) for ch, idt in zip(job.characters, identities, strict=True)]
    if modelset.ip_adapter is None:
        for s in settings:
            s.ip_scale = 0.0
    return settings


def apply_identity_weights(loader, pipe, identities,
                           before_lora: Callable[[Any, Path], None] | None = None) -> dict[str, float]:
    """Every character's LoRA (loaded once; those with a non-zero weight active, others off,
    exactly) and textual-inversion embeddings. Returns ``{lora file name: total weight}``."""
    active: dict[str, float] = {}
    shown: dict[str, float] = {}
    for idt in identities:
        for spec in idt.spec.lora:
            path = resolve(idt.spec_path, spec.file)
            if before_lora is not None:
                before_lora(pipe, path)
            name = loader.lora(pipe, path)
            shown[path.name] = shown.get(path.name, 0.0) + spec.weight
            if spec.weight != 0:
                active[name] = active.get(name, 0.0) + spec.weight
    if getattr(pipe.unet, "_cinekit_loras", None):
        if active:
            pipe.enable_lora()
            pipe.set_adapters(list(active), adapter_weights=list(active.values()))
        else:
            pipe.disable_lora()
    for idt in identities:
        for spec in idt.spec.embeddings:
            loader.textual_inversion(pipe, resolve(idt.spec_path, spec.file), spec.token)
    return shown


class IdentityAssets:
    """Per-engine caches of the identity core's reference encoders and reference latents."""

    def __init__(self, runtime, loader):
        self.runtime, self.loader = runtime, loader
        self._encoders: dict[int, Any] = {}
        self._latents: dict[int, Any] = {}

    def encoder(self, ip: dict[str, Any]):
        from cinekit.identity.embeddings import ReferenceEncoder

        key = id(ip["image_encoder"])
        if key not in self._encoders:
            self._encoders[key] = ReferenceEncoder(self.runtime.cache_dir, ip["image_encoder"], ip["feature_extractor"],
                                                   ip["encoder_id"], ip["hidden_states"], self.runtime.count)
        return self._encoders[key]

    def reference_latents(self, pipe, job: Job, identities, vae_scale: int):
        """``(C, 4, s, s)`` latents of each character's reference nearest to its view (cached)."""
        import torch

        from cinekit.identity.embeddings import ReferenceLatents

        key = id(pipe.vae)
        if key not in self._latents:
            vae_id = self.loader.components(job.model).vae_id
            self._latents[key] = ReferenceLatents(self.runtime.cache_dir, pipe.vae, vae_id, self.runtime.count)
        latents = self._latents[key]
        unit = vae_scale * 2 ** (len(pipe.unet.config.block_out_channels) - 1)
        side = int(job.options.get("reference_size") or min(job.width, job.height))
        side = max(unit, side // unit * unit)
        rows, info = [], {}
        for ch, idt in zip(job.characters, identities, strict=True):
            ref = idt.reference_for(ch.view)
            rows.append(latents.latent(ref, (side, side)))
            info[ch.name] = {"reference": ref.path.name, "view": ref.view, "size": side}
        return torch.cat(rows), info


def ip_adapter_embeds(assets: IdentityAssets, job: Job, pipe, identities, settings, do_cfg: bool, device):
    """IP-Adapter image embeddings (the identity core's cache, shared by stills and clips).

    Returns ``(pipeline kwargs, info, processors)``; all empty when no character uses it."""
    import torch

    if not any(s.ip_scale > 0 for s in settings):
        return {}, {}, {}
    ip = assets.loader.ip_adapter(job.model, pipe)
    encoder = assets.encoder(ip)
    pos, used = [], {}
    for ch, idt in zip(job.characters, identities, strict=True):
        emb, used[ch.name] = encoder.character(idt, ch.view)
        pos.append(emb)
    pos_t = torch.stack(pos, dim=1)                                             # (1, C, ...)
    neg_t = encoder.unconditional().unsqueeze(1).expand_as(pos_t)
    embeds = torch.cat([neg_t, pos_t]) if do_cfg else pos_t
    dtype = next(pipe.unet.parameters()).dtype
    call = {"ip_adapter_image_embeds": [embeds.to(device=device, dtype=dtype)]}
    info = {"weights": used, "scales": {c.name: s.ip_scale for c, s in zip(job.characters, settings, strict=True)}}
    return call, info, ip["processors"]


def identity_attention(assets: IdentityAssets, job: Job, pipe, identities, settings, regions: np.ndarray,
                       regional: bool, do_cfg: bool, frames: int, use_ip: bool, ip_procs: dict[str, Any],
                       hooks: list):
    """The identity-attention controller (reference attention and regional IP-Adapter), or None
    when no character uses either. Returns ``(controller, reference info)``."""
    import torch

    from cinekit.identity.reference_attention import IdentityAttention

    use_ref = any(s.reference > 0 for s in settings)
    if not (use_ref or use_ip):
        return None, {}
    ref_lat = ref_noise = None
    ref_info: dict[str, Any] = {}
    if use_ref:
        ref_lat, ref_info = assets.reference_latents(pipe, job, identities, pipe.vae_scale_factor)
        g = torch.Generator("cpu").manual_seed((job.seed + 0x5EED) % (2**63))
        ref_noise = torch.randn(ref_lat.shape, generator=g)
    vae_scale = pipe.vae_scale_factor
    ctl = IdentityAttention(
        characters=settings, latent_hw=(job.height // vae_scale, job.width // vae_scale),
        masks=torch.from_numpy(regions.astype(np.float32)) if regional else None,
        do_cfg=do_cfg, frames=frames, reference_latents=ref_lat, reference_noise=ref_noise,
        scheduler=pipe.scheduler, ip_processors=ip_procs if use_ip else {}, hooks=hooks,
    )
    return ctl, ref_info


def denoising(stack: contextlib.ExitStack, pipe, use_ip: bool, ctl) -> None:
    """Enter the denoising context on ``stack``: inference mode, an IP-Adapter loaded earlier but
    unused here bypassed, the identity-attention controller attached."""
    import torch

    from cinekit.identity.reference_attention import ip_adapter_bypassed

    stack.enter_context(torch.inference_mode())
    if not use_ip and getattr(pipe.unet, "_cinekit_ip", None) is not None:
        stack.enter_context(ip_adapter_bypassed(pipe.unet))
    if ctl is not None:
        stack.enter_context(ctl.attached(pipe.unet))


def identity_record(job: Job, settings, regional: bool, ip_info: dict[str, Any], modelset, ctl,
                    ref_info: dict[str, Any]) -> dict[str, Any]:
    """The ``identity`` entry of a render's info."""
    record = {
        "regional": regional,
        "characters": {c.name: vars(s) for c, s in zip(job.characters, settings, strict=True)},
        "ip_adapter": ip_info or ("not configured" if modelset.ip_adapter is None else "off"),
        "reference_passes": ctl.reference_passes if ctl is not None else 0,
    }
    if any(s.reference > 0 for s in settings):
        record["references"] = ref_info
    return record
