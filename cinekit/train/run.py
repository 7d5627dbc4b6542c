"""One `cinekit train` run end to end: pick the model set, prepare, train (or plan), write.

Used by the CLI, the tests and the benchmark, so all three run the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from cinekit.errors import UserError
from cinekit.train.plan import Prepared, TrainOptions, format_plan, prepare


@dataclass
class Outcome:
    prep: Prepared
    model: str
    out: Path
    result: object = None          # TrainResult (None for a dry run)
    plan: str = ""
    written_to_yaml: bool = False


def pick_model(project, model: str | None) -> str:
    sets = project.config.models
    if model is not None:
        if model not in sets:
            raise UserError(f"unknown model set {model!r}", hint=f"configured in cinekit.yaml: {', '.join(sorted(sets)) or 'none'}")
        return model
    sd15 = [n for n, ms in sets.items() if ms.family == "sd15"]
    if len(sd15) == 1:
        return sd15[0]
    if not sd15:
        raise UserError("no sd15 model set in cinekit.yaml to train on",
                        hint="add one under `models:` (`cinekit models tiny DIR` writes a tiny test set)")
    raise UserError(f"several sd15 model sets ({', '.join(sd15)}): which one to train on?", hint="pass --model NAME")


def base_folder(project, model: str) -> Path | None:
    from cinekit.engines.model_check import resolve_model_path

    path, _ = resolve_model_path(project.config.models[model].base, project.root)
    return path if path is not None and path.is_dir() else None


def native_size(project, model: str) -> int:
    """The resolution the model was trained at: UNet ``sample_size`` x 8 (512 for SD 1.5)."""
    base = base_folder(project, model)
    try:
        return int(json.loads((base / "unet" / "config.json").read_text())["sample_size"]) * 8
    except (TypeError, OSError, ValueError, KeyError):
        return 512


def default_out(project, name: str, embedding: bool) -> Path:
    return project.root / ("embeddings" if embedding else "loras") / f"{name}.safetensors"


def work_dir(runtime, name: str, embedding: bool) -> Path:
    return Path(runtime.cache_dir) / "train" / f"{name}-{'embedding' if embedding else 'lora'}"


def train(runtime, name: str, options: TrainOptions, *, model: str | None = None, out: Path | None = None,
          write: bool = False, dry_run: bool = False, loader=None, progress: Callable | None = None,
          stop_after: int | None = None, restart: bool = False) -> Outcome:
    project = runtime.project
    model = pick_model(project, model)
    if options.size <= 0:
        options = replace(options, size=native_size(project, model))
    if options.size % 8:
        raise UserError(f"--size {options.size}: must be a multiple of 8")
    out = Path(out) if out is not None else default_out(project, name, options.embedding)
    prep = prepare(runtime, name, options)
    prep.fingerprint = options.fingerprint(prep.fingerprint, model)
    if dry_run:
        from cinekit.train.plan import write_preview

        preview = write_preview(prep.pool, work_dir(runtime, name, options.embedding) / "pool.png")
        return Outcome(prep, model, out, plan=format_plan(prep, options, model, out, estimate(runtime, model, options),
                                                          preview))
    from cinekit.engines.loader import ModelLoader

    loader = loader or ModelLoader.for_runtime(runtime)
    work = work_dir(runtime, name, options.embedding)
    if restart:
        (work / "checkpoint.pt").unlink(missing_ok=True)
    if options.embedding:
        from cinekit.train.ti_train import train_embedding as fn
    else:
        from cinekit.train.lora_train import train_lora as fn
    result = fn(loader, model, prep, options, out, work, progress=progress, stop_after=stop_after)
    outcome = Outcome(prep, model, out, result)
    if write and result.path is not None:
        from cinekit.train.yaml_edit import add_to_character

        if options.embedding:
            outcome.written_to_yaml = add_to_character(prep.spec_path, "embeddings", result.path, {"token": prep.trigger})
        else:
            outcome.written_to_yaml = add_to_character(prep.spec_path, "lora", result.path,
                                                       {"weight": 1.0, "trigger": prep.trigger})
    return outcome


def estimate(runtime, model: str, options: TrainOptions) -> dict | None:
    """``cost.step_cost`` for the run's device and dtype (None for single-file model sets)."""
    from cinekit.engines.loader import pick_device, pick_dtype
    from cinekit.train.cost import step_cost

    base = base_folder(runtime.project, model)
    if base is None:
        return None
    device = pick_device(runtime.device)
    dtype = str(pick_dtype(runtime.dtype, device)).replace("torch.", "")
    checkpointing = options.grad_checkpointing if options.grad_checkpointing is not None else device.startswith("cuda")
    trainable = None
    if options.embedding:
        trainable = options.vectors * 1024      # at most a 1024-wide text encoder row per vector
    return step_cost(base, size=options.size, batch=options.batch, dtype=dtype, rank=options.rank,
                     targets=options.targets, device=device, checkpointing=checkpointing, trainable=trainable)
