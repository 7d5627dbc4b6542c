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

from cinekit.engines import diffusers_common as common
from cinekit.engines.base import ProgressFn, RenderResult
from cinekit.errors import EngineError, UserError
from cinekit.job import Job

MAX_CHUNKS = {"sd15": 8, "sdxl": 1}     # prompt windows of 75 tokens the text encoder may take (sd15: concatenated)


class DiffusersStillEngine:
    name = "diffusers"
    kinds = frozenset({"still"})
    version = "1"

    def __init__(self, runtime):
        common.setup(self, runtime)             # runtime, loader, hooks, assets

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
        count = common.prompt_token_count(self.runtime, self.loader, job, ms.family)
        limit = MAX_CHUNKS[ms.family] * (self.loader.tokenizer(job.model).model_max_length - 2)
        if count > limit:
            raise UserError(f"shot {job.shot_id}: the prompt is {count} tokens; the {ms.family} text encoder takes "
                            f"at most {limit}", hint="shorten the prompt or the characters' descriptions")

    # 1-10. ------------------------------------------------------------------------------
    def render(self, job: Job, progress: ProgressFn | None = None) -> RenderResult:
        import torch
        from PIL import Image

        from cinekit.identity.reference_attention import pose_region_masks
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
        from cinekit.acting.face_keypoints import draw_faces

        control = draw_faces(control[None], job)[0]           # faces shaped by the expression
        control_images = [Image.fromarray(control)]
        for c in sorted(extra_controls):
            path = Path(extra_controls[c])
            path = path if path.is_absolute() else rt.project.root / path
            control_images.append(Image.open(path).convert("RGB").resize((W, H)))

        # 3. regions and identity settings
        regions = pose_region_masks(job.pose[:1], W, H, [c.z for c in job.characters])   # (1, C, H, W)
        regional = bool(job.options.get("regional", True))
        modelset = loader.modelset(job.model)
        settings = common.character_settings(job, identities, modelset)

        # 4. LoRA and textual inversion per character
        loras = common.apply_identity_weights(loader, pipe, identities)

        # 5. prompt (chunked past the encoder's 77 tokens)
        do_cfg = job.guidance > 1.0
        call: dict[str, Any] = self._prompt(pipe, job, family, device, do_cfg)

        # 6. IP-Adapter image embeddings (cached on disk per reference)
        ip_call, ip_info, ip_procs = common.ip_adapter_embeds(self.assets, job, pipe, identities, settings, do_cfg, device)
        use_ip = bool(ip_call)
        call.update(ip_call)

        # 7. reference latents for reference attention, the identity-attention controller
        ctl, ref_info = common.identity_attention(self.assets, job, pipe, identities, settings, regions, regional,
                                                  do_cfg, 1, use_ip, ip_procs, self.hooks)

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
        # each character's expression words, in its region
        from cinekit.acting import regional_prompt

        words = regional_prompt.build(pipe, job, [i.spec for i in identities], regions, do_cfg, device,
                                      getattr(self, "prompt_hooks", None))
        with contextlib.ExitStack() as stack:
            common.denoising(stack, pipe, use_ip, ctl)
            if words is not None:
                stack.enter_context(words.attached(pipe.unet))
            images = pipe(**call).images

        # 10. result
        frames = (np.clip(images, 0.0, 1.0) * 255.0).round().astype(np.uint8)
        info = loader.identity(job.model)
        info.update({
            "kind": kind, "controls": list(controls), "seed": job.seed,
            "identity": common.identity_record(job, settings, regional, ip_info, modelset, ctl, ref_info),
            "loras": loras,
        })
        if words is not None:
            info["expression_prompts"] = regional_prompt.record(words)
        return RenderResult(frames=frames, extras={"control": control[None]}, masks=regions, info=info)

    # ---- steps in detail
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
        return self.assets.encoder(ip)

    def _reference_latents(self, pipe, job: Job, identities, vae_scale: int):
        """``(C, 4, s, s)`` latents of each character's reference nearest to its view."""
        return self.assets.reference_latents(pipe, job, identities, vae_scale)
