"""Puppet engine speed: frames per second at 768x512 and 1920x1080, one character, one CPU core.

Usage: python benchmarks/bench_puppet.py [--frames N] [--out bench-results/puppet.json]

Targets (issue 11): >= 30 fps at 768x512 and >= 24 fps at 1080p. The verdict is honest: the
result's ``ok`` is false, and the script exits 1, when either is missed.

Drives the example character (characters/mika.yaml; AnimatedDrawings char1 if absent) with
a real motion-capture clip (wave_hello.bvh from the shared test data; a swinging-arm
pose made from the rig if that is absent), and prints fps with where the time goes:
deform (per-bone transforms), raster (each part: affine warps of its rigid cores, the joint
bands' triangles, compositing), other (the frame buffer, the mask, Python overhead).
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
SIZES = ((768, 512, 30.0), (1920, 1080, 24.0))   # (width, height, target fps)


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


def pose_track(rig: np.ndarray, frames: int, fps: float, width: int, height: int) -> np.ndarray:
    """``(frames, 1, 18, 2)`` pixels: a BVH clip retargeted to the rig and framed."""
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
    return place([body], [0.5], None, "full", width, height)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=240)
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
        pose = pose_track(rig, args.frames, fps, width, height)
        job = Job(shot_id="bench", shotlist="bench.yaml", kind="clip", engine="puppet", width=width,
                  height=height, fps=fps, frames=args.frames, seed=0, steps=1, guidance=0.0, prompt="",
                  negative="", characters=(JobCharacter(name=name, spec_path=str(path), position=0.5),),
                  pose=pose, output="bench/bench")
        engine.render(Job(**{**job.__dict__, "frames": 1, "pose": pose[:1]}))   # warm-up (texture levels)
        engine.timings.clear()
        t = time.perf_counter()
        engine.render(job)
        total = time.perf_counter() - t
        stages = {k: engine.timings.get(k, 0.0) for k in ("deform", "raster")}
        other = total - sum(stages.values())
        run = {
            "size": [width, height],
            "fps": args.frames / total,
            "target_fps": target,
            "ok": args.frames / total >= target,
            "ms_per_frame": 1000 * total / args.frames,
            "breakdown_ms_per_frame": {**{k: 1000 * v / args.frames for k, v in stages.items()},
                                       "other": 1000 * other / args.frames},
        }
        runs.append(run)
        print(f"puppet {name} {width}x{height}, 1 thread: {run['fps']:.1f} fps (target {target:g}: "
              f"{'ok' if run['ok'] else 'MISSED'}; {run['ms_per_frame']:.2f} ms/frame)")
        for k, v in run["breakdown_ms_per_frame"].items():
            print(f"  {k:<10} {v:6.2f} ms/frame")
    result = {
        "character": name,
        "frames": args.frames,
        "threads": 1,
        "ok": all(r["ok"] for r in runs),
        "runs": runs,
        # The first size's numbers at the top level, as before.
        "size": runs[0]["size"], "fps": runs[0]["fps"], "ms_per_frame": runs[0]["ms_per_frame"],
        "build_s": build_s,
        "parts": len(pup.binding.parts),
        "triangles": pup.binding.n_triangles,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "load_1min": os.getloadavg()[0]},
    }
    print(f"build {build_s * 1000:.0f} ms, {result['parts']} parts, {result['triangles']} triangles; "
          f"verdict: {'ok' if result['ok'] else 'MISSED a target'}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if not result["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
