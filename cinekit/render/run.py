"""Run planned jobs locally: validate-then-execute, one engine instance per engine name.

``render_jobs`` is the one place that turns jobs into files; every CLI command that renders
goes through it (the batch layer adds caching, a manifest and other executors on top).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cinekit.engines.base import create_engine
from cinekit.errors import CinekitError, EngineError
from cinekit.job import Job
from cinekit.render.outputs import write_result


@dataclass
class Outcome:
    job: Job
    status: str                        # rendered | cached | failed
    seconds: float = 0.0
    record: dict[str, Any] | None = None
    error: str | None = None
    exit_code: int = 0
    files: list[Path] = field(default_factory=list)


class Progress:
    """Callbacks the runner reports to (rich bars in a terminal, plain lines in CI, nothing in tests)."""

    def job_started(self, job: Job, index: int, total: int) -> None: ...
    def job_progress(self, job: Job, done: int, total: int) -> None: ...
    def job_finished(self, outcome: Outcome) -> None: ...


def render_jobs(runtime, jobs: list[Job], out_dir: Path, fmt: str = "mp4", *, force: bool = False,
                fail_fast: bool = False, progress: Progress | None = None,
                should_skip: Callable[[Job], bool] | None = None) -> list[Outcome]:
    """Render every job; a failing job is recorded and the others go on (unless ``fail_fast``)."""
    progress = progress or Progress()
    engines: dict[str, Any] = {}
    outcomes: list[Outcome] = []
    # Group by engine then model so each pipeline is built once, keeping list order inside a group.
    order = sorted(range(len(jobs)), key=lambda i: (jobs[i].engine, jobs[i].model or "", i))
    for n, i in enumerate(order):
        job = jobs[i]
        if should_skip is not None and should_skip(job):
            outcome = Outcome(job, "cached")
            progress.job_finished(outcome)
            outcomes.append(outcome)
            continue
        progress.job_started(job, n, len(jobs))
        start = time.perf_counter()
        try:
            if job.engine not in engines:
                engines[job.engine] = create_engine(job.engine, runtime)
            engine = engines[job.engine]
            if job.kind not in engine.kinds:
                raise EngineError(f"the {job.engine} engine cannot render a {job.kind}")
            engine.check_inputs(job)
            result = engine.render(job, progress=lambda d, t, job=job: progress.job_progress(job, d, t))
            record = write_result(out_dir, job, result, fmt, engine_version=engine.version, force=force,
                                  extra_record={"timings": {"render_s": round(time.perf_counter() - start, 4)}})
            outcome = Outcome(job, "rendered", time.perf_counter() - start, record)
        except CinekitError as exc:
            outcome = Outcome(job, "failed", time.perf_counter() - start, error=exc.format(), exit_code=exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - one broken shot must not stop the batch
            if runtime is not None and getattr(runtime, "debug", False):
                raise
            outcome = Outcome(job, "failed", time.perf_counter() - start,
                              error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}", exit_code=3)
        progress.job_finished(outcome)
        outcomes.append(outcome)
        if fail_fast and outcome.status == "failed":
            break
    index = {id(j): k for k, j in enumerate(jobs)}
    return sorted(outcomes, key=lambda o: index[id(o.job)])
