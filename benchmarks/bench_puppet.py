"""Puppet engine speed: frames per second at 768x512 and 1920x1080, one and four characters, one core.

Usage: python benchmarks/bench_puppet.py [--frames N] [--repeats R] [--out bench-results/puppet.json]

Targets (issue 11), for one character: >= 30 fps at 768x512 and >= 24 fps at 1080p (four
characters are reported, without a target). The verdict is honest: the result's ``ok`` is
false, and the script exits 1, when either is missed.

What is measured: the CPU time of this process per frame (``time.process_time``), with
OpenCV, BLAS and torch held to one thread, over ``engine.stream`` -- the path ``render``
and the writer use: frames made one at a time, each character's mask on the frames the
writer keeps. The encoder (a separate ffmpeg process) is not counted. Why CPU time and
not wall time: the machine this runs on is shared (2 cores, up to 8 sessions), where wall
time measures the neighbours; CPU time of a single-threaded process is what one core
spends. The best of ``--repeats`` runs is reported (noise only ever adds time); the wall-clock
fps and the 1-minute load are written beside it for context.

Drives the example character (characters/mika.yaml; AnimatedDrawings char1 if absent) with
a real motion-capture clip (wave_hello.bvh from the shared test data; a swinging-arm
pose made from the rig if that is absent), and prints where the time goes (wall clock,
the engine's own stage timers): deform (per-bone transforms), raster (each part: affine
warps of its rigid cores, the joint bands' triangles, compositing), other (the frame
buffer, the masks, Python overhead).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cinekit.engines.puppet import PuppetEngine  # noqa: E402
from cinekit.identity.core import IdentityStore  # noqa: E402
from cinekit.job import Job, JobCharacter  # noqa: E402
from cinekit.spec.models import CharacterSpec  # noqa: E402
from cinekit.testing.data import shared_data_dir  # noqa: E402

DATA = shared_data_dir() / "animated-drawings"
SIZES = ((768, 512, 30.0), (1920, 1080, 24.0))   # (width, height, target fps for one character)
POSITIONS = {1: (0.5,), 4: (0.2, 0.4, 0.6, 0.8)}


def character() -> tuple[str, CharacterSpec, Path]:
    mika = ROOT / "characters" / "mika.yaml"
    if mika.is_file():
        spec = CharacterSpec.model_validate(yaml.safe_load(mika.read_text()))
        return spec.name, spec, mika
    spec = CharacterSpec.model_validate({
        "name": "char1", "references": [{"image": "texture.png", "mask": "mask.png"}],
        "rig": {"from": "char_cfg.yaml"},
    })
    return "char1", spec, DATA / "characters" / "char1" / "character.yaml"


def pose_track(rig: np.ndarray, frames: int, fps: float, width: int, height: int,
               positions: tuple[float, ...] = (0.5,)) -> np.ndarray:
    """``(frames, len(positions), 18, 2)`` pixels: a BVH clip retargeted to the rig and framed
    (every character plays it, side by side at ``positions``)."""
    from cinekit.pose.camera import place
    from cinekit.pose.retarget import lengths_from_rig, retarget

    bvh = DATA / "bvh" / "wave_hello.bvh"
    if bvh.is_file():
        from cinekit.pose.bvh import load_bvh
        from cinekit.pose.motion import resample, to_body_space

        motion = load_bvh(bvh)
        body = to_body_space(resample(motion, fps, loop=True, frames=frames))
    else:
        from cinekit.pose.angles import rest_pose

        body = np.repeat(rest_pose(lengths_from_rig(rig)[0])[None], frames, axis=0)
    body = retarget(body, lengths_from_rig(rig)[0], rest=rig)
    return place([body] * len(positions), list(positions), None, "full", width, height)


def measure(engine, job, repeats: int) -> dict:
    """Best CPU seconds (and the wall seconds, engine stage timers of that run) of streaming ``job``."""
    from cinekit.engines.base import mask_frames

    keep = mask_frames(job)
    best = None
    for _ in range(repeats):
        engine.timings.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        for _frame in engine.stream(job, mask_frames=keep).frames:
            pass                     # the writer would take the frame here; nothing is kept
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if best is None or cpu < best["cpu_s"]:
            best = {"cpu_s": cpu, "wall_s": wall, "stages": {k: engine.timings.get(k, 0.0) for k in ("deform", "raster")}}
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench-results" / "puppet.json"))
    args = ap.parse_args()
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    name, spec, path = character()
    runtime = SimpleNamespace(identities=IdentityStore({name: (spec, path)}), project=None)
    rig = runtime.identities.get(name).rig
    fps = 24.0
    engine = PuppetEngine(runtime)
    t = time.perf_counter()
    pup = engine.puppet(name, "front", False)          # build once (parts, meshes, textures)
    build_s = time.perf_counter() - t
    runs = []
    for width, height, target in SIZES:
        for count, positions in POSITIONS.items():
            pose = pose_track(rig, args.frames, fps, width, height, positions)
            chars = tuple(JobCharacter(name=name, spec_path=str(path), position=p) for p in positions)
            job = Job(shot_id="bench", shotlist="bench.yaml", kind="clip", engine="puppet", width=width,
                      height=height, fps=fps, frames=args.frames, seed=0, steps=1, guidance=0.0, prompt="",
                      negative="", characters=chars, pose=pose, output="bench/bench")
            engine.render(Job(**{**job.__dict__, "frames": 1, "pose": pose[:1]}))   # warm-up (texture levels)
            got = measure(engine, job, args.repeats)
            cpu_fps = args.frames / got["cpu_s"]
            goal = target if count == 1 else None
            wall = got["wall_s"]
            other = wall - sum(got["stages"].values())
            run = {
                "size": [width, height],
                "characters": count,
                "fps": round(cpu_fps, 2),
                "measure": "frames per CPU second of this process (time.process_time), 1 thread",
                "cpu_ms_per_frame": round(1000 * got["cpu_s"] / args.frames, 2),
                "wall_fps": round(args.frames / wall, 2),
                "target_fps": goal,
                "ok": cpu_fps >= goal if goal else None,
                "breakdown_wall_ms_per_frame": {**{k: round(1000 * v / args.frames, 2) for k, v in got["stages"].items()},
                                                "other": round(1000 * other / args.frames, 2)},
                "load_1min": os.getloadavg()[0],
            }
            runs.append(run)
            verdict = f"target {goal:g}: {'ok' if run['ok'] else 'MISSED'}" if goal else "no target"
            print(f"puppet {name} x{count} {width}x{height}, 1 thread: {cpu_fps:.1f} fps of CPU time "
                  f"({run['cpu_ms_per_frame']:.2f} CPU ms/frame; {verdict}); wall {run['wall_fps']:.1f} fps "
                  f"at load {run['load_1min']:.1f}", flush=True)
            for k, v in run["breakdown_wall_ms_per_frame"].items():
                print(f"  {k:<10} {v:6.2f} wall ms/frame")
    one = [r for r in runs if r["characters"] == 1]
    result = {
        "character": name,
        "frames": args.frames,
        "repeats": args.repeats,
        "threads": 1,
        "measure": "CPU time of the rendering process (time.process_time), best of the repeats; "
                   "the machine is shared, so wall time is reported for context only",
        "ok": all(r["ok"] for r in one),
        "runs": runs,
        # The first size's numbers at the top level, as before.
        "size": one[0]["size"], "fps": one[0]["fps"], "ms_per_frame": one[0]["cpu_ms_per_frame"],
        "build_s": build_s,
        "parts": len(pup.binding.parts),
        "triangles": pup.binding.n_triangles,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "load_1min": os.getloadavg()[0]},
    }
    print(f"build {build_s * 1000:.0f} ms, {result['parts']} parts, {result['triangles']} triangles; "
          f"verdict: {'ok' if result['ok'] else 'MISSED a target'} (fps = frames per CPU second, one thread)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if not result["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
