"""Measure drawn-key in-betweens against the same shot from the pose track alone (not a test).

``python -m cinekit.inbetween.measure OUT_DIR [--characters mika char1]``

For each character (``mika`` from the example project; ``char1``..``char4``: AnimatedDrawings
characters read from the shared test data, never copied): a 2 s clip keyed at 0, 1 and 2 s
with library poses (the pose-track-only render), and the same shot with three key drawings.
The drawings are the puppet's own renders at *other* poses (library poses bent at the limbs:
the true poses are known) with a change the puppet cannot draw painted on the second and third
(a hair tuft over the head), so the fit, the exact key frames and the dissolve are all used.
Prints and writes (``OUT_DIR/inbetween.json``) per character: fit error per joint (max, % of
figure height), key frame error (mean |diff| / 255), flicker and warp error (``score.temporal``)
of both clips; contact sheets ``OUT_DIR/<name>.png`` (rows: track only, keyed; every 3rd frame).
"""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
POSES = ("a_pose", "cheer", "wave")
BENDS = ({"right_upper_arm": 0.25, "left_forearm": -0.3, "head": 0.08},
         {"left_upper_arm": -0.3, "right_forearm": 0.35, "right_thigh": 0.12},
         {"right_upper_arm": -0.2, "left_thigh": -0.12, "turn": 0.04})


def _project(root: Path, name: str) -> Path:
    from cinekit.testing.data import shared_data_dir

    if root.exists():
        shutil.rmtree(root)
    (root / "characters").mkdir(parents=True)
    (root / "shots" / "keys").mkdir(parents=True)
    (root / "cinekit.yaml").write_text("output: renders\nengines: {still: puppet, clip: puppet}\n"
                                       "defaults: {size: [512, 384], fps: 12}\n")
    if name == "mika":
        shutil.copy(REPO / "characters" / "mika.yaml", root / "characters" / "mika.yaml")
        shutil.copytree(REPO / "characters" / "refs", root / "characters" / "refs")
    else:   # third-party art stays where it is: the character file points at it
        d = shared_data_dir() / "animated-drawings" / "characters" / name
        (root / "characters" / f"{name}.yaml").write_text(textwrap.dedent(f"""\
            name: {name}
            references: [{{image: {d / 'texture.png'}, mask: {d / 'mask.png'}}}]
            rig: {{from: {d / 'char_cfg.yaml'}}}
            """))
    return root


def _shot(name: str, keys: bool) -> str:
    frames = ", ".join(f"{{at: {t}, pose: {p}}}" for t, p in zip((0.0, 1.0, 2.0), POSES))
    text = (f"shots:\n  - {{id: s1, kind: clip, duration: 2.05, engine: puppet, prompt: '{{{name}}}', camera: full,\n"
            f"     characters: [{{name: {name}, pose: {{keyframes: [{frames}]}}}}]")
    if keys:
        text += ",\n     keys: [" + ", ".join(f"{{at: {t}, image: keys/k{i}.png}}" for i, t in enumerate((0.0, 1.0, 2.0))) + "]"
    return text + "}\n"


def _plan(root: Path):
    from cinekit.render.cache import FileDigests
    from cinekit.render.plan import Planner
    from cinekit.spec.project import load_project

    project = load_project(root, allow_outside_paths=True)
    planner = Planner(project, files=FileDigests())
    return project, planner, planner.plan()[0].job


def _render(project, planner, job) -> np.ndarray:
    from types import SimpleNamespace

    from cinekit.engines.puppet import PuppetEngine
    from cinekit.identity.core import IdentityStore

    rt = SimpleNamespace(project=project, identities=IdentityStore(project.characters, read=planner.files.read),
                         files=planner.files)
    return PuppetEngine(rt).render(job).frames


def measure(name: str, out: Path) -> dict:
    from dataclasses import replace

    from PIL import Image

    from cinekit.inbetween.fit import GROUPS, NAMES, joint_errors, pose_from_params
    from cinekit.inbetween.track import figure_height
    from cinekit.score.temporal import temporal_scores

    root = _project(out / f"project-{name}", name)
    (root / "shots" / "ep.yaml").write_text(_shot(name, keys=False))
    project, planner, job = _plan(root)
    plain = _render(project, planner, job)
    # the key drawings: the puppet at bent poses, a tuft painted on keys 1 and 2
    truths, pose = [], np.array(job.pose)
    key_frames = [0, 12, 24]
    for k, f in enumerate(key_frames):
        p = np.zeros(len(NAMES))
        for g, v in BENDS[k].items():
            p[3 + list(GROUPS).index(g)] = v
        truths.append(pose_from_params(job.pose[f, 0], p))
        pose[f, 0] = truths[-1]
    drawn = _render(project, planner, replace(job, pose=pose))
    for k, f in enumerate(key_frames):
        image = drawn[f].copy()
        if k:
            x, y = pose[f, 0, 0]
            h = figure_height(truths[k])
            cx, cy, r = int(x), int(y - 0.12 * h), max(3, int(0.05 * h))
            import cv2

            cv2.ellipse(image, (cx, cy), (2 * r, r), 15 * k, 0, 360, (40, 150, 60), -1, lineType=cv2.LINE_AA)
        Image.fromarray(image).save(root / "shots" / "keys" / f"k{k}.png")
    (root / "shots" / "ep.yaml").write_text(_shot(name, keys=True))
    project, planner, keyed_job = _plan(root)
    keyed = _render(project, planner, keyed_job)
    fit_err = [float(np.nanmax(joint_errors(keyed_job.pose[f, 0], t)) / figure_height(t))
               for f, t in zip(key_frames, truths)]
    key_err = [float(np.abs(keyed[f].astype(int) - np.asarray(Image.open(root / "shots" / "keys" / f"k{k}.png")
                                                               .convert("RGB"))).mean() / 255)
               for k, f in enumerate(key_frames)]
    s_plain, s_keyed = temporal_scores(plain), temporal_scores(keyed)
    row = lambda frames: np.hstack(list(frames[::3]))  # noqa: E731
    Image.fromarray(np.vstack([row(plain), row(keyed)])).save(out / f"{name}.png")
    return {"character": name, "frames": int(job.frames),
            "fit_max_joint_error_pct_height": [round(100 * e, 2) for e in fit_err],
            "fitted_from": [k["pose"].get("fitted_from") for k in keyed_job.options["keys"]],
            "key_frame_mean_abs_error_255": [round(255 * e, 3) for e in key_err],
            "track_only": {"flicker": round(s_plain.flicker, 4), "warp_error": round(s_plain.warp_error, 4)},
            "keyed": {"flicker": round(s_keyed.flicker, 4), "warp_error": round(s_keyed.warp_error, 4)}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--characters", nargs="+", default=["mika", "char1"])
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.characters:
        results.append(measure(name, args.out))
        print(json.dumps(results[-1]))
    (args.out / "inbetween.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
