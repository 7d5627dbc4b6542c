"""Cross-file checks: names that must resolve, files that must exist, limits, prompt tokens.

Each check adds located problems to a Collector; nothing stops at the first one.
"""

from __future__ import annotations

import re
from pathlib import Path

from cinekit.errors import Collector, UserError
from cinekit.spec.diagnose import field_name, short, suggest
from cinekit.spec.models import PoseSpec, Shot, ShotList, parse_color
from cinekit.spec.yamlfile import YamlDoc

PICKLE_SUFFIXES = {".ckpt", ".bin", ".pt", ".pth", ".pkl"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9][A-Za-z0-9_.-]*)\}")
KNOWN_ENGINES = ("previz", "puppet", "diffusers")
MAX_FRAMES = 1_000_000   # frames of one shot, whatever `limits:` allow (7.7 h at 36 fps)


class _Checker:
    IMAGE_SUFFIXES = IMAGE_SUFFIXES

    def __init__(self, project, problems: Collector):
        self.project = project
        self.problems = problems
        self._cache: dict = {}
        self._files: dict = {}
        self._reported: set = set()
        self._library = None
        self._motions = None
        self.suggest = suggest

    def error(self, doc: YamlDoc, loc, message, hint=None, key=False):
        line, col = doc.mark(tuple(loc), key=key)
        self.problems.error(str(doc.path), line, col, field_name(tuple(loc)), message, hint)

    def error_once(self, doc: YamlDoc, loc, message, hint=None):
        """An error about a value many shots share (a list's defaults): reported once."""
        token = (str(doc.path), tuple(loc), message)
        if token not in self._reported:
            self._reported.add(token)
            self.error(doc, loc, message, hint)

    def warn(self, doc: YamlDoc, loc, message, hint=None):
        line, col = doc.mark(tuple(loc))
        self.problems.warn(str(doc.path), line, col, field_name(tuple(loc)), message, hint)

    def found(self, doc: YamlDoc, loc, finding) -> None:
        self.error(doc, loc, finding.message, finding.hint)

    def cached(self, key, compute):
        """``compute()`` once per key for the whole check (files read once, whatever the shots);
        results about files are also kept across checks in one process while the files are
        unchanged (``file_checks.across_runs``)."""
        if key not in self._cache:
            from cinekit.spec.file_checks import across_runs

            self._cache[key] = across_runs(key, compute)
        return self._cache[key]

    def library(self) -> dict:
        """Bundled + project poses; a broken poses/ file is reported once, the bundled set kept."""
        if self._library is None:
            from cinekit.pose.library import load_library

            try:
                self._library = load_library([self.project.root / "poses"])
            except (UserError, ValueError, OSError) as exc:
                message = exc.message if isinstance(exc, UserError) else str(exc)
                self.problems.error("poses/", None, None, "", message, getattr(exc, "hint", None))
                self._library = load_library([])
        return self._library

    def motions(self) -> dict:
        if self._motions is None:
            from cinekit.pose.library import motion_lengths

            try:  # frame counts and rates only: check reads no motion's frames
                self._motions = motion_lengths([self.project.root / "poses"])
            except (UserError, ValueError, OSError):
                self._motions = {}  # reported by library()
        return self._motions

    def is_dir(self, folder: Path, rel: str) -> bool:
        try:
            return (folder / rel).is_dir()
        except (OSError, ValueError):
            return False

    def file(self, doc: YamlDoc, loc, rel: str, base: Path, *, kinds=None, model_file=False) -> Path | None:
        """A path written in a YAML file: resolved next to it, inside the project, existing."""
        key = (base.parent, rel, frozenset(kinds) if kinds else None, model_file)
        if key not in self._files:
            self._files[key] = self._resolve_file(rel, base, kinds, model_file)
        path, findings = self._files[key]
        for message, hint in findings:
            self.error(doc, loc, message, hint)
        return path

    def _resolve_file(self, rel: str, base: Path, kinds, model_file) -> tuple[Path | None, list]:
        findings = []
        try:
            if not rel or "\0" in rel:
                return None, [("not a usable path", "write a file path relative to this YAML file")]
            path = (base.parent / rel).resolve()
            if not self.project.allow_outside_paths:
                try:
                    path.relative_to(self.project.root)
                except ValueError:
                    return None, [(f"{rel!r} points outside the project folder",
                                   "move the file into the project, or pass --allow-outside-paths")]
            if not path.exists():
                near = [p.name for p in path.parent.glob("*")] if path.parent.is_dir() else []
                return None, [(f"file not found: {rel}", suggest(path.name, near) or
                               f"paths are relative to {self.project.rel(base)}")]
            if kinds and path.is_file() and path.suffix.lower() not in kinds:
                findings.append((f"{path.suffix or 'no extension'} is not a supported file type here",
                                 f"expected one of: {', '.join(sorted(kinds))}"))
            if kinds and path.is_dir():
                findings.append((f"{rel!r} is a folder, not a file", "name the file inside it"))
            if model_file and path.suffix.lower() in PICKLE_SUFFIXES and not self.project.allow_pickle:
                findings.append((f"{rel!r} is a pickle checkpoint, which can run arbitrary code",
                                 "convert it to .safetensors, or pass --allow-pickle if you trust it"))
        except (OSError, ValueError, RuntimeError) as exc:  # name too long, loops, bad characters
            return None, [(f"cannot use the path {short(rel)}: {getattr(exc, 'strerror', None) or exc}", None)]
        return (None if findings else path), findings


def validate_project(project, problems: Collector) -> None:
    from cinekit.spec.check_media import check_character, check_models

    check = _Checker(project, problems)
    config_path = project.root / "cinekit.yaml"
    if project.config_doc is not None:
        _check_config(check, project.config_doc, config_path)
    check.characters = {}
    for name, (spec, path) in project.characters.items():
        check.characters[name] = check_character(check, project.character_docs[name], spec, path)
        from cinekit.acting.checks import check_expressions

        check_expressions(check, project.character_docs[name], spec, path, check.characters[name])
    check.used_models = set()
    for list_path, shot_list in project.shotlists.items():
        _check_shotlist(check, project.shot_docs[list_path], shot_list, list_path)
    if project.config_doc is not None:
        check_models(check, project.config_doc, check.used_models)


def _check_config(check: _Checker, doc: YamlDoc, path: Path) -> None:
    cfg = check.project.config
    for kind in ("still", "clip"):
        engine = getattr(cfg.engines, kind)
        if engine not in KNOWN_ENGINES:
            check.error(doc, ("engines", kind), f"unknown engine {engine!r}",
                        suggest(engine, KNOWN_ENGINES) or f"choose one of: {', '.join(KNOWN_ENGINES)}")
    if parse_color(cfg.defaults.background) is None:
        _check_background(check, doc, ("defaults", "background"), cfg.defaults.background, path)
    _check_size_range(check, doc, ("defaults", "size"), *cfg.defaults.size)
    from cinekit.score.gates import SCORE_NAMES  # (numpy only)

    for name, gate in cfg.gates.items():  # as score.gates.validate_gates, which `render --ci` runs
        if name not in SCORE_NAMES:
            check.error(doc, ("gates", name), f"unknown score {name!r}", suggest(name, SCORE_NAMES)
                        or f"scores: {', '.join(SCORE_NAMES)}", key=True)
        elif gate.min is None and gate.max is None:
            check.error(doc, ("gates", name), "give `min`, `max` or both")
    if cfg.defaults.fps > cfg.limits.max_fps:
        check.error(doc, ("defaults", "fps"), f"{cfg.defaults.fps} fps is above the limit of {cfg.limits.max_fps}",
                    "change limits.max_fps if you mean it")


def _check_background(check: _Checker, doc, loc, background, base: Path) -> None:
    if isinstance(background, str) and not background.startswith("#"):
        found = check.file(doc, loc, background, base, kinds=IMAGE_SUFFIXES)
        if found is not None:
            from cinekit.spec.file_checks import Finding, read_image

            info = check.cached(("image", found), lambda: _no_pixels(read_image(found)))
            if isinstance(info, Finding):
                check.found(doc, loc, info)
    else:
        check.error(doc, loc, f"{short(background)} is neither a '#rrggbb' colour nor an image path",
                    "write a colour as '#rrggbb' or [r, g, b] with 0..255 each")


def _no_pixels(info):
    """A Finding, or None once the image decoded (its pixels are not kept)."""
    from cinekit.spec.file_checks import Finding

    return info if isinstance(info, Finding) else None


def _check_size_range(check, doc, loc, w, h) -> None:
    limits = check.project.config.limits
    for value, axis in ((w, "width"), (h, "height")):
        if not limits.min_size <= value <= limits.max_size:
            check.error_once(doc, loc, f"{axis} {short(value)} is outside {limits.min_size}..{limits.max_size}",
                             "change limits.min_size / limits.max_size in cinekit.yaml if you mean it")


def _check_blocks(check, doc, loc, w, h, engine: str) -> None:
    """Diffusion models work on 8-pixel latent blocks; the weight-free engines take any size."""
    for value, axis in ((w, "width"), (h, "height")):
        if value % 8:
            check.error_once(doc, loc, f"{axis} {value} is not divisible by 8, which the {engine} engine needs",
                             f"diffusion models work on 8-pixel blocks: try {value - value % 8} or {value - value % 8 + 8}")


def _resolved(shot: Shot, shot_list: ShotList, cfg, field: str):
    value = getattr(shot, field)
    if value is None:
        value = getattr(shot_list.defaults, field)
    if value is None and field in type(cfg.defaults).model_fields:  # (hasattr on a model raises inside: slow)
        value = getattr(cfg.defaults, field)
    return value


def _check_shotlist(check: _Checker, doc: YamlDoc, shot_list: ShotList, path: Path) -> None:
    from cinekit.spec.budget import human, job_memory

    project = check.project
    cfg = project.config
    limits = cfg.limits
    poses = check.library()
    d = shot_list.defaults
    seen: dict[str, int] = {}
    clips_so_far: set[str] = set()
    if d.engine and d.engine not in KNOWN_ENGINES:
        check.error(doc, ("defaults", "engine"), f"unknown engine {d.engine!r}", suggest(d.engine, KNOWN_ENGINES))
    if d.size is not None:  # checked even when every shot sets its own size
        _check_size_range(check, doc, ("defaults", "size"), *d.size)
    if d.background is not None and parse_color(d.background) is None:
        _check_background(check, doc, ("defaults", "background"), d.background, path)
    # Duplicate ids are checked on the raw data, so shots with schema errors still count.
    raw_shots = doc.get(("shots",))
    for i, raw in enumerate(raw_shots if isinstance(raw_shots, list) else []):
        shot_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(shot_id, str):
            continue
        if shot_id in seen:
            check.error(doc, ("shots", i, "id"), f"duplicate shot id {shot_id!r} (first at shots[{seen[shot_id]}])",
                        "shot ids name the output files: make them unique")
        seen.setdefault(shot_id, i)
    for i, shot in enumerate(shot_list.shots):
        if shot is None:  # failed schema validation; already reported
            continue
        at = ("shots", i)

        # Engine and model first: the size rules depend on the engine.
        engine = shot.engine or d.engine or getattr(cfg.engines, shot.kind)
        if shot.engine and shot.engine not in KNOWN_ENGINES:
            check.error(doc, at + ("engine",), f"unknown engine {shot.engine!r}",
                        suggest(shot.engine, KNOWN_ENGINES) or f"choose one of: {', '.join(KNOWN_ENGINES)}")
        model = _resolved(shot, shot_list, cfg, "model")
        if model is not None and model not in cfg.models:
            loc = at + ("model",) if shot.model else ("defaults", "model")
            check.error(doc, loc, f"unknown model set {model!r}",
                        suggest(model, cfg.models) or "define it under `models:` in cinekit.yaml")
        if engine == "diffusers":
            if model is None and len(cfg.models) != 1:
                check.error(doc, at + ("id",), "the diffusers engine needs a model set",
                            "add `model: NAME` to the shot or the list's defaults (models are defined in cinekit.yaml)")
            check.used_models.add(model if model is not None else next(iter(cfg.models), None))

        # Sizes, rates, durations against the project's limits.
        width, height = _resolved(shot, shot_list, cfg, "size")
        size_loc = at + ("size",) if shot.size is not None else ("defaults", "size") if d.size is not None else at + ("id",)
        if shot.size is not None:
            _check_size_range(check, doc, size_loc, width, height)
        if engine == "diffusers":
            _check_blocks(check, doc, size_loc, width, height, engine)
        fps = _resolved(shot, shot_list, cfg, "fps")
        if fps > limits.max_fps and (shot.fps or d.fps):  # cinekit.yaml's own fps is checked with the config
            check.error_once(doc, at + ("fps",) if shot.fps else ("defaults", "fps"),
                             f"{fps} fps is above the limit of {limits.max_fps}",
                             "change limits.max_fps in cinekit.yaml if you mean it")
        frames = 1
        if shot.duration is not None:
            frames = max(1, round(shot.duration * fps))
            if shot.duration > limits.max_duration:
                check.error(doc, at + ("duration",), f"{shot.duration} s is longer than the limit of {limits.max_duration} s",
                            "split the shot, or raise limits.max_duration in cinekit.yaml")
            elif round(shot.duration * fps) < 1:
                check.error(doc, at + ("duration",), f"{shot.duration} s at {fps} fps is less than one frame")
            if frames > MAX_FRAMES:  # whatever the limits say: the planner holds a pose per frame
                check.error(doc, at + ("duration",), f"{frames:,} frames is more than one shot can hold ({MAX_FRAMES:,})",
                            "split the shot or lower its fps")
        if len(shot.characters) > limits.max_characters:
            check.error(doc, at + ("characters",), f"{len(shot.characters)} characters; the limit is {limits.max_characters}")
        need = job_memory(shot.kind, engine, frames, width, height, len(shot.characters))
        within = (fps <= limits.max_fps and (shot.duration or 0) <= limits.max_duration and need <= limits.max_memory
                  and frames <= MAX_FRAMES)
        if need > limits.max_memory:
            check.error(doc, at + ("id",), f"this {shot.kind} needs about {human(need)} of memory "
                        f"({frames} frames of {width}x{height}); the limit is {human(limits.max_memory)}",
                        "shorten the shot, lower its size or fps, or raise limits.max_memory in cinekit.yaml")
        if shot.refine is not None and engine != "diffusers":
            check.warn(doc, at + ("refine",), f"refine only applies to the diffusers engine (this shot uses {engine})")
        if shot.continue_from is not None:
            if shot.continue_from not in clips_so_far:
                check.error(doc, at + ("continue_from",), f"{shot.continue_from!r} is not an earlier clip of this list",
                            suggest(shot.continue_from, clips_so_far))
        if shot.kind == "clip":
            clips_so_far.add(shot.id)

        if shot.background is not None and parse_color(shot.background) is None:
            _check_background(check, doc, at + ("background",), shot.background, path)

        # Characters, poses and the prompt.
        names_in_shot = []
        for j, ch in enumerate(shot.characters):
            cat = at + ("characters", j)
            names_in_shot.append(ch.name)
            if ch.name in project.broken_characters:
                pass  # its file's errors are reported there
            elif ch.name not in project.characters:
                check.error(doc, cat + ("name",), f"unknown character {ch.name!r}",
                            suggest(ch.name, project.characters) or "characters are defined in characters/*.yaml")
            elif engine == "puppet" and check.characters[ch.name].puppet_missing:
                missing = check.characters[ch.name].puppet_missing
                what = "has no rig" if len(missing) == 13 else f"rig lacks {', '.join(missing)}"
                check.error(doc, cat + ("name",), f"the puppet engine cannot bend {ch.name!r}: it {what}",
                            "give the character a rig with neck, shoulders, elbows, wrists, hips, knees and ankles, "
                            "or render this shot with the previz engine")
            # (motion tracks are resampled only for a shot within the limits: a refused fps of
            # 7e15 would otherwise ask numpy for petabytes)
            _check_pose(check, doc, cat + ("pose",), ch.pose, poses, path, shot, fps, frames if within else None)
        if shot.keys:  # drawn keys (cinekit.inbetween)
            from cinekit.inbetween.check import check_keys

            check_keys(check, doc, at, shot, path, width, height, fps, frames, engine, poses, model=model)
        from cinekit.acting.checks import check_shot_acting

        check_shot_acting(check, doc, at, shot, path)   # expressions, dialogue lines, audio, footage
        if len(set(names_in_shot)) != len(names_in_shot):
            check.warn(doc, at + ("characters",), "the same character appears twice in one shot")
        prompt_names = PLACEHOLDER.findall(shot.prompt)
        for name in prompt_names:
            if name in project.broken_characters:
                continue
            if name not in project.characters:
                check.error(doc, at + ("prompt",), f"the prompt names {{{name}}}, which is not a character",
                            suggest(name, project.characters))
            elif name not in names_in_shot:
                check.warn(doc, at + ("prompt",), f"the prompt names {{{name}}}, who is not in the shot's characters")
        for name in names_in_shot:
            if name not in prompt_names and name in project.characters:
                check.warn(doc, at + ("prompt",), f"the prompt never names {{{name}}}",
                           f"write {{{name}}} where the character belongs, so its identity tokens land there")


def _check_pose(check: _Checker, doc: YamlDoc, loc, pose, library: dict, list_path: Path, shot: Shot,
                fps: float, frames: int | None) -> None:
    from cinekit.spec.check_media import check_library_motion, check_pose_file

    if isinstance(pose, str):
        if pose not in library:
            check.error(doc, loc, f"unknown pose {pose!r}",
                        suggest(pose, library) or "see `cinekit poses list`")
        return
    assert isinstance(pose, PoseSpec)
    source = pose.source
    if source == "keyframes":
        last = -1.0
        for k, key in enumerate(pose.keyframes):
            if key.pose not in library:
                check.error(doc, loc + ("keyframes", k, "pose"), f"unknown pose {key.pose!r}",
                            suggest(key.pose, library) or "see `cinekit poses list`")
            if key.at <= last:
                check.error(doc, loc + ("keyframes", k, "at"), f"keyframe at {key.at} s is not after the previous one ({last} s)")
            last = key.at
            if shot.kind == "clip" and shot.duration is not None and key.at > shot.duration:
                check.warn(doc, loc + ("keyframes", k, "at"), f"keyframe at {key.at} s is after the shot ends ({shot.duration} s)")
    elif source == "motion" and pose.motion not in check.motions():  # a sentence (spec.check_text)
        from cinekit.spec.check_text import check_text_motion

        check_text_motion(check, doc, loc, pose, library, shot, fps)
    elif source == "motion":
        if pose.motion not in library:
            check.error(doc, loc + ("motion",), f"unknown motion {pose.motion!r}",
                        suggest(pose.motion, library) or "store one with `cinekit poses import FILE --name NAME`")
        else:
            check_library_motion(check, doc, loc, pose.motion, pose, fps, frames)
    else:
        check_pose_file(check, doc, loc, pose, list_path, fps, frames)
