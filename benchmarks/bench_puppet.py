"""Puppet engine speed: frames per second at 768x512, one character, one CPU core.

Usage: python benchmarks/bench_puppet.py [--frames N] [--out bench-results/puppet.json]

Drives the example character (characters/mika.yaml; AnimatedDrawings char1 if absent) with
a real motion-capture clip (wave_hello.bvh from the shared test data; a swinging-arm
pose made from the rig if that is absent), and prints fps with where the time goes:
deform (per-part transforms + skinning), raster (triangle coverage + inverse maps),
composite (texture sampling + blending + the frame's conversion to uint8).
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
WIDTH, HEIGHT = 768, 512


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


def pose_track(rig: np.ndarray, frames: int, fps: float) -> np.ndarray:
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
    body = retarget(body, lengths_from_rig(rig)[0])
    return place([body], [0.5], None, "full", WIDTH, HEIGHT)


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
    pose = pose_track(rig, args.frames, fps)
    job = Job(shot_id="bench", shotlist="bench.yaml", kind="clip", engine="puppet", width=WIDTH,
              height=HEIGHT, fps=fps, frames=args.frames, seed=0, steps=1, guidance=0.0, prompt="",
              negative="", characters=(JobCharacter(name=name, spec_path=str(path), position=0.5),),
              pose=pose, output="bench/bench")

    engine = PuppetEngine(runtime)
    t = time.perf_counter()
    engine.puppet(name, "front", False)          # build once (mesh, skinning, texture)
    build_s = time.perf_counter() - t
    engine.render(Job(**{**job.__dict__, "frames": 1, "pose": pose[:1]}))   # warm-up
    engine.timings.clear()
    t = time.perf_counter()
    engine.render(job)
    total = time.perf_counter() - t
    stages = {k: engine.timings.get(k, 0.0) for k in ("deform", "raster", "composite")}
    other = total - sum(stages.values())
    pup = engine.puppet(name, "front", False)
    result = {
        "character": name,
        "size": [WIDTH, HEIGHT],
        "frames": args.frames,
        "threads": 1,
        "fps": args.frames / total,
        "ms_per_frame": 1000 * total / args.frames,
        "breakdown_ms_per_frame": {**{k: 1000 * v / args.frames for k, v in stages.items()},
                                   "other": 1000 * other / args.frames},
        "build_s": build_s,
        "mesh": {"vertices": int(pup.binding.mesh.n_vertices), "triangles": int(len(pup.binding.mesh.triangles))},
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
    }
    print(f"puppet {name} {WIDTH}x{HEIGHT}, 1 thread: {result['fps']:.1f} fps "
          f"({result['ms_per_frame']:.2f} ms/frame; build {build_s * 1000:.0f} ms, "
          f"{result['mesh']['triangles']} triangles)")
    for k, v in result["breakdown_ms_per_frame"].items():
        print(f"  {k:<10} {v:6.2f} ms/frame")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
