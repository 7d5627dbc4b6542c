"""``cinekit check`` for acting: expression art in character files, faces and lines in shots.

Every problem is located (``file:line:col: field: message`` + hint) through the checker of
``cinekit.spec.validate``; nothing here raises.
"""

from __future__ import annotations

from pathlib import Path

from cinekit.acting.timeline import NEUTRAL

IMAGE_KINDS = {".png", ".jpg", ".jpeg", ".webp"}
VIDEO_KINDS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
AUDIO_KINDS = {".wav", ".mp3", ".aac", ".m4a", ".flac", ".ogg", ".opus", ".mp4", ".mov"}
MIN_FACE = 8          # px: a face crop smaller than this shows nothing


def check_expressions(check, doc, spec, path: Path, facts) -> None:
    """Each expression's art: a file inside the project, an image, a sensible size (the
    reference's, or a crop no larger than it), and a face region known (given or from the rig)."""
    if not spec.expressions:
        return
    from cinekit.acting.face_art import art_entries, face_box  # (cv2: only for characters with art)
    from cinekit.spec.file_checks import read_image

    entries = art_entries(spec)
    ref_size = None
    first = check.file(doc, ("references", 0, "image"), spec.references[0].image, path, kinds=IMAGE_KINDS)
    if first is not None:
        info = check.cached(("image-size", first), lambda: read_image(first, decode=False))
        ref_size = (info.width, info.height) if hasattr(info, "width") else None
    for name, (image, box) in entries.items():
        at = ("expressions", name) if isinstance(spec.expressions[name], str) else ("expressions", name, "image")
        if name == NEUTRAL:
            check.error(doc, ("expressions", name), "'neutral' is the reference's own face",
                        "name the art another way (smile, angry, ...); `expression: neutral` needs no art")
            continue
        found = check.file(doc, at, image, path, kinds=IMAGE_KINDS)
        if found is None:
            continue
        info = check.cached(("image-size", found), lambda found=found: read_image(found, decode=False))
        if not hasattr(info, "width"):
            check.found(doc, at, info)
            continue
        size = (info.width, info.height)
        if ref_size is not None and size != ref_size:
            if info.width > ref_size[0] or info.height > ref_size[1]:
                check.error(doc, at, f"the art is {size[0]}x{size[1]}, larger than the reference "
                                     f"({ref_size[0]}x{ref_size[1]}) but not its size",
                            "give a whole reference of the same size, or a face crop (smaller than the reference)")
            elif min(size) < MIN_FACE:
                check.error(doc, at, f"the face crop is {size[0]}x{size[1]}: too small to show a face",
                            f"crop at least {MIN_FACE}x{MIN_FACE} pixels")
        if box is not None and ref_size is not None and (box[2] > ref_size[0] or box[3] > ref_size[1]):
            check.error(doc, ("expressions", name, "face"), f"the face region {list(box)} reaches outside the "
                                                            f"reference ({ref_size[0]}x{ref_size[1]})",
                        "give [x0, y0, x1, y1] in the first reference's pixels")
    boxes = {b for _, b in entries.values() if b is not None}
    if len(boxes) > 1:
        check.error(doc, ("expressions",), "the expressions give different face regions",
                    "the face region is one place on the reference: give the same `face:` (or one) everywhere")
    if not boxes and ref_size is not None and getattr(facts, "ok", True) and face_box(facts.rig, ref_size) is None:
        check.error(doc, ("expressions",), "no face region: the rig has no eyes and no nose",
                    "add `face: [x0, y0, x1, y1]` (reference pixels) to an expression, or give the rig "
                    "right_eye/left_eye (or nose) joints")


def check_shot_acting(check, doc, at: tuple, shot, list_path: Path) -> None:
    """Expressions that the characters have, lines spoken by characters in the shot and within
    it, audio and footage files that exist."""
    project = check.project
    in_shot = [ch.name for ch in shot.characters]
    for j, ch in enumerate(shot.characters):
        known = None
        if ch.name in project.characters:
            known = set(project.characters[ch.name][0].expressions) | {NEUTRAL}
        wanted = [(at + ("characters", j, "expression"), ch.expression)]
        for k, key in enumerate(getattr(ch.pose, "keyframes", None) or []):
            wanted.append((at + ("characters", j, "pose", "keyframes", k, "expression"), key.expression))
        for loc, name in wanted:
            if name is not None and known is not None and name not in known:
                check.error(doc, loc, f"{ch.name!r} has no expression {name!r}",
                            check.suggest(name, known) or f"its expressions: {', '.join(sorted(known))} "
                                                          f"(add art under `expressions:` in its character file)")
        if ch.performance:
            found = check.file(doc, at + ("characters", j, "performance"), ch.performance, list_path,
                               kinds=VIDEO_KINDS)
            # the render reads the footage with mediapipe: say so now, not halfway through a batch
            # (one error per field: a missing file is reported as that alone)
            from cinekit.capture.mediapipe_graphs import INSTALL_HINT, available

            if found is not None and not available():
                check.error(doc, at + ("characters", j, "performance"),
                            "a face performance from footage needs mediapipe (the capture extra)",
                            INSTALL_HINT + "; or drop `performance:`")
    if not isinstance(shot.dialogue, str):
        for k, line in enumerate(shot.dialogue):
            if line.character not in in_shot:
                check.error(doc, at + ("dialogue", k, "character"), f"{line.character!r} speaks but is not in the shot",
                            check.suggest(line.character, in_shot) or "add the character to the shot's characters")
            if shot.kind == "clip" and shot.duration is not None and line.at >= shot.duration:
                check.warn(doc, at + ("dialogue", k, "at"), f"the line starts at {line.at} s, after the shot ends "
                                                            f"({shot.duration} s)")
    if shot.audio and shot.characters and not isinstance(shot.dialogue, str):   # it moves the speakers' mouths
        check.file(doc, at + ("audio",), shot.audio, list_path, kinds=AUDIO_KINDS)
