"""Where a job's files go and how they are written (one place for every engine and executor)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from cinekit import __version__
from cinekit.engines.base import RenderResult
from cinekit.job import Job
from cinekit.render import writers

CLIP_FORMATS = ("mp4", "gif", "png")


def main_output(out_dir: Path, job: Job, fmt: str = "mp4") -> Path:
    """The primary file of a job: ``<out>/<list>/<id>.png`` for stills, ``.mp4|.gif|/`` for clips."""
    stem = Path(out_dir) / job.output
    if job.kind == "still":
        return stem.with_suffix(".png")
    return stem if fmt == "png" else stem.with_suffix(f".{fmt}")


def _extra_path(stem: Path, name: str, kind: str, fmt: str) -> Path:
    if kind == "still":
        return stem.with_name(f"{stem.name}.{name}.png")
    return stem.with_name(f"{stem.name}.{name}" if fmt == "png" else f"{stem.name}.{name}.{fmt}")


def _sha256(path: Path) -> str:
    if path.is_dir():
        digest = hashlib.sha256()
        for f in sorted(path.iterdir()):
            digest.update(f.name.encode())
            digest.update(f.read_bytes())
        return digest.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(path: Path, frames: np.ndarray, job: Job, fmt: str, record: dict) -> None:
    if job.kind == "still":
        writers.write_png(path, frames[0], record)
    elif fmt == "mp4":
        writers.write_mp4(path, frames, job.fps)
    elif fmt == "gif":
        writers.write_gif(path, frames, job.fps)
    else:
        writers.write_png_sequence(path, frames, record)


def write_result(out_dir: Path, job: Job, result: RenderResult, fmt: str = "mp4", *, engine_version: str = "",
                 extra_record: dict[str, Any] | None = None, force: bool = False) -> dict[str, Any]:
    """Write the main output, the extras, a poster (clips) and the sidecar; return the record.

    The sidecar is written last: a job whose sidecar exists was written completely.
    """
    if result.frames.shape != (job.frames, job.height, job.width, 3):
        from cinekit.errors import EngineError

        raise EngineError(f"{job.engine} returned frames of shape {result.frames.shape}, "
                          f"expected {(job.frames, job.height, job.width, 3)}")
    stem = Path(out_dir) / job.output
    paths = {"main": main_output(out_dir, job, fmt)}
    for name in result.extras:
        paths[name] = _extra_path(stem, name, job.kind, fmt)
    if job.kind == "clip":
        paths["poster"] = stem.with_name(f"{stem.name}.poster.png")
    sidecar = writers.sidecar_path(stem.with_suffix(".x"))
    for path in [*paths.values(), sidecar]:
        writers.ensure_writable(path, force=force)

    record = {
        writers.METADATA_KEY: __version__,
        "job": job.to_record(),
        "engine": {"name": job.engine, "version": engine_version},
        "format": fmt if job.kind == "clip" else "png",
        **(extra_record or {}),
    }
    if result.info:
        record["info"] = result.info
    _write(paths["main"], result.frames, job, fmt, record)
    for name, frames in result.extras.items():
        _write(paths[name], frames, job, fmt, record)
    if "poster" in paths:
        writers.write_png(paths["poster"], result.frames[len(result.frames) // 2], record)
    record["files"] = {p.name: _sha256(p) for p in paths.values()}
    record["outputs"] = {k: p.name for k, p in paths.items()}
    writers.write_json(sidecar, record)
    return record
