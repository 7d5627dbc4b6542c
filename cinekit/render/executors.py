"""Executors: where jobs are rendered. One interface, two implementations.

An executor turns groups of jobs (one group per engine + model, so each pipeline loads once)
into ``RenderResult`` frames and reports them to ``Events``; it never writes a file. The
driver (``cinekit.render.run``) writes every output with the same ``write_result``, so the
local and the Ray executor produce the same bytes by construction.

- ``LocalExecutor``: in this process, one engine instance per engine name, kept for the
  whole batch; per-frame/step progress. It hands ``Events.done`` a ``FrameStream``: the
  engine's frames are produced while the driver encodes them (memory flat in clip length),
  so an engine error may also surface inside ``done``, where it fails the job the same way.
- ``RayExecutor``: a Ray cluster (``ray.init()`` locally, or ``address=``). One actor pool per
  engine + model group; each actor builds its Runtime and engine once and keeps them loaded
  between jobs, so a pipeline loads once per actor. The pool is sized by the cluster's
  resources (one actor per GPU for GPU engines, per CPU otherwise, never more than the jobs).
  GPU engines ask for ``num_gpus=1``. A worker that dies (OOM, lost node) is restarted and its
  task retried (``max_restarts`` / ``max_task_retries``); an error raised by the engine itself
  (a bad input) is deterministic and is reported at once, not retried. The frames travel back
  through the object store, so no shared output folder is needed; the project files (specs,
  art, models) must be readable at the same path on every node (shared storage, or
  ``ray start`` from a checkout at the same path).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cinekit.engines.base import FrameStream, RenderResult, create_engine, open_stream
from cinekit.errors import CinekitError, EngineError, UserError
from cinekit.job import Job


@dataclass
class Task:
    index: int        # position in the batch (outcomes are reported in this order)
    job: Job


@dataclass
class Group:
    """Jobs sharing one engine and one model set: one pipeline load serves them all."""

    engine: str
    model: str | None
    tasks: list[Task] = field(default_factory=list)


def group_tasks(tasks: list[Task]) -> list[Group]:
    """Group by engine then model, keeping the batch order inside a group."""
    groups: dict[tuple[str, str], Group] = {}
    for task in sorted(tasks, key=lambda t: (t.job.engine, t.job.model or "", t.index)):
        k = (task.job.engine, task.job.model or "")
        groups.setdefault(k, Group(task.job.engine, task.job.model)).tasks.append(task)
    return list(groups.values())


class Events(Protocol):
    """What an executor reports to; ``done``/``failed`` return False to stop the batch."""

    def started(self, task: Task) -> None: ...
    def progress(self, task: Task, done: int, total: int) -> None: ...
    def done(self, task: Task, result: RenderResult, engine_version: str, seconds: float) -> bool: ...
    def failed(self, task: Task, error: str, exit_code: int, seconds: float) -> bool: ...


class Executor(Protocol):
    name: str

    def run(self, groups: list[Group], events: Events) -> None: ...


def render_one(engine, job: Job, progress=None, stream: bool = False) -> RenderResult | FrameStream:
    """The engine's part of a job, identical in every executor: kind, check_inputs, render.

    ``stream=True`` (the local executor) returns a ``FrameStream``: the engine's frames are
    produced while the writer encodes them, so a clip is never held whole in memory. The Ray
    executor ships whole results through the object store instead.
    """
    if job.kind not in engine.kinds:
        raise EngineError(f"the {job.engine} engine cannot render a {job.kind}")
    engine.check_inputs(job)
    if stream:
        return open_stream(engine, job, progress=progress)
    return engine.render(job, progress=progress)


def describe_exception(exc: BaseException) -> str:
    """An unexpected error of one job, in one line: where it was raised, never a traceback
    (``CINEKIT_DEBUG=1`` lets it propagate with its traceback)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}; run with CINEKIT_DEBUG=1 for the traceback"


class LocalExecutor:
    name = "local"

    def __init__(self, runtime):
        self.runtime = runtime
        self.engines: dict[str, Any] = {}

    def run(self, groups: list[Group], events: Events) -> None:
        for group in groups:
            for task in group.tasks:
                job = task.job
                events.started(task)
                start = time.perf_counter()
                try:
                    if job.engine not in self.engines:
                        self.engines[job.engine] = create_engine(job.engine, self.runtime)
                    engine = self.engines[job.engine]
                    result = render_one(engine, job, progress=lambda d, t, task=task: events.progress(task, d, t),
                                        stream=True)
                except CinekitError as exc:
                    go_on = events.failed(task, exc.format(), exc.exit_code, time.perf_counter() - start)
                except Exception as exc:  # noqa: BLE001 - one broken shot must not stop the batch
                    if getattr(self.runtime, "debug", False):
                        raise
                    go_on = events.failed(task, describe_exception(exc), 3, time.perf_counter() - start)
                else:
                    go_on = events.done(task, result, str(getattr(engine, "version", "")), time.perf_counter() - start)
                if not go_on:
                    return


# --------------------------------------------------------------------------- Ray
@dataclass
class RuntimeSpec:
    """What a Ray worker needs to rebuild the driver's Runtime (paths, not objects)."""

    root: str
    shotlists: list[str] | None
    allow_outside_paths: bool = False
    allow_pickle: bool = False
    device: str = "auto"
    dtype: str = "auto"
    low_vram: bool = False
    cache_dir: str | None = None
    registry: dict[str, str] = field(default_factory=dict)  # engine name -> "module:Factory"

    @classmethod
    def from_runtime(cls, runtime) -> "RuntimeSpec":
        from cinekit.engines.base import _REGISTRY

        project = runtime.project
        return cls(root=str(project.root), shotlists=[str(p) for p in project.shotlists],
                   allow_outside_paths=project.allow_outside_paths, allow_pickle=runtime.allow_pickle,
                   device=runtime.device, dtype=runtime.dtype, low_vram=runtime.low_vram,
                   cache_dir=str(runtime.cache_dir) if runtime.cache_dir else None, registry=dict(_REGISTRY))

    def build(self):
        from pathlib import Path

        from cinekit.engines import base
        from cinekit.runtime import Runtime
        from cinekit.spec.project import load_project

        base._REGISTRY.update(self.registry)
        project = load_project(self.root, [Path(p) for p in self.shotlists] if self.shotlists is not None else None,
                               allow_outside_paths=self.allow_outside_paths, allow_pickle=self.allow_pickle)
        return Runtime.for_project(project, device=self.device, dtype=self.dtype, low_vram=self.low_vram,
                                   allow_pickle=self.allow_pickle,
                                   cache_dir=Path(self.cache_dir) if self.cache_dir else None)


class RenderWorker:
    """The body of a Ray actor: one Runtime and one engine, loaded once, many jobs."""

    def __init__(self, spec: RuntimeSpec, engine_name: str):
        self.spec, self.engine_name = spec, engine_name
        self.runtime = None
        self.engine = None
        self.jobs = 0

    def render(self, job: Job) -> dict[str, Any]:
        """``{"ok": True, "result", "version", "seconds"}`` or ``{"ok": False, "error", "exit_code"}``.

        Engine errors are returned (not raised): they are deterministic, a retry would fail
        the same way. Anything else raises, and Ray's retry policy applies.
        """
        start = time.perf_counter()
        try:
            if self.engine is None:
                self.runtime = self.spec.build()
                self.engine = create_engine(self.engine_name, self.runtime)
            result = render_one(self.engine, job)
        except CinekitError as exc:
            return {"ok": False, "error": exc.format(), "exit_code": exc.exit_code,
                    "seconds": time.perf_counter() - start}
        self.jobs += 1
        return {"ok": True, "result": result, "version": str(getattr(self.engine, "version", "")),
                "seconds": time.perf_counter() - start}

    def pid(self) -> int:
        import os

        return os.getpid()


def wants_gpu(engine_name: str) -> bool:
    """Does this engine's actor ask Ray for a GPU? (``needs_gpu`` on the class, else diffusers)."""
    import importlib

    from cinekit.engines.base import _REGISTRY

    target = _REGISTRY.get(engine_name, "")
    try:
        module_name, attr = target.split(":")
        factory = getattr(importlib.import_module(module_name), attr)
    except (ValueError, ImportError, AttributeError):
        factory = None
    return bool(getattr(factory, "needs_gpu", engine_name == "diffusers"))


class RayExecutor:
    name = "ray"

    def __init__(self, runtime, address: str | None = None, *, max_retries: int = 2, max_actors: int | None = None,
                 warn=None):
        self.runtime = runtime
        self.address = address
        self.max_retries = max_retries
        self.max_actors = max_actors
        self.warn = warn or (lambda message: None)

    def _init(self):
        try:
            import ray
        except ImportError:
            raise UserError("the Ray executor needs the `ray` package",
                            hint="pip install 'cinekit[ray]' (or: pip install 'ray>=2.9')") from None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "configure_logging": False}
            if self.address:
                kwargs["address"] = self.address
            try:
                ray.init(**kwargs)
            except ConnectionError as exc:
                raise UserError(f"cannot connect to the Ray cluster at {self.address}: {exc}",
                                hint="start it with `ray start --head`, or check --address") from None
        return ray

    def _pool_size(self, ray, gpu: bool, jobs: int) -> int:
        res = ray.cluster_resources()
        capacity = int(res.get("GPU", 0)) if gpu else int(res.get("CPU", 1))
        n = max(1, min(jobs, capacity))
        return min(n, self.max_actors) if self.max_actors else n

    def run(self, groups: list[Group], events: Events) -> None:
        ray = self._init()
        remote_cls = ray.remote(RenderWorker)
        spec = RuntimeSpec.from_runtime(self.runtime)
        has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        pools: list[dict[str, Any]] = []
        for group in groups:
            gpu = wants_gpu(group.engine) and self.runtime.device != "cpu"
            if gpu and not has_gpu:
                self.warn(f"no GPU in the Ray cluster: {group.engine} jobs run on CPU workers")
                gpu = False
            options = {"num_cpus": 1, "num_gpus": 1 if gpu else 0, "max_restarts": self.max_retries,
                       "max_task_retries": self.max_retries}
            size = self._pool_size(ray, gpu, len(group.tasks))
            actors = [remote_cls.options(**options).remote(spec, group.engine) for _ in range(size)]
            pools.append({"label": f"{group.engine}/{group.model or '-'}", "queue": list(group.tasks),
                          "idle": list(actors), "actors": actors})
        in_flight: dict[Any, tuple[dict, Any, Task, float]] = {}

        def submit(pool) -> None:
            while pool["idle"] and pool["queue"]:
                actor, task = pool["idle"].pop(), pool["queue"].pop(0)
                events.started(task)
                in_flight[actor.render.remote(task.job)] = (pool, actor, task, time.perf_counter())

        def release(pool) -> None:
            if not pool["queue"] and len(pool["idle"]) == len(pool["actors"]):
                for actor in pool["actors"]:
                    ray.kill(actor)  # frees its CPU/GPU for the next group's pool
                pool["actors"], pool["idle"] = [], []

        try:
            for pool in pools:
                submit(pool)
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                ref = ready[0]
                pool, actor, task, start = in_flight.pop(ref)
                try:
                    reply = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a task that failed after its retries
                    cause = getattr(exc, "cause", None) or exc
                    go_on = events.failed(task, f"{type(cause).__name__}: {cause}", 3, time.perf_counter() - start)
                else:
                    if reply["ok"]:
                        go_on = events.done(task, reply["result"], reply["version"], reply["seconds"])
                    else:
                        go_on = events.failed(task, reply["error"], reply["exit_code"], reply["seconds"])
                del ref
                if not go_on:
                    return
                pool["idle"].append(actor)
                submit(pool)
                release(pool)
        finally:
            for pool in pools:
                for actor in pool["actors"]:
                    ray.kill(actor)


def make_executor(name: str, runtime, address: str | None = None, warn=None):
    if name == "local":
        if address:
            raise UserError("--address needs --executor ray")
        return LocalExecutor(runtime)
    if name == "ray":
        return RayExecutor(runtime, address, warn=warn)
    raise UserError(f"unknown executor {name!r}", hint="choose local or ray")
