"""The temporally consistent video engine: AnimateDiff + ControlNet pose + IP-Adapter +
reference attention + LoRA / textual inversion, FreeNoise windows for long shots.

How frames are produced. AnimateDiff's motion modules were trained on clips sampled at about
8 fps, but nothing in the model fixes a frame rate: it denoises a stack of frames whose
motion is dictated, here, by the ControlNet pose frames. The planner samples the pose track
at ``job.fps`` (``job.frames = round(duration * fps)``), so the engine generates exactly
``job.frames`` frames, one per pose frame, and the writers play them at ``job.fps``: no
resampling, no interpolation, duration exact. At rates far above 8 fps each frame moves less,
which the motion module handles well; the pose track, not the model, sets the speed.

Any length. Up to ``context_length`` frames (16, the motion module's training window) the
whole clip is one window. Past it FreeNoise engages (``cinekit.engines.freenoise``): every
motion block attends over overlapping windows (``context_length``/``context_stride``, options)
fused with pyramid weights, and the starting noise repeats shuffled per window, so a 10 s shot
is one clip, not stitched pieces. Spatial layers, ControlNet, IP-Adapter and reference
attention see every frame at once, so identity is shared across windows.

Options (``job.options``; per character a number or ``{name: number}`` where noted):
``ip_adapter``, ``reference_attention``, ``style_fidelity`` (per character, as for stills),
``regional`` (default true), ``reference_size``, ``free_noise`` (auto|true|false),
``context_length``, ``context_stride``, ``free_noise_weighting`` (pyramid|flat|
delayed_reverse_sawtooth), ``free_noise_noise`` (shuffle_context|repeat_context|random),
``free_init`` (false, true or an iteration count), ``decode_chunk_size`` (default 8),
``forward_chunking`` (default: on past one window), ``frame_split`` (spatial layers on slices of
this many batch rows; default ``context_length`` when forward chunking is on, false = off;
``cinekit.engines.frame_split``), ``control_scale``, ``continue_from`` (set
by the planner), ``continue_frames`` (opening frames conditioned, default 4),
``continue_strength`` (fraction of the steps the opening frames are held, default 0.8).

Continuity across cuts (``continue_from: <shot id>``): the previous shot's last frame is read
from its output (PNG sequence, MP4 or GIF); its exact latent comes from the engine's cache
(``continuity.ShotTails``) while the file's sidecar records the same job, else the frame is encoded with the VAE. It
is used as an img2img init
of the opening frames, AnimateDiffVideoToVideo-style but per frame: after each denoising step
the opening frames' latents are blended towards that frame noised to the next timestep (frame
0 fully, then a linear ramp down over ``continue_frames``), for the first ``continue_strength``
of the steps; with strength 1 frame 0 ends on the previous frame's latent. The motion module
carries it into the following frames.

Refine (``refine: 0..1``): AnimateDiffVideoToVideoControlNetPipeline over the puppet engine's
clip, strength = ``refine``, the pose ControlNet kept.

Memory: VAE decode in chunks of ``decode_chunk_size`` frames, feed-forward chunking of the
UNet's transformer blocks (the motion blocks' to one window's tokens: FreeNoise runs it on the
whole fused clip), ``--low-vram`` = model CPU offload on CUDA (done by the loader).
SDXL model sets cannot render clips: diffusers 0.42 has no AnimateDiff SDXL pipeline with
ControlNet (and FreeNoise is not implemented for SDXL), so ``check_inputs`` refuses them.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

from cinekit.engines import continuity
from cinekit.engines import diffusers_common as common
from cinekit.engines.base import ProgressFn, RenderResult
from cinekit.engines.clip_memory import (
    ChannelsLastCond,
    Uint8Control,
    chunk_feed_forward,
    decode_frames,
)
from cinekit.engines.frame_split import split_spatial_layers
from cinekit.engines.freenoise import WindowPlan, resolve_plan
from cinekit.errors import EngineError, UserError
from cinekit.job import Job


class DiffusersClipEngine:
    name = "diffusers"
    kinds = frozenset({"clip"})
    version = "1"

    def __init__(self, runtime):
        common.setup(self, runtime)             # runtime, loader, hooks, assets
        self.pipeline_hooks: list = []   # called with (pipe, plan) right before denoising (tests)
        self._devices: dict[int, tuple[Any, Any]] = {}   # id(pipe) -> (pipe, execution device)
        self._pipes: dict[tuple[str, str], Any] = {}

    # 0. ---------------------------------------------------------------------------------
    def check_inputs(self, job: Job) -> None:
        """Model set, sizes, windows, files, the previous shot and the prompt, before any weight loads."""
        if job.kind != "clip":
            raise EngineError(f"the diffusers clip engine renders clips, not {job.kind}s")
        if not job.model:
            raise UserError(f"shot {job.shot_id}: the diffusers engine needs `model:` (a model set of cinekit.yaml)")
        ms = self.loader.modelset(job.model)
        if ms.family == "sdxl":
            raise UserError(f"shot {job.shot_id}: model set {job.model!r} is SDXL; clips need an sd15 model set",
                            hint="diffusers has no AnimateDiff SDXL pipeline with a pose ControlNet (nor FreeNoise "
                                 "for SDXL); use an sd15 model set with `motion_adapter:` for clips")
        if not ms.motion_adapter:
            raise UserError(f"model set {job.model!r} has no motion_adapter",
                            hint="add `motion_adapter: PATH` (an AnimateDiff MotionAdapter folder) to the model set")
        if ms.controlnet.openpose is None:
            raise UserError(f"model set {job.model!r} has no openpose ControlNet",
                            hint="add `controlnet: {openpose: PATH}` to the model set")
        if job.width % 8 or job.height % 8:
            raise UserError(f"shot {job.shot_id}: {job.width}x{job.height} is not a multiple of 8",
                            hint="diffusers models need width and height divisible by 8")
        if job.frames < 1 or job.pose.shape[0] != job.frames:
            raise UserError(f"shot {job.shot_id}: {job.frames} frames but a pose track of {job.pose.shape[0]}")
        try:
            self._plan(job)
        except ValueError as e:
            raise UserError(f"shot {job.shot_id}: {e}", hint="see options context_length / context_stride / free_noise") from None
        free_init = job.options.get("free_init", False)
        if not (isinstance(free_init, bool) or (isinstance(free_init, int) and 1 <= free_init <= 8)):
            raise UserError(f"shot {job.shot_id}: free_init must be true, false or an iteration count 1..8")
        if job.refine is not None:
            try:
                import cinekit.engines.puppet  # noqa: F401
            except ImportError as e:
                raise EngineError("refine needs the puppet engine, which is not available") from e
            if _refine_steps(job) < 1:
                raise UserError(f"shot {job.shot_id}: refine {job.refine} x {job.steps} steps runs no denoising step",
                                hint=f"raise refine to at least {1 / job.steps:.2f} or add steps")
        if job.options.get("continue_from"):
            self._previous(job)
        count = common.prompt_token_count(self.runtime, self.loader, job, ms.family)
        limit = self.loader.tokenizer(job.model).model_max_length - 2
        if count > limit:
            raise UserError(f"shot {job.shot_id}: the prompt is {count} tokens; clips take at most {limit}",
                            hint="FreeNoise encodes prompts itself, without chunking: shorten the prompt "
                                 "or the characters' descriptions")

    def _max_seq_length(self, job: Job) -> int:
        # a folder's config.json or a single file's header (the loader reads either without weights)
        return int(self.loader.motion_config(job.model).get("motion_max_seq_length", 32))

    def _plan(self, job: Job) -> WindowPlan:
        return resolve_plan(job.frames, job.options, self._max_seq_length(job))

    def _previous(self, job: Job) -> Path:
        return continuity.previous_shot(self.runtime, job)

    # 1-12. ------------------------------------------------------------------------------
    def render(self, job: Job, progress: ProgressFn | None = None) -> RenderResult:
        import torch
        from PIL import Image

        from cinekit.engines import freenoise
        from cinekit.identity.reference_attention import pose_region_masks
        from cinekit.pose.draw import draw_control_frames

        loader, rt = self.loader, self.runtime
        W, H, F = job.width, job.height, job.frames
        identities = [rt.identities.get(c.name) for c in job.characters]

        # 1. pipeline: AnimateDiff + openpose ControlNet built from the model set (cached);
        #    the IP-Adapter, when used, is loaded into this pipeline's motion UNet below (after it was built)
        kind = "animatediff_v2v_controlnet" if job.refine is not None else "animatediff_controlnet"
        pipe = self._pipeline(job.model, kind)
        device = self._execution_device(pipe)

        # 2. frames and windows: exactly job.frames frames; FreeNoise past the window
        plan = self._plan(job)
        freenoise.engage(pipe, plan, job.options.get("free_noise_weighting", "pyramid"),
                         job.options.get("free_noise_noise", "shuffle_context"))
        free_init = job.options.get("free_init", False)
        iters = 0 if free_init in (False, None, 0) else (3 if free_init is True else int(free_init))
        if iters:
            pipe.enable_free_init(num_iters=iters, use_fast_sampling=False)
        elif getattr(pipe, "free_init_enabled", False):
            pipe.disable_free_init()

        # 3. memory: feed-forward chunking past one window, VAE decode in chunks
        chunking = bool(job.options.get("forward_chunking", plan.free_noise))
        chunk_feed_forward(pipe.unet, plan.context_length if chunking else None, rebuilt=plan.free_noise)
        #    and the spatial layers and the ControlNet on slices of frames (option frame_split: rows
        #    per slice, false = off)
        split = job.options.get("frame_split", plan.context_length if chunking else None)
        split = int(split) if split not in (None, False) else None
        split_spatial_layers(pipe.unet, split, pipe.controlnet)
        decode_chunk = max(1, int(job.options.get("decode_chunk_size", 8)))

        # 4. control frames from the pose track (already sampled at job.fps)
        control = draw_control_frames(job.pose, W, H)                              # (F, H, W, 3)
        from cinekit.acting.face_keypoints import draw_faces

        control = draw_faces(control, job)                                         # faces per frame
        #    (txt2video: handed over as uint8 views, made float slice by slice, see clip_memory.Uint8Control)
        conditioning = [Image.fromarray(c) for c in control] if job.refine is not None else list(control)

        # 5. regions per frame and identity settings
        regions = pose_region_masks(job.pose, W, H, [c.z for c in job.characters])   # (F, C, H, W)
        regional = bool(job.options.get("regional", True))
        modelset = loader.modelset(job.model)
        settings = common.character_settings(job, identities, modelset)

        # 6. LoRA and textual inversion per character
        loras = common.apply_identity_weights(loader, pipe, identities, _release_shared_text_encoder_lora)

        # 7. prompt (FreeNoise encodes strings itself)
        do_cfg = job.guidance > 1.0
        call: dict[str, Any] = {"prompt": job.prompt, "negative_prompt": job.negative}

        # 8. IP-Adapter image embeddings: the identity core's cache, shared with stills
        ip_call, ip_info, ip_procs = common.ip_adapter_embeds(self.assets, job, pipe, identities, settings, do_cfg, device)
        use_ip = bool(ip_call)
        call.update(ip_call)

        # 9. reference attention, applied per frame on the spatial self-attention layers
        ctl, ref_info = common.identity_attention(self.assets, job, pipe, identities, settings, regions, regional,
                                                  do_cfg, F, use_ip, ip_procs, self.hooks)

        # 10. init: the puppet clip (refine) and the previous shot's last frame (continue_from)
        if job.refine is not None:
            from cinekit.engines.puppet import PuppetEngine

            puppet = PuppetEngine(rt).render(job).frames
            call.update(video=[Image.fromarray(f) for f in puppet], strength=float(job.refine))
        hold = (continuity.opening_hold(pipe, job, device, self._previous(job), self._tails())
                if job.options.get("continue_from") else None)

        # 11. denoise (progress per step; the opening frames held towards the previous shot)
        total = (_refine_steps(job) if job.refine is not None else job.steps) * max(iters, 1)
        done = [0]

        final: dict[str, Any] = {}

        def on_step(_pipe, step, t, kwargs):
            done[0] += 1
            out = {}
            if hold is not None:
                out["latents"] = hold(kwargs["latents"], t, step)
            final["latents"] = out.get("latents", kwargs["latents"])
            if progress:
                progress(min(done[0], total), total)
            return out

        if job.options.get("control_scale") is not None:
            call["controlnet_conditioning_scale"] = float(job.options["control_scale"])
        generator = torch.Generator("cpu").manual_seed(job.seed)
        call.update(num_frames=F, height=H, width=W, num_inference_steps=job.steps, guidance_scale=job.guidance,
                    conditioning_frames=conditioning, generator=generator, output_type="latent",
                    decode_chunk_size=decode_chunk, callback_on_step_end=on_step)
        if job.refine is not None:
            call.pop("num_frames")
        for hook in self.pipeline_hooks:
            hook(pipe, plan)
        # each character's expression words per frame, in its region
        from cinekit.acting import regional_prompt

        words = regional_prompt.build(pipe, job, [i.spec for i in identities], regions, do_cfg, device,
                                      getattr(self, "prompt_hooks", None))
        with contextlib.ExitStack() as stack:
            common.denoising(stack, pipe, use_ip, ctl)
            keys = None
            if job.options.get("keys"):   # drawn keys: SparseCtrl on their frames (cinekit.inbetween.sparsectrl)
                from cinekit.inbetween.sparsectrl import condition_on_keys

                keys = condition_on_keys(stack, self, pipe, job, device)
            if words is not None:
                stack.enter_context(words.attached(pipe.unet))
            if job.refine is None:
                stack.enter_context(Uint8Control.on(pipe))
            handle = pipe.controlnet.controlnet_cond_embedding.register_forward_pre_hook(ChannelsLastCond())
            stack.callback(handle.remove)
            stack.enter_context(_fixed_execution_device(pipe, device))
            latents = pipe(**call).frames
            # 12. result: job.frames frames, played at job.fps by the writers, decoded chunk by
            #     chunk straight to uint8 (never the whole clip in float: see decode_frames)
            frames = decode_frames(pipe, latents, decode_chunk)
        if frames.shape[0] != F:
            raise EngineError(f"the pipeline returned {frames.shape[0]} frames, expected {F}")
        if "latents" in final:
            self._tails().save(job, final["latents"][:, :, -1])
        info = loader.identity(job.model)
        info.update({
            "kind": kind, "seed": job.seed, "frames": F, "fps": job.fps,
            "frame_source": "one generated frame per pose frame at the job's fps (no resampling)",
            "windows": plan.record(), "free_init": iters,
            "memory": {"decode_chunk_size": decode_chunk, "forward_chunking": chunking, "frame_split": split,
                       "cpu_offload": bool(loader.low_vram and loader.device.startswith("cuda"))},
            "identity": common.identity_record(job, settings, regional, ip_info, modelset, ctl, ref_info),
            "loras": loras,
        })
        if words is not None:
            info["expression_prompts"] = regional_prompt.record(words)
        if hold is not None:
            info["continue_from"] = hold.record
        if keys is not None:
            info["keys"] = keys
        if job.refine is not None:
            info["refine"] = float(job.refine)
        return RenderResult(frames=frames, extras={"control": control}, masks=regions, info=info)

    # ---- steps in detail
    def _pipeline(self, model: str, kind: str):
        """The AnimateDiff pipeline of ``kind``, built once per model set.

        AnimateDiff copies the 2-D UNet's weights into a motion UNet; once the still engine has
        loaded a LoRA (peft layers) or an IP-Adapter into that shared UNet, the copy fails on the
        renamed keys (diffusers #7661). Then the motion UNet is built from a pristine copy."""
        key = (model, kind)
        if key not in self._pipes:
            unet = self.loader.components(model).components["unet"]
            if is_pristine(unet):
                self._pipes[key] = self.loader.pipeline(model, kind, ("openpose",))
            else:
                import diffusers

                from cinekit.engines.loader import PIPELINES

                cls = getattr(diffusers, PIPELINES[self.loader.components(model).family][kind])
                self._pipes[key] = self.loader.build(
                    model, cls, unet=pristine_copy(unet), motion_adapter=self.loader.motion_adapter(model),
                    controlnet=self.loader.controlnet(model, "openpose"))
        return self._pipes[key]

    def _execution_device(self, pipe):
        """``pipe._execution_device``, read once per pipeline: diffusers walks every module of every
        component for offload hooks on each read (~10 ms on the tiny models); the loader sets
        offloading when it builds the pipeline, so the answer does not change afterwards."""
        key = id(pipe)
        if self._devices.get(key, (None,))[0] is not pipe:
            self._devices[key] = (pipe, pipe._execution_device)
        return self._devices[key][1]

    def _tails(self) -> continuity.ShotTails:
        if not hasattr(self, "_tail_cache"):
            self._tail_cache = continuity.ShotTails(self.runtime.cache_dir)
        return self._tail_cache


def is_pristine(unet) -> bool:
    """True when no adapter (peft LoRA, IP-Adapter) has been loaded into a 2-D UNet."""
    if getattr(unet, "peft_config", None) or getattr(unet, "encoder_hid_proj", None) is not None:
        return False
    return not any(type(p).__name__.startswith("IPAdapter") for p in unet.attn_processors.values())


def pristine_copy(unet):
    """A new ``UNet2DConditionModel`` with ``unet``'s base weights only (LoRA and IP-Adapter layers dropped)."""
    from diffusers import UNet2DConditionModel

    config = dict(unet.config)
    config.update(encoder_hid_dim_type=None, encoder_hid_dim=None)
    clean = UNet2DConditionModel.from_config(config)
    state = {}
    for k, v in unet.state_dict().items():
        if ".lora_" in k or k.startswith("encoder_hid_proj.") or ".processor." in k:
            continue
        state[k.replace(".base_layer.", ".")] = v
    clean.load_state_dict(state, strict=True)
    param = next(unet.parameters())
    return clean.to(device=param.device, dtype=param.dtype)


def _release_shared_text_encoder_lora(pipe, path: Path) -> None:
    """Let ``loader.lora`` load a LoRA into this pipeline when the still pipeline, which shares
    the text encoder, already put the same adapter there (peft refuses a second adapter of one
    name). The adapter is removed from the text encoder and loaded again, same name, same
    weights, so the still pipeline's record of it stays true. Mirrors the loader's naming."""
    key = str(Path(path).resolve())
    if key in pipe.unet.__dict__.get("_cinekit_loras", {}):
        return
    name = "cinekit_" + hashlib.sha256(key.encode()).hexdigest()[:12]
    te = getattr(pipe, "text_encoder", None)
    if te is not None and name in (getattr(te, "peft_config", None) or {}):
        from diffusers.utils.peft_utils import delete_adapter_layers

        delete_adapter_layers(te, name)


_FIXED_DEVICE_CLASSES: dict[type, type] = {}


@contextlib.contextmanager
def _fixed_execution_device(pipe, device):
    """Within the block, ``pipe._execution_device`` is ``device`` (read once by the caller).

    diffusers' property walks every module of every component for offload hooks on each read
    (about ten reads per call, ~5 % of a small clip on CPU); the hooks do not change during one
    call, so the answer does not either. The pipeline's class is swapped for a subclass that
    differs only in that property, and restored after."""
    cls = type(pipe)
    if cls in _FIXED_DEVICE_CLASSES.values():          # already fixed (nested use)
        yield
        return
    if cls not in _FIXED_DEVICE_CLASSES:
        _FIXED_DEVICE_CLASSES[cls] = type(cls.__name__, (cls,), {
            "__module__": cls.__module__, "__doc__": cls.__doc__,
            "_execution_device": property(lambda self: self.__dict__["_cinekit_execution_device"])})
    pipe.__dict__["_cinekit_execution_device"] = device
    pipe.__class__ = _FIXED_DEVICE_CLASSES[cls]
    try:
        yield
    finally:
        pipe.__class__ = cls
        pipe.__dict__.pop("_cinekit_execution_device", None)


def _refine_steps(job: Job) -> int:
    """Denoising steps a refine (video-to-video) job runs: diffusers' ``min(int(steps * strength), steps)``."""
    return min(int(job.steps * float(job.refine)), job.steps)

