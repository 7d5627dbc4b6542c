"""The file side of ``check``: characters' art, masks and rigs; motion files of poses; model sets.

Each function locates what ``spec.file_checks`` finds at the YAML key that named the file.
Results are cached on the checker, so a file used by thousands of shots is read once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cinekit.spec.file_checks import (
    Finding,
    check_reference,
    motion_track_finding,
    read_motion,
    rig_findings,
    rig_from_file,
    safetensors_finding,
)
from cinekit.spec.models import PoseSpec
from cinekit.spec.yamlfile import YamlDoc

# puppet.bind.REQUIRED_JOINTS, restated: importing the puppet package pulls in scipy (seconds
# of `check` start-up); tests/test_check_files.py asserts the two stay equal.
PUPPET_JOINTS = (
    "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
)


@dataclass
class CharacterFacts:
    """What shots need to know about a character after its files were read."""

    ok: bool = True                      # references readable and rig usable
    rig: np.ndarray | None = None        # (18, 2) on references[0]
    _missing: list[str] | None = None

    @property
    def puppet_missing(self) -> list[str]:
        """The joints the puppet engine needs and the rig lacks (puppet.bind.missing_joints)."""
        if not self.ok:
            return []  # the rig's own problems are reported already
        if self._missing is None:
            from cinekit.pose.skeleton import INDEX

            self._missing = list(PUPPET_JOINTS) if self.rig is None else \
                [j for j in PUPPET_JOINTS if not np.isfinite(self.rig[INDEX[j]]).all()]
        return self._missing


def check_character(check, doc: YamlDoc, spec, path: Path) -> CharacterFacts:
    from cinekit.pose.skeleton import INDEX, empty_pose

    facts = CharacterFacts()
    first_size = None
    for i, ref in enumerate(spec.references):
        image = check.file(doc, ("references", i, "image"), ref.image, path, kinds=check.IMAGE_SUFFIXES)
        mask = check.file(doc, ("references", i, "mask"), ref.mask, path, kinds=check.IMAGE_SUFFIXES) if ref.mask else None
        if image is None or (ref.mask and mask is None):
            facts.ok = False
            continue
        info, findings = check.cached(("reference", image, mask), lambda image=image, mask=mask: check_reference(image, mask))
        for which, finding in findings:
            check.found(doc, ("references", i, which), finding)
            facts.ok = False
        if i == 0 and info is not None:
            first_size = (info.width, info.height)
        if ref.rig is not None and info is not None:
            _reference_rig(check, doc, i, ref, path, (info.width, info.height))
        if ref.parts and info is not None:
            _part_map(check, doc, ("references", i, "parts"), ref.parts, path, info)

    rig = None
    if spec.rig is not None:
        if spec.rig.from_:
            cfg = check.file(doc, ("rig", "from"), spec.rig.from_, path, kinds={".yaml", ".yml"})
            loaded = check.cached(("rig", cfg), lambda: rig_from_file(cfg)) if cfg is not None else None
            if isinstance(loaded, Finding):
                check.found(doc, ("rig", "from"), loaded)
            elif loaded is not None:
                rig, extra = loaded
                where = lambda joint: ("rig", "from")  # noqa: E731 - one location for a rig file
        else:
            rig, extra = empty_pose(), {}
            for name, xy in spec.rig.joints.items():
                if name in INDEX:
                    rig[INDEX[name]] = xy
                else:
                    extra[name] = tuple(xy)
                    check.warn(doc, ("rig", "joints", name), f"{name!r} is not a COCO-18 joint name (kept as an extra joint)",
                               check.suggest(name, INDEX))
            where = lambda joint: ("rig", "joints", joint) if joint else ("rig",)  # noqa: E731
        if rig is None:
            facts.ok = False
        elif first_size is not None:
            for joint, finding in rig_findings(rig, extra, *first_size):
                check.found(doc, where(joint), finding)
                facts.ok = False
    facts.rig = rig
    if spec.rig is not None:
        from cinekit.pose.rig_file import check_rig

        check_rig(check, doc, spec, path)  # extra limbs need a map: (cinekit.pose.rig_file)
    if facts.ok:
        from cinekit.spec.art_checks import check_reference_art

        check_reference_art(check, doc, spec, path)  # the figure mask: automatic, cleaned up, or impossible

    for i, lora in enumerate(spec.lora):
        _model_file(check, doc, ("lora", i, "file"), lora.file, path)
    for i, emb in enumerate(spec.embeddings):
        _model_file(check, doc, ("embeddings", i, "file"), emb.file, path)
    return facts


def _reference_rig(check, doc, i: int, ref, path: Path, size: tuple[int, int]) -> None:
    """A reference's own rig (another view's drawing): readable, on its art, with every joint
    the puppet bends."""
    from cinekit.pose.skeleton import INDEX, empty_pose

    at = ("references", i, "rig")
    if i == 0:
        check.error(doc, at, "the first reference's rig is the character's `rig:`",
                    "move it to the character's `rig:` key; `rig:` on a reference is for other views")
        return
    if ref.rig.from_:
        cfg = check.file(doc, at + ("from",), ref.rig.from_, path, kinds={".yaml", ".yml"})
        loaded = check.cached(("rig", cfg), lambda: rig_from_file(cfg)) if cfg is not None else None
        if loaded is None or isinstance(loaded, Finding):
            if isinstance(loaded, Finding):
                check.found(doc, at + ("from",), loaded)
            return
        rig, extra = loaded
        where = lambda joint: at + ("from",)  # noqa: E731
    else:
        rig, extra = empty_pose(), {}
        for name, xy in ref.rig.joints.items():
            if name in INDEX:
                rig[INDEX[name]] = xy
            else:
                extra[name] = tuple(xy)
        where = lambda joint: at + ("joints", joint) if joint in ref.rig.joints else at  # noqa: E731
    for joint, finding in rig_findings(rig, extra, *size):
        check.found(doc, where(joint), finding)
    missing = [j for j in PUPPET_JOINTS if not np.isfinite(rig[INDEX[j]]).all()]
    if missing:
        check.warn(doc, at, f"this {ref.view} rig lacks {', '.join(missing)}: the puppet cannot draw the "
                            f"{ref.view} view with it", "give every body joint the puppet bends")


def _part_map(check, doc, loc, rel: str, base: Path, info) -> None:
    """A reference's ``parts:`` label map: readable, the reference's size, known colours only."""
    found = check.file(doc, loc, rel, base, kinds=check.IMAGE_SUFFIXES)
    if found is None:
        return

    def problem():
        from cinekit.puppet.part_map import part_map_problem
        from cinekit.spec.file_checks import read_image

        img = read_image(found)
        if isinstance(img, Finding):
            return img
        said = part_map_problem(img.rgba, info.width, info.height)
        return Finding(*said) if said else None

    finding = check.cached(("parts", found, info.width, info.height), problem)
    if finding is not None:
        check.found(doc, loc, finding)


def _model_file(check, doc, loc, rel, base):
    found = check.file(doc, loc, rel, base, model_file=True)
    if found is not None and found.suffix == ".safetensors":
        finding = check.cached(("safetensors", found), lambda: safetensors_finding(found))
        if finding:
            check.found(doc, loc, finding)


def check_pose_file(check, doc: YamlDoc, loc, pose: PoseSpec, list_path: Path, fps: float, frames: int | None) -> None:
    """A BVH / OpenPose / video / detect source: readable, and its trim fits the shot."""
    source = pose.source
    kinds = {"bvh": {".bvh"}, "openpose": {".json"}, "video": {".mp4", ".gif", ".webm", ".mov", ".avi", ".mkv"},
             "detect": {".mp4", ".gif", ".webm", ".mov", ".avi", ".mkv"} | check.IMAGE_SUFFIXES}[source]
    target = getattr(pose, source)
    if source == "openpose" and check.is_dir(list_path.parent, target):
        kinds = None  # a folder of per-frame JSON files
    path = check.file(doc, loc + (source,), target, list_path, kinds=kinds)
    annotators = check.project.config.annotators
    from cinekit.capture.mediapipe_graphs import INSTALL_HINT, available

    if source == "detect" and not annotators and pose.person == 0 and not available():
        check.error(doc, loc + (source,), "pose detection needs mediapipe (the capture extra) or the OpenPose "
                    "annotator weights", INSTALL_HINT + "; or set `annotators: path/to/Annotators` in "
                    "cinekit.yaml (lllyasviel/Annotators layout)")
    elif source == "detect" and not annotators and pose.person != 0:
        check.error(doc, loc + ("person",), f"person: {pose.person} needs the OpenPose annotator weights "
                    "(mediapipe follows one person)",
                    "set `annotators: path/to/Annotators` in cinekit.yaml (lllyasviel/Annotators layout)")
    elif source == "detect" and annotators and not check.is_dir(check.project.root, annotators):
        check.error(doc, loc + (source,), f"the annotators folder {annotators!r} (cinekit.yaml) is not a folder",
                    "`annotators:` is relative to the project root (lllyasviel/Annotators layout)")
    if path is None:
        return
    motion = check.cached(("motion", source, path, pose.view, pose.person),
                          lambda: read_motion(source, path, pose.view, pose.person))
    if isinstance(motion, Finding):
        check.found(doc, loc + (source,), motion)
        return
    if source == "detect" or frames is None:
        return  # detection runs a network: render reads the frames; the file opened fine
    _check_track(check, doc, loc, motion, pose, fps, frames)


def check_library_motion(check, doc: YamlDoc, loc, name: str, pose: PoseSpec, fps: float, frames: int | None) -> None:
    """A motion of the project's poses/ library: its trim fits (stored in body space already)."""
    from cinekit.pose.motion import Motion, resample

    stored = check.motions().get(name) if frames is not None else None
    if stored is None:
        return
    # The trim is a question of frame count and rate: a stand-in of that length (zeros, not the
    # stored frames, which were validated when the motion was imported).
    count, rate = stored
    motion = check.cached(("library-motion", name), lambda: Motion(np.zeros((count, 18, 2)), rate, source=name))
    try:
        resample(motion, fps, start=pose.start, end=pose.end, speed=pose.speed, loop=pose.loop, frames=frames)
    except ValueError as exc:
        _report_track(check, doc, loc, motion, pose, Finding(str(exc)))


def _check_track(check, doc, loc, motion, pose: PoseSpec, fps, frames) -> None:
    finding = motion_track_finding(motion, fps, frames, pose.start, pose.end, pose.speed, pose.loop)
    if finding is not None:
        _report_track(check, doc, loc, motion, pose, finding)


def _report_track(check, doc, loc, motion, pose: PoseSpec, finding: Finding) -> None:
    last = (motion.frames - 1) / motion.fps
    if pose.start is not None and pose.start > last:
        check.found(doc, loc + ("start",), Finding(
            f"start {pose.start:g} s is past the end of the motion ({last:g} s, {motion.frames} frames)",
            "start counts seconds from the first frame of the file"))
    else:
        check.found(doc, loc + (pose.source,), finding)


# --------------------------------------------------------------------------- model sets
def check_models(check, doc: YamlDoc, used: set[str]) -> None:
    """Every model set: pickle files refused unless --allow-pickle (cheap, all sets); the
    models engineer's ``check_model_set`` (what the loader runs before loading) for the sets a
    diffusers shot uses."""
    from cinekit.engines.model_check import is_pickle

    cfg = check.project.config
    root = check.project.root
    for name, ms in cfg.models.items():
        for key in ("base", "vae"):
            value = getattr(ms, key)
            if value and is_pickle(Path(value)) and not check.project.allow_pickle:
                check.error(doc, ("models", name, key), f"{value!r} is a pickle checkpoint, which can run arbitrary code",
                            "convert it to .safetensors, or pass --allow-pickle if you trust it")
        if name not in used:
            continue
        from cinekit.engines.model_check import check_model_set

        try:
            problems = check_model_set(name, ms, root, allow_pickle=check.project.allow_pickle)
        except Exception as exc:  # noqa: BLE001 - a model path the checker cannot handle is the config's problem
            check.error(doc, ("models", name), f"cannot check this model set: {type(exc).__name__}: {exc}")
            continue
        for p in problems:
            parts = p.field.split(".")
            loc = ("models", name, *parts[2:]) if parts[:2] == ["models", name] else ("models", name)
            if parts[2:] in (["base"], ["vae"]) and is_pickle(Path(getattr(ms, parts[2]) or "")):
                continue  # the pickle refusal is reported above
            if p.severity == "warning":
                check.warn(doc, loc, p.message, p.hint)
            else:
                check.error(doc, loc, p.message, p.hint)
