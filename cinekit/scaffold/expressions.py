"""Expression art for the example project's mika, drawn by code (our own art, like ``art.py``).

Each expression is mika's head drawn again over her front view with other face features
(the face, the fringe's shadow and the fringe as ``art.draw_front`` draws them: only the
layers over the face, so the four drawings take seconds, not a whole figure each), cropped to
the face region that the rig's head joints give (``acting.face_art.face_box``) and saved as a
face crop; the character file gets ``expressions:`` with that region as ``face:``. A separate
module so ``art.py`` can change (or become shipped PNGs) without it.

Outputs: characters/refs/mika_{smile,angry,blink,mouth_open}.png and an ``expressions:`` block
appended to characters/mika.yaml.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cinekit.scaffold import art
from cinekit.scaffold.art import CX, EYE_DX, EYE_Y, LINE, NOSE_Y, ellipse, qbez

EXPRESSIONS = ("smile", "angry", "blink", "mouth_open")


def _closed_eye(a, c, cx, cy, side):
    """A shut eye: the lid's curve with its lashes, skin where the eye was."""
    s = side
    a.line(qbez((cx - s * 10, cy + 1), (cx + s * 1, cy + 7), (cx + s * 12, cy), 12, end=True), 2.6)
    a.fill([[(cx + s * 11, cy), (cx + s * 15, cy - 3.5), (cx + s * 12.5, cy + 2.5)]], LINE)


def _happy_eye(a, c, cx, cy, side):
    """A smiling eye: an arch (^)."""
    s = side
    a.line(qbez((cx - s * 10, cy + 3), (cx + s * 1, cy - 9), (cx + s * 11, cy + 3), 12, end=True), 2.6)


def features(expression: str):
    """A ``face_features_front`` replacement drawing ``expression``'s eyes and mouth."""

    def draw(a, c, brows=True):
        for side in (-1, 1):
            cx = CX + side * EYE_DX
            if expression == "blink":
                _closed_eye(a, c, cx, EYE_Y, side)
            elif expression == "smile":
                _happy_eye(a, c, cx, EYE_Y, side)
            else:
                art.eye_front(a, c, cx, EYE_Y, side)
            if expression == "angry":   # the upper lid pulled down towards the nose
                inner, outer = (cx - side * 11, EYE_Y - 1), (cx + side * 13, EYE_Y - 12)
                a.fill([[inner, outer, (outer[0], EYE_Y - 22), (inner[0], EYE_Y - 22)]], c.skin)
                a.line([inner, outer], 2.8)
        if c.blush is not None:
            for side in (-1, 1):
                a.fill([ellipse(CX + side * 22, 110, 7, 3.2)], c.blush, alpha=0.65 if expression == "smile" else 0.45)
                for k in range(3):      # the hatching of art.face_features_front
                    x0 = CX + side * 18 + k * 3.5 * side
                    a.line([(x0 + 1.2, 108.5), (x0 - 0.6, 111.5)], 0.7, (236, 120, 130))
        a.line([(CX + 1, NOSE_Y - 1.5), (CX - 0.5, NOSE_Y + 1)], 1.1, (200, 130, 120))
        if expression == "smile":       # an open, laughing mouth
            top = qbez((CX - 8, 114), (CX, 116), (CX + 8, 114), 8, end=True)
            bottom = qbez((CX + 8, 114), (CX, 127), (CX - 8, 114), 10, end=True)
            a.fill([top + bottom], (170, 60, 70))
            a.fill([qbez((CX - 4, 122), (CX, 119), (CX + 4, 122), 6, end=True) + [(CX, 125)]], (240, 130, 130))
            a.line(top + bottom, 1.2)
        elif expression == "angry":     # a pout, corners down
            a.line(qbez((CX - 6, 120), (CX, 115.5), (CX + 6, 120), 8, end=True), 1.4)
        elif expression == "mouth_open":
            a.fill([ellipse(CX, 119.5, 5, 5.5)], (150, 50, 60))
            a.fill([ellipse(CX, 122.5, 3.2, 2.0)], (236, 120, 128))
            a.line(ellipse(CX, 119.5, 5, 5.5) + [ellipse(CX, 119.5, 5, 5.5)[0]], 1.2)
        else:                           # blink: the neutral mouth
            a.line(qbez((CX - 5, 116.5), (CX, 120), (CX + 5, 116.5), 8, end=True), 1.2)

    return draw


def draw_head(c, expression: str):
    """The layers of ``c``'s front view that cover the face, with ``expression``'s features
    (as ``art.draw_front`` draws them, front view; a PIL RGBA image, transparent elsewhere)."""
    a = art.Art()
    a.part("face", [art.face_front_poly()], c.skin, c.skin_s, sk=4, sdir=(1, 0.25))
    polys, strands = art.bob_front_polys() if c.hair == "bob" else art.spiky_front_polys()
    hm = a.raster(polys)
    a.paint(a.shift(hm, -2 * art.S, -6 * art.S) & a.m["face"] & ~hm, c.skin_s)
    features(expression)(a, c, brows=c.hair == "spiky")
    a.part("hair_front", polys, c.hair_c, c.hair_s, sk=7, sdir=(1, 0.5))
    art.hair_shine(a, c, a.m["hair_front"], 52)
    for st in strands:
        a.line(st, 0.9, c.hair_s, clip=a.m["hair_front"])
    return a.image()


def write_expressions(root: Path, c=art.MIKA) -> list[Path]:
    """Draw ``c``'s expressions into ``root/characters/refs`` as face crops and add them to its YAML."""
    from cinekit.acting.face_art import face_box
    from cinekit.pose.skeleton import INDEX

    refs = root / "characters" / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    front_path = refs / f"{c.name}_front.png"
    if not front_path.exists():
        art.draw_front(c)[0].save(front_path, optimize=True)
    front = Image.open(front_path).convert("RGBA")
    rig = np.full((18, 2), np.nan)
    for joint, xy in art.skeleton(c).items():
        if joint in INDEX:
            rig[INDEX[joint]] = xy
    box = face_box(np.round(rig), front.size)
    written = []
    lines = ["expressions:    # face crops drawn by cinekit/scaffold/expressions.py (cinekit.acting)"]
    for name in EXPRESSIONS:
        image = front.copy()
        image.alpha_composite(draw_head(c, name))
        path = refs / f"{c.name}_{name}.png"
        image.crop(box).save(path, optimize=True)
        written.append(path)
        lines.append(f"  {name}: {{image: refs/{path.name}, face: {list(box)}}}")
    yaml_path = root / "characters" / f"{c.name}.yaml"
    if yaml_path.exists() and "expressions:" not in yaml_path.read_text():
        yaml_path.write_text(yaml_path.read_text() + "\n".join(lines) + "\n")
    return written


if __name__ == "__main__":
    write_expressions(Path.cwd())
