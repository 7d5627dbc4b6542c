"""Hostile inputs of issue 13: each builds a broken project and names the located error
``check`` must print for it (``file:line:col: field: ...`` + a phrase of the message).

Shared by the CI test (tests/adversarial/test_hostile.py) and the fuzz campaign's figures.
"""

from __future__ import annotations

import struct
import textwrap
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from cinekit.testing.data import shared_data_dir
from tests.project_factory import CONFIG, make_project

ONE = "shots:\n  - id: a\n    prompt: '{ann}'\n    characters: [{name: ann, pose: wave}]\n"


def clip_with(pose: str, duration: float = 1.0) -> str:
    return (f"shots:\n  - id: a\n    kind: clip\n    duration: {duration}\n    prompt: '{{ann}}'\n"
            f"    characters: [{{name: ann, pose: {pose}}}]\n")


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (8-bit grey) with one tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def bvh_text(frames: int | None = None, nan: bool = False) -> str:
    """The jumping-jacks BVH of the shared data, cut to ``frames`` (0 allowed), optionally NaN."""
    text = (shared_data_dir() / "animated-drawings" / "bvh" / "jumping_jacks.bvh").read_text()
    head, motion = text.split("MOTION", 1)
    lines = motion.strip().splitlines()
    rows = lines[2:]
    if frames is not None:
        rows = rows[:frames]
    if nan:
        rows = [r if i % 5 else "nan " + " ".join(r.split()[1:]) for i, r in enumerate(rows)]
    return head + "MOTION\nFrames: %d\n%s\n%s\n" % (len(rows), lines[1], "\n".join(rows))


def black_video(path: Path, frames: int = 8, size=(64, 64)) -> None:
    import cv2

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, size)
    for _ in range(frames):
        out.write(np.zeros((size[1], size[0], 3), np.uint8))
    out.release()


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]      # tmp folder -> project root
    where: str                          # expected "file:line:col: field" prefix of one error
    says: str                           # a phrase of that error


def _project(shots=ONE, config=CONFIG, extra=None, edit=None):
    def build(tmp: Path) -> Path:
        root = make_project(tmp / "p", shots, config=config, extra=extra)
        if edit:
            edit(root)
        return root
    return build


def _ref(mutate):
    """Replace ann's reference image (characters/refs/ann.png) by what ``mutate(path)`` writes."""
    def edit(root: Path):
        mutate(root / "characters" / "refs" / "ann.png")
    return edit


def _char(old: str, new: str, then=None):
    def edit(root: Path):
        p = root / "characters" / "ann.yaml"
        p.write_text(p.read_text().replace(old, new))
        if then:
            then(root)
    return edit


def _truncate(p: Path):
    p.write_bytes(p.read_bytes()[:300])


def _no_alpha(p: Path):
    """Opaque art on a busy (noise) background: no alpha, no mask, no flat backdrop to cut from."""
    import numpy as np

    rgb = np.random.default_rng(0).integers(0, 256, (*Image.open(p).size[::-1], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(p)


def _black_mask(root: Path):
    Image.new("L", (200, 400), 0).save(root / "characters" / "refs" / "mask.png")


def _small_mask(root: Path):
    Image.new("L", (100, 100), 255).save(root / "characters" / "refs" / "mask.png")


def _no_rig(root: Path):
    p = root / "characters" / "ann.yaml"
    p.write_text(p.read_text().split("rig:")[0])


def _file(rel: str, data):
    def edit(root: Path):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if callable(data):
            data(p)
        elif isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)
    return edit


BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
RIG_MASK = "references:\n  - {image: refs/ann.png, view: front}"
S = "shots/ep.yaml"
C = "characters/ann.yaml"

CASES = [
    Case("truncated reference", _project(edit=_ref(_truncate)), f"{C}:4:13: references[0].image", "cannot be decoded"),
    Case("empty reference", _project(edit=_ref(lambda p: p.write_bytes(b""))), f"{C}:4:13: references[0].image", "empty"),
    Case("text as a png", _project(edit=_ref(lambda p: p.write_text("hello"))), f"{C}:4:13: references[0].image", "not an image"),
    Case("decompression bomb", _project(edit=_ref(lambda p: p.write_bytes(png_header(20000, 20000)))),
         f"{C}:4:13: references[0].image", "decompression bomb"),
    Case("no alpha, no mask, busy background", _project(edit=_ref(_no_alpha)), f"{C}:4:13: references[0].image",
         "no flat backdrop"),
    Case("all-black mask", _project(edit=_char(RIG_MASK, "references:\n  - {image: refs/ann.png, mask: refs/mask.png}",
                                               _black_mask)), f"{C}:4:33: references[0].mask", "all black"),
    Case("mask of another size", _project(edit=_char(RIG_MASK, "references:\n  - {image: refs/ann.png, mask: refs/mask.png}",
                                                     _small_mask)), f"{C}:4:33: references[0].mask", "100x100"),
    Case("folder as image", _project(edit=_char("refs/ann.png", "refs")), f"{C}:4:13: references[0].image", "folder"),
    Case("rig joint at 1e300", _project(edit=_char("nose: [100, 50]", "nose: [1e300, 50]")),
         f"{C}:6:18: rig.joints.nose", "outside the 200x400"),
    Case("rig joint NaN", _project(edit=_char("nose: [100, 50]", "nose: [.nan, 50]")), f"{C}:6:19: rig.joints.nose[0]", "finite"),
    Case("rig joint outside", _project(edit=_char("neck: [100, 90]", "neck: [100, 900]")),
         f"{C}:6:35: rig.joints.neck", "outside"),
    Case("BVH with NaN channels", _project(clip_with("{bvh: m.bvh}"),
                                           edit=_file("shots/m.bvh", bvh_text(40, nan=True))),
         f"{S}:6:42: shots[0].characters[0].pose.bvh", "NaN"),
    Case("BVH with 0 frames", _project(clip_with("{bvh: m.bvh}"), edit=_file("shots/m.bvh", bvh_text(0))),
         f"{S}:6:42: shots[0].characters[0].pose.bvh", "no frames"),
    Case("BVH start past its end", _project(clip_with("{bvh: m.bvh, start: 100}"), edit=_file("shots/m.bvh", bvh_text(40))),
         f"{S}:6:56: shots[0].characters[0].pose.start", "past the end"),
    Case("OpenPose JSON with no people", _project(clip_with("{openpose: p.json}"), edit=_file("shots/p.json", '{"people": []}')),
         f"{S}:6:47: shots[0].characters[0].pose.openpose", "no frame has two body joints"),
    Case("fake GIF", _project(clip_with("{video: s.gif}"), edit=_file("shots/s.gif", "GIF89a but not really")),
         f"{S}:6:44: shots[0].characters[0].pose.video", "GIF"),
    Case("skeleton video without a skeleton", _project(clip_with("{video: s.mp4}"), edit=_file("shots/s.mp4", black_video)),
         f"{S}:6:44: shots[0].characters[0].pose.video", "no skeleton"),
    Case("mapping for a position", _project("shots:\n  - id: a\n    characters: [{name: ann, position: {x: 0.5}}]\n"),
         f"{S}:3:40: shots[0].characters[0].position", "a mapping is not valid here"),
    Case("mapping for a background", _project("shots:\n  - id: a\n    background: {r: 0}\n"),
         f"{S}:3:17: shots[0].background", "a mapping is not valid here"),
    Case("defaults.size when every shot has its own", _project(
        "defaults: {size: [100000, 100000]}\nshots:\n  - id: a\n    size: [256, 192]\n"),
         f"{S}:1:18: defaults.size", "outside 64..4096"),
    Case("fps .inf", _project("shots:\n  - id: a\n    fps: .inf\n"), f"{S}:3:10: shots[0].fps", "finite"),
    Case("4,301-digit integer", _project("shots:\n  - id: a\n    seed: " + "9" * 4301 + "\n"), f"{S}:3:11", "4,301"),
    Case("id that is a list", _project("shots:\n  - id: [a, b]\n"), f"{S}:2:9: shots[0].id", "string"),
    Case("shots: 7", _project("shots: 7\n"), f"{S}:1:8: shots", "list"),
    Case("338 GiB clip", _project("shots:\n  - id: a\n    kind: clip\n    duration: 120\n    fps: 60\n    size: [4096, 4096]\n"),
         f"{S}:2:9: shots[0].id", "needs about 338"),
    Case("pickle base model", _project(
        "shots:\n  - id: a\n    engine: diffusers\n",
        config=CONFIG + "models:\n  sd: {base: models/sd.ckpt, config: models/cfg}\n",
        edit=_file("models/sd.ckpt", b"\x80\x04junk")), "cinekit.yaml:5:14: models.sd.base", "pickle"),
    Case("alias bomb", _project(BOMB), f"{S}:6:8", "alias bomb"),
    Case("self-referencing alias", _project("shots: &s [*s]\n"), f"{S}:1:12", "recursive"),
    Case("duplicate key", _project("shots:\n  - id: a\n    kind: clip\n    duration: 2.0\n    duration: 90\n"),
         f"{S}:5:5", "duplicate key 'duration' (first at line 4)"),
    Case("nesting 1000 deep", _project("shots: " + "[" * 1000 + "]" * 1000 + "\n"), f"{S}:1:", "nesting"),
    Case("control character", _project("shots:\n  - id: a\x07b\n"), f"{S}:2:10", "U+0007"),
    Case("not UTF-8", _project(edit=_file("shots/ep.yaml", b"shots:\n  - id: caf\xe9\n")), f"{S}:2:12", "UTF-8"),
    Case("puppet without a rig", _project(config=CONFIG.replace("still: previz", "still: puppet"), edit=_no_rig),
         f"{S}:4:25: shots[0].characters[0].name", "has no rig"),
    Case("puppet, rig lacks joints", _project(config=CONFIG.replace("still: previz", "still: puppet"),
                                              edit=_char("right_knee: [78, 300], ", "")),
         f"{C}:6:3: rig", "missing body joints: right_knee"),
    Case("background folder", _project("shots:\n  - id: a\n    background: refs\n", edit=_file("shots/refs/x.txt", "x")),
         f"{S}:3:17: shots[0].background", "folder"),
    Case("divisible by 8 for diffusers only", _project(
        "shots:\n  - id: a\n    engine: diffusers\n    size: [500, 500]\n",
        config=CONFIG + "models:\n  sd: {base: models/sd}\n"), f"{S}:4:11: shots[0].size", "divisible by 8"),
]


def dedent(text: str) -> str:
    return textwrap.dedent(text)

CASES += [
    Case("unknown gate", _project(config=CONFIG + "gates: {flickr: {max: 0.1}}\n"), "cinekit.yaml:4:9: gates.flickr",
         "unknown score 'flickr'"),
    Case("gate without bounds", _project(config=CONFIG + "gates: {flicker: {}}\n"), "cinekit.yaml:4:18: gates.flicker",
         "min"),
    Case("detect without the annotators folder", _project(clip_with("{detect: f.png}"),
                                                          config=CONFIG + "annotators: nowhere\n",
                                                          edit=_file("shots/f.png", lambda p: Image.new("RGB", (8, 8)).save(p))),
         f"{S}:6:45: shots[0].characters[0].pose.detect", "not a folder"),
]
CASES += [
    Case("huge fps with a motion file", _project(
        "defaults: {fps: 7669234253226681.0}\n" + clip_with("{bvh: m.bvh}"), edit=_file("shots/m.bvh", bvh_text(12))),
         f"{S}:1:17: defaults.fps", "above the limit"),
]
CASES += [
    Case("limits raised absurdly", _project(
        "shots:\n  - id: a\n    kind: clip\n    duration: 1e9\n    fps: 1e9\n    prompt: '{ann}'\n"
        "    characters: [{name: ann, pose: {bvh: m.bvh}}]\n",
        config=CONFIG + "limits: {max_duration: 1e300, max_fps: 1e300, max_memory: 1e30}\n",
        edit=_file("shots/m.bvh", bvh_text(12))), f"{S}:4:15: shots[0].duration", "more than one shot can hold"),
]
