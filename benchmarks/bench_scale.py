"""A very long shot list (issue 13): per-shot cost must not grow with the batch, and a fully
cached re-render must be quick.

- ``per_shot``: a generated list of ``N`` 64x64 previz stills (``CINEKIT_BENCH_SHOTS``, default
  10,000) rendered in one process through ``render_batch``; the time of each shot is the gap
  between consecutive "finished" events (engine, files, sidecar, manifest journal, progress:
  everything the batch does per job). Reported: mean of the first 100 and the last 100, their
  ratio (target < 1.5), and the least-squares slope of per-shot time against shot index.
- ``cached``: ``cinekit render --ci`` on the rendered project in a fresh process (interpreter
  start, project load, planning, keys, freshness, manifest): wall time (target < 10 s), and the
  same in-process with a breakdown.

Run: ``python -m benchmarks scale``; results in bench-results/scale.json.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.project_factory import make_project

CONFIG = "output: renders\nengines: {still: previz, clip: previz}\ndefaults: {size: [64, 64], fps: 8}\n"


def shot_list(n: int) -> str:
    return "shots:\n" + "".join(f"  - {{id: s{i:05d}, prompt: '{{ann}} waves', seed: {i}, "
                                f"characters: [{{name: ann, pose: wave}}]}}\n" for i in range(n))


def _timed_batch(root: Path):
    from cinekit.render.plan import Planner
    from cinekit.render.run import Progress, render_batch
    from cinekit.runtime import Runtime
    from cinekit.spec.project import load_project

    stamps: list[tuple[float, float]] = []  # (wall, this process's CPU) at each job's end
    first: list[tuple[float, float]] = []

    class Stamps(Progress):
        def job_started(self, job, index, total):
            if not first:  # per-shot gaps start here, after the batch's one-off set-up (lock, keys)
                first.append((time.perf_counter(), time.process_time()))

        def job_finished(self, outcome):
            stamps.append((time.perf_counter(), time.process_time()))

    t0 = time.perf_counter()
    project = load_project(root)
    t1 = time.perf_counter()
    runtime = Runtime.for_project(project)
    jobs = [p.job for p in Planner(project, files=runtime.files, cache_dir=runtime.cache_dir).plan()]
    t2 = time.perf_counter()
    report = render_batch(runtime, jobs, project.output_dir, progress=Stamps())
    t3 = time.perf_counter()
    gaps = np.diff(np.array(first[:1] + stamps), axis=0) if first else np.zeros((0, 2))
    return report, gaps, {"load_s": t1 - t0, "plan_s": t2 - t1, "batch_s": t3 - t2}


def run() -> dict:
    n = int(os.environ.get("CINEKIT_BENCH_SHOTS", "10000"))
    work = Path(tempfile.mkdtemp(prefix="cinekit-scale-"))
    root = make_project(work / "p", shot_list(n), characters=("ann",), config=CONFIG)
    report, gaps, phases = _timed_batch(root)
    assert report.count("rendered") == n, report.count("failed")

    def figures(per_shot):
        first, last = per_shot[:100].mean(), per_shot[-100:].mean()
        return {"first_100_ms": round(first * 1000, 2), "last_100_ms": round(last * 1000, 2),
                "ratio": round(float(last / first), 3),
                "slope_us_per_shot": round(float(np.polyfit(np.arange(len(per_shot)), per_shot, 1)[0]) * 1e6, 4),
                "total_s": round(float(per_shot.sum()), 1)}

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cinekit", "render", "--ci"], cwd=root, env=env,
                          capture_output=True, text=True)
    cached_cli = time.perf_counter() - start
    assert proc.returncode == 0 and f"0 rendered, {n} cached" in " ".join(proc.stdout.split()), proc.stderr[-2000:]
    cpu = time.process_time()
    cached_report, _, cached_phases = _timed_batch(root)
    cached_cpu = time.process_time() - cpu
    assert cached_report.count("cached") == n
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "shots": n,
        # wall: gaps between consecutive job ends; cpu: this process's CPU time in those gaps
        # (less sensitive to other load on a shared machine; the encoder is not involved for stills)
        "per_shot_wall": figures(gaps[:, 0]), "per_shot_cpu": figures(gaps[:, 1]),
        "phases_wall_s": {k: round(v, 2) for k, v in phases.items()},
        "cached": {"cli_wall_s": round(cached_cli, 2), "in_process_cpu_s": round(cached_cpu, 2),
                   "in_process_wall_s": {k: round(v, 2) for k, v in cached_phases.items()}},
    }
    print(results)
    return results


if __name__ == "__main__":
    run()
