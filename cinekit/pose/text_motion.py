"""Motion from a sentence: ``"stand 0.5s, walk right 2s, wave 1s, jump"`` -> timed segments.

Grammar (words are case-insensitive; the same text always gives the same segments)::

    sentence  := clause ( SEP clause )*          SEP: ","  ";"  "then"  "and"  ", then"  ", and"
    clause    := word*  with exactly one VERB and at most one of each modifier, in any order
    VERB      := walk | run                      gait cycles whose feet plant (cinekit.pose.gait)
               | wave | jump                     animated actions
               | a pose name                     a still pose of the library (``cinekit poses
                                                 list``: stand, sit, cheer, ...), held; a name
                                                 with "_" may be written with a space ("arms
                                                 crossed")
    duration  := NUMBER ("s" | "sec" | "second(s)" | "ms")   e.g. 2s, 0.5 s, 500ms
               | INTEGER ("step" | "steps")       walk and run only
    direction := left | right | in place         walk and run only (default right); "in place"
                                                 walks on the spot (a treadmill: no travel)
    speed     := slowly | quickly | fast          x0.6 / x1.5 (cadence, blend, wave rate)
    filler    := for | to | the | a               ignored ("walk to the left for 2s"); a final
                                                 full stop is ignored too

Timing: clauses follow each other; a clause lasts its duration, else its verb's default
(``DEFAULTS``; a gait: 4 steps) divided by its speed. A gait given in seconds takes the
nearest whole number of steps (at least one) at the cadence that fills exactly those seconds,
so it ends with a foot under the body. Each clause after the first blends in from where the
previous one ended over ``min(0.3 s / speed, half the clause)`` (smoothstep ease; into a gait,
no longer than until its first foot lands, since blending moves planted feet). A gait starts
with a foot under the body: the one the previous gait ended on, else the right foot. The motion
lasts the sum of its clauses; a shot longer than that holds the last pose, a shot shorter is
an error (``cinekit check``).

Errors carry the character offsets of the offending words (``TextMotionError``) so that
``check`` reports them at ``file:line:col`` inside the YAML string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

GAIT_VERBS = ("walk", "run")
ACTION_VERBS = {"wave": "waves the raised right hand", "jump": "crouches, leaps, lands"}
DEFAULTS = {"pose": 1.0, "wave": 1.5, "jump": 1.0}
"""Default seconds of a clause without a duration, at speed 1 (gaits: ``DEFAULT_STEPS``)."""
DEFAULT_STEPS = 4
SPEEDS = {"slowly": 0.6, "quickly": 1.5, "fast": 1.5}
DIRECTIONS = ("left", "right", "in_place")
UNSUPPORTED = ("towards", "toward", "away", "forward", "forwards", "back", "backwards", "up", "down")
"""Directions a front-view cut-out cannot show: refused with a clear message, not a did-you-mean."""
FILLERS = ("for", "to", "the", "a")
SEPARATORS = ("then", "and")
SECONDS = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0, "ms": 0.001}
STEPS = ("step", "steps")
BLEND = 0.3
GAIT_KEYS = ("walk_a", "walk_b", "walk_c", "walk_d", "run_a", "run_b")
"""Library poses that are key drawings of the bundled gaits, not verbs."""

_TOKEN = re.compile(r"(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>[A-Za-z]+)?|(?P<word>[A-Za-z_][A-Za-z0-9_.-]*)"
                    r"|(?P<sep>[,;])|(?P<space>\s+)|(?P<other>.)")


class TextMotionError(ValueError):
    """A sentence that cannot be read; ``start``/``end`` are character offsets into it."""

    def __init__(self, message: str, start: int, end: int, hint: str | None = None):
        super().__init__(message)
        self.message, self.start, self.end, self.hint = message, start, end, hint


@dataclass(frozen=True)
class Clause:
    verb: str
    kind: str                      # "gait" | "action" | "pose"
    seconds: float | None = None   # as written (ms converted)
    steps: int | None = None
    direction: str = "right"
    speed: float = 1.0
    start: int = 0                 # offsets of the clause in the text
    end: int = 0
    verb_at: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Segment:
    """A clause placed in time: ``[t0, t1)`` seconds from the shot's start."""

    clause: Clause
    t0: float
    t1: float
    steps: int = 0                 # gaits: whole steps in [t0, t1)
    blend: float = 0.0             # seconds blending in from the previous segment

    @property
    def verb(self) -> str:
        return self.clause.verb

    @property
    def duration(self) -> float:
        return self.t1 - self.t0


def verbs(pose_names: Iterable[str]) -> dict[str, str]:
    """Verb -> kind (``gait``, ``action``, ``pose``) for a library's still-pose names."""
    out = {v: "gait" for v in GAIT_VERBS}
    out.update({v: "action" for v in ACTION_VERBS})
    reserved = {*SPEEDS, *DIRECTIONS, *UNSUPPORTED, *FILLERS, *SEPARATORS, *SECONDS, *STEPS}
    for name in pose_names:
        if name not in GAIT_KEYS and name.lower() not in reserved:  # a pose called "left" stays a direction
            out.setdefault(name.lower(), "pose")
    return out


def _suggest(word: str, choices: Iterable[str]) -> str | None:
    from cinekit.spec.diagnose import suggest

    return suggest(word, sorted(choices))


def _tokens(text: str) -> list[tuple[str, str, int, int]]:
    """``(kind, value, start, end)``: kinds ``num`` (value "2|s"), ``word``, ``sep``."""
    out = []
    for m in _TOKEN.finditer(text):
        kind = "num" if m.group("num") is not None else m.lastgroup
        if kind == "space":
            continue
        if kind == "num":
            out.append(("num", f"{m.group('num')}|{(m.group('unit') or '').lower()}", m.start(), m.end()))
        elif kind == "other":
            raise TextMotionError(f"unexpected {m.group()!r}", m.start(), m.end(),
                                  "separate clauses with commas: \"stand 1s, walk right 2s\"")
        else:
            out.append((kind, m.group().lower() if kind == "word" else m.group(), m.start(), m.end()))
    return out


def parse(text: str, pose_names: Iterable[str]) -> list[Clause]:
    """Clauses of ``text`` (see the module grammar); ``pose_names``: the still poses of the
    library (bundled + project). Raises ``TextMotionError`` at the first problem."""
    table = verbs(pose_names)
    groups: list[list[tuple[str, str, int, int]]] = [[]]
    end = text.rstrip()
    tokens = _tokens(end[:-1] if end.endswith(".") else text)  # a sentence may end with a full stop
    seps = []
    for k, tok in enumerate(tokens):
        if tok[0] == "word" and tok[1] in SEPARATORS and k and tokens[k - 1][0] == "sep":
            continue  # ", then" / ", and": one separator
        if tok[0] == "sep" or (tok[0] == "word" and tok[1] in SEPARATORS):
            groups.append([])
            seps.append(tok)
        else:
            groups[-1].append(tok)
    clauses = []
    for i, group in enumerate(groups):
        if not group:
            at = seps[i - 1] if i else (seps[0] if seps else ("", "", 0, len(text)))
            raise TextMotionError("empty clause" if text.strip() else "the motion is empty", at[2], at[3],
                                  "write a verb in every clause: \"stand 1s, walk right 2s\"")
        clauses.append(_clause(group, table))
    return clauses


def _join_names(group, table):
    """Merge ``arms crossed`` into the verb ``arms_crossed`` (and ``in place``) where the joined
    name is a verb (or a direction)."""
    out, i = [], 0
    while i < len(group):
        if (i + 1 < len(group) and group[i][0] == group[i + 1][0] == "word"
                and (f"{group[i][1]}_{group[i + 1][1]}" in table or f"{group[i][1]}_{group[i + 1][1]}" in DIRECTIONS)):
            out.append(("word", f"{group[i][1]}_{group[i + 1][1]}", group[i][2], group[i + 1][3]))
            i += 2
        else:
            out.append(group[i])
            i += 1
    return out


def _clause(group, table) -> Clause:
    group = _join_names(group, table)
    found: dict[str, tuple] = {}

    def once(slot: str, tok) -> None:
        if slot in found:
            raise TextMotionError(f"two {slot}s in one clause ({found[slot][1]!r} and {tok[1]!r})", tok[2], tok[3],
                                  "start a new clause with a comma")
        found[slot] = tok

    for tok in group:
        kind, value, a, b = tok
        if kind == "num":
            number, unit = value.split("|")
            if unit in SECONDS or unit in STEPS:
                once("duration", tok)
            else:
                raise TextMotionError(f"{text_of(tok)!r}: a duration needs a unit", a, b,
                                      _suggest(unit, [*SECONDS, *STEPS]) if unit else "write 2s, 500ms or 3 steps")
        elif value in table:
            once("verb", tok)
        elif value in SPEEDS:
            once("speed", tok)
        elif value in DIRECTIONS:
            once("direction", tok)
        elif value in FILLERS:
            continue
        elif value in UNSUPPORTED:
            raise TextMotionError(f"{value!r}: only left, right and in place are directions here", a, b,
                                  "characters are drawn facing the viewer; depth moves are not supported")
        else:
            what = "verb" if "verb" not in found else "word"
            hint = _suggest(value, [*table, *SPEEDS, *DIRECTIONS]) if what == "word" else _suggest(value, table)
            raise TextMotionError(f"unknown {what} {value!r}", a, b,
                                  hint or "see `cinekit poses list` for the verbs")
    if "verb" not in found:
        raise TextMotionError("this clause has no verb", group[0][2], group[-1][3],
                              "start it with walk, run, wave, jump or a pose name (`cinekit poses list`)")
    verb_tok = found["verb"]
    verb, kind = verb_tok[1], table[verb_tok[1]]
    seconds = steps = None
    if "duration" in found:
        tok = found["duration"]
        number, unit = tok[1].split("|")
        if unit in STEPS:
            if kind != "gait":
                raise TextMotionError(f"{verb!r} has no steps", tok[2], tok[3], "give seconds: 1s, 500ms")
            if "." in number or int(number) < 1:
                raise TextMotionError("steps are a whole number, at least 1", tok[2], tok[3])
            steps = int(number)
        else:
            seconds = float(number) * SECONDS[unit]
            if not seconds > 0:
                raise TextMotionError("a duration must be more than 0", tok[2], tok[3])
    direction = "right"
    if "direction" in found:
        if kind != "gait":
            tok = found["direction"]
            raise TextMotionError(f"{verb!r} does not travel: {tok[1]!r} goes with walk or run", tok[2], tok[3])
        direction = found["direction"][1]
    speed = SPEEDS[found["speed"][1]] if "speed" in found else 1.0
    return Clause(verb=verb, kind=kind, seconds=seconds, steps=steps, direction=direction, speed=speed,
                  start=group[0][2], end=group[-1][3], verb_at=(verb_tok[2], verb_tok[3]))


def text_of(tok) -> str:
    number, unit = tok[1].split("|")
    return f"{number}{unit}"


def timeline(clauses: list[Clause]) -> list[Segment]:
    """Clauses placed end to end (see the module docstring for durations and blends)."""
    from cinekit.pose.gait import GAITS

    out, t = [], 0.0
    for i, c in enumerate(clauses):
        steps = 0
        if c.kind == "gait":
            step = GAITS[c.verb].step_time / c.speed
            if c.steps is not None:
                steps = c.steps
                seconds = steps * step
            elif c.seconds is not None:
                steps = max(1, round(c.seconds / step))
                seconds = c.seconds
            else:
                steps = DEFAULT_STEPS
                seconds = steps * step
        else:
            seconds = c.seconds if c.seconds is not None else DEFAULTS.get(c.verb, DEFAULTS["pose"]) / c.speed
        blend = 0.0 if i == 0 else min(BLEND / c.speed, seconds / 2.0)
        if c.kind == "gait":  # done before the swinging foot lands (a blend moves planted feet)
            blend = min(blend, (1.0 - GAITS[c.verb].duty) * seconds / steps)
        out.append(Segment(c, t, t + seconds, steps, blend))
        t += seconds
    return out


def total_seconds(segments: list[Segment]) -> float:
    """Length of the motion: the sum of its clauses' durations."""
    return segments[-1].t1 if segments else 0.0
