"""SparseCtrl on the key frames, inside the diffusers clip engine's pose-ControlNet pipeline.

diffusers 0.42 has ``SparseControlNetModel`` and ``AnimateDiffSparseControlNetPipeline``, but
that pipeline takes one ControlNet: the key frames *or* the pose track, not both. The clip
engine keeps its pipeline (AnimateDiff + pose ControlNet + identity core, FreeNoise, chunking)
and adds SparseCtrl as a forward hook on the pose ControlNet: at every denoising step the
SparseCtrl model sees the key frames at their indices (``controlnet_cond`` zero and
``conditioning_mask`` 0 on every other frame, as diffusers' ``prepare_sparse_control_conditioning``
builds them) and its residuals, times ``key_strength``, are added to the pose ControlNet's.
The hook sits on the module call, outside the frame-slicing wrapper (``engines.frame_split``),
so it always sees every frame of the batch (``batch x frames`` rows, frame-major per batch).

Conditioning image per key: ``rgb`` (the drawing; encoded by the VAE when the model uses the
simplified condition embedding, as the RGB SparseCtrl does) or ``scribble`` (line drawings:
dark lines on light paper become white lines on black, the scribble model's input).
Options: ``key_strength`` (default 1.0; 0 = no effect, bit for bit), ``key_mode``
(``rgb`` | ``scribble``; default ``rgb``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cinekit.errors import UserError


def load_sparsectrl(path: Path, device, dtype):
    """A ``SparseControlNetModel`` from a local diffusers folder (no hub access)."""
    from diffusers import SparseControlNetModel

    model = SparseControlNetModel.from_pretrained(str(path), local_files_only=True)
    return model.to(device=device, dtype=dtype).eval()


def condition_images(images: list[np.ndarray], mode: str) -> np.ndarray:
    """``(K, H, W, 3)`` float32 in 0..1 from the key drawings (uint8 RGB): as drawn (``rgb``) or as
    a scribble map (``scribble``: ink = 1, paper = 0)."""
    stack = np.stack(images).astype(np.float32) / 255.0
    if mode == "rgb":
        return stack
    if mode == "scribble":
        ink = 1.0 - stack.mean(axis=-1, keepdims=True)
        ink = (ink > 0.25).astype(np.float32)     # pencil and ink lines; paper tints stay 0
        return np.repeat(ink, 3, axis=-1)
    raise UserError(f"key_mode {mode!r}: use rgb or scribble")


def sparse_inputs(cond_images: np.ndarray, indices: list[int], frames: int, model, vae, device, dtype):
    """``(controlnet_cond (1, C, F, h, w), conditioning_mask (1, 1, F, h, w))``: the key images at
    ``indices``, zero elsewhere (diffusers' ``prepare_sparse_control_conditioning``)."""
    import torch

    x = torch.from_numpy(cond_images).permute(0, 3, 1, 2).to(device=device, dtype=dtype)   # (K, 3, H, W)
    if model.config.use_simplified_condition_embedding:   # the RGB model conditions on latents
        with torch.no_grad():
            x = vae.encode(2 * x - 1).latent_dist.mode() * vae.config.scaling_factor
    k, c, h, w = x.shape
    cond = torch.zeros((1, c, frames, h, w), device=device, dtype=dtype)
    mask = torch.zeros((1, 1, frames, h, w), device=device, dtype=dtype)
    cond[0, :, indices] = x.permute(1, 0, 2, 3)
    mask[0, :, indices] = 1
    return cond, mask


class KeyConditioning:
    """Forward hook on the pose ControlNet: adds SparseCtrl's residuals for the key frames.

    ``calls`` records, per call, the conditioned frame indices the SparseCtrl model received
    (read off the mask it was given) — tests and the sidecar."""

    def __init__(self, model, cond, mask, strength: float, frames: int):
        self.model, self.cond, self.mask = model, cond, mask
        self.strength, self.frames = float(strength), frames
        self.calls: list[list[int]] = []

    def __call__(self, _module, args, kwargs, output):
        import torch

        sample = args[0] if args else kwargs["sample"]            # (B * F, C, h, w)
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        rows, c, h, w = sample.shape
        batch = rows // self.frames
        video = sample.reshape(batch, self.frames, c, h, w).permute(0, 2, 1, 3, 4)
        cond = self.cond.expand(batch, *self.cond.shape[1:])
        mask = self.mask.expand(batch, *self.mask.shape[1:])
        self.calls.append(torch.nonzero(mask[0, 0, :, 0, 0]).flatten().tolist())
        down, mid = self.model(video, timestep, encoder_hidden_states=kwargs["encoder_hidden_states"],
                               controlnet_cond=cond, conditioning_mask=mask,
                               conditioning_scale=self.strength, return_dict=False)
        pose_down, pose_mid = output
        return [a + b for a, b in zip(pose_down, down, strict=True)], pose_mid + mid


def condition_on_keys(stack, engine, pipe, job, device) -> dict[str, Any]:
    """Registers the SparseCtrl hook for ``job``'s keys on ``pipe.controlnet`` until ``stack``
    closes; returns the record for the sidecar (the hook is ``engine.key_hooks[-1]``)."""
    from cinekit.inbetween.track import read_key

    runtime = engine.runtime
    modelset = engine.loader.modelset(job.model)
    path = getattr(modelset, "sparsectrl", None)
    if not path:
        raise UserError(f"shot {job.shot_id}: drawn keys need a SparseCtrl model in model set {job.model!r}",
                        hint="add `sparsectrl: PATH` (a SparseControlNetModel folder: the RGB or scribble model) "
                             "to the model set, or render the shot with the puppet engine")
    root = Path(runtime.project.root)
    folder = (root / path).resolve()
    dtype = pipe.unet.dtype
    cache = engine.__dict__.setdefault("_sparsectrl", {})
    if str(folder) not in cache:
        try:
            cache[str(folder)] = load_sparsectrl(folder, device, dtype)
        except (OSError, ValueError) as exc:    # missing folder, no config.json, wrong weights
            raise UserError(f"model set {job.model!r}: sparsectrl: cannot load {path} ({exc})",
                            hint="`sparsectrl:` is a diffusers SparseControlNetModel folder (config.json + "
                                 "weights), relative to the project") from None
    model = cache[str(folder)]
    limit = int(model.config.motion_max_seq_length)
    if job.frames > limit:
        raise UserError(f"shot {job.shot_id}: {job.frames} frames; SparseCtrl conditions at most {limit} frames at once",
                        hint="split the shot at a key, or lower its fps")
    read = getattr(getattr(runtime, "files", None), "read", None)
    images = []
    for rec in job.options["keys"]:
        image, digest = read_key(root / rec["image"], read)
        if digest != rec["sha256"]:
            raise UserError(f"{rec['image']} changed after the shot was planned", hint="run the command again")
        images.append(image)
    mode = str(job.options.get("key_mode", "rgb"))
    indices = [int(rec["frame"]) for rec in job.options["keys"]]
    cond, mask = sparse_inputs(condition_images(images, mode), indices, job.frames, model, pipe.vae, device, dtype)
    hook = KeyConditioning(model, cond, mask, float(job.options.get("key_strength", 1.0)), job.frames)
    handle = pipe.controlnet.register_forward_hook(hook, with_kwargs=True)
    stack.callback(handle.remove)
    engine.__dict__.setdefault("key_hooks", []).append(hook)
    return {"frames": indices, "mode": mode, "strength": hook.strength, "model": path}
