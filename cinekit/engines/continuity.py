"""Continuity across cuts (``continue_from``): the previous shot's output and last frame, the
cache of each clip's last latent (``ShotTails``) and the blend that holds a clip's opening
frames towards it (``OpeningHold``). Used by the diffusers clip engine."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from cinekit.errors import UserError
from cinekit.job import Job


def previous_output(out_dirs: list[Path], job: Job, shot_id: str) -> Path | None:
    """The rendered output of ``shot_id`` next to this job's output: PNG sequence, MP4 or GIF."""
    for out in out_dirs:
        folder = Path(out) / Path(job.output).parent
        for cand in (folder / shot_id, folder / f"{shot_id}.mp4", folder / f"{shot_id}.gif"):
            if cand.is_dir() and any(cand.glob("*.png")):
                return cand
            if cand.is_file():
                return cand
    return None


def last_frame(path: Path) -> np.ndarray:
    """The last frame ``(H, W, 3)`` uint8 of a PNG-sequence folder, an MP4 or a GIF."""
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        with Image.open(sorted(path.glob("*.png"))[-1]) as im:
            return np.asarray(im.convert("RGB")).copy()
    if path.suffix == ".gif":
        with Image.open(path) as im:
            im.seek(im.n_frames - 1)
            return np.asarray(im.convert("RGB")).copy()
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frame = None
    for buf in reader:
        frame = buf
    if frame is None:
        raise UserError(f"{path} has no frames")
    return np.frombuffer(frame, np.uint8).reshape(h, w, 3).copy()


def previous_shot(runtime, job: Job) -> Path:
    """The output of ``job.options["continue_from"]``: next to this job's output, else a UserError."""
    shot = str(job.options["continue_from"])
    dirs = [Path(d) for d in (job.options.get("output_dir"), getattr(runtime, "out_dir", None)) if d]
    dirs.append(runtime.project.output_dir)
    found = previous_output(dirs, job, shot)
    if found is None:
        raise UserError(f"shot {job.shot_id}: continue_from {shot!r}, but {shot} has not been rendered yet",
                        hint=f"render {shot} first (looked for {shot}.mp4, {shot}.gif or {shot}/ in "
                             f"{', '.join(str(d / Path(job.output).parent) for d in dirs)})")
    return found


def opening_hold(pipe, job: Job, device, path: Path, tails: "ShotTails") -> "OpeningHold":
    """The previous shot's last frame (output ``path``) as a held latent for the opening frames:
    its exact latent from ``tails`` when cached for that output, else the VAE encoding."""
    import torch
    from PIL import Image

    frame = last_frame(path)
    if frame.shape[:2] != (job.height, job.width):
        frame = np.asarray(Image.fromarray(frame).resize((job.width, job.height), Image.LANCZOS))
    shot = str(job.options["continue_from"])
    z0 = tails.load(job, shot, path)
    source = "latent" if z0 is not None else "vae"
    if z0 is None:
        vae = pipe.vae
        param = next(vae.parameters())
        x = torch.from_numpy(frame.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            z = vae.encode(x.to(device=param.device, dtype=param.dtype)).latent_dist.mean
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        z0 = (z - shift) * vae.config.scaling_factor
    z0 = z0.to(device=device, dtype=pipe.unet.dtype)
    count = max(1, min(int(job.options.get("continue_frames", 4)), job.frames))
    strength = float(job.options.get("continue_strength", 0.8))
    if not 0.0 <= strength <= 1.0:
        raise UserError(f"shot {job.shot_id}: continue_strength must lie in 0..1 (got {strength})")
    g = torch.Generator("cpu").manual_seed((job.seed + 0xC0C0) % (2**63))
    noise = torch.randn((1, z0.shape[1], count, *z0.shape[2:]), generator=g).to(device=device, dtype=z0.dtype)
    weights = [1.0 - k / count for k in range(count)]
    record = {"shot": shot, "file": path.name, "source": source, "frames": count,
              "strength": strength, "weights": weights}
    return OpeningHold(pipe.scheduler, z0, noise, weights, strength, job.steps, record)


class ShotTails:
    """The last frame's latent of every rendered clip, so a following ``continue_from`` shot starts
    from the exact latent instead of a VAE re-encoding of a lossy MP4 frame.

    Stored under ``<cache_dir>/clip-tails`` keyed by (shot list, shot id, model, size), with a
    digest of the job record; used only while the previous output's sidecar (``<id>.json``,
    written by the writers) records that same job, i.e. the file is this render's."""

    def __init__(self, cache_dir: Path | None):
        self.folder = Path(cache_dir) / "clip-tails" if cache_dir else None

    def _path(self, job: Job, shot_id: str) -> Path | None:
        if self.folder is None:
            return None
        key = hashlib.sha256(f"{job.shotlist}|{shot_id}|{job.model}|{job.width}x{job.height}".encode()).hexdigest()
        return self.folder / f"{key}.safetensors"

    @staticmethod
    def digest(record: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()

    def save(self, job: Job, latent) -> None:
        from cinekit.identity.embeddings import _save

        path = self._path(job, job.shot_id)
        if path is not None:
            _save(path, {"latent": latent.detach().float()}, {"job": self.digest(job.to_record())})

    def load(self, job: Job, shot_id: str, output: Path):
        """The cached latent of ``shot_id``'s last frame, or None when absent or not this output's."""
        from safetensors import safe_open

        path = self._path(job, shot_id)
        sidecar = Path(output).parent / f"{shot_id}.json"
        if path is None or not path.is_file() or not sidecar.is_file():
            return None
        try:
            recorded = json.loads(sidecar.read_text()).get("job")
            with safe_open(str(path), framework="pt") as f:
                if recorded is None or f.metadata().get("job") != self.digest(recorded):
                    return None
                return f.get_tensor("latent")
        except (OSError, ValueError, AttributeError):
            return None


class OpeningHold:
    """Blends the opening frames' latents towards a held latent after each denoising step.

    After the step that lands on timestep ``t_next``, frame ``k`` becomes
    ``w_k * add_noise(z0, n_k, t_next) + (1 - w_k) * latent_k`` (``z0`` itself after the last
    step), while the step lies in the first ``strength`` of the schedule (RePaint-style
    latent blending, Lugmayr et al. 2022, applied as a per-frame img2img init).
    """

    def __init__(self, scheduler, z0, noise, weights, strength: float, steps: int, record: dict[str, Any]):
        self.scheduler, self.z0, self.noise = scheduler, z0, noise
        self.weights, self.strength, self.steps, self.record = weights, strength, steps, record
        self.blends = 0

    def __call__(self, latents, t, step: int):
        import torch

        timesteps = list(self.scheduler.timesteps)
        try:
            pos = [int(x) for x in timesteps].index(int(t))
        except ValueError:
            return latents
        if (pos + 1) > round(self.strength * len(timesteps)):
            return latents
        last = pos + 1 >= len(timesteps)
        z0 = self.z0.to(latents.dtype)
        out = latents.clone()
        for k, w in enumerate(self.weights):
            if last:
                target = z0
            else:
                t_next = torch.as_tensor([int(timesteps[pos + 1])], device=latents.device)
                target = self.scheduler.add_noise(z0, self.noise[:, :, k].to(latents.dtype), t_next)
            out[:, :, k] = w * target + (1.0 - w) * latents[:, :, k]
        self.blends += 1
        return out
