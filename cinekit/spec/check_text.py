"""``check`` of a text motion (``pose: {motion: "stand 0.5s, walk right 2s"}``), located inside
the YAML string: a bad word is reported at its own ``line:col``, not at the start of the value.

Rule (kept backward compatible): ``motion: NAME`` where NAME is a stored motion of the project's
``poses/`` (a file with frames) plays that motion; any other value is a sentence
(``cinekit.pose.text_motion``).
"""

from __future__ import annotations

from cinekit.spec.models import PoseSpec
from cinekit.spec.yamlfile import YamlDoc

_STORED_ONLY = ("start", "end", "loop")


def column_in_value(doc: YamlDoc, loc, text: str, offset: int) -> tuple[int | None, int | None]:
    """``(line, col)`` of character ``offset`` of the string ``text`` written at ``loc``: exact for a
    one-line plain or quoted scalar without escapes; else the value's own start."""
    line, col = doc.mark(tuple(loc))
    if line is None or col is None:
        return line, col
    try:
        raw = doc.path.read_text(encoding="utf-8").splitlines()[line - 1]
    except (OSError, UnicodeDecodeError, IndexError):
        return line, col
    start = col - 1 + (1 if raw[col - 1:col] in ("'", '"') else 0)
    if raw[start:start + offset + 1] == text[:offset + 1]:
        return line, start + offset + 1
    return line, col


def check_text_motion(check, doc: YamlDoc, loc, pose: PoseSpec, library, shot, fps: float) -> None:
    """Parse the sentence against the library's verbs; durations against the shot's."""
    from cinekit.pose.text_motion import TextMotionError, parse, timeline, total_seconds
    from cinekit.spec.diagnose import field_name

    at = tuple(loc) + ("motion",)
    text = pose.motion

    def error(offset: int, message: str, hint: str | None) -> None:
        line, col = column_in_value(doc, at, text, offset)
        check.problems.error(str(doc.path), line, col, field_name(at), message, hint)

    for key in _STORED_ONLY:
        if getattr(pose, key) not in (None, False):
            check.error(doc, tuple(loc) + (key,), f"`{key}` applies to a stored motion, not to a sentence",
                        "say it in the sentence: durations (2s), speed words (slowly, quickly)")
    if pose.speed != 1.0:
        check.error(doc, tuple(loc) + ("speed",), "`speed` applies to a stored motion, not to a sentence",
                    "say `slowly` or `quickly` in the clause")
    stored = set(check.motions())
    try:
        segments = timeline(parse(text, [n for n in library if n not in stored]))
    except TextMotionError as exc:
        error(exc.start, exc.message, exc.hint)
        return
    total = total_seconds(segments)
    if shot.kind == "clip" and shot.duration is not None and total > shot.duration + 0.5 / fps:
        over = next(s for s in segments if s.t1 > shot.duration + 0.5 / fps)
        error(over.clause.start, f"the motion lasts {total:g} s but the shot only {shot.duration:g} s "
              f"(this clause runs {over.t0:g}-{over.t1:g} s)",
              f"shorten the clauses or make the shot `duration: {total:g}`")
