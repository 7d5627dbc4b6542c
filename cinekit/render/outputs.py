"""Where a job's files go and how they are written (one place for every engine and executor)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cinekit import __version__
from cinekit.engines.base import RenderResult
from cinekit.job import Job
from cinekit.render import writers
from cinekit.render.cache import KeyInfo, output_sha256, pending_path, stat_signature

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


def _write(path: Path, frames: np.ndarray, job: Job, fmt: str, record: dict) -> None:
    if job.kind == "still":
        writers.write_png(path, frames[0], record)
    elif fmt == "mp4":
        writers.write_mp4(path, frames, job.fps)
    elif fmt == "gif":
        writers.write_gif(path, frames, job.fps)
    else:
        writers.write_png_sequence(path, frames, record)


def _clear_temps(path: Path, keep: Path) -> None:
    """Remove temporary files a killed writer left for ``path`` (``.<name>.<random><suffix>``)."""
    import shutil

    for tmp in path.parent.glob(f".{path.name}.*"):
        if tmp == keep:
            continue
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def _journal_names(journal: Path) -> set[str]:
    try:
        return set(json.loads(journal.read_text()).get("files", []))
    except (OSError, ValueError, AttributeError):
        return set()


def write_result(out_dir: Path, job: Job, result: RenderResult, fmt: str = "mp4", *, engine_version: str = "",
                 extra_record: dict[str, Any] | None = None, force: bool = False,
                 key: KeyInfo | None = None) -> dict[str, Any]:
    """Write the main output, the extras, a poster (clips) and the sidecar; return the record.

    The sidecar ``<id>.json`` is the commit point: written last, atomically, and removed before
    any file of a re-render is replaced, so a job has a valid sidecar only while every file it
    lists is complete. A journal (``.<id>.pending.json``) names the files being written, so a
    render killed half-way can replace its own files on the next run (and no foreign file).

    The record embedded in the files (PNG text chunk) holds only what decides the bytes (job,
    engine, format, key): two renders of one job give the same bytes. Timings and other
    ``extra_record`` entries go to the sidecar only.
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
    if result.masks is not None and job.characters:
        from cinekit.score.regions import masks_path

        paths["masks"] = masks_path(paths["main"])  # character regions, for consistency scores
    sidecar = writers.sidecar_path(stem.with_suffix(".x"))
    journal = pending_path(sidecar)
    ours = _journal_names(journal)  # files an interrupted render of this job was writing
    for path in [*paths.values(), sidecar]:
        if path.name not in ours:
            writers.ensure_writable(path, force=force)

    record = {
        writers.METADATA_KEY: __version__,
        "job": job.to_record(),
        "engine": {"name": job.engine, "version": engine_version},
        "format": fmt if job.kind == "clip" else "png",
    }
    if key is not None:
        record["key"] = key.key
    if result.info:
        record["info"] = result.info
    # 1. journal, 2. un-commit the old render, 3. files, 4. sidecar (commit), 5. drop the journal.
    _clear_temps(journal, keep=journal)
    writers.write_json(journal, {"files": sorted(ours | {p.name for p in [*paths.values(), sidecar]})})
    sidecar.unlink(missing_ok=True)
    for path in [*paths.values(), sidecar]:
        _clear_temps(path, keep=journal)
    _write(paths["main"], result.frames, job, fmt, record)
    for name, frames in result.extras.items():
        _write(paths[name], frames, job, fmt, record)
    if "poster" in paths:
        writers.write_png(paths["poster"], result.frames[len(result.frames) // 2], record)
    if "masks" in paths:
        from cinekit.score.regions import write_masks

        write_masks(paths["main"], result.masks, [c.name for c in job.characters])
    sidecar_record = {**record, **(extra_record or {})}
    if key is not None:
        sidecar_record["key_parts"] = key.parts
    sidecar_record["files"] = {p.name: output_sha256(p) for p in paths.values()}
    sidecar_record["stat"] = {p.name: stat_signature(p) for p in paths.values()}
    sidecar_record["outputs"] = {k: p.name for k, p in paths.items()}
    writers.write_json(sidecar, sidecar_record)
    journal.unlink(missing_ok=True)
    return sidecar_record
