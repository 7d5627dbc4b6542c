"""Peak memory of a 1080p puppet clip against its length: 1,200 frames within 1.2x of 120 (issue 11).

Each case runs in a fresh Python process: a one-shot project (the test figure, 1920x1080,
24 fps), rendered through ``render_batch`` (the local executor streams the engine's frames to
the encoder). Reported per case: the process's peak RSS (``ru_maxrss``) and the wall time.
The encoder is a separate ffmpeg process whose memory does not depend on the clip's length
(x264 keeps a fixed look-ahead; about 470 MB at 1080p in ``ps``); ``RUSAGE_CHILDREN`` is not
used because a forked child starts with its parent's RSS. ``whole`` runs
the same clip the way it was written before streaming (``engine.render`` -> one array of every
frame and mask, then the writer), for comparison.

Run: ``python -m benchmarks memory``; results in bench-results/memory.json.
``CINEKIT_BENCH_MEMORY_SECONDS`` (default ``5,50``: 120 and 1,200 frames) sets the clip lengths;
``CINEKIT_BENCH_MEMORY_MODES`` (default ``stream``; ``stream,whole`` adds the comparison, which
holds every frame: about 8.5 GB for 1,200 frames at 1080p) the modes. The verdict (``ok``)
is the streamed longest clip's peak within ``LIMIT`` times the shortest's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = "output: renders\nengines: {still: puppet, clip: puppet}\ndefaults: {size: [1920, 1080], fps: 24}\n"


def _shots(seconds: float) -> str:
    return ("shots:\n  - {id: c, kind: clip, duration: %s, prompt: '{ann} walks', camera: full, characters: "
            "[{name: ann, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 0.5, pose: walk_c}], loop: true}}]}\n"
            % seconds).replace(", loop: true", "")


def child(root: str, mode: str) -> None:
    """In the child process: render the project's clip, print the measurements as JSON."""
    import resource

    from cinekit.render.plan import Planner
    from cinekit.runtime import Runtime
    from cinekit.spec.project import load_project

    project = load_project(Path(root))
    runtime = Runtime.for_project(project)
    jobs = [p.job for p in Planner(project, files=runtime.files).plan()]
    start = time.perf_counter()
    if mode == "stream":
        from cinekit.render.run import render_batch

        report = render_batch(runtime, jobs, project.output_dir)
        assert report.count("rendered") == 1, [o.error for o in report.outcomes]
    else:
        from cinekit.engines.puppet import PuppetEngine
        from cinekit.render.outputs import write_result

        write_result(project.output_dir, jobs[0], PuppetEngine(runtime).render(jobs[0]), "mp4")
    seconds = time.perf_counter() - start
    me = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"frames": jobs[0].frames, "peak_rss_mb": round(me.ru_maxrss / 1024, 1),
                      "seconds": round(seconds, 1)}))


def _case(work: Path, seconds: float, mode: str) -> dict:
    from tests.project_factory import make_project

    root = make_project(work / f"{mode}-{seconds}", _shots(seconds), characters=("ann",), config=CONFIG)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", f"from benchmarks.bench_memory import child; child({str(root)!r}, {mode!r})"],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


LIMIT = 1.2   # issue 11: peak memory of a 1,200-frame clip within 1.2x of a 120-frame clip's


def run() -> dict:
    lengths = [float(x) for x in os.environ.get("CINEKIT_BENCH_MEMORY_SECONDS", "5,50").split(",")]
    modes = os.environ.get("CINEKIT_BENCH_MEMORY_MODES", "stream").split(",")
    work = Path(tempfile.mkdtemp(prefix="cinekit-memory-"))
    results: dict = {"size": [1920, 1080], "fps": 24}
    for mode in modes:
        cases = {f"{s:g}s": _case(work, s, mode) for s in lengths}
        peaks = [c["peak_rss_mb"] for c in cases.values()]
        results[mode] = {**cases, "ratio_longest_to_shortest": round(peaks[-1] / peaks[0], 3)}
        if mode == "stream":
            results[mode]["limit"] = LIMIT
            results[mode]["ok"] = peaks[-1] / peaks[0] <= LIMIT
        print(mode, results[mode], flush=True)
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
