"""Hypothesis generators of hostile cinekit files: valid documents, mutated.

A document starts as a valid shot list, character file or cinekit.yaml (the BASE_* dicts),
gets one to four structural mutations (a value replaced by a wrong type, a huge or non-finite
number, a list for a scalar, deep nesting; a key deleted or added) and then, sometimes, one
text mutation that no dict can express (a duplicate key, an alias bomb, a self-referencing
alias, an undefined alias, a control character, bytes that are not UTF-8, a 4,301-digit
number, 1,000 levels of brackets, a truncated file). ``run_check`` writes the document into a
prepared project and runs ``cinekit check`` in-process, returning what the campaign measures.
"""

from __future__ import annotations

import copy
import re
import shutil
import signal
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import yaml
from hypothesis import strategies as st

from tests.adversarial.hostile import BOMB, bvh_text
from tests.project_factory import RIG, make_project

BASE_SHOTS = {
    "defaults": {"fps": 8, "size": [256, 192]},
    "shots": [
        {"id": "s010", "prompt": "{ann} waves", "camera": "full", "characters": [{"name": "ann", "pose": "wave"}]},
        {"id": "s020", "kind": "clip", "duration": 1.0, "prompt": "{ann} and {bob}", "camera": "wide",
         "characters": [
             {"name": "ann", "position": "left",
              "pose": {"keyframes": [{"at": 0, "pose": "walk_a"}, {"at": 0.5, "pose": "walk_c", "position": 0.6}]}},
             {"name": "bob", "position": 0.7, "pose": "stand", "mirror": True, "scale": 0.8}]},
        {"id": "s030", "kind": "clip", "duration": 0.5, "background": "#223344", "seed": 3, "prompt": "{bob}",
         "camera": {"center": [0.5, 0.5], "scale": 1.2},
         "characters": [{"name": "bob", "pose": {"bvh": "m.bvh", "start": 0.1, "speed": 1.5}}]},
    ],
}
BASE_CHARACTER = {
    "name": "ann", "description": "ann, test character",
    "references": [{"image": "refs/ann.png", "view": "front"}],
    "rig": {"joints": {k: list(v) for k, v in RIG.items()}},
    "palette": ["#c83c3c", "#3c3ca0"],
    "identity": {"ip_adapter": 0.7, "reference_attention": 0.6},
}
BASE_CONFIG = {
    "output": "renders", "engines": {"still": "previz", "clip": "puppet"},
    "defaults": {"size": [256, 192], "fps": 8, "seed": 0, "steps": 25, "guidance": 7.0, "background": "#ebebf0"},
    "limits": {"max_duration": 120, "max_fps": 60, "max_memory": "16 GiB"},
    "models": {}, "gates": {"flicker": {"max": 0.05}},
}
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
KINDS = {"shots": ("shots/ep.yaml", BASE_SHOTS), "character": ("characters/ann.yaml", BASE_CHARACTER),
         "config": ("cinekit.yaml", BASE_CONFIG)}


def _nested(depth: int):
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


hostile_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**62, max_value=10**40).map(lambda v: -v if v % 2 else v),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e300, -1e300, 5e-324, 0.0, -0.0]),
    st.text(max_size=16),
    st.sampled_from(["", "#zzzzzz", "../../../etc/passwd", "refs", "/dev/zero", "a" * 300, "{ann}", "ann\x00b",
                     "m.bvh", "refs/ann.png", "wave", "clip", "still", "diffusers", "puppet", "16 TiB", "~nobody/x"]),
    st.lists(st.one_of(st.integers(-5, 5000), st.floats(allow_nan=True)), max_size=4),
    st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=4)), max_size=3),
    st.sampled_from([10, 70, 300]).map(_nested),
)


def _paths(doc, prefix=()):
    """Every (path) to a value inside ``doc``, the root excluded."""
    out = []
    if isinstance(doc, dict):
        items = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return out
    for k, v in items:
        out.append(prefix + (k,))
        out += _paths(v, prefix + (k,))
    return out


@dataclass(frozen=True)
class Mutation:
    where: int
    action: str
    value: object


mutations = st.builds(Mutation, st.integers(0, 10_000),
                      st.sampled_from(["replace", "replace", "replace", "delete", "wrap", "add_key", "as_mapping"]),
                      hostile_values)


def _apply(doc, m: Mutation):
    paths = _paths(doc)
    if not paths:
        return
    path = paths[m.where % len(paths)]
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    key = path[-1]
    if m.action == "replace":
        parent[key] = m.value
    elif m.action == "delete":
        del parent[key]
    elif m.action == "wrap":
        parent[key] = [parent[key]]
    elif m.action == "as_mapping":
        parent[key] = {"x": parent[key]}
    elif m.action == "add_key" and isinstance(parent, dict):
        parent[str(m.value)[:20] if not isinstance(m.value, str) else m.value[:20]] = m.value


TEXT_MUTATIONS = ["none", "none", "none", "duplicate_key", "bomb", "self_alias", "undefined_alias", "control_char",
                  "bad_utf8", "huge_digits", "deep_brackets", "truncate", "anchor_reuse"]


def _text_mutate(text: str, kind: str, where: int) -> bytes:
    lines = text.splitlines(keepends=True) or ["\n"]
    keyed = [i for i, ln in enumerate(lines) if re.match(r"^\s*(- )?[A-Za-z_]+: ", ln)]
    if kind == "duplicate_key" and keyed:
        i = keyed[where % len(keyed)]
        ln = lines[i]
        dup = ln.replace("- ", "  ", 1) if ln.lstrip().startswith("- ") else ln
        lines.insert(i + 1, dup)
    elif kind == "bomb":
        lines = [BOMB] + lines
    elif kind == "self_alias" and keyed:
        i = keyed[where % len(keyed)]
        lines[i] = re.sub(r": .*", ": &self [1, *self]", lines[i].rstrip("\n")) + "\n"
    elif kind == "undefined_alias" and keyed:
        i = keyed[where % len(keyed)]
        lines[i] = re.sub(r": .*", ": *nowhere", lines[i].rstrip("\n")) + "\n"
    elif kind == "anchor_reuse" and len(keyed) > 1:
        i, j = keyed[where % len(keyed)], keyed[(where // 7) % len(keyed)]
        lines[i] = re.sub(r": (.*)", r": &r \1", lines[i].rstrip("\n"), count=1) + "\n"
        if j > i:
            lines[j] = re.sub(r": .*", ": *r", lines[j].rstrip("\n")) + "\n"
    elif kind == "control_char":
        pos = where % max(1, len(text))
        return (text[:pos] + chr([0, 7, 8, 27, 127, 0x9F][where % 6]) + text[pos:]).encode("utf-8")
    elif kind == "bad_utf8":
        raw = text.encode("utf-8")
        pos = where % max(1, len(raw))
        return raw[:pos] + b"\xff\xfe" + raw[pos:]
    elif kind == "huge_digits" and keyed:
        i = keyed[where % len(keyed)]
        lines[i] = re.sub(r": .*", ": " + "9" * 4301, lines[i].rstrip("\n")) + "\n"
    elif kind == "deep_brackets" and keyed:
        i = keyed[where % len(keyed)]
        n = [65, 1000, 5000][where % 3]
        lines[i] = re.sub(r": .*", ": " + "[" * n + "]" * n, lines[i].rstrip("\n")) + "\n"
    elif kind == "truncate":
        raw = text.encode("utf-8")
        return raw[: where % max(1, len(raw))]
    return "".join(lines).encode("utf-8")


@st.composite
def documents(draw, kind: str):
    """(relative path, bytes) of one mutated document of ``kind`` (shots, character, config)."""
    rel, base = KINDS[kind]
    doc = copy.deepcopy(base)
    for m in draw(st.lists(mutations, min_size=1, max_size=4)):
        _apply(doc, m)
    try:
        text = yaml.dump(doc, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=1000)
    except (yaml.YAMLError, ValueError, RecursionError):
        text = yaml.safe_dump(base, sort_keys=False)
    return rel, _text_mutate(text, draw(st.sampled_from(TEXT_MUTATIONS)), draw(st.integers(0, 10_000)))


any_document = st.sampled_from(sorted(KINDS)).flatmap(documents)


# --------------------------------------------------------------------------- running check
def make_fuzz_project(root: Path) -> Path:
    """A valid project that every base document fits (ann, bob, a short BVH)."""
    make_project(root, yaml.safe_dump(BASE_SHOTS, sort_keys=False), config=yaml.safe_dump(BASE_CONFIG, sort_keys=False))
    (root / "shots" / "m.bvh").write_text(bvh_text(12))
    (root / "characters" / "ann.yaml").write_text(yaml.safe_dump(BASE_CHARACTER, sort_keys=False))
    return root


_LOCATED = re.compile(r"^\S+?:\d+(:\d+)?: ")


@dataclass
class Outcome:
    exit_code: int
    seconds: float
    peak_bytes: int
    traceback: str | None          # an exception that escaped the CLI
    internal: bool                 # "internal error" printed
    errors: int                    # error lines printed
    unlocated: list[str]           # error lines without file:line
    hang: bool


class _Hang(BaseException):
    """Raised by the alarm; a BaseException so that the CLI's error mapping cannot swallow it."""


def _alarm(signum, frame):
    raise _Hang()


_COMMAND = None


def _invoke(args):
    """The CLI in-process; the click command is built once (typer builds it on every invoke)."""
    global _COMMAND
    import typer.testing
    from typer.main import get_command

    from cinekit.cli import app

    if _COMMAND is None:
        _COMMAND = get_command(app)
    build, typer.testing._get_command = typer.testing._get_command, lambda _app: _COMMAND
    try:
        return typer.testing.CliRunner().invoke(app, args, catch_exceptions=True)
    finally:
        typer.testing._get_command = build


def run_check(root: Path, rel: str, data: bytes, *, hang_after: float = 5.0, measure_memory: bool = False) -> Outcome:
    """Write ``data`` at ``root/rel`` (the rest of the project as built), run `cinekit check`."""
    originals = root / ".originals"
    if not originals.exists():
        originals.mkdir()
        for kind_rel, _ in KINDS.values():
            shutil.copy(root / kind_rel, originals / Path(kind_rel).name)
    for kind_rel, _ in KINDS.values():
        shutil.copy(originals / Path(kind_rel).name, root / kind_rel)
    (root / rel).write_bytes(data)
    if measure_memory:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, hang_after)
    start = time.perf_counter()
    hang = False
    try:
        result = _invoke(["check", str(root)])
    except _Hang:
        hang, result = True, None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - baseline if measure_memory else 0  # above what was live before
    if result is None:
        return Outcome(-1, seconds, peak, None, False, 0, [], True)
    exc = result.exception
    tb = None
    if exc is not None and not isinstance(exc, SystemExit):
        if isinstance(exc, _Hang):
            return Outcome(-1, seconds, peak, None, False, 0, [], True)
        import traceback

        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    out = result.output
    lines = [ln for ln in out.splitlines() if ln and not ln.startswith(" ") and not re.match(r"^\d+ error\(s\)$", ln)
             and not ln.startswith("ok: ") and ": warning: " not in ln]
    unlocated = [ln for ln in lines if not _LOCATED.match(ln)] if result.exit_code == 1 else []
    return Outcome(result.exit_code, seconds, peak, tb, "internal error" in out, len(lines), unlocated, hang)


def run_render(root: Path) -> tuple[int, str, str | None]:
    """`cinekit render --ci --force` of the project as it is now: (exit code, output, traceback)."""
    import os
    import traceback

    here = os.getcwd()
    os.chdir(root)
    try:
        result = _invoke(["render", "--ci", "--force"])
    finally:
        os.chdir(here)
    exc = result.exception
    tb = None
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return result.exit_code, result.output, tb
