"""Where a job's files go and how they are written (one place for every engine and executor)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from cinekit import __version__
from cinekit.engines.base import FrameStream, RenderResult, mask_frames, stream_of
from cinekit.errors import EngineError
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


def clear_temps(path: Path, keep: Path | None = None) -> None:
    """Remove temporary files a killed writer left for ``path`` (``.<name>.<random><suffix>``).

    One glob of the folder: the batch renderer instead cleans the whole output folder once
    (``clear_all_temps``) and skips this per job.
    """
    for tmp in path.parent.glob(f".{path.name}.*"):
        if tmp == keep or tmp.name.endswith(".pending.json"):
            continue
        writers.discard(tmp)


def clear_all_temps(out_dir: Path) -> int:
    """Remove every temporary file/folder a killed run left under ``out_dir`` (one walk; under the lock)."""
    import os

    removed = 0
    for folder, dirs, files in os.walk(out_dir):
        for name in [*files, *dirs]:
            if name.startswith(".") and writers.TEMP_MARK in name:
                writers.discard(Path(folder) / name)
                removed += 1
        dirs[:] = [d for d in dirs if not (d.startswith(".") and writers.TEMP_MARK in d)]
    return removed


def _journal_names(journal: Path) -> set[str]:
    try:
        return set(json.loads(journal.read_text()).get("files", []))
    except (OSError, ValueError, AttributeError):
        return set()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_result(out_dir: Path, job: Job, result: RenderResult | FrameStream, fmt: str = "mp4", *,
                 engine_version: str = "", extra_record: dict[str, Any] | None = None, force: bool = False,
                 key: KeyInfo | None = None, owned: Iterable[str] = (), clean_temps: bool = True,
                 root: Path | None = None, model_hash: str | None = None) -> dict[str, Any]:
    """Write the main output, the extras, a poster (clips), the masks and the sidecar; return the record.

    ``result`` is a whole ``RenderResult`` or a ``FrameStream``: frames are encoded as they come
    (the engine's work happens while this runs), so a clip is never held whole in memory; only
    the poster frame and the masks of ``mask_frames(job)`` are kept.

    The sidecar ``<id>.json`` is the commit point: written last, atomically, and removed before
    any file of a re-render is replaced, so a job has a valid sidecar only while every file it
    lists is complete. Every file is checked before its rename (``writers.verify_*``); if any
    write fails (encoder killed, disk full, file-size limit), the job's files are removed, no
    sidecar is written, and the error is raised: the next run renders the job again. A journal
    (``.<id>.pending.json``) names the files being written, so a render killed half-way can
    replace its own files on the next run (and no foreign file). ``owned`` names files another
    record (the manifest) gives as cinekit's, so a job whose sidecar is damaged is repaired.

    The record embedded in the files (PNG text chunk) holds only what decides the bytes (job,
    engine, format, key): two renders of one job give the same bytes. Timings and other
    ``extra_record`` entries go to the sidecar only.

    ``root`` (the project folder): every absolute path of the records is written relative to it
    (``interop.portable``), so no output carries the user's machine layout. Main PNGs also carry
    A1111's ``parameters`` text (``model_hash``: its "Model hash"), and ``<id>.openpose.json``
    holds every frame's pose in the OpenPose-editor format.
    """
    from cinekit.render import interop

    keep = mask_frames(job)
    stream = stream_of(result, keep) if isinstance(result, RenderResult) else result
    if isinstance(result, RenderResult) and result.frames.shape != (job.frames, job.height, job.width, 3):
        raise EngineError(f"{job.engine} returned frames of shape {result.frames.shape}, "
                          f"expected {(job.frames, job.height, job.width, 3)}")
    stem = Path(out_dir) / job.output
    paths = {"main": main_output(out_dir, job, fmt)}
    for name in stream.extras:
        paths[name] = _extra_path(stem, name, job.kind, fmt)
    if job.kind == "clip":
        paths["poster"] = stem.with_name(f"{stem.name}.poster.png")
    if job.characters:
        paths["openpose"] = stem.with_name(f"{stem.name}.openpose.json")
    if stream.masks and job.characters:
        from cinekit.score.regions import masks_path

        paths["masks"] = masks_path(paths["main"])  # character regions, for consistency scores
    sidecar = writers.sidecar_path(stem.with_suffix(".x"))
    journal = pending_path(sidecar)
    ours = _journal_names(journal) | set(owned)  # files an interrupted render of this job was writing
    for path in [*paths.values(), sidecar]:
        writers.ensure_writable(path, force=force, owned=ours)

    record = {
        writers.METADATA_KEY: __version__,
        "job": interop.portable(job.to_record(), root),
        "engine": {"name": job.engine, "version": engine_version},
        "format": fmt if job.kind == "clip" else "png",
    }
    if key is not None:
        record["key"] = key.key
    # 1. journal, 2. un-commit the old render, 3. files (checked), 4. sidecar (commit), 5. drop the journal.
    if clean_temps:
        clear_temps(journal, keep=journal)
        for path in [*paths.values(), sidecar]:
            clear_temps(path)
    writers.write_json(journal, {"files": sorted(ours | {p.name for p in [*paths.values(), sidecar]})})
    sidecar.unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        parameters = interop.a1111_parameters(job, stream.info, model_hash)
        engine_s = _write_frames(job, stream, paths, fmt, record, keep, parameters)
        if "openpose" in paths:
            interop.write_openpose(paths["openpose"], job)
        if stream.info:
            record["info"] = interop.portable(stream.info, root)
        sidecar_record = {**record, **interop.portable(extra_record or {}, root)}
        if key is not None:
            sidecar_record["key_parts"] = interop.portable(key.parts, root)
        sidecar_record["files"] = {p.name: output_sha256(p) for p in paths.values()}
        sidecar_record["stat"] = {p.name: stat_signature(p) for p in paths.values()}
        sidecar_record["outputs"] = {k: p.name for k, p in paths.items()}
        # A streamed engine renders while the files are written: its share counts as render time.
        timings = sidecar_record.setdefault("timings", {})
        timings["render_s"] = round(timings.get("render_s", 0.0) + engine_s, 4)
        timings["write_s"] = round(time.perf_counter() - started - engine_s, 4)
        writers.write_json(sidecar, sidecar_record)
    except Exception:
        # Nothing of a failed job stays at a final name (its old files were un-committed above).
        # An interrupt (Ctrl-C) is left like a kill: the journal lets the next run replace the files.
        for path in paths.values():
            _remove(path)
        sidecar.unlink(missing_ok=True)
        journal.unlink(missing_ok=True)
        raise
    journal.unlink(missing_ok=True)
    return sidecar_record


def _write_frames(job: Job, stream: FrameStream, paths: dict[str, Path], fmt: str, record: dict,
                  keep: frozenset[int], parameters: str | None = None) -> float:
    """Pull every frame from ``stream`` into one sink per output; return the seconds spent in the engine."""
    sinks = {name: writers.open_sink(path, job.kind, fmt, job.fps, record, parameters if name == "main" else None)
             for name, path in paths.items() if name not in ("poster", "masks", "openpose")}
    poster_at, poster = job.frames // 2, None
    kept: list[np.ndarray] = []
    names = [c.name for c in job.characters]
    count, engine_s = 0, 0.0
    shape = (job.height, job.width, 3)
    try:
        frames = iter(stream.frames)
        while True:
            t = time.perf_counter()
            try:
                frame = next(frames)
            except StopIteration:
                engine_s += time.perf_counter() - t
                break
            engine_s += time.perf_counter() - t
            if count >= job.frames:
                raise EngineError(f"{job.engine} produced more than the {job.frames} frame(s) of {job.shot_id}")
            if frame.image.shape != shape:
                raise EngineError(f"{job.engine} returned a frame of shape {frame.image.shape}, expected {shape}")
            sinks["main"].add(frame.image)
            for name in stream.extras:
                sinks[name].add(frame.extras[name])
            if count == poster_at and "poster" in paths:
                poster = np.array(frame.image, copy=True)
            if "masks" in paths and count in keep:
                if frame.masks is None or frame.masks.shape != (len(names), job.height, job.width):
                    raise EngineError(f"{job.engine} gave no masks for frame {count} of {job.shot_id}")
                kept.append(np.asarray(frame.masks, bool))
            count += 1
        if count != job.frames:
            raise EngineError(f"{job.engine} produced {count} frame(s), expected {job.frames}")
        for sink in sinks.values():
            sink.finish()
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    if poster is not None:
        writers.write_png(paths["poster"], poster, record, parameters)
    if "masks" in paths:
        from cinekit.score.regions import write_masks

        write_masks(paths["main"], np.stack(kept), names, frames=np.array(sorted(keep), np.int32))
    return engine_s
