"""Batch rendering at studio scale: the numbers of issue 6.

- ``cached_rerun``: a generated 100-shot list (previz, 128x96, stills and clips) rendered once,
  then rendered again unchanged: every job must be cached, in under 2 s (the CLI in a fresh
  process, interpreter start included).
- ``kill_resume``: 10 renders killed with SIGKILL inside a job (after a random job's start
  marker), each resumed: no torn file at a final path after the kill, every final output decodes
  and is byte-identical to an uninterrupted render; at least half the kills provably inside a job.
- ``memory``: RSS (psutil) after shot 10 and after shot 100 of a long batch in one process;
  growth under 10 % (puppet engine when present, and previz).

Run with ``make bench`` or ``python -m benchmarks batch``; results in bench-results/batch.json.
"""

from __future__ import annotations

import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.project_factory import frame_count, make_project
from tests.test_batch import SMALL, many_shots, output_bytes


def _cli(root: Path, *args: str, timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cinekit", "render", "--ci", *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - start


def cached_rerun(work: Path, shots: int = 100) -> dict:
    root = make_project(work / "cached", many_shots(shots), config=SMALL)
    first, first_s = _cli(root)
    assert first.returncode == 0, first.stderr[-2000:]
    runs = []
    for _ in range(3):
        proc, seconds = _cli(root)
        assert proc.returncode == 0, proc.stderr[-2000:]
        caption = [line for line in proc.stdout.splitlines() if "cached" in line and "rendered" in line][-1].strip()
        runs.append((seconds, caption))
    best = min(s for s, _ in runs)
    return {"shots": shots, "first_render_s": round(first_s, 3), "rerun_cli_s": [round(s, 3) for s, _ in runs],
            "rerun_cli_best_s": round(best, 3), "summary": runs[-1][1],
            "all_cached": all(f"0 rendered, {shots} cached, 0 failed" in c for _, c in runs),
            "target_s": 2.0, "pass": best < 2.0 and all(f"{shots} cached" in c for _, c in runs)}


def _decodes(out: Path) -> bool:
    from PIL import Image

    for p in out.rglob("*"):
        if p.name.startswith(".") or not p.is_file():
            continue
        if p.suffix == ".png":
            with Image.open(p) as im:
                im.load()
        elif p.suffix == ".mp4":
            if frame_count(p)[0] < 1:
                return False
    return True


def kill_resume(work: Path, runs: int = 10, shots: int = 40, seed: int = 6) -> dict:
    """SIGKILL inside a job, resume, compare. Each run is killed a random moment (0-30 ms) after
    the k-th job (k random) wrote its start marker (``tests.test_batch.killable_render``); the
    kill is counted as landing inside a job when some started job has no sidecar yet."""
    import os

    root = make_project(work / "kill", many_shots(shots), config=SMALL)
    ref_proc, full_s = _cli(root, "--out", "ref")
    assert ref_proc.returncode == 0, ref_proc.stderr[-2000:]
    reference = output_bytes(root / "ref")
    repo = Path(__file__).resolve().parents[1]
    rng = random.Random(seed)
    results = []
    for i in range(runs):
        out, markers = f"run{i}", work / f"markers{i}"
        markers.mkdir()
        k = rng.randint(1, shots)
        env = {**os.environ, "CINEKIT_TEST_MARKERS": str(markers),
               "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen([sys.executable, "-c",
                                 f"from tests.test_batch import killable_render; killable_render({out!r})"],
                                cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while len(list(markers.glob("*.started"))) < k and proc.poll() is None:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.03))
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        started = {p.stem: p.read_text() for p in markers.glob("*.started")}
        inside = killed and any(not (root / out / f"{o}.json").exists() for o in started.values())
        torn = [rel for rel, data in output_bytes(root / out).items() if data != reference.get(rel)] \
            if (root / out).exists() else []
        committed = len(list((root / out).rglob("s*.json"))) if (root / out).exists() else 0
        resumed, _ = _cli(root, "--out", out)
        rendered_on_resume = [line for line in resumed.stdout.splitlines() if "rendered," in line]
        got = output_bytes(root / out)
        results.append({
            "kill_after_job": k, "killed_while_running": killed, "killed_inside_job": inside,
            "torn_files_after_kill": torn, "committed_before_resume": committed,
            "resume_exit": resumed.returncode, "resume_summary": rendered_on_resume[-1].strip() if rendered_on_resume else "",
            "identical": got == reference, "decodes": _decodes(root / out),
            "leftovers": sorted(p.name for p in (root / out).rglob(".*")),
        })
        shutil.rmtree(root / out)
    ok = all(r["identical"] and r["decodes"] and r["resume_exit"] == 0 and not r["leftovers"]
             and not r["torn_files_after_kill"] for r in results)
    inside = sum(r["killed_inside_job"] for r in results)
    return {"runs": runs, "shots": shots, "uninterrupted_s": round(full_s, 3), "files": len(reference),
            "killed_mid_run": sum(r["killed_while_running"] for r in results), "killed_inside_job": inside,
            "all_identical_and_decode": ok, "pass": ok and inside >= runs // 2, "details": results}


def memory(work: Path, engine: str, shots: int = 100) -> dict:
    import gc

    import psutil

    from cinekit.render.plan import Planner
    from cinekit.render.run import Progress, render_batch
    from cinekit.runtime import Runtime
    from cinekit.spec.project import load_project

    root = make_project(work / f"mem-{engine}", many_shots(shots),
                        config=SMALL.replace("previz, clip: previz", f"{engine}, clip: {engine}"))
    project = load_project(root)
    jobs = [p.job for p in Planner(project).plan()]
    proc = psutil.Process()
    samples: dict[int, int] = {}

    class Sampler(Progress):
        done = 0

        def job_finished(self, outcome):
            self.done += 1
            if self.done in (10, 25, 50, 75, shots):
                gc.collect()
                samples[self.done] = proc.memory_info().rss

    start = time.perf_counter()
    report = render_batch(Runtime.for_project(project), jobs, root / "renders", "mp4", progress=Sampler())
    seconds = time.perf_counter() - start
    assert report.count("rendered") == shots, [o.error for o in report.outcomes if o.error][:3]
    growth = (samples[shots] - samples[10]) / samples[10]
    return {"engine": engine, "shots": shots, "seconds": round(seconds, 2),
            "rss_mb": {str(k): round(v / 2**20, 1) for k, v in sorted(samples.items())},
            "growth_10_to_100": round(growth, 4), "target": 0.10, "pass": growth < 0.10}


def run() -> dict:
    work = Path(tempfile.mkdtemp(prefix="cinekit-bench-batch-"))
    out: dict = {"machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                             "platform": platform.platform()}}
    try:
        out["cached_rerun"] = cached_rerun(work)
        print("cached re-run:", out["cached_rerun"]["rerun_cli_best_s"], "s", flush=True)
        out["kill_resume"] = kill_resume(work)
        print("kill/resume identical:", out["kill_resume"]["all_identical_and_decode"], flush=True)
        engines = ["previz"]
        try:
            import cinekit.engines.puppet  # noqa: F401

            engines.append("puppet")
        except ImportError:
            pass
        out["memory"] = {e: memory(work, e) for e in engines}
        print("memory growth:", {e: m["growth_10_to_100"] for e, m in out["memory"].items()}, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["pass"] = bool(out["cached_rerun"]["pass"] and out["kill_resume"]["pass"]
                       and all(m["pass"] for m in out["memory"].values()))
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
