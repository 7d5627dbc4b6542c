"""The animatic at review size: seconds of work per minute of episode, and memory vs episode length.

A 1280x720 24 fps project (one previz still, one 2.5 s previz clip) is rendered once; episodes
are built from those renders (every shot reads its file, as in a real episode):

- ``per_minute``: a 60 s episode (24 shots, stills and clips alternating) written as H.264 MP4,
  PNG sequence and ProRes: wall seconds for each;
- ``memory``: peak RSS (VmHWM) after a 10-shot and after a 100-shot animatic in one process.

Run with ``python -m benchmarks animatic``; results in bench-results/animatic.json.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from tests.project_factory import make_project

SHOTS = """\
    shots:
      - id: a
        prompt: "{ann} waves"
        characters: [{name: ann, pose: wave}]
      - id: b
        kind: clip
        duration: 2.5
        prompt: "{ann} walks"
        characters: [{name: ann, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 2.5, pose: walk_c}]}}]
    """
CONFIG = "output: renders\nengines: {still: previz, clip: previz}\ndefaults: {size: [1280, 720], fps: 24}\n"

CHILD = textwrap.dedent("""\
    import re, sys, time, json
    from dataclasses import replace
    from pathlib import Path
    from cinekit.spec.project import load_project
    from cinekit.studio.episode import load_episode
    from cinekit.studio.animatic import write_animatic
    root, mode = Path(sys.argv[1]), sys.argv[2]
    ep = load_episode(load_project(root), root / "shots" / "ep.yaml", hold=2.5)
    base = ep.shots
    def episode(n):
        ep.shots = [replace(base[i % 2], index=i, start=2.5 * i) for i in range(n)]
        return ep
    def peak():
        return int(re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read()).group(1))
    out = {}
    if mode == "memory":
        for n in (10, 100):
            write_animatic(episode(n), root / f"m{n}.mp4", size=(640, 360))
            out[f"peak_kib_{n}_shots"] = peak()
    else:
        for fmt in ("mp4", "png", "prores"):
            t = time.perf_counter()
            write_animatic(episode(24), root / f"minute.{fmt}.out", fmt=fmt)   # odd suffix on purpose
            out[f"{fmt}_seconds_per_minute"] = round(time.perf_counter() - t, 2)
    print(json.dumps(out))
    """)


def _child(root: Path, mode: str) -> dict:
    import json

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root), mode], capture_output=True, text=True,
                          env=env, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(Path(tmp) / "p", SHOTS, characters=("ann",), config=CONFIG)
        subprocess.run([sys.executable, "-m", "cinekit", "render", "--ci"], cwd=root, check=True,
                       capture_output=True)
        results = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                   "size": "1280x720", "fps": 24, "episode_seconds": 60}
        results.update(_child(root, "minute"))
        results.update(_child(root, "memory"))
        a, b = results["peak_kib_10_shots"], results["peak_kib_100_shots"]
        results["memory_growth_10_to_100_shots"] = round(b / a - 1, 4)
        return results


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(), indent=2))
