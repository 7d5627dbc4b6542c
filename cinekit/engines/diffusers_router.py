"""The ``diffusers`` engine name: stills go to the still engine, clips to the video engine.

Both are imported only when first used; the video engine lives in ``diffusers_clip`` and
shares this runtime's model loader (one load per model set for stills and clips alike).
"""

from __future__ import annotations

from typing import Any

from cinekit.engines.base import ProgressFn, RenderResult
from cinekit.errors import EngineError
from cinekit.job import Job


class DiffusersEngine:
    name = "diffusers"
    kinds = frozenset({"still", "clip"})
    version = "1"

    def __init__(self, runtime):
        self.runtime = runtime
        self._engines: dict[str, Any] = {}

    def engine(self, kind: str):
        """The engine for ``kind`` ("still" or "clip"), created once."""
        if kind not in self._engines:
            if kind == "still":
                from cinekit.engines.diffusers_still import DiffusersStillEngine

                self._engines[kind] = DiffusersStillEngine(self.runtime)
            elif kind == "clip":
                from cinekit.engines.diffusers_clip import DiffusersClipEngine

                self._engines[kind] = DiffusersClipEngine(self.runtime)
            else:
                raise EngineError(f"the diffusers engine cannot render a {kind}")
        return self._engines[kind]

    def check_inputs(self, job: Job) -> None:
        self.engine(job.kind).check_inputs(job)

    def render(self, job: Job, progress: ProgressFn | None = None) -> RenderResult:
        return self.engine(job.kind).render(job, progress=progress)
