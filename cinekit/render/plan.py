"""The planner: a validated shot becomes a resolved Job (pose track included).

Every value an engine needs is decided here, once: size, fps, frame count, seed, the prompt
with each character's identity tokens, and the per-frame pose track in output pixels
(library pose / keyframes / motion file -> body space -> retargeted to each character's
proportions -> mirrored -> framed by the camera).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cinekit.engines.base import engine_uses_models
from cinekit.errors import CinekitError, UserError
from cinekit.job import Job, JobCharacter
from cinekit.render.plan_motion import MotionSources
from cinekit.render.plan_views import _projection, _view_note, art_views  # noqa: F401  (re-exported)
from cinekit.spec.models import CameraSpec, PoseSpec, Shot, ShotList, parse_color
from cinekit.spec.validate import PLACEHOLDER


@dataclass(frozen=True)
class PlannedShot:
    shotlist: Path
    shot: Shot
    job: Job


@dataclass(frozen=True)
class ShotFailure:
    """A shot that could not be planned (a character that cannot be drawn, a broken motion
    file): it fails alone, the other shots render."""

    shotlist: Path
    shot: Shot
    error: str
    exit_code: int
    exception: BaseException | None = None


def identity_tokens(spec) -> str:
    """What replaces ``{name}`` in a prompt: LoRA triggers, embedding tokens, then the description."""
    parts = [lora.trigger for lora in spec.lora if lora.trigger]
    parts += [emb.token for emb in spec.embeddings]
    if spec.description:
        parts.append(spec.description)
    return ", ".join(parts) if parts else spec.name


def substitute_prompt(prompt: str, characters: dict) -> str:
    return PLACEHOLDER.sub(lambda m: identity_tokens(characters[m.group(1)][0]) if m.group(1) in characters else m.group(0), prompt)


def position_track(pose, start: float, frames: int, fps: float) -> np.ndarray:
    """Per-frame horizontal travel ``(frames,)`` in frame widths, from keyframes with ``position``.

    The keys that give a position are the waypoints (the first key starts at the character's
    own position when it gives none); keys in between only change the pose, so a run cycle
    keyed every 0.25 s travels smoothly to the next waypoint. The waypoint's ease shapes its
    segment; after the last waypoint the character stays there.
    """
    from cinekit.pose.camera import position_value
    from cinekit.pose.easing import ease
    from cinekit.pose.keyframes import sample_times

    if not isinstance(pose, PoseSpec) or pose.source != "keyframes" or all(k.position is None for k in pose.keyframes):
        return np.zeros(frames)
    keys = sorted(pose.keyframes, key=lambda k: k.at)
    points = [] if keys[0].position is not None else [(keys[0].at, start, "linear")]
    points += [(k.at, position_value(k.position), k.ease) for k in keys if k.position is not None]
    times = sample_times(frames, fps)
    out = np.full(frames, points[0][1])
    for (t0, x0, _), (t1, x1, name) in zip(points, points[1:]):
        inside = (times >= t0) & (times <= t1)
        out[inside] = x0 + (x1 - x0) * ease(name, (times[inside] - t0) / (t1 - t0))
    out[times > points[-1][0]] = points[-1][1]
    return out - start


def output_stem(list_stem: str, shot_id: str, engine: str, own_engine: str) -> str:
    """``<list>/<id>`` for the shot's own engine; ``<list>/<engine>/<id>`` when ``--engine`` renders it
    with another, so renders of two engines sit side by side (the review page compares them)."""
    return f"{list_stem}/{shot_id}" if engine == own_engine else f"{list_stem}/{engine}/{shot_id}"


class Planner(MotionSources):
    """Builds jobs for one project; caches what several shots share (library, rigs, motion files)."""

    def __init__(self, project, engine_override: str | None = None, *, files=None, cache_dir: Path | None = None,
                 debug: bool = False):
        """``files``: the run's input snapshot (``Runtime.files``): rig files are read through it and
        motion files checked against it; ``cache_dir``: where video tracks are cached by content."""
        from cinekit.pose.library import load_library

        self.project = project
        self.engine_override = engine_override
        self.files, self.cache_dir, self.debug = files, cache_dir, debug
        self.library = load_library([project.root / "poses"])
        self._lengths: dict[str, np.ndarray] = {}
        self._torsos: dict[str, object] = {}
        self._motions: dict[tuple, object] = {}
        self._library_motions: dict | None = None
        self._motion_names: set | None = None
        self._texts: dict[tuple, object] = {}  # text motion tracks by (sentence, frames, fps)
        self._bodies: dict[tuple, np.ndarray] = {}  # retargeted body tracks, shared by shots that repeat a pose
        self._rels: dict[str, str] = {}
        self._failed: dict[str, CinekitError] = {}  # characters whose rig cannot be read

    # -- per character ---------------------------------------------------------------
    def lengths(self, name: str) -> np.ndarray:
        """Bone lengths (body units) of a character: from its rig, else the default body."""
        if name in self._failed:
            raise self._failed[name]
        if name not in self._lengths:
            from cinekit.identity.core import load_rig
            from cinekit.pose.angles import DEFAULT_LENGTHS
            from cinekit.pose.retarget import lengths_from_rig, torso_from_rig

            spec, path = self.project.characters[name]
            try:
                rig, _ = load_rig(spec, path, self.files.read) if self.files is not None else load_rig(spec, path)
            except UserError as exc:  # the rig file's own located message (rig map, skeleton list)
                self._failed[name] = exc
                raise
            except (OSError, ValueError, UnicodeDecodeError) as exc:  # yaml errors are ValueErrors too
                self._failed[name] = UserError(f"{self.project.rel(path)}: rig: cannot read it ({exc})")
                raise self._failed[name] from None
            if rig is None:
                self._lengths[name] = DEFAULT_LENGTHS.copy()
            else:
                try:
                    self._lengths[name] = lengths_from_rig(rig)[0]
                    self._torsos[name] = torso_from_rig(rig)  # the rig's own shoulder/hip shape
                except ValueError as exc:
                    raise UserError(f"{self.project.rel(path)}: rig: {exc}",
                                    hint="give every body joint (neck, shoulders, elbows, wrists, hips, knees, ankles)") from None
        return self._lengths[name]

    def _views(self, ch, body: np.ndarray, depth, art: frozenset, fps: float):
        """(view, per-frame view segments, note) of a character in a shot: the view the user
        gave, else per frame the drawing nearest the body's yaw (``pose.views``)."""
        from cinekit.pose.views import choose_views, yaw_track

        pose = ch.pose if isinstance(ch.pose, PoseSpec) else None
        asked = pose.view if pose is not None else "auto"
        projected = None
        if pose is not None and pose.source == "bvh":
            projected = _projection(pose.view, art)[0]
        if ch.view:                     # the user's choice, every frame
            return ch.view, (), ""
        yaw = yaw_track(body, depth)
        segments, wanted, _drawn = choose_views(yaw, set(art), ch.mirror, min_frames=max(2, round(fps / 6)))
        note = _view_note(ch.name, art, wanted, asked, projected)
        first = segments[0][1] if segments else "front"
        if len(segments) <= 1 and (not segments or segments[0][2] == ch.mirror):
            segments = ()               # one drawing throughout: the plain view
        return first, segments, note

    def _rel(self, path: Path) -> str:
        """``project.rel`` memoised (it resolves the path: syscalls, once per list, not per shot)."""
        key = str(path)
        if key not in self._rels:
            self._rels[key] = self.project.rel(path)
        return self._rels[key]

    # -- per shot --------------------------------------------------------------------
    def plan_shot(self, list_path: Path, shot_list: ShotList, shot: Shot) -> Job:
        from cinekit.pose.camera import mirror, place
        from cinekit.pose.retarget import retarget

        cfg = self.project.config
        d = shot_list.defaults

        def pick(field):
            value = getattr(shot, field)
            if value is None:
                value = getattr(d, field)
            if value is None:
                value = getattr(cfg.defaults, field)
            return value

        width, height = pick("size")
        fps = float(pick("fps"))
        frames = 1 if shot.kind == "still" else max(1, round(shot.duration * fps))
        own_engine = shot.engine or d.engine or getattr(cfg.engines, shot.kind)
        engine = self.engine_override or own_engine
        model = shot.model or d.model or (next(iter(cfg.models)) if len(cfg.models) == 1 else None)
        if not engine_uses_models(engine):
            model = None  # a weight-free engine's output never depends on the diffusion weights
        camera = shot.camera or d.camera or "medium"
        camera_value = camera.model_dump() if isinstance(camera, CameraSpec) else camera

        tracks, depths, characters = [], [], []
        for ch in shot.characters:
            # A storyboard repeats the same few poses: the retargeted track of (pose, character,
            # frames) is computed once per run (pure functions of those, so the bytes are the same).
            pose_key = ch.pose if isinstance(ch.pose, str) else ch.pose.model_dump_json()
            memo = (pose_key, str(list_path), frames, fps, ch.name, ch.mirror, ch.view)
            spec, spec_path = self.project.characters[ch.name]
            art = art_views(spec)
            if memo not in self._bodies:
                body, depth = self.body_and_depth(ch.pose, frames, fps, list_path, art)
                lengths = self.lengths(ch.name)  # also reads the rig's torso shape
                body = retarget(body, lengths, torso=self._torsos.get(ch.name))
                if ch.mirror:
                    from cinekit.pose.skeleton import MIRROR

                    body = mirror(body, 0.0)
                    depth = None if depth is None else depth[:, list(MIRROR)]
                if self.is_text_motion(ch.pose):  # planted feet carry the retargeted body (pose.gait)
                    from cinekit.pose.gait import lock_feet, pin_feet

                    text = self.text_track(ch.pose.motion, frames, fps)
                    plant, contact = text.plant, text.contact
                    if ch.mirror:  # mirroring swapped the left and right joints
                        plant, contact = np.where(plant >= 0, 1 - plant, plant), contact[:, ::-1]
                    body = pin_feet(lock_feet(body, plant), contact)
                views = self._views(ch, body, depth, art, fps)
                body.setflags(write=False)
                self._bodies[memo] = (body, depth, views)
            body, depth, (view, views, note) = self._bodies[memo]
            tracks.append(body)
            depths.append(depth)
            from cinekit.pose.camera import position_value

            characters.append(JobCharacter(name=ch.name, spec_path=str(spec_path), position=position_value(ch.position),
                                           scale=ch.scale, mirror=ch.mirror, z=ch.z, view=view, views=views, note=note))
        if tracks:
            pose = place(tracks, [c.position for c in characters], [c.scale for c in characters], camera_value, width, height)
            zoom = camera_value.get("scale", 1.0) if isinstance(camera_value, dict) else 1.0
            for i, ch in enumerate(shot.characters):
                travel = position_track(ch.pose, characters[i].position, frames, fps)
                pose[:, i, :, 0] += (travel * width * zoom)[:, None]
        else:
            pose = np.zeros((frames, 0, 18, 2))
        depth = None
        if any(d is not None for d in depths):
            depth = np.stack([d if d is not None else np.full((frames, 18), np.nan) for d in depths], axis=1)

        background = pick("background")
        colour = parse_color(background)
        if colour is None:
            base = list_path if (shot.background or d.background) else self.project.root / "cinekit.yaml"
            background = str((base.parent / background).resolve())
        else:
            background = colour

        negatives = [shot.negative] + [self.project.characters[c.name][0].negative for c in shot.characters]
        options = dict(shot.options)
        if shot.continue_from:
            options["continue_from"] = shot.continue_from
        from cinekit.acting.plan import plan_acting

        acting = plan_acting(shot, list_path, frames, fps, int(pick("seed")), files=self.files,
                             cache_dir=self.cache_dir)   # footage captures cached by content
        job = Job(
            shot_id=shot.id, shotlist=self._rel(list_path), kind=shot.kind, engine=engine,
            width=int(width), height=int(height), fps=fps, frames=frames,
            seed=int(pick("seed")), steps=int(pick("steps")), guidance=float(pick("guidance")),
            prompt=substitute_prompt(shot.prompt, self.project.characters),
            negative=", ".join(n for n in negatives if n),
            characters=tuple(characters), pose=pose.astype(np.float64),
            output=output_stem(list_path.stem, shot.id, engine, own_engine), background=background,
            camera=camera if isinstance(camera, str) else "custom", model=model,
            refine=shot.refine, raw_prompt=shot.prompt, options=options, depth=depth,
            acting=acting if any(a is not None for a in acting) else (),
        )
        if shot.keys:  # drawn keys: their poses (given or fitted) key the track (cinekit.inbetween)
            from cinekit.inbetween.track import keyed_job

            job = keyed_job(self, list_path, shot, job, camera_value)
        return job

    def plan_all(self, shot_ids: list[str] | None = None,
                 kind: str | None = None) -> list[PlannedShot | ShotFailure]:
        """Jobs for every shot of every loaded list (optionally only some ids / one kind), in
        list order; a shot that cannot be planned becomes a ``ShotFailure`` and the others go on."""
        wanted = set(shot_ids or [])
        out: list[PlannedShot | ShotFailure] = []
        for list_path, shot_list in self.project.shotlists.items():
            for shot in shot_list.shots:
                if wanted and shot.id not in wanted:
                    continue
                if kind and shot.kind != kind:
                    continue
                try:
                    out.append(PlannedShot(list_path, shot, self.plan_shot(list_path, shot_list, shot)))
                except CinekitError as exc:
                    out.append(ShotFailure(list_path, shot, exc.format(), exc.exit_code, exc))
                except Exception as exc:  # noqa: BLE001 - one shot's bad data must not stop the others
                    if self.debug:
                        raise
                    out.append(ShotFailure(list_path, shot, f"cannot plan this shot: {type(exc).__name__}: {exc}", 3,
                                           exc))
        if wanted:
            found = {p.shot.id for p in out}
            missing = sorted(wanted - found)
            if missing:
                all_ids = [s.id for sl in self.project.shotlists.values() for s in sl.shots]
                from cinekit.spec.diagnose import suggest

                raise UserError(f"no {kind or ''} shot with id {', '.join(missing)}".replace("  ", " "),
                                hint=suggest(missing[0], all_ids) or f"shots: {', '.join(all_ids)}")
        return out

    def plan(self, shot_ids: list[str] | None = None, kind: str | None = None) -> list[PlannedShot]:
        """Like ``plan_all``, but the first shot that cannot be planned raises its error."""
        out = []
        for item in self.plan_all(shot_ids, kind):
            if isinstance(item, ShotFailure):
                raise item.exception if item.exception is not None else CinekitError(item.error)
            out.append(item)
        return out
