"""Cross-file checks: names that must resolve, files that must exist, limits, prompt tokens.

Each check adds located problems to a Collector; nothing stops at the first one.
"""

from __future__ import annotations

import re
from pathlib import Path

from cinekit.errors import Collector
from cinekit.spec.diagnose import suggest
from cinekit.spec.models import PoseSpec, Shot, ShotList, parse_color
from cinekit.spec.yamlfile import YamlDoc

PICKLE_SUFFIXES = {".ckpt", ".bin", ".pt", ".pth", ".pkl"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9][A-Za-z0-9_.-]*)\}")
KNOWN_ENGINES = ("previz", "puppet", "diffusers")


class _Checker:
    def __init__(self, project, problems: Collector):
        self.project = project
        self.problems = problems

    def error(self, doc: YamlDoc, loc, message, hint=None, key=False):
        line, col = doc.mark(tuple(loc), key=key)
        from cinekit.spec.diagnose import field_name
        self.problems.error(str(doc.path), line, col, field_name(tuple(loc)), message, hint)

    def warn(self, doc: YamlDoc, loc, message, hint=None):
        line, col = doc.mark(tuple(loc))
        from cinekit.spec.diagnose import field_name
        self.problems.warn(str(doc.path), line, col, field_name(tuple(loc)), message, hint)

    def file(self, doc: YamlDoc, loc, rel: str, base: Path, *, kinds=None, model_file=False) -> Path | None:
        """A path written in a YAML file: resolved next to it, inside the project, existing."""
        path = (base.parent / rel).resolve()
        if not self.project.allow_outside_paths:
            try:
                path.relative_to(self.project.root)
            except ValueError:
                self.error(doc, loc, f"{rel!r} points outside the project folder",
                           "move the file into the project, or pass --allow-outside-paths")
                return None
        if not path.exists():
            near = [p.name for p in path.parent.glob("*")] if path.parent.is_dir() else []
            self.error(doc, loc, f"file not found: {rel}", suggest(path.name, near) or
                       f"paths are relative to {self.project.rel(base)}")
            return None
        if kinds and path.is_file() and path.suffix.lower() not in kinds:
            self.error(doc, loc, f"{path.suffix or 'no extension'} is not a supported file type here",
                       f"expected one of: {', '.join(sorted(kinds))}")
        if model_file and path.suffix.lower() in PICKLE_SUFFIXES and not self.project.allow_pickle:
            self.error(doc, loc, f"{rel!r} is a pickle checkpoint, which can run arbitrary code",
                       "convert it to .safetensors, or pass --allow-pickle if you trust it")
        return path


def validate_project(project, problems: Collector) -> None:
    check = _Checker(project, problems)
    config_path = project.root / "cinekit.yaml"
    if project.config_doc is not None:
        _check_config(check, project.config_doc, config_path)
    for name, (spec, path) in project.characters.items():
        _check_character(check, project.character_docs[name], spec, path)
    for list_path, shot_list in project.shotlists.items():
        _check_shotlist(check, project.shot_docs[list_path], shot_list, list_path)


def _check_config(check: _Checker, doc: YamlDoc, path: Path) -> None:
    cfg = check.project.config
    for kind in ("still", "clip"):
        engine = getattr(cfg.engines, kind)
        if engine not in KNOWN_ENGINES:
            check.error(doc, ("engines", kind), f"unknown engine {engine!r}",
                        suggest(engine, KNOWN_ENGINES) or f"choose one of: {', '.join(KNOWN_ENGINES)}")
    if parse_color(cfg.defaults.background) is None:
        check.file(doc, ("defaults", "background"), str(cfg.defaults.background), path, kinds=IMAGE_SUFFIXES)
    w, h = cfg.defaults.size
    _check_size(check, doc, ("defaults", "size"), w, h)


def _check_character(check: _Checker, doc: YamlDoc, spec, path: Path) -> None:
    from cinekit.pose.rig_file import check_rig
    from cinekit.pose.skeleton import INDEX

    for i, ref in enumerate(spec.references):
        check.file(doc, ("references", i, "image"), ref.image, path, kinds=IMAGE_SUFFIXES)
        if ref.mask:
            check.file(doc, ("references", i, "mask"), ref.mask, path, kinds=IMAGE_SUFFIXES)
    if spec.rig is not None:
        if spec.rig.from_:
            check.file(doc, ("rig", "from"), spec.rig.from_, path, kinds={".yaml", ".yml"})
        check_rig(check, doc, spec, path)  # extra limbs need a map: (cinekit.pose.rig_file)
        for joint in spec.rig.joints or {}:
            if joint not in INDEX:
                check.warn(doc, ("rig", "joints", joint), f"{joint!r} is not a COCO-18 joint name (kept as an extra joint)",
                           suggest(joint, INDEX))
    for i, lora in enumerate(spec.lora):
        check.file(doc, ("lora", i, "file"), lora.file, path, model_file=True)
    for i, emb in enumerate(spec.embeddings):
        check.file(doc, ("embeddings", i, "file"), emb.file, path, model_file=True)
    from cinekit.spec.art_checks import check_reference_art

    check_reference_art(check, doc, spec, path)   # the figure mask: automatic, cleaned up, or impossible


def _check_size(check, doc, loc, w, h) -> None:
    limits = check.project.config.limits
    for value, axis in ((w, "width"), (h, "height")):
        if value % 8:
            check.error(doc, loc, f"{axis} {value} is not divisible by 8",
                        f"diffusion models work on 8-pixel blocks: try {value - value % 8} or {value - value % 8 + 8}")
        if not limits.min_size <= value <= limits.max_size:
            check.error(doc, loc, f"{axis} {value} is outside {limits.min_size}..{limits.max_size}",
                        "change limits.min_size / limits.max_size in cinekit.yaml if you mean it")


def _resolved(shot: Shot, shot_list: ShotList, cfg, field: str):
    value = getattr(shot, field)
    if value is None:
        value = getattr(shot_list.defaults, field)
    if value is None and hasattr(cfg.defaults, field):
        value = getattr(cfg.defaults, field)
    return value


def _check_shotlist(check: _Checker, doc: YamlDoc, shot_list: ShotList, path: Path) -> None:
    from cinekit.pose.library import load_library

    project = check.project
    cfg = project.config
    limits = cfg.limits
    poses = load_library([project.root / "poses"])
    seen: dict[str, int] = {}
    clips_so_far: set[str] = set()
    if shot_list.defaults.engine and shot_list.defaults.engine not in KNOWN_ENGINES:
        check.error(doc, ("defaults", "engine"), f"unknown engine {shot_list.defaults.engine!r}",
                    suggest(shot_list.defaults.engine, KNOWN_ENGINES))
    # Duplicate ids are checked on the raw data, so shots with schema errors still count.
    for i, raw in enumerate(doc.get(("shots",)) or []):
        shot_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(shot_id, str) and shot_id in seen:
            check.error(doc, ("shots", i, "id"), f"duplicate shot id {shot_id!r} (first at shots[{seen[shot_id]}])",
                        "shot ids name the output files: make them unique")
        seen.setdefault(shot_id, i)
    for i, shot in enumerate(shot_list.shots):
        if shot is None:  # failed schema validation; already reported
            continue
        at = ("shots", i)

        # Sizes, rates, durations against the project's limits.
        if shot.size is not None:
            _check_size(check, doc, at + ("size",), *shot.size)
        elif shot_list.defaults.size is not None and i == 0:
            _check_size(check, doc, ("defaults", "size"), *shot_list.defaults.size)
        fps = _resolved(shot, shot_list, cfg, "fps")
        if fps > limits.max_fps:
            check.error(doc, at + ("fps",) if shot.fps else ("defaults", "fps"), f"{fps} fps is above the limit of {limits.max_fps}",
                        "change limits.max_fps in cinekit.yaml if you mean it")
        if shot.duration is not None:
            if shot.duration > limits.max_duration:
                check.error(doc, at + ("duration",), f"{shot.duration} s is longer than the limit of {limits.max_duration} s",
                            "split the shot, or raise limits.max_duration in cinekit.yaml")
            elif round(shot.duration * fps) < 1:
                check.error(doc, at + ("duration",), f"{shot.duration} s at {fps} fps is less than one frame")
        if len(shot.characters) > limits.max_characters:
            check.error(doc, at + ("characters",), f"{len(shot.characters)} characters; the limit is {limits.max_characters}")

        # Engine and model.
        engine = _resolved(shot, shot_list, cfg, "engine") or getattr(cfg.engines, shot.kind)
        if shot.engine and shot.engine not in KNOWN_ENGINES:
            check.error(doc, at + ("engine",), f"unknown engine {shot.engine!r}",
                        suggest(shot.engine, KNOWN_ENGINES) or f"choose one of: {', '.join(KNOWN_ENGINES)}")
        model = _resolved(shot, shot_list, cfg, "model")
        if model is not None and model not in cfg.models:
            loc = at + ("model",) if shot.model else ("defaults", "model")
            check.error(doc, loc, f"unknown model set {model!r}",
                        suggest(model, cfg.models) or "define it under `models:` in cinekit.yaml")
        if engine == "diffusers" and model is None and len(cfg.models) != 1:
            check.error(doc, at + ("id",), "the diffusers engine needs a model set",
                        "add `model: NAME` to the shot or the list's defaults (models are defined in cinekit.yaml)")
        if shot.refine is not None and engine != "diffusers":
            check.warn(doc, at + ("refine",), f"refine only applies to the diffusers engine (this shot uses {engine})")
        if shot.continue_from is not None:
            if shot.continue_from not in clips_so_far:
                check.error(doc, at + ("continue_from",), f"{shot.continue_from!r} is not an earlier clip of this list",
                            suggest(shot.continue_from, clips_so_far))
        if shot.kind == "clip":
            clips_so_far.add(shot.id)

        background = _resolved(shot, shot_list, cfg, "background")
        if parse_color(background) is None:
            loc = at + ("background",) if shot.background is not None else ("defaults", "background")
            if isinstance(background, str) and not background.startswith("#"):
                check.file(doc, loc, background, path, kinds=IMAGE_SUFFIXES)
            else:
                check.error(doc, loc, f"{background!r} is neither a '#rrggbb' colour nor an image path")

        # Characters, poses and the prompt.
        names_in_shot = []
        for j, ch in enumerate(shot.characters):
            cat = at + ("characters", j)
            names_in_shot.append(ch.name)
            if ch.name not in project.characters:
                check.error(doc, cat + ("name",), f"unknown character {ch.name!r}",
                            suggest(ch.name, project.characters) or "characters are defined in characters/*.yaml")
            _check_pose(check, doc, cat + ("pose",), ch.pose, poses, path, shot)
        if len(set(names_in_shot)) != len(names_in_shot):
            check.warn(doc, at + ("characters",), "the same character appears twice in one shot")
        prompt_names = PLACEHOLDER.findall(shot.prompt)
        for name in prompt_names:
            if name not in project.characters:
                check.error(doc, at + ("prompt",), f"the prompt names {{{name}}}, which is not a character",
                            suggest(name, project.characters))
            elif name not in names_in_shot:
                check.warn(doc, at + ("prompt",), f"the prompt names {{{name}}}, who is not in the shot's characters")
        for name in names_in_shot:
            if name not in prompt_names and name in project.characters:
                check.warn(doc, at + ("prompt",), f"the prompt never names {{{name}}}",
                           f"write {{{name}}} where the character belongs, so its identity tokens land there")


def _check_pose(check: _Checker, doc: YamlDoc, loc, pose, library: dict, list_path: Path, shot: Shot) -> None:
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
    elif source == "motion":
        if pose.motion not in library:
            check.error(doc, loc + ("motion",), f"unknown motion {pose.motion!r}",
                        suggest(pose.motion, library) or "store one with `cinekit poses import FILE --name NAME`")
    else:
        kinds = {"bvh": {".bvh"}, "openpose": {".json"}, "video": {".mp4", ".gif", ".webm", ".mov"},
                 "detect": {".mp4", ".gif", ".webm", ".mov"} | IMAGE_SUFFIXES}[source]
        target = getattr(pose, source)
        resolved = (list_path.parent / target)
        if source == "openpose" and resolved.is_dir():
            kinds = None
        check.file(doc, loc + (source,), target, list_path, kinds=kinds)
        if source == "detect" and not check.project.config.annotators:
            check.error(doc, loc + (source,), "pose detection needs the OpenPose annotator weights",
                        "set `annotators: path/to/Annotators` in cinekit.yaml (lllyasviel/Annotators layout)")
