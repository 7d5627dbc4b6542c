"""An episode = one shot list in order, each shot joined with its rendered output.

What ``cinekit render`` wrote is read from the sidecars (``<id>.json`` next to each output: the
commit point of a render, see ``cinekit.render.outputs``), never re-planned: the exports show
what was rendered, at the size and frame rate it was rendered at. A shot rendered by several
engines (or into several folders) resolves to the newest render, or to ``engine`` when given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cinekit.errors import Problem, SpecError, UserError
from cinekit.spec.diagnose import field_name
from cinekit.spec.models import Shot

DEFAULT_HOLD = 2.0  # seconds a still is held in the animatic / timeline (stills have no duration)


@dataclass
class EpisodeShot:
    index: int                  # position in the list (0-based)
    shot: Shot
    kind: str                   # still | clip
    engine: str
    main: Path                  # rendered file (PNG still, MP4/GIF clip, or a folder of PNG frames)
    poster: Path | None         # a still standing for the shot (the still itself, a clip's middle frame)
    fps: float                  # the render's own frame rate (stills: the episode's)
    frames: int                 # rendered frames (1 for a still)
    size: tuple[int, int]       # rendered (width, height)
    seconds: float              # length in the episode: a clip's frames / fps, a still's hold
    start: float = 0.0          # seconds from the start of the episode
    audio: Path | None = None
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.shot.id

    @property
    def prompt(self) -> str:
        return self.shot.prompt

    @property
    def camera(self) -> str:
        cam = self.shot.camera if self.shot.camera is not None else self.record.get("job", {}).get("camera")
        if cam is None or isinstance(cam, str):
            return cam or "medium"
        return f"center {cam.center[0]:g},{cam.center[1]:g} x{cam.scale:g}"


@dataclass
class Episode:
    project: Any
    list_path: Path
    rel: str                    # the list's path relative to the project root
    renders: Path               # the output folder the renders were read from
    shots: list[EpisodeShot]
    fps: float                  # the list's (or project's) frame rate: the default animatic rate
    audio: Path | None = None   # the list's soundtrack
    stale: list[str] = field(default_factory=list)   # shot ids changed since their render

    @property
    def name(self) -> str:
        return self.list_path.stem

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.shots)


def index_sidecars(out_dir: Path) -> dict[tuple[str, str], list[tuple[Path, dict]]]:
    """``(shot list, shot id) -> [(sidecar, record), ...]`` for every cinekit sidecar under ``out_dir``."""
    found: dict[tuple[str, str], list[tuple[Path, dict]]] = {}
    if not out_dir.is_dir():
        return found
    for path in sorted(out_dir.rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(out_dir).parts):
            continue  # temporary files of a render in progress
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not (isinstance(record, dict) and "cinekit" in record and isinstance(record.get("job"), dict)
                and isinstance(record.get("outputs"), dict) and "main" in record["outputs"]):
            continue  # the manifest, pose JSON, anything that is not a render's sidecar
        job = record["job"]
        found.setdefault((str(job.get("shotlist")), str(job.get("shot_id"))), []).append((path, record))
    return found


def _pick(hits: list[tuple[Path, dict]], engine: str | None) -> tuple[Path, dict] | None:
    if engine is not None:
        hits = [h for h in hits if h[1].get("job", {}).get("engine") == engine]
    hits = [h for h in hits if (h[0].parent / h[1]["outputs"]["main"]).exists()]
    if not hits:
        return None
    return max(hits, key=lambda h: (str(h[1].get("rendered_at") or ""), h[0].stat().st_mtime))


def _audio(project, list_path: Path, rel: str, value: str, loc: tuple) -> Path | Problem:
    doc = project.shot_docs.get(list_path)
    line, col = doc.mark(loc) if doc is not None else (None, None)
    field_ = field_name(loc)
    path = (list_path.parent / value).resolve()
    if not project.allow_outside_paths:
        try:
            path.relative_to(project.root)
        except ValueError:
            return Problem(rel, line, col, field_, f"{value!r} points outside the project folder",
                           "move the file into the project, or pass --allow-outside-paths")
    if not path.is_file():
        return Problem(rel, line, col, field_, f"audio file not found: {value}",
                       f"paths are relative to {rel}")
    return path


def load_episode(project, list_path: Path, renders: Path | None = None, *, hold: float = DEFAULT_HOLD,
                 engine: str | None = None) -> Episode:
    """The list's shots joined with their renders; UserError naming every shot not rendered yet."""
    if hold <= 0:
        raise UserError(f"--hold {hold:g}: a still must be held for more than 0 seconds")
    list_path = Path(list_path).resolve()
    shot_list = project.shotlists[list_path]
    rel = project.rel(list_path)
    renders = Path(renders).resolve() if renders else project.output_dir
    fps = float(shot_list.defaults.fps or project.config.defaults.fps)
    sidecars = index_sidecars(renders)
    problems: list[Problem] = []

    def audio_file(value: str | None, loc: tuple) -> Path | None:
        if not value:
            return None
        got = _audio(project, list_path, rel, value, loc)
        if isinstance(got, Problem):
            problems.append(got)
            return None
        return got

    audio = audio_file(shot_list.audio, ("audio",))
    shots, missing, stale, start = [], [], [], 0.0
    for i, shot in enumerate(shot_list.shots):
        # checked for every shot: a problem in the list is reported before "not rendered"
        shot_audio = audio_file(shot.audio, ("shots", i, "audio"))
        hit = _pick(sidecars.get((rel, shot.id), []), engine)
        if hit is None:
            missing.append(shot.id)
            continue
        side, record = hit
        job = record.get("job", {})
        if job.get("kind") != shot.kind or job.get("raw_prompt", shot.prompt) != shot.prompt:
            stale.append(shot.id)
        outputs = record["outputs"]
        main = side.parent / outputs["main"]
        poster = side.parent / outputs["poster"] if "poster" in outputs else (main if shot.kind == "still" else None)
        frames = int(job.get("frames", 1))
        rfps = float(job.get("fps", fps))
        seconds = frames / rfps if job.get("kind") == "clip" else hold
        shots.append(EpisodeShot(i, shot, str(job.get("kind", shot.kind)), str(job.get("engine", "?")), main,
                                 poster if poster is not None and poster.exists() else None, rfps, frames,
                                 (int(job.get("width", 0)), int(job.get("height", 0))), seconds, start,
                                 shot_audio, record))
        start += seconds
    if problems:
        raise SpecError(problems)
    if missing:
        which = f" with --engine {engine}" if engine else ""
        raise UserError(f"{rel}: {len(missing)} of {len(shot_list.shots)} shot(s) not rendered yet{which} "
                        f"(in {project.rel(renders)}): {', '.join(missing)}",
                        hint=f"render them first: cinekit render {rel}"
                             + (f" --engine {engine}" if engine else "")
                             + (f" --out {project.rel(renders)}" if renders != project.output_dir else ""))
    return Episode(project, list_path, rel, renders, shots, fps, audio, stale)


def pick_list(project, target: Path | None = None) -> Path:
    """The one shot list a studio command works on (the named file, or the project's only list)."""
    if target is not None and Path(target).is_file() and Path(target).name != "cinekit.yaml":
        return Path(target).resolve()
    lists = sorted(project.shotlists)
    if len(lists) != 1:
        names = ", ".join(project.rel(p) for p in lists) or "none"
        raise UserError(f"name one shot list (this project has {len(lists)}: {names})",
                        hint="e.g. cinekit animatic shots/ep01.yaml")
    return lists[0]
