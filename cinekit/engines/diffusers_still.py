"""The reference-based still engine: SD 1.5 / SDXL + ControlNet pose + IP-Adapter + reference
attention + LoRA / textual inversion, optionally refining the puppet render (img2img).

Per-character identity settings come from the character spec (``identity.ip_adapter``,
``identity.reference_attention``, ``identity.style_fidelity``); ``job.options`` may override
them for a shot with a number (every character) or ``{name: number}``. Other options:
``regional`` (default true: each character's identity acts only in its pose region),
``reference_size`` (pixels of the square reference latent, default the shorter image side),
``controls`` (``{depth|canny: image path}``, extra ControlNet images; paths relative to the
project root) and ``control_scale``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from cinekit.engines.base import ProgressFn, RenderResult
from cinekit.engines.loader import ModelLoader, is_pickle
from cinekit.errors import EngineError, ModelError, UserError
from cinekit.identity.core import resolve
from cinekit.job import Job

MAX_CHUNKS = {"sd15": 8, "sdxl": 1}     # prompt windows of 75 tokens the text encoder may take (sd15: concatenated)


def _option(job: Job, key: str, name: str, default: float) -> float:
    value = job.options.get(key)
    if isinstance(value, dict):
        value = value.get(name)
    return float(default if value is None else value)


class DiffusersStillEngine:
    name = "diffusers"
    kinds = frozenset({"still"})
    version = "1"

    def __init__(self, runtime):
        self.runtime = runtime
        if runtime.loader is None:
            runtime.loader = ModelLoader.for_runtime(runtime)
        self.loader = runtime.loader
        self.hooks: list = []                   # identity-attention hooks (tests, debugging)
        self._encoders: dict[int, Any] = {}
        self._latents: dict[int, Any] = {}

    # 0. ---------------------------------------------------------------------------------
    def check_inputs(self, job: Job) -> None:
        """Model set, sizes, files and prompt length, before any weight is loaded."""
        if job.kind != "still":
            raise EngineError(f"the diffusers still engine renders stills, not {job.kind}s")
        if not job.model:
            raise UserError(f"shot {job.shot_id}: the diffusers engine needs `model:` (a model set of cinekit.yaml)")
        ms = self.loader.modelset(job.model)
        if job.width % 8 or job.height % 8:
            raise UserError(f"shot {job.shot_id}: {job.width}x{job.height} is not a multiple of 8",
                            hint="diffusers models need width and height divisible by 8")
        if ms.controlnet.openpose is None and job.characters:
            raise UserError(f"model set {job.model!r} has no openpose ControlNet",
                            hint="add `controlnet: {openpose: PATH}` to the model set")
        if job.refine is not None:
            try:
                import cinekit.engines.puppet  # noqa: F401
            except ImportError as e:
                raise EngineError("refine needs the puppet engine, which is not available") from e
        vectors = 0
        text = job.prompt
        for ch in job.characters:
            identity = self.runtime.identities.get(ch.name)
            for spec in identity.spec.lora:
                self._check_file(resolve(identity.spec_path, spec.file), f"{ch.name}: lora")
            for spec in identity.spec.embeddings:
                path = resolve(identity.spec_path, spec.file)
                self._check_file(path, f"{ch.name}: embedding")
                if ms.family != "sd15":
                    raise UserError(f"{ch.name}: textual-inversion embeddings need an sd15 model set")
                n = text.count(spec.token)
                text = text.replace(spec.token, " ")
                vectors += n * _embedding_vectors(path)
        tokenizer = self.loader.tokenizer(job.model)
        count = max(len(tokenizer(t, add_special_tokens=False).input_ids) for t in (text, job.negative)) + vectors
        limit = MAX_CHUNKS[ms.family] * (tokenizer.model_max_length - 2)
        if count > limit:
            raise UserError(f"shot {job.shot_id}: the prompt is {count} tokens; the {ms.family} text encoder takes "
                            f"at most {limit}", hint="shorten the prompt or the characters' descriptions")

    def _check_file(self, path: Path, what: str) -> None:
        if not path.is_file():
            raise UserError(f"{what} file {path} not found")
        if is_pickle(path) and not self.loader.allow_pickle:
            raise ModelError(f"{what}: {path.name} is a pickle file ({path.suffix}); refused",
                             hint="convert it to .safetensors, or pass --allow-pickle if you trust the file")

    # 1-10. ------------------------------------------------------------------------------
    def render(self, job: Job, progress: ProgressFn | None = None) -> RenderResult:
        import torch
        from PIL import Image

        from cinekit.identity.reference_attention import (
            CharacterAttention,
            IdentityAttention,
            ip_adapter_bypassed,
            pose_region_masks,
        )
        from cinekit.pose.draw import draw_control_frames

        loader, rt = self.loader, self.runtime
        W, H = job.width, job.height
        identities = [rt.identities.get(c.name) for c in job.characters]

        # 1. pipeline (cached per model set and kind)
        extra_controls = dict(job.options.get("controls") or {})
        controls = ("openpose", *sorted(extra_controls))
        kind = "controlnet_img2img" if job.refine is not None else "controlnet"
        pipe = loader.pipeline(job.model, kind, controls)
        family = loader.components(job.model).family
        device = pipe._execution_device

        # 2. control maps from the pose track
        control = draw_control_frames(job.pose[:1], W, H)[0]
        control_images = [Image.fromarray(control)]
        for c in sorted(extra_controls):
            path = Path(extra_controls[c])
            path = path if path.is_absolute() else rt.project.root / path
            control_images.append(Image.open(path).convert("RGB").resize((W, H)))

        # 3. regions and identity settings
        regions = pose_region_masks(job.pose[:1], W, H, [c.z for c in job.characters])   # (1, C, H, W)
        regional = bool(job.options.get("regional", True))
        settings = [CharacterAttention(
            reference=_option(job, "reference_attention", ch.name, idt.spec.identity.reference_attention),
            style_fidelity=_option(job, "style_fidelity", ch.name, idt.spec.identity.style_fidelity),
            ip_scale=_option(job, "ip_adapter", ch.name, idt.spec.identity.ip_adapter),
        ) for ch, idt in zip(job.characters, identities, strict=True)]
        modelset = loader.modelset(job.model)
        if modelset.ip_adapter is None:
            for s in settings:
                s.ip_scale = 0.0

        # 4. LoRA and textual inversion per character
        loras = self._apply_loras(pipe, identities)
        for idt in identities:
            for spec in idt.spec.embeddings:
                loader.textual_inversion(pipe, resolve(idt.spec_path, spec.file), spec.token)

        # 5. prompt (chunked past the encoder's 77 tokens)
        do_cfg = job.guidance > 1.0
        call: dict[str, Any] = self._prompt(pipe, job, family, device, do_cfg)

        # 6. IP-Adapter image embeddings (cached on disk per reference)
        use_ip = any(s.ip_scale > 0 for s in settings)
        ip_info: dict[str, Any] = {}
        ip_procs: dict[str, Any] = {}
        if use_ip:
            ip = loader.ip_adapter(job.model, pipe)
            ip_procs = ip["processors"]
            encoder = self._encoder(ip)
            pos, used = [], {}
            for ch, idt in zip(job.characters, identities, strict=True):
                emb, used[ch.name] = encoder.character(idt, ch.view)
                pos.append(emb)
            pos_t = torch.stack(pos, dim=1)                                     # (1, C, ...)
            neg_t = encoder.unconditional().unsqueeze(1).expand_as(pos_t)
            embeds = torch.cat([neg_t, pos_t]) if do_cfg else pos_t
            dtype = next(pipe.unet.parameters()).dtype
            call["ip_adapter_image_embeds"] = [embeds.to(device=device, dtype=dtype)]
            ip_info = {"weights": used, "scales": {c.name: s.ip_scale for c, s in zip(job.characters, settings, strict=True)}}

        # 7. reference latents for reference attention
        use_ref = any(s.reference > 0 for s in settings)
        vae_scale = pipe.vae_scale_factor
        ctl = None
        if use_ref or use_ip:
            ref_lat = ref_noise = None
            ref_info: dict[str, Any] = {}
            if use_ref:
                ref_lat, ref_info = self._reference_latents(pipe, job, identities, vae_scale)
                g = torch.Generator("cpu").manual_seed((job.seed + 0x5EED) % (2**63))
                ref_noise = torch.randn(ref_lat.shape, generator=g)
            ctl = IdentityAttention(
                characters=settings, latent_hw=(H // vae_scale, W // vae_scale),
                masks=torch.from_numpy(regions.astype(np.float32)) if regional else None,
                do_cfg=do_cfg, frames=1, reference_latents=ref_lat, reference_noise=ref_noise,
                scheduler=pipe.scheduler, ip_processors=ip_procs if use_ip else {}, hooks=self.hooks,
            )

        # 8. init image for refine: the puppet render
        if job.refine is not None:
            from cinekit.engines.puppet import PuppetEngine

            init = PuppetEngine(rt).render(job).frames[0]
            call.update(image=Image.fromarray(init), control_image=control_images if len(control_images) > 1
                        else control_images[0], strength=float(job.refine))
        else:
            call["image"] = control_images if len(control_images) > 1 else control_images[0]
        if len(control_images) > 1:
            scale = job.options.get("control_scale", 1.0)
            call["controlnet_conditioning_scale"] = [float(scale)] * len(control_images)

        # 9. denoise
        def on_step(_pipe, step, _t, _kwargs):
            if progress:
                progress(step + 1, job.steps)
            return {}

        generator = torch.Generator("cpu").manual_seed(job.seed)
        call.update(height=H, width=W, num_inference_steps=job.steps, guidance_scale=job.guidance,
                    generator=generator, output_type="np", callback_on_step_end=on_step)
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.inference_mode())
            if not use_ip and getattr(pipe.unet, "_cinekit_ip", None) is not None:
                stack.enter_context(ip_adapter_bypassed(pipe.unet))   # loaded earlier, unused here
            if ctl is not None:
                stack.enter_context(ctl.attached(pipe.unet))
            images = pipe(**call).images

        # 10. result
        frames = (np.clip(images, 0.0, 1.0) * 255.0).round().astype(np.uint8)
        info = loader.identity(job.model)
        info.update({
            "kind": kind, "controls": list(controls), "seed": job.seed,
            "identity": {
                "regional": regional,
                "characters": {c.name: vars(s) for c, s in zip(job.characters, settings, strict=True)},
                "ip_adapter": ip_info or ("not configured" if modelset.ip_adapter is None else "off"),
                "reference_passes": ctl.reference_passes if ctl is not None else 0,
            },
            "loras": loras,
        })
        if use_ref:
            info["identity"]["references"] = ref_info
        return RenderResult(frames=frames, extras={"control": control[None]}, masks=regions, info=info)

    # ---- steps in detail
    def _apply_loras(self, pipe, identities) -> dict[str, float]:
        """Load every character's LoRA once; activate those with a non-zero weight (others: off, exactly)."""
        active: dict[str, float] = {}
        shown: dict[str, float] = {}
        for idt in identities:
            for spec in idt.spec.lora:
                path = resolve(idt.spec_path, spec.file)
                name = self.loader.lora(pipe, path)
                shown[path.name] = shown.get(path.name, 0.0) + spec.weight
                if spec.weight != 0:
                    active[name] = active.get(name, 0.0) + spec.weight
        if getattr(pipe.unet, "_cinekit_loras", None):
            if active:
                pipe.enable_lora()
                pipe.set_adapters(list(active), adapter_weights=list(active.values()))
            else:
                pipe.disable_lora()
        return shown

    def _prompt(self, pipe, job: Job, family: str, device, do_cfg: bool) -> dict[str, Any]:
        """Prompt kwargs: the strings when they fit the encoder, chunked embeddings otherwise."""
        tok = pipe.tokenizer
        prompt, negative = job.prompt, job.negative
        if hasattr(pipe, "maybe_convert_prompt"):
            prompt = pipe.maybe_convert_prompt(prompt, tok)
            negative = pipe.maybe_convert_prompt(negative, tok)
        size = tok.model_max_length - 2
        ids = [tok(t, add_special_tokens=False).input_ids for t in (prompt, negative)]
        longest = max(len(i) for i in ids)
        if longest <= size:
            return {"prompt": job.prompt, "negative_prompt": job.negative}
        if family != "sd15":
            raise UserError(f"shot {job.shot_id}: prompts past {size} tokens are supported on sd15 model sets only")
        chunks = -(-longest // size)
        embeds = [self._chunked(pipe, i, chunks, size, device) for i in ids]
        out = {"prompt_embeds": embeds[0]}
        if do_cfg:
            out["negative_prompt_embeds"] = embeds[1]
        return out

    @staticmethod
    def _chunked(pipe, ids: list[int], chunks: int, size: int, device):
        """Encode ``ids`` as ``chunks`` windows of ``size`` tokens (each with BOS/EOS), concatenated."""
        import torch

        tok = pipe.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        outs = []
        for k in range(chunks):
            part = ids[k * size:(k + 1) * size]
            row = [tok.bos_token_id, *part, tok.eos_token_id]
            row += [pad] * (size + 2 - len(row))
            with torch.no_grad():
                outs.append(pipe.text_encoder(torch.tensor([row], device=device))[0])
        return torch.cat(outs, dim=1)

    def _encoder(self, ip: dict[str, Any]):
        from cinekit.identity.embeddings import ReferenceEncoder

        key = id(ip["image_encoder"])
        if key not in self._encoders:
            self._encoders[key] = ReferenceEncoder(self.runtime.cache_dir, ip["image_encoder"], ip["feature_extractor"],
                                                   ip["encoder_id"], ip["hidden_states"], self.runtime.count)
        return self._encoders[key]

    def _reference_latents(self, pipe, job: Job, identities, vae_scale: int):
        """``(C, 4, s, s)`` latents of each character's reference nearest to its view."""
        import torch

        from cinekit.identity.embeddings import ReferenceLatents

        vae = pipe.vae
        key = id(vae)
        if key not in self._latents:
            vae_id = self.loader.components(job.model).vae_id
            self._latents[key] = ReferenceLatents(self.runtime.cache_dir, vae, vae_id, self.runtime.count)
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


def _embedding_vectors(path: Path) -> int:
    """How many token vectors a textual-inversion file holds (header only)."""
    if path.suffix != ".safetensors":
        return 1
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        shapes = [f.get_slice(k).get_shape() for k in f.keys()]
    return int(shapes[0][0]) if shapes and len(shapes[0]) == 2 else 1
