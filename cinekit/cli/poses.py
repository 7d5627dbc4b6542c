"""`cinekit poses list | show | import`: the pose library (bundled + the project's poses/)."""

from __future__ import annotations

from pathlib import Path

import typer

from cinekit.cli.options import alias, file_opt, hidden, project_opt
from cinekit.cli.ui import console
from cinekit.errors import UserError

app = typer.Typer(no_args_is_help=True, help="The pose library: bundled poses and the project's poses/ folder.")


def _project_pose_dir(project: Path | None) -> list[Path]:
    from cinekit.spec.project import find_root

    try:
        return [find_root(project or Path(".")) / "poses"]
    except UserError:
        return []


@app.command("list")
def list_poses(project: Path = project_opt()):
    """Every named pose and stored motion."""
    from cinekit.pose.library import load_library

    library = load_library(_project_pose_dir(project))
    for name in sorted(library):
        value = library[name]
        kind = f"motion, {value.shape[0]} frames" if getattr(value, "ndim", 2) == 3 else "pose"
        console().print(f"{name:16s} {kind}")
    _list_verbs(library)


def _list_verbs(library) -> None:
    """The verbs of a text motion (``pose: {motion: "stand 0.5s, walk right 2s"}``)."""
    from cinekit.pose.gait import GAITS
    from cinekit.pose.text_motion import ACTION_VERBS, DEFAULT_STEPS, DEFAULTS, verbs

    still = [n for n in library if getattr(library[n], "ndim", 2) == 2]
    console().print("\nverbs of a text motion, `pose: {motion: \"stand 0.5s, walk right 2s\"}`:")
    for verb, kind in sorted(verbs(still).items()):
        if kind == "gait":
            g = GAITS[verb]
            what = f"gait, {DEFAULT_STEPS} steps of {g.step_time:g} s by default; left | right"
        elif kind == "action":
            what = f"action, {DEFAULTS[verb]:g} s by default: {ACTION_VERBS[verb]}"
        else:
            what = f"pose, held {DEFAULTS['pose']:g} s by default"
        console().print(f"{verb:16s} {what}")


@app.command()
def show(name: str, file: Path = file_opt("PNG to write."), old_out: Path = hidden("--out", "-o"),
         size: int = typer.Option(512, help="Image size in pixels (square)."),
         project: Path = project_opt()):
    """Draw a pose (OpenPose colours) to a PNG."""
    import numpy as np

    from cinekit.pose.camera import place
    from cinekit.pose.draw import draw_control_map
    from cinekit.pose.library import load_library
    from cinekit.render.writers import write_png
    from cinekit.spec.diagnose import suggest

    out = alias(file, old_out, "--out", "--file")
    if out is None:
        raise typer.BadParameter("give the PNG to write", param_hint="--file")
    library = load_library(_project_pose_dir(project))
    if name not in library:
        raise UserError(f"unknown pose {name!r}", hint=suggest(name, library) or "see `cinekit poses list`")
    pose = np.asarray(library[name])
    if pose.ndim == 3:
        pose = pose[0]
    side = max(64, size - size % 8)
    pixels = place([pose], [0.5], None, "full", side, side)[0]
    write_png(out, draw_control_map(pixels, side, side), {"pose": name})
    console().print(f"wrote {out}")


def _annotators(root: Path) -> Path | None:
    """The project's ``annotators:`` folder (cinekit.yaml), if it names one."""
    import yaml

    try:
        config = yaml.safe_load((root / "cinekit.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    folder = config.get("annotators") if isinstance(config, dict) else None
    return (root / folder).resolve() if isinstance(folder, str) else None


def _detected(file: Path, root: Path):
    """Footage of a person -> its detected ``Motion`` (mediapipe, else the OpenPose annotators)."""
    from cinekit.pose.detect import choose_detector, detect_poses

    annotators = _annotators(root)
    return detect_poses(file, annotators, detector=choose_detector(annotators))


@app.command("import")
def import_pose(file: Path = typer.Argument(..., help="BVH, OpenPose JSON (or a folder of them), skeleton video, "
                                                  "or footage / a photo of a person (its pose is detected)."),
                name: str = typer.Option(..., "--name", "-n", help="Name in the project library."),
                frame: int = typer.Option(None, help="Store only this frame as a still pose."),
                view: str = typer.Option("auto", help="BVH projection: front | side | auto."),
                detect: bool = typer.Option(None, "--detect/--skeleton",
                                            help="The video is footage of a person (detect its pose) / a rendered "
                                                 "skeleton video. Default: judged from its first frame."),
                project: Path = project_opt()):
    """Store a pose or a motion in the project's poses/ folder."""
    import numpy as np

    from cinekit.capture.footage import IMAGE_SUFFIXES, looks_like_footage
    from cinekit.pose.library import save_motion, save_pose
    from cinekit.pose.motion import VIDEO_SUFFIXES, import_motion, to_body_space

    dirs = _project_pose_dir(project)
    if not dirs:
        raise UserError("not inside a cinekit project", hint="run it in a project folder or pass --project")
    suffix = file.suffix.lower()
    if detect is None and suffix in IMAGE_SUFFIXES:
        detect = True
    elif detect is None and suffix in VIDEO_SUFFIXES and file.is_file():
        detect = looks_like_footage(file)
    if detect:
        motion = _detected(file, dirs[0].parent)
        if not np.isfinite(motion.poses).any():
            raise UserError(f"{file}: no person found in this footage",
                            hint="the detector needs a person in view (photos, realistic footage)")
    else:
        options = {"view": view} if suffix == ".bvh" else {}
        motion = import_motion(file, **options)
    body = to_body_space(motion.poses)
    dirs[0].mkdir(exist_ok=True)
    target = dirs[0] / f"{name}.yaml"
    if frame is not None or motion.frames == 1:
        idx = frame or 0
        if not 0 <= idx < motion.frames:
            raise UserError(f"--frame {idx} is outside 0..{motion.frames - 1}")
        save_pose(target, body[idx])
        console().print(f"stored pose {name!r} in {target}")
    else:
        save_motion(target, body, motion.fps)
        console().print(f"stored motion {name!r} ({motion.frames} frames at {motion.fps:g} fps) in {target}")
