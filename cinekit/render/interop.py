"""What other tools read from cinekit's outputs: A1111 ``parameters`` text, OpenPose JSON, portable records.

- ``a1111_parameters``: the text chunk AUTOMATIC1111 writes into its PNGs (and ComfyUI, civitai,
  sd-prompt-reader and the A1111 "PNG Info" tab read back)::

      <prompt>
      Negative prompt: <negative>
      Steps: 25, Sampler: DPM++ 2M, CFG scale: 7.0, Seed: 1, Size: 512x512, Model hash: 6ce0161689, Model: base

  Weight-free engines (previz, puppet) do not sample: their line says ``Sampler: none`` and names the
  engine as the model, so nobody mistakes a mannequin for a diffusion render; the shot's steps and CFG
  are still given (what a diffusion engine would use for this shot).
- ``openpose_frames``: every frame's pose in the OpenPose-editor format
  (``{"people": [{"pose_keypoints_2d": [x, y, c] * 18}], "canvas_width", "canvas_height"}``); a still
  is one such object, a clip a list of them (ComfyUI's ``POSE_KEYPOINT`` file).
- ``portable``: a record with every absolute path made relative to the project root, so no output
  carries the user's home folder or machine layout (a path outside the project becomes ``../...``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from cinekit import __version__

# diffusers scheduler class -> the sampler name A1111 writes (its k-diffusion names).
SAMPLERS = {
    "DPMSolverMultistepScheduler": "DPM++ 2M", "DPMSolverSinglestepScheduler": "DPM++ SDE",
    "EulerDiscreteScheduler": "Euler", "EulerAncestralDiscreteScheduler": "Euler a",
    "DDIMScheduler": "DDIM", "PNDMScheduler": "PLMS", "LMSDiscreteScheduler": "LMS",
    "HeunDiscreteScheduler": "Heun", "KDPM2DiscreteScheduler": "DPM2",
    "KDPM2AncestralDiscreteScheduler": "DPM2 a", "UniPCMultistepScheduler": "UniPC",
    "LCMScheduler": "LCM", "DDPMScheduler": "DDPM", "TCDScheduler": "TCD",
}
WEIGHT_FREE = ("previz", "puppet")


def _clean(text: str) -> str:
    """One A1111 field value: no newlines (the format is line-based), no commas (they split fields)."""
    return " ".join(str(text).replace(",", " ").split())


def a1111_parameters(job, info: dict[str, Any] | None = None, model_hash: str | None = None) -> str:
    """The A1111 ``parameters`` text of ``job`` (``info``: the engine's record, e.g. the scheduler)."""
    info = info or {}
    weight_free = job.engine in WEIGHT_FREE or not job.model
    scheduler = info.get("scheduler")
    sampler = "none" if weight_free else SAMPLERS.get(scheduler, scheduler or "default")
    fields = [("Steps", job.steps), ("Sampler", sampler), ("CFG scale", f"{float(job.guidance):g}"),
              ("Seed", job.seed), ("Size", f"{job.width}x{job.height}")]
    if model_hash and not weight_free:
        fields.append(("Model hash", model_hash))
    fields.append(("Model", _clean(job.engine if weight_free else job.model)))
    fields += [("Engine", job.engine), ("Version", f"cinekit {__version__}")]
    lines = [" ".join(str(job.prompt).split())]
    if job.negative:
        lines.append(f"Negative prompt: {' '.join(str(job.negative).split())}")
    lines.append(", ".join(f"{k}: {_clean(v)}" for k, v in fields))
    return "\n".join(lines)


def model_hash(project, job, inputs: dict[str, str]) -> str | None:
    """A1111's "Model hash" (AutoV2: the first 10 hex digits of the checkpoint's sha256).

    Read from the key's input digests (computed once per batch), never by hashing the weights again;
    ``None`` for weight-free engines and for a base model given by hub id or as a folder.
    """
    if job.engine in WEIGHT_FREE or not job.model or project is None:
        return None
    ms = project.config.models.get(job.model)
    if ms is None:
        return None
    base = (project.root / ms.base).resolve()
    digest = inputs.get(relpath(base, project.root)) if base.is_file() else None
    if not digest or not digest.startswith("sha256:"):
        return None
    return digest.split(":", 1)[1][:10]


# --------------------------------------------------------------------------- portable records
def relpath(path: str | Path, root: Path) -> str:
    """``path`` as a record writes it: relative to ``root`` (``../`` when outside it), or
    ``~/...`` when it lies in the home folder outside the project (no user name, no layout)."""
    path, root = Path(path).resolve(), Path(root).resolve()
    home = Path(os.path.expanduser("~")).resolve()
    if not path.is_relative_to(root) and path.is_relative_to(home) and home != Path(home.anchor):
        return "~/" + path.relative_to(home).as_posix()
    return Path(os.path.relpath(path, root)).as_posix()


def _is_local_path(text: str, root: str, home: str) -> bool:
    if not os.path.isabs(text) or "\n" in text:
        return False
    return text.startswith(root) or text.startswith(home) or os.path.exists(text)


def portable(value: Any, root: Path | None) -> Any:
    """``value`` (JSON-like) with every absolute local path made relative to ``root``.

    Walks keys and values: engines record paths in places this module cannot list in advance
    (a model's files, a LoRA, an embedding). A string counts as a path when it is absolute and
    lies under the project, under the home folder, or exists; prompts are left alone.
    """
    if root is None:
        return value
    root = Path(root).resolve()
    sroot, home = str(root), os.path.expanduser("~")

    def walk(v):
        if isinstance(v, str):
            return relpath(v, root) if _is_local_path(v, sroot, home) else v
        if isinstance(v, dict):
            return {walk(k): walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    return walk(value)


def absolute(path: str, root: Path | None) -> str:
    """The inverse of ``portable`` for one path: relative -> absolute under ``root``."""
    if root is None or os.path.isabs(path):
        return path
    if path.startswith("~/"):
        return os.path.expanduser(path)
    return str((Path(root) / path).resolve())


# --------------------------------------------------------------------------- OpenPose JSON
def openpose_frame(pose: np.ndarray, width: int, height: int) -> dict[str, Any]:
    """One frame ``(characters, 18, 2)`` pixels (NaN = hidden) -> the OpenPose-editor object."""
    people = []
    for person in np.asarray(pose, dtype=np.float64):
        seen = np.isfinite(person).all(axis=1)
        kp = np.zeros((len(person), 3))
        kp[seen, :2] = np.round(person[seen], 2)
        kp[seen, 2] = 1.0
        people.append({"pose_keypoints_2d": [float(x) for x in kp.reshape(-1)]})
    return {"people": people, "canvas_width": int(width), "canvas_height": int(height)}


def openpose_document(job) -> dict[str, Any] | list[dict[str, Any]]:
    """Every frame's pose of ``job``: one object for a still, a list of frames for a clip."""
    frames = [openpose_frame(job.pose[f], job.width, job.height) for f in range(job.pose.shape[0])]
    return frames[0] if job.kind == "still" else frames


def write_openpose(path: Path, job) -> Path:
    """``<id>.openpose.json`` next to the control maps (atomic, checked like every output)."""
    from cinekit.render.writers import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(openpose_document(job), separators=(",", ":")) + "\n")
    return Path(path)
