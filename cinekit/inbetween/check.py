"""``cinekit check`` for a shot's drawn keys (``keys:``): times, sizes, paths, characters, poses.

Rules (docs/inbetween.md): keys belong to clips; each key's time lies inside the shot
(``round(at * fps) < frames``), keys are in increasing time and on distinct frames (each key
image is the whole frame at its time, so two keys cannot share one); the image lies inside the
project, is readable and exactly the shot's size; ``character`` names one of the shot's
characters (it may be left out when the shot has exactly one); ``pose`` is a library pose.
On the diffusers clip engine the shot's model set needs ``sparsectrl:`` and the shot may have at
most the SparseCtrl model's ``motion_max_seq_length`` frames (what ``inbetween.sparsectrl``
refuses at render time, found here first).
"""

from __future__ import annotations

from pathlib import Path

SPARSECTRL_FRAMES = 32   # AnimateDiff v3 SparseCtrl's motion_max_seq_length (when its config is unreadable)
SPARSECTRL_HINT = ("add `sparsectrl: PATH` (a SparseControlNetModel folder: the RGB or scribble model) "
                   "to the model set, or render the shot with the puppet engine")


def key_frame(at: float, fps: float) -> int:
    """The frame a key at ``at`` seconds lands on (the planner uses the same rule)."""
    return int(round(at * fps))


def check_keys(check, doc, at: tuple, shot, list_path: Path, width: int, height: int, fps: float,
               frames: int, engine: str, library: dict, model: str | None = None) -> None:
    """Adds located problems about ``shot.keys`` to ``check`` (a ``spec.validate._Checker``)."""
    if not shot.keys:
        return
    if shot.kind != "clip":
        check.error(doc, at + ("keys",), "drawn keys need a clip (a still is one frame: draw it as the background)",
                    "add `kind: clip` and `duration:` to the shot")
        return
    if engine == "previz":
        check.warn(doc, at + ("keys",), "the previz engine draws the pose track only; the key drawings pose it but "
                   "are not shown", "render the shot with the puppet or diffusers engine to see the drawings")
    if engine == "diffusers":
        _check_sparsectrl(check, doc, at, shot, frames, model)
    names = [c.name for c in shot.characters]
    if not names:
        check.error(doc, at + ("keys",), "drawn keys pose the shot's characters, and this shot has none",
                    "add the drawn character under `characters:`")
    last_at, seen = -1.0, {}
    for k, key in enumerate(shot.keys):
        loc = at + ("keys", k)
        frame = key_frame(key.at, fps)
        if frame >= frames:
            check.error(doc, loc + ("at",), f"key at {key.at} s lands on frame {frame}, after the shot's last frame "
                        f"({frames - 1}, at {(frames - 1) / fps:.3g} s)", "keys lie inside the shot's duration")
        if key.at <= last_at:
            check.error(doc, loc + ("at",), f"key at {key.at} s is not after the previous key ({last_at} s)",
                        "list the keys in time order")
        elif frame in seen:
            check.error(doc, loc + ("at",), f"key at {key.at} s lands on frame {frame}, as keys[{seen[frame]}] does "
                        f"at {fps:g} fps", "move the keys at least one frame apart")
        seen.setdefault(frame, k)
        last_at = key.at
        if key.character is None:
            if len(names) > 1:
                check.error(doc, loc, f"say which character this key draws (the shot has {', '.join(names)})",
                            f"add `character: {names[0]}`")
        elif key.character not in names:
            check.error(doc, loc + ("character",), f"{key.character!r} is not one of the shot's characters",
                        check.suggest(key.character, names) or f"the shot's characters: {', '.join(names) or 'none'}")
        who = key.character if key.character is not None else (names[0] if len(names) == 1 else None)
        facts = getattr(check, "characters", {}).get(who)
        if key.pose is None and facts is not None and facts.puppet_missing:
            check.error(doc, loc + ("image",), f"fitting this drawing needs {who!r}'s rig (it lacks "
                        f"{', '.join(facts.puppet_missing[:3])}{'...' if len(facts.puppet_missing) > 3 else ''})",
                        "give the character a rig with the body joints, or give the key's pose: `pose: NAME`")
        if key.pose is not None and key.pose not in library:
            check.error(doc, loc + ("pose",), f"unknown pose {key.pose!r}",
                        check.suggest(key.pose, library) or "see `cinekit poses list`")
        found = check.file(doc, loc + ("image",), key.image, list_path, kinds=check.IMAGE_SUFFIXES)
        if found is not None:
            from cinekit.spec.file_checks import Finding, ImageInfo, read_image

            info = check.cached(("image-header", found), lambda found=found: read_image(found, decode=False))
            if isinstance(info, Finding):
                check.found(doc, loc + ("image",), info)
            elif isinstance(info, ImageInfo) and (info.width, info.height) != (width, height):
                check.error(doc, loc + ("image",), f"key image is {info.width}x{info.height}; the shot is {width}x{height}",
                            "draw each key over the whole frame, at the shot's size")


def sparsectrl_frames(folder: Path | None) -> int:
    """The most frames the SparseCtrl model at ``folder`` conditions at once (its config's
    ``motion_max_seq_length``, as the render reads it from the loaded model)."""
    import json

    try:
        return int(json.loads((folder / "config.json").read_text())["motion_max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return SPARSECTRL_FRAMES


def _check_sparsectrl(check, doc, at: tuple, shot, frames: int, model: str | None) -> None:
    """A keyed diffusers clip needs its model set's ``sparsectrl:`` and fits in the model's frames."""
    from cinekit.engines.model_check import resolve_model_path

    models = check.project.config.models
    name = model if model is not None else (next(iter(models)) if len(models) == 1 else None)
    if name not in models:
        return                  # an unknown or missing model set is reported with the shot's model
    ms = models[name]
    if not ms.sparsectrl:
        check.error(doc, at + ("keys",), f"drawn keys on a diffusers clip need a SparseCtrl model; model set "
                    f"{name!r} has no `sparsectrl:`", SPARSECTRL_HINT)
        return
    limit = sparsectrl_frames(resolve_model_path(ms.sparsectrl, check.project.root)[0])
    if frames > limit:
        loc = at + ("duration",) if shot.duration is not None else at + ("keys",)
        check.error(doc, loc, f"{frames} frames; SparseCtrl conditions at most {limit} frames at once "
                    "(drawn keys on the diffusers clip engine)", "split the shot at a key, or lower its fps")
