"""Turn planned jobs into files: validate-then-execute, cache, manifest, lock.

``render_jobs`` is the one place that turns jobs into files; every CLI command that renders
goes through it. It groups jobs by engine + model (each pipeline loads once), hands the groups
to an executor (local or Ray, ``cinekit.render.executors``) and writes each result with
``write_result`` in this process, whatever the executor, so outputs are byte-identical.

``render_batch`` is the build-system layer on top: under the output folder's lock it computes
every job's content key, skips up-to-date outputs, renders the rest and keeps
``manifest.json`` current. ``plan_batch`` is the read-only part (``--dry-run``).
"""

from __future__ import annotations

import base64
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cinekit.engines.base import FrameStream, RenderResult
from cinekit.errors import CinekitError
from cinekit.job import Job
from cinekit.render import cache
from cinekit.render.executors import Task, describe_exception, group_tasks
from cinekit.render.interop import model_hash
from cinekit.render.outputs import write_result
from cinekit.render.writers import sidecar_path


@dataclass
class Outcome:
    job: Job
    status: str                        # rendered | cached | failed
    seconds: float = 0.0
    record: dict[str, Any] | None = None
    error: str | None = None
    exit_code: int = 0
    files: list[Path] = field(default_factory=list)
    reason: str = ""                   # why it ran (new, spec changed, ...) or "cached"


class Progress:
    """Callbacks the runner reports to (rich bars in a terminal, plain lines in CI, nothing in tests)."""

    def job_started(self, job: Job, index: int, total: int) -> None: ...
    def job_progress(self, job: Job, done: int, total: int) -> None: ...
    def job_finished(self, outcome: Outcome) -> None: ...


def encode_pose(pose: np.ndarray) -> dict[str, Any]:
    """The pose track, losslessly, for the sidecar (``--reproduce`` needs no re-planning)."""
    arr = np.ascontiguousarray(pose, dtype=np.float64)
    return {"dtype": "float64", "shape": list(arr.shape),
            "zlib_b64": base64.b64encode(zlib.compress(arr.tobytes(), 6)).decode()}


def decode_pose(data: dict[str, Any]) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(data["zlib_b64"]))
    return np.frombuffer(raw, dtype=data.get("dtype", "float64")).reshape(data["shape"]).copy()


def slim(record: dict[str, Any]) -> dict[str, Any]:
    """A sidecar record without its bulky pose track (what outcomes keep in memory)."""
    return {k: v for k, v in record.items() if k not in ("pose_track", "depth_track", "acting_track")}


def _record_from_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """What a cached outcome keeps when its sidecar was not read: the parts of the record the
    manifest entry holds (key, files, outputs, timings, stored gate scores)."""
    record = {k: entry[k] for k in ("key", "engine", "format", "files", "stat", "outputs", "timings", "rendered_at")
              if k in entry}
    if entry.get("scores") is not None:
        record["scores"] = entry["scores"]
    return record


class _Committer:
    """Executor events -> files on disk, outcomes, manifest entries, progress callbacks."""

    def __init__(self, out_dir: Path, fmt: str, force: bool, fail_fast: bool, progress: Progress, total: int,
                 keys: dict[int, cache.KeyInfo], reasons: dict[int, str], manifest, debug: bool,
                 clean_temps: bool = True, project=None):
        self.out_dir, self.fmt, self.force, self.fail_fast = out_dir, fmt, force, fail_fast
        self.project = project  # its root makes the records' paths relative
        self.progress, self.total, self.keys, self.reasons = progress, total, keys, reasons
        self.manifest, self.debug, self.clean_temps = manifest, debug, clean_temps
        self.outcomes: dict[int, Outcome] = {}
        self.count = 0

    def started(self, task: Task) -> None:
        self.progress.job_started(task.job, self.count, self.total)
        self.count += 1

    def progress_(self, task: Task, done: int, total: int) -> None:
        self.progress.job_progress(task.job, done, total)

    def _finish(self, task: Task, outcome: Outcome) -> bool:
        self.outcomes[task.index] = outcome
        self.progress.job_finished(outcome)
        return not (self.fail_fast and outcome.status == "failed")

    def _owned(self, job: Job) -> set[str]:
        """Files of this job that the manifest records as cinekit's (repairs a damaged sidecar)."""
        if self.manifest is None:
            return set()
        files = self.manifest.files_of(job.output)
        if files:
            files.add(sidecar_path(Path(job.output).with_suffix(".x")).name)
        return files

    def done(self, task: Task, result: RenderResult | FrameStream, engine_version: str, seconds: float) -> bool:
        """Write a job's files. With a ``FrameStream`` the engine renders while this writes, so an
        engine error can surface here too: it fails this job like any other."""
        job = task.job
        start = time.perf_counter()
        reason = self.reasons.get(task.index, "")
        try:
            extra = {"timings": {"render_s": round(seconds, 4)},
                     "rendered_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "pose_track": encode_pose(job.pose)}
            key = self.keys.get(task.index)
            if job.depth is not None:
                extra["depth_track"] = encode_pose(job.depth)
            if job.acting:  # the faces, losslessly (--reproduce)
                from cinekit.acting.timeline import encode_acting

                extra["acting_track"] = encode_acting(job.acting, encode_pose)
            record = write_result(self.out_dir, job, result, self.fmt, engine_version=engine_version,
                                  force=self.force, key=key, extra_record=extra,
                                  owned=self._owned(job), clean_temps=self.clean_temps,
                                  root=getattr(self.project, "root", None),
                                  model_hash=model_hash(self.project, job, key.parts.get("inputs", {}) if key else {}))
        except CinekitError as exc:
            return self._finish(task, Outcome(job, "failed", seconds + time.perf_counter() - start,
                                              error=exc.format(), exit_code=exc.exit_code, reason=reason))
        except Exception as exc:  # noqa: BLE001 - a broken engine or disk on one job must not stop the batch
            if self.debug:
                raise
            return self._finish(task, Outcome(job, "failed", seconds + time.perf_counter() - start,
                                              error=describe_exception(exc), exit_code=3, reason=reason))
        elapsed = time.perf_counter() - start
        if self.manifest is not None:
            sidecar = sidecar_path((self.out_dir / job.output).with_suffix(".x"))
            self.manifest.append(job.output, record, cache.stat_signature(sidecar))
        record = slim(record)
        files = [self.out_dir / Path(job.output).parent / name for name in record["files"]]
        return self._finish(task, Outcome(job, "rendered", seconds + elapsed, record, files=files, reason=reason))

    def failed(self, task: Task, error: str, exit_code: int, seconds: float) -> bool:
        return self._finish(task, Outcome(task.job, "failed", seconds, error=error, exit_code=exit_code,
                                          reason=self.reasons.get(task.index, "")))


class _Events:
    """Adapter with the executor's method names (``progress`` clashes with the attribute)."""

    def __init__(self, committer: _Committer):
        self.c = committer

    def started(self, task):
        self.c.started(task)

    def progress(self, task, done, total):
        self.c.progress_(task, done, total)

    def done(self, task, result, engine_version, seconds):
        return self.c.done(task, result, engine_version, seconds)

    def failed(self, task, error, exit_code, seconds):
        return self.c.failed(task, error, exit_code, seconds)


def render_jobs(runtime, jobs: list[Job], out_dir: Path, fmt: str = "mp4", *, force: bool = False,
                fail_fast: bool = False, progress: Progress | None = None,
                should_skip: Callable[[Job], bool] | None = None, executor=None,
                keys: dict[int, cache.KeyInfo] | None = None, reasons: dict[int, str] | None = None,
                manifest=None, clean_temps: bool = True) -> list[Outcome]:
    """Render every job; a failing job is recorded and the others go on (unless ``fail_fast``).

    ``keys``/``reasons`` (by position in ``jobs``) go into the sidecars and outcomes;
    ``executor`` defaults to the local one. Outcomes come back in the order of ``jobs``.
    """
    from cinekit.render.executors import LocalExecutor

    progress = progress or Progress()
    out_dir = Path(out_dir)
    committer = _Committer(out_dir, fmt, force, fail_fast, progress, len(jobs), keys or {}, reasons or {},
                           manifest, bool(getattr(runtime, "debug", False)), clean_temps,
                           getattr(runtime, "project", None))
    tasks = []
    for i, job in enumerate(jobs):
        if should_skip is not None and should_skip(job):
            outcome = Outcome(job, "cached", reason="cached")
            committer.outcomes[i] = outcome
            progress.job_finished(outcome)
        else:
            tasks.append(Task(i, job))
    if tasks:
        (executor or LocalExecutor(runtime)).run(group_tasks(tasks), _Events(committer))
    return [committer.outcomes[i] for i in sorted(committer.outcomes)]


# --------------------------------------------------------------------------- the batch layer
@dataclass
class Planned:
    """One job of a batch and whether it must run (``reason``: new, spec changed, cached, ...)."""

    job: Job
    key: cache.KeyInfo
    sidecar: Path
    run: bool
    reason: str
    record: dict[str, Any] | None = None
    fresh: cache.Freshness | None = None


def plan_batch(project, jobs: list[Job], out_dir: Path, fmt: str = "mp4", *, force: bool = False,
               digests: cache.FileDigests | None = None, manifest=None) -> list[Planned]:
    """Keys and freshness of every job; reads no output bytes unless one looks changed, and no
    sidecar when ``manifest`` has an entry whose stats still match (``cache.check_entry``)."""
    digests = digests or cache.FileDigests()
    versions: dict[str, str] = {}
    shots, memo = cache.shot_index(project), {}
    out = []
    seen: dict[str, str] = {}
    for job in jobs:
        if job.output in seen:
            from cinekit.errors import UserError

            raise UserError(f"two jobs write {job.output}: {seen[job.output]} and {job.shotlist}",
                            hint="give the shots different ids or put the lists in different output folders")
        seen[job.output] = job.shotlist
        if job.engine not in versions:
            versions[job.engine] = cache.engine_version(job.engine)
        info = cache.job_key(project, job, versions[job.engine], fmt, digests, shots, memo)
        sidecar = sidecar_path((Path(out_dir) / job.output).with_suffix(".x"))
        fresh = cache.check(sidecar, info, manifest.entry(job.output) if manifest is not None else None)
        if force:
            out.append(Planned(job, info, sidecar, True, "forced" if fresh.fresh else fresh.reason))
        else:
            out.append(Planned(job, info, sidecar, not fresh.fresh, fresh.reason, fresh.record, fresh))
    return out


@dataclass
class BatchReport:
    outcomes: list[Outcome]
    plan: list[Planned]
    seconds: float
    lock_taken_over: dict[str, Any] | None = None

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def render_batch(runtime, jobs: list[Job], out_dir: Path, fmt: str = "mp4", *, force: bool = False,
                 fail_fast: bool = False, progress: Progress | None = None, executor=None,
                 wait: bool = False, on_wait=None, gates: bool = False) -> BatchReport:
    """Lock the folder, skip up-to-date jobs, render the rest, keep the manifest current.

    Per job the batch does O(1) work besides its own files: temporary files of killed runs are
    removed in one walk of the folder up front, the manifest gets one journal line per rendered
    job and is compacted once at the end. ``gates``: score outputs against ``gates:`` of
    cinekit.yaml (``render --ci``) under the same lock, reusing the scores a sidecar holds.
    """
    from cinekit.render.lock import FolderLock
    from cinekit.render.manifest import Manifest
    from cinekit.render.outputs import clear_all_temps

    start = time.perf_counter()
    progress = progress or Progress()
    out_dir = Path(out_dir)
    if not getattr(runtime.project, "allow_outside_paths", False):
        from cinekit.errors import UserError
        from cinekit.spec.paths import HINT, outside_output_folders

        linked = outside_output_folders(out_dir, {(out_dir / job.output).parent for job in jobs})
        if linked:
            raise UserError(f"{linked[0]} is a link to {linked[0].resolve()}, outside the output folder", hint=HINT)
    with FolderLock(out_dir, wait=wait, on_wait=on_wait) as lock:
        clear_all_temps(out_dir)
        manifest = Manifest(out_dir)
        plan = plan_batch(runtime.project, jobs, out_dir, fmt, force=force, digests=getattr(runtime, "files", None),
                          manifest=manifest)
        todo, keys, reasons, cached = [], {}, {}, {}
        for i, p in enumerate(plan):
            if p.run:
                keys[len(todo)], reasons[len(todo)] = p.key, p.reason
                todo.append(p.job)
            else:
                cache.clear_pending(p.sidecar)
                if p.fresh is not None and p.fresh.entry is not None:  # decided from the manifest: it is current
                    record = _record_from_entry(p.fresh.entry)
                else:
                    record = slim(p.record if p.record is not None else (cache.read_sidecar(p.sidecar) or {}))
                    manifest.update(p.job.output, record, p.fresh.sidecar_stat if p.fresh else None)
                cached[i] = Outcome(p.job, "cached", record=record, reason="cached")
                progress.job_finished(cached[i])
        try:
            rendered = render_jobs(runtime, todo, out_dir, fmt, force=force, fail_fast=fail_fast, progress=progress,
                                   executor=executor, keys=keys, reasons=reasons, manifest=manifest,
                                   clean_temps=False)
            by_job = {id(o.job): o for o in rendered}
            outcomes = []
            for i, p in enumerate(plan):
                if i in cached:
                    outcomes.append(cached[i])
                elif id(p.job) in by_job:
                    outcomes.append(by_job[id(p.job)])
            if gates and runtime.project.config.gates:
                from cinekit.render.gating import apply_gates

                apply_gates(runtime.project, outcomes, out_dir, fmt)
        finally:
            manifest.compact()
    return BatchReport(outcomes, plan, time.perf_counter() - start, lock.took_over)
