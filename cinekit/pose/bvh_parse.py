"""BVH file parsing: the HIERARCHY (joints, offsets, channels, end sites) and the MOTION table.

``parse_bvh`` parses text token by token with located errors; ``read_bvh`` parses a file's
HIERARCHY the same way and reads the MOTION values with numpy straight from the bytes.
Kinematics, joint mapping and projection to COCO-18 poses live in ``cinekit.pose.bvh``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cinekit.pose.motion import MotionFormatError


@dataclass
class BvhJoint:
    name: str
    parent: int  # -1 for a root
    offset: np.ndarray  # (3,)
    channels: list[str] = field(default_factory=list)
    channel_start: int = 0
    end_site: np.ndarray | None = None  # (3,) offset of the End Site, if any


@dataclass
class Bvh:
    joints: list[BvhJoint]
    frame_time: float
    motion: np.ndarray  # (frames, channels)

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time


def _tokens(text: str):
    for lineno, line in enumerate(text.splitlines(), start=1):
        for tok in line.replace("{", " { ").replace("}", " } ").split():
            yield tok, lineno


def parse_bvh(text: str, name: str = "<bvh>") -> Bvh:
    """Parse BVH text. Raises ``MotionFormatError`` (a ``ValueError``) naming ``name:line``."""
    toks = list(_tokens(text))
    pos = 0

    def fail(msg: str, lineno: int | None = None):
        if lineno is None:
            lineno = toks[min(pos, len(toks) - 1)][1] if toks else 1
        raise MotionFormatError(f"{name}:{lineno}: {msg}")

    def take(expected: str | None = None, what: str | None = None) -> tuple[str, int]:
        nonlocal pos
        if pos >= len(toks):
            fail(f"unexpected end of file (expected {expected or what or 'more'})", text.count("\n") + 1)
        tok, ln = toks[pos]
        if expected is not None and tok.upper() != expected.upper():
            fail(f"expected {expected!r}, found {tok!r}", ln)
        pos += 1
        return tok, ln

    def number(what: str) -> float:
        tok, ln = take()
        try:
            return float(tok)
        except ValueError:
            fail(f"{what}: expected a number, found {tok!r}", ln)

    joints: list[BvhJoint] = []
    n_channels = 0

    def parse_joint(parent: int, jname: str) -> None:
        nonlocal n_channels
        idx = len(joints)
        take("{")
        take("OFFSET")
        offset = np.array([number("OFFSET") for _ in range(3)])
        joint = BvhJoint(jname, parent, offset)
        joints.append(joint)
        tok, ln = take()
        if tok.upper() != "CHANNELS":
            fail(f"joint {jname!r}: expected CHANNELS, found {tok!r}", ln)
        count_tok, ln = take()
        if not count_tok.isdigit():
            fail(f"joint {jname!r}: CHANNELS count must be an integer, found {count_tok!r}", ln)
        for _ in range(int(count_tok)):
            ch, ln = take()
            norm = ch[:1].upper() + ch[1:].lower()
            if norm not in {f"{a}{k}" for a in "XYZ" for k in ("position", "rotation")}:
                fail(f"joint {jname!r}: unknown channel {ch!r}", ln)
            joint.channels.append(norm)
        joint.channel_start = n_channels
        n_channels += len(joint.channels)
        while True:
            tok, ln = take(what="'}' or JOINT")
            key = tok.upper()
            if key == "}":
                return
            if key == "JOINT":
                child, _ = take(what="a joint name")
                parse_joint(idx, child)
            elif key == "END":
                take("Site")
                take("{")
                take("OFFSET")
                joint.end_site = np.array([number("End Site OFFSET") for _ in range(3)])
                take("}")
            else:
                fail(f"joint {jname!r}: unexpected {tok!r}", ln)

    take("HIERARCHY")
    while pos < len(toks) and toks[pos][0].upper() == "ROOT":
        take("ROOT")
        root, _ = take(what="a root name")
        parse_joint(-1, root)
    if not joints:
        fail("no ROOT joint in HIERARCHY")
    take("MOTION")
    take("Frames:")
    tok, ln = take()
    if not tok.isdigit():
        fail(f"Frames: expected an integer, found {tok!r}", ln)
    n_frames = int(tok)
    take("Frame")
    take("Time:")
    frame_time = number("Frame Time")
    if not frame_time > 0:
        fail(f"Frame Time must be > 0, got {frame_time}", toks[pos - 1][1])
    values = toks[pos:]
    need = n_frames * n_channels
    if len(values) != need:
        got_frames = len(values) / max(n_channels, 1)
        last = values[-1][1] if values else ln
        fail(
            f"MOTION has {len(values)} values ({got_frames:g} frames of {n_channels} channels), "
            f"header says Frames: {n_frames}",
            last,
        )
    try:
        motion = np.array([float(v) for v, _ in values], dtype=np.float64)
    except ValueError:
        bad = next((v, n) for v, n in values if not _is_float(v))
        fail(f"MOTION: expected a number, found {bad[0]!r}", bad[1])
    return Bvh(joints, frame_time, motion.reshape(n_frames, n_channels))


_MOTION_HEAD = re.compile(rb"^[ \t]*MOTION[ \t]*\r?\n\s*Frames:[ \t]*(\d+)[ \t]*\r?\n\s*Frame[ \t]+Time:[ \t]*(\S+)[ \t]*\r?\n",
                          re.MULTILINE | re.IGNORECASE)


def read_bvh(path: str | Path, frames: tuple[int, int] | None = None) -> Bvh:
    """Parse a BVH file quickly: the HIERARCHY with ``parse_bvh``, the MOTION values with numpy
    straight from the bytes (no Python token per value).

    ``frames``: ``(first, stop)`` reads only the lines of those frames, through a memory map:
    the file is scanned up to frame ``stop`` and no further (one frame per line, the usual
    layout, checked on every line read; otherwise every frame is parsed and sliced). Any file
    the fast path cannot vouch for (a value that is not a number, a count that does not match)
    is parsed by ``parse_bvh``, which says where the problem is.
    """
    import mmap

    p = Path(path)
    with open(p, "rb") as fh:
        try:
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            data = b""
        try:
            bvh = _read(p, data, frames)
        finally:
            if isinstance(data, mmap.mmap):
                data.close()
    return bvh if bvh is not None else _sliced(parse_bvh(p.read_text(encoding="utf-8", errors="replace"), str(p)), frames)


def _read(p: Path, data, frames: tuple[int, int] | None) -> Bvh | None:
    head = _MOTION_HEAD.search(data)
    if head is None:
        return None
    skeleton = parse_bvh(data[:head.start()].decode("utf-8", errors="replace") + "\nMOTION\nFrames: 0\nFrame Time: 1\n", str(p))
    n_frames, n_channels = int(head.group(1)), sum(len(j.channels) for j in skeleton.joints)
    try:
        frame_time = float(head.group(2))
    except ValueError:
        return None
    if not frame_time > 0 or not n_channels:
        return None
    motion = None
    if frames is not None:
        motion = _window(data, head.end(), n_frames, n_channels, *frames)
    if motion is None:
        values = _values(data[head.end():], n_frames * n_channels)
        if values is None:
            return None
        motion = values.reshape(n_frames, n_channels)
        if frames is not None:
            motion = motion[frames[0]:frames[1]].copy()
    return Bvh(skeleton.joints, frame_time, motion)


def _sliced(bvh: Bvh, frames: tuple[int, int] | None) -> Bvh:
    if frames is not None:
        bvh.motion = bvh.motion[frames[0]:frames[1]].copy()
    return bvh


def _values(body: bytes, need: int) -> np.ndarray | None:
    """``need`` numbers from whitespace-separated text, or None if it holds anything else."""
    import warnings

    if re.search(rb"[^0-9eE+\-.naNAifIF \t\r\n]", body):
        return None  # text that is not numbers: leave it to the token parser's message
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns (and stops) on a value it cannot read
        try:
            values = np.fromstring(body, dtype=np.float64, sep=" ")
        except ValueError:
            return None
    return values if values.size == need else None


def _window(data, pos: int, n_frames: int, n_channels: int, first: int, stop: int) -> np.ndarray | None:
    """Frames ``first:stop`` from their own lines (the file is read up to line ``stop`` only),
    or None when a line does not hold exactly one frame."""
    stop = min(stop, n_frames)
    if not 0 <= first < stop:
        return None
    rows, index = [], 0
    while index < stop:
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        line = data[pos:end]
        if end >= len(data) and not line.strip():
            return None  # fewer lines than frames
        pos = end + 1
        if not line.strip():
            continue  # blank lines are not frames
        if index >= first:
            row = _values(line, n_channels)
            if row is None:
                return None
            rows.append(row)
        index += 1
    return np.stack(rows)


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False
