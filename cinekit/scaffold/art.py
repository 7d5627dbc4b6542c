#!/usr/bin/env python
"""Draw the example project's two original characters, mika and ren, and write their rigs.

Deterministic: pure geometry, PIL + numpy, no randomness. Everything is drawn at 4x
(supersampling) as hard-edged masks, composited in painter's order with dark line art
(each part's mask dilated) and one cel-shadow tone per material, then box-downsampled with
premultiplied alpha for antialiasing.

Outputs (paths relative to the project folder):
  characters/refs/{mika,ren}_{front,side,back}.png   RGBA, transparent background, 300x560
  characters/{mika,ren}.yaml                        character files, rig joints included

The rig's COCO-18 joints are the very points the front view's limbs are drawn from, so the
puppet engine cuts the art exactly at the joints. Front view: "right" is the character's
right, i.e. the viewer's left (smaller x).

`cinekit init` does not draw: it copies the PNGs and YAMLs shipped in the package
(``cinekit/scaffold/characters/``, drawing takes seconds). Whoever changes the drawing here
regenerates them, and tests/test_scaffold_art.py checks that they equal what this script draws.

Usage:  python -m cinekit.scaffold.art --write    regenerate the shipped copies in the package
        python -m cinekit.scaffold.art            draw into the project in the current folder
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path.cwd()  # default target: the project in the current folder
W, H = 300, 560          # output canvas, pixels
S = 4                    # supersampling factor
CX = 150.0               # figure centre line
LINE = (44, 34, 56)      # line-art colour

JOINT_NAMES = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)


# ----------------------------------------------------------------------------- geometry
def v(x, y=None):
    return np.array([x, y], float) if y is not None else np.asarray(x, float)


def qbez(p0, c, p1, n=12, end=False):
    p0, c, p1 = v(p0), v(c), v(p1)
    ts = np.linspace(0, 1, n + 1 if end else n, endpoint=end)
    return [tuple((1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t * t * p1) for t in ts]


def smooth(pts, closed=True, n=8):
    """Catmull-Rom spline through pts."""
    P = np.array(pts, float)
    P = np.vstack([P[-1], P, P[0], P[1]]) if closed else np.vstack([P[0], P, P[-1]])
    out = []
    for i in range(1, len(P) - 2):
        p0, p1, p2, p3 = P[i - 1], P[i], P[i + 1], P[i + 2]
        for t in np.linspace(0, 1, n, endpoint=False):
            out.append(tuple(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t * t
                                    + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)))
    if not closed:
        out.append(tuple(P[-2]))
    return out


def ellipse(cx, cy, rx, ry, n=64, rot=0.0):
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(a), ry * np.sin(a)
    c, s = math.cos(rot), math.sin(rot)
    return [(cx + c * xi - s * yi, cy + s * xi + c * yi) for xi, yi in zip(x, y, strict=True)]


def capsule(a, b, ra, rb, n=14):
    """Tapered capsule from a (radius ra) to b (radius rb)."""
    a, b = v(a), v(b)
    d = b - a
    d /= np.linalg.norm(d)
    nrm = v(-d[1], d[0])
    pts = []
    for t in np.linspace(-np.pi / 2, np.pi / 2, n):
        pts.append(tuple(b + rb * (math.cos(t) * d + math.sin(t) * nrm)))
    for t in np.linspace(np.pi / 2, 3 * np.pi / 2, n):
        pts.append(tuple(a + ra * (math.cos(t) * d + math.sin(t) * nrm)))
    return pts


def lock(rl, rr, tip, bend=(0.0, 0.0), n=10):
    """A hair lock: two curved sides from the roots rl, rr meeting at a sharp tip."""
    rl, rr, tip, bend = v(rl), v(rr), v(tip), v(bend)
    c1 = (rl + tip) / 2 + bend
    c2 = (rr + tip) / 2 + bend
    return qbez(rl, c1, tip, n) + qbez(tip, c2, rr, n) + [tuple(rr)]


def along(a, b, t):
    a, b = v(a), v(b)
    return tuple(a + (b - a) * t)


def unit(deg_from_down, side):
    """Direction pointing down, rotated outward by deg (side -1 = viewer's left)."""
    r = math.radians(deg_from_down)
    return v(side * math.sin(r), math.cos(r))


# ----------------------------------------------------------------------------- canvas
class Art:
    def __init__(self):
        self.px = np.zeros((H * S, W * S, 4), np.uint8)
        self.m: dict[str, np.ndarray] = {}

    # -- masks
    def raster(self, polys):
        im = Image.new("L", (W * S, H * S), 0)
        d = ImageDraw.Draw(im)
        for p in polys:
            d.polygon([(x * S, y * S) for x, y in p], fill=255)
        return np.asarray(im) > 127

    def stroke_mask(self, pts, w):
        im = Image.new("L", (W * S, H * S), 0)
        d = ImageDraw.Draw(im)
        sp = [(x * S, y * S) for x, y in pts]
        ww = max(1, int(round(w * S)))
        d.line(sp, fill=255, width=ww, joint="curve")
        r = ww / 2
        for x, y in (sp[0], sp[-1]):
            d.ellipse([x - r, y - r, x + r, y + r], fill=255)
        return np.asarray(im) > 127

    @staticmethod
    def rect(x0, y0, x1, y1):
        m = np.zeros((H * S, W * S), bool)
        m[max(0, int(y0 * S)):max(0, int(y1 * S)), max(0, int(x0 * S)):max(0, int(x1 * S))] = True
        return m

    @staticmethod
    def shift(m, dx, dy):
        """s[y, x] = m[y + dy, x + dx] (False outside)."""
        out = np.zeros_like(m)
        h, w = m.shape
        ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
        xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
        out[yd, xd] = m[ys, xs]
        return out

    @staticmethod
    def dilate(m, r):
        r = int(round(r))
        if r <= 0 or not m.any():
            return m.copy()
        rows = np.flatnonzero(m.any(1))
        cols = np.flatnonzero(m.any(0))
        y0, y1 = max(rows[0] - r, 0), min(rows[-1] + r + 1, m.shape[0])
        x0, x1 = max(cols[0] - r, 0), min(cols[-1] + r + 1, m.shape[1])
        c = m[y0:y1, x0:x1]
        hs = [c]
        cur = c
        for w in range(1, r + 1):
            nxt = cur.copy()
            nxt[:, w:] |= c[:, :-w]
            nxt[:, :-w] |= c[:, w:]
            hs.append(nxt)
            cur = nxt
        out = np.zeros_like(c)
        hgt = c.shape[0]
        for dy in range(-r, r + 1):
            hw = hs[int(math.floor(math.sqrt(r * r - dy * dy)))]
            if dy >= 0:
                out[dy:, :] |= hw[: hgt - dy, :]
            else:
                out[: hgt + dy, :] |= hw[-dy:, :]
        res = np.zeros_like(m)
        res[y0:y1, x0:x1] = out
        return res

    # -- painting
    def paint(self, mask, color, alpha=1.0):
        if alpha >= 1.0:
            self.px[mask] = (*color, 255)
        else:
            cur = self.px[mask].astype(float)
            cur[:, :3] = cur[:, :3] * (1 - alpha) + np.array(color, float) * alpha
            self.px[mask] = cur.astype(np.uint8)

    def part(self, name, polys, fill, shade=None, sk=0.0, sdir=(1.0, 0.35), lw=1.9,
             clip=None, line=LINE, under=None):
        """Fill polys with outline; cel shadow = the band of width sk px on the side sdir."""
        m = self.raster(polys)
        if clip is not None:
            m &= clip
        if lw > 0:
            o = self.dilate(m, lw * S)
            if under is not None:
                o &= under
            self.paint(o, line)
        self.paint(m, fill)
        if shade is not None and sk > 0:
            k = sk * S
            sm = m & ~self.shift(m, int(round(k * sdir[0])), int(round(k * sdir[1])))
            self.paint(sm, shade)
        self.m[name] = m
        return m

    def line(self, pts, w=1.0, color=LINE, clip=None):
        m = self.stroke_mask(pts, w)
        if clip is not None:
            m &= clip
        self.paint(m, color)
        return m

    def fill(self, polys, color, clip=None, alpha=1.0):
        m = self.raster(polys)
        if clip is not None:
            m &= clip
        self.paint(m, color, alpha)
        return m

    def image(self):
        a = self.px.astype(np.float64)
        a[..., :3] *= a[..., 3:4] / 255.0
        a = a.reshape(H, S, W, S, 4).mean(axis=(1, 3))
        alpha = a[..., 3:4]
        rgb = np.where(alpha > 0, a[..., :3] * 255.0 / np.maximum(alpha, 1e-6), 0)
        out = np.concatenate([rgb, alpha], -1)
        return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8), "RGBA")


# ----------------------------------------------------------------------------- characters
MIKA = SimpleNamespace(
    name="mika", hair="bob", outfit="sailor",
    skin=(255, 233, 221), skin_s=(242, 192, 182), blush=(255, 150, 160),
    hair_c=(226, 230, 240), hair_s=(166, 170, 198), hair_hi=(255, 255, 255),
    iris=(214, 44, 62), iris_d=(112, 16, 36), iris_l=(255, 138, 140),
    main=(42, 52, 96), main_s=(26, 32, 66), stripe=(238, 240, 248), collar=(58, 74, 132), collar_s=(40, 52, 100),
    tie=(220, 50, 62), tie_s=(160, 28, 44),
    sock=(250, 250, 252), sock_s=(200, 204, 222),
    shoe=(116, 70, 42), shoe_s=(78, 46, 28), shoe_hi=(170, 120, 84),
    sh=35.0, neck_w=6.5, hip=18.0, knee=23.0, ankle=27.0,
    arm_a=27.0, fore_a=22.0, upper=78.0, fore=70.0,
)
REN = SimpleNamespace(
    name="ren", hair="spiky", outfit="hoodie",
    skin=(252, 224, 204), skin_s=(228, 180, 158), blush=None,
    hair_c=(44, 112, 116), hair_s=(26, 70, 78), hair_hi=(112, 182, 176),
    iris=(238, 162, 44), iris_d=(142, 80, 16), iris_l=(255, 220, 120),
    main=(244, 138, 46), main_s=(204, 94, 30), stripe=(255, 236, 210),
    pants=(128, 133, 145), pants_s=(92, 97, 112),
    sock=(250, 250, 252), sock_s=(204, 210, 222), sole=(178, 182, 192), accent=(44, 112, 116),
    sh=40.0, neck_w=7.5, hip=20.0, knee=24.0, ankle=28.0,
    arm_a=29.0, fore_a=21.0, upper=76.0, fore=68.0,
)

Y_SHOULDER, Y_HIP, Y_KNEE, Y_ANKLE, Y_SOLE = 152.0, 262.0, 392.0, 512.0, 541.0
EYE_Y, EYE_DX, NOSE_Y, EAR_DX, EAR_Y = 94.0, 17.0, 107.0, 36.0, 98.0


def skeleton(c):
    """Front-view joints (pixels) for character c: the geometry the drawing uses."""
    j = {}
    j["neck"] = (CX, Y_SHOULDER)
    j["nose"] = (CX, NOSE_Y)
    for side, lr in ((-1, "right"), (1, "left")):
        s = v(CX + side * c.sh, Y_SHOULDER)
        e = s + c.upper * unit(c.arm_a, side)
        w = e + c.fore * unit(c.fore_a, side)
        j[f"{lr}_shoulder"], j[f"{lr}_elbow"], j[f"{lr}_wrist"] = tuple(s), tuple(e), tuple(w)
        j[f"{lr}_hip"] = (CX + side * c.hip, Y_HIP)
        j[f"{lr}_knee"] = (CX + side * c.knee, Y_KNEE)
        j[f"{lr}_ankle"] = (CX + side * c.ankle, Y_ANKLE)
        j[f"{lr}_eye"] = (CX + side * EYE_DX, EYE_Y + 2)
        j[f"{lr}_ear"] = (CX + side * EAR_DX, EAR_Y)
    return j


# ----------------------------------------------------------------------------- shared parts
def face_front_poly():
    pts = []
    for a in np.linspace(math.pi, 2 * math.pi, 24):
        pts.append((CX + 36.5 * math.cos(a), 90 + 42 * math.sin(a)))
    jaw = smooth([(186.5, 90), (185, 104), (178, 116), (164, 126), (150, 130), (136, 126),
                  (122, 116), (115, 104), (113.5, 90)], closed=False, n=6)
    return pts + jaw


def eye_front(a, c, cx, cy, side):
    """Large anime eye; side -1 = viewer's left eye (the character's right)."""
    s = side
    tall = 11.5 if c.name == "mika" else 9.5
    inner, outer = (cx - s * 10, cy - 4), (cx + s * 11.5, cy - 3)
    top = qbez(inner, (cx - s * 1.5, cy - tall - 6), outer, 14, end=True)
    bot = qbez((cx + s * 10.5, cy + 6), (cx + s * 2, cy + tall + 2), (cx - s * 8, cy + 5), 12, end=True)
    shape = top + bot
    white = a.fill([shape], (255, 255, 255))
    iris = a.raster([ellipse(cx + s * 0.8, cy + 2, 7.6, tall)]) & white
    a.paint(iris, c.iris)
    a.paint(iris & a.rect(0, 0, W, cy - 1.5), c.iris_d)
    a.paint(iris & a.raster([ellipse(cx + s * 0.8, cy + tall - 2.5, 5.5, 4)]), c.iris_l)
    a.paint(a.raster([ellipse(cx + s * 0.8, cy + 2.5, 3.2, 5.2)]) & white, c.iris_d)
    a.paint(a.dilate(iris, 0.9 * S) & white & ~iris, c.iris_d)  # iris rim
    # upper lash: thick, with a flick at the outer corner
    a.line(top, 3.2)
    a.fill([[(outer[0] - s * 2.5, outer[1] - 1.5), (cx + s * 15, cy - 6.5), (outer[0] + s * 0.5, outer[1] + 2.5)]], LINE)
    if c.name == "mika":
        a.fill([[(cx + s * 8, cy - 8), (cx + s * 14, cy - 10), (cx + s * 11, cy - 5)]], LINE)
    a.line(bot[:8], 1.1)
    # highlights
    a.fill([ellipse(cx - s * 2.5, cy - 2.5, 2.9, 3.4)], (255, 255, 255))
    a.fill([ellipse(cx + s * 3.2, cy + 6.5, 1.4, 1.4)], (255, 255, 255))
    return top


def face_features_front(a, c, brows=True):
    for side in (-1, 1):
        eye_front(a, c, CX + side * EYE_DX, EYE_Y, side)
    if c.blush is not None:
        for side in (-1, 1):
            a.fill([ellipse(CX + side * 22, 110, 7, 3.2)], c.blush, alpha=0.45)
            for k in range(3):
                x0 = CX + side * 18 + k * 3.5 * side
                a.line([(x0 + 1.2, 108.5), (x0 - 0.6, 111.5)], 0.7, (236, 120, 130))
    if brows:
        for side in (-1, 1):
            a.line(qbez((CX + side * 8, 78), (CX + side * 16, 73), (CX + side * 26, 77), 8, end=True), 2.4)
    # nose and mouth
    a.line([(CX + 1, NOSE_Y - 1.5), (CX - 0.5, NOSE_Y + 1)], 1.1, (200, 130, 120))
    if c.name == "mika":
        a.line(qbez((CX - 5, 116.5), (CX, 120), (CX + 5, 116.5), 8, end=True), 1.2)
    else:
        mouth = qbez((CX - 7, 116), (CX + 1, 121), (CX + 7, 115), 8, end=True)
        a.fill([mouth + [(CX + 4, 117.5), (CX - 4, 117.5)][::-1]], (190, 80, 80))
        a.line(mouth, 1.2)


def hand(a, c, wrist, d, side, name, view="front"):
    """Mitten hand with a thumb, hanging from the wrist along direction d."""
    wrist, d = v(wrist), v(d)
    n = v(-d[1], d[0]) * side
    tip = wrist + d * 22
    polys = [capsule(wrist + d * 1, tip, 6.2, 5.4), capsule(wrist + d * 3, wrist + d * 12, 7.2, 6.6)]
    if view == "front":
        polys.append(capsule(wrist + d * 5 - n * 4, wrist + d * 15 - n * 8, 3.2, 2.6))
    a.part(name, polys, c.skin, c.skin_s, sk=3.0, sdir=(side * -1.0 if side else 1.0, 0.2))
    # finger hints
    a.line([tuple(wrist + d * 15 + n * 2.2), tuple(wrist + d * 20.5 + n * 1.6)], 0.7, (200, 140, 130))


def shoe_front(a, c, ankle, side, name, back=False):
    x, y = ankle
    if c.outfit == "sailor":
        poly = smooth([(x - 8.5, y - 5), (x + 8.5, y - 5), (x + 12 + side * 1.5, y + 13), (x + 12.5 + side * 2, y + 24),
                       (x + side * 1.5, y + 29.5), (x - 12.5 + side * 2, y + 24), (x - 12 + side * 1.5, y + 13)], n=6)
        a.part(name, [poly], c.shoe, c.shoe_s, sk=5, sdir=(1, 0.6))
        if not back:
            a.line(qbez((x - 8 + side, y + 11), (x + side * 1.5, y + 15), (x + 8 + side, y + 11), 8, end=True), 1.0)
            a.fill([ellipse(x - 4 + side, y + 20, 2.5, 1.5)], c.shoe_hi)
        else:
            a.fill([[(x - 9, y + 24), (x + 9, y + 24), (x + 10, y + 28), (x - 10, y + 28)]], c.shoe_s)
    else:
        poly = smooth([(x - 11, y - 8), (x + 11, y - 8), (x + 16 + side * 2, y + 12), (x + 16.5 + side * 2.5, y + 24),
                       (x + side * 2, y + 29.5), (x - 16.5 + side * 2, y + 24), (x - 15.5 + side * 2, y + 12)], n=6)
        a.part(name, [poly], c.sock, c.sock_s, sk=5, sdir=(1, 0.5))
        sole = a.raster([[(x - 16, y + 20), (x + 17, y + 20), (x + 17, y + 32), (x - 16, y + 32)]]) & a.m[name]
        a.paint(sole, c.sole)
        a.line([(x - 14 + side * 2, y + 20.5), (x + 14 + side * 2, y + 20.5)], 1.0)
        if not back:
            for k in range(3):
                yy = y + 1 + k * 4.5
                a.line([(x - 5 + side, yy), (x + 5 + side, yy + 0.5)], 1.0)
            a.line(qbez((x - 10 + side * 2, y + 14), (x + side * 2, y + 9), (x + 10 + side * 2, y + 15), 8, end=True), 1.6, c.accent)
        else:
            a.fill([[(x - 4, y - 6), (x + 4, y - 6), (x + 4, y + 12), (x - 4, y + 12)]], c.accent)


# ----------------------------------------------------------------------------- hair
def bob_back_poly():
    return smooth([(150, 36), (188, 44), (203, 70), (205, 102), (203, 126), (196, 140), (184, 140),
                   (150, 137), (116, 140), (104, 140), (97, 126), (95, 102), (97, 70), (112, 44)], n=8)


def bob_front_polys():
    cap = smooth([(99, 100), (97, 72), (108, 50), (128, 38), (150, 35), (172, 38), (192, 50), (203, 72),
                  (201, 100), (190, 72), (150, 64), (110, 72)], n=8)
    polys = [cap,
             lock((104, 58), (128, 56), (116, 86), (-2, 0)),
             lock((122, 54), (146, 54), (133, 84), (-1.5, 0)),
             lock((138, 54), (160, 54), (149, 89), (0.5, 0)),
             lock((155, 54), (178, 56), (166, 85), (1.5, 0)),
             lock((170, 56), (196, 60), (184, 84), (2, 0)),
             lock((99, 68), (122, 70), (109, 132), (-2.5, 0)),
             lock((178, 70), (201, 68), (191, 132), (2.5, 0)),
             lock((146, 40), (153, 38), (165, 20), (-2, -5), 8)]   # ahoge
    strands = [[(116, 86), (121, 64)], [(133, 84), (134, 62)], [(149, 89), (150, 66)], [(166, 85), (164, 64)],
               [(109, 132), (110, 92)], [(191, 132), (190, 92)], [(125, 74), (122, 60)], [(176, 74), (178, 60)]]
    return polys, strands


def spiky_back_poly():
    pts = []
    n = 11
    for i in range(n):
        x = 100 + i * 100 / (n - 1)
        pts.append((x, 138 + (6 if i % 2 == 0 else -8) - abs(x - 150) * 0.15))
    return [(96, 70), (150, 40), (204, 70), (206, 110)] + pts[::-1] + [(94, 110)]


def spiky_front_polys():
    tips = []
    angs = np.linspace(-200, 20, 11)
    for i, ang in enumerate(angs):
        r = 42 if i % 2 else (64 if 2 <= i <= 8 else 56)
        sweep = 8 if i % 2 == 0 else 0
        aa = math.radians(ang + sweep * (1 if ang > -90 else -1))
        tips.append((CX + r * math.cos(aa), 86 + r * 0.95 * math.sin(aa)))
    cap = [(98, 100)] + tips + [(202, 100), (188, 72), (150, 64), (112, 72)]
    polys = [cap,
             lock((104, 60), (128, 58), (112, 90), (-4, 0)),
             lock((122, 56), (146, 56), (132, 88), (-2, 0)),
             lock((140, 56), (162, 56), (152, 91), (1, 0)),
             lock((156, 56), (180, 58), (170, 86), (3, 0)),
             lock((172, 58), (198, 62), (190, 88), (5, 0)),
             lock((96, 66), (112, 66), (103, 104), (-3, 0)),
             lock((188, 66), (204, 66), (198, 104), (3, 0))]
    strands = [[(112, 90), (118, 66)], [(132, 88), (134, 64)], [(152, 91), (151, 66)], [(170, 86), (166, 64)],
               [(120, 58), (112, 44)], [(150, 52), (150, 36)], [(180, 58), (188, 44)]]
    return polys, strands


def hair_shine(a, c, mask, y, x0=112, x1=188, h=4.0):
    """The anime 'angel ring': a band of vertical spindle-shaped highlights across the crown."""
    polys = []
    xs = np.linspace(x0, x1, 8)
    for i, x in enumerate(xs):
        cyy = y + 0.004 * (x - 0.5 * (x0 + x1)) ** 2
        hh = h * (1.6 if i % 2 else 1.0)
        ww = 2.6 if i % 2 else 1.8
        polys.append([(x - ww, cyy), (x, cyy - hh), (x + ww, cyy), (x, cyy + hh * 0.8)])
    edge = a.dilate(~mask, 2.5 * S)
    a.fill(polys, c.hair_hi, clip=mask & ~edge)


# ----------------------------------------------------------------------------- views
def draw_front(c, back=False):
    a = Art()
    j = skeleton(c)
    sailor = c.outfit == "sailor"

    # hair behind the head
    if not back:
        a.part("hair_back", [bob_back_poly() if c.hair == "bob" else spiky_back_poly()], c.hair_s, lw=1.9)

    # ---- legs (under the skirt / hoodie)
    for side, lr in ((-1, "right"), (1, "left")):
        hp, kn, an = j[f"{lr}_hip"], j[f"{lr}_knee"], j[f"{lr}_ankle"]
        sd = (1.0, 0.1)
        if sailor:
            a.part(f"leg_{lr}", [capsule(hp, kn, 12.5, 9.5), capsule(kn, along(kn, an, 0.45), 9.5, 8.8),
                                 capsule(along(kn, an, 0.4), an, 8.8, 6.2)], c.skin, c.skin_s, sk=4, sdir=sd)
            a.line(qbez((kn[0] - 4, kn[1] + 1), (kn[0], kn[1] + 4), (kn[0] + 4, kn[1] + 1), 6, end=True), 0.8, c.skin_s)
            sock = a.raster([capsule(kn, along(kn, an, 0.45), 10.2, 9.5), capsule(along(kn, an, 0.4), an, 9.5, 6.9)]) & \
                a.rect(0, Y_KNEE + 22, W, H)
            a.paint(a.dilate(sock, 1.0 * S) & a.rect(0, Y_KNEE + 20, W, H), LINE)
            a.paint(sock, c.sock)
            a.paint(sock & ~a.shift(sock, int(4 * S), 0), c.sock_s)
            a.line([(kn[0] - 10, Y_KNEE + 27), (kn[0] + 10, Y_KNEE + 27)], 0.8, c.sock_s, clip=sock)
            shoe_front(a, c, an, side, f"shoe_{lr}", back)
        else:
            shoe_front(a, c, an, side, f"shoe_{lr}", back)
            a.part(f"leg_{lr}", [capsule(hp, kn, 15, 12.5), capsule(kn, (an[0], an[1] - 2), 12.5, 11.5)],
                   c.pants, c.pants_s, sk=5, sdir=sd, clip=a.rect(0, 0, W, an[1] - 1))
            a.line([(kn[0] - 4, Y_KNEE - 6), (kn[0] + 2, Y_KNEE + 4)], 0.9, c.pants_s)
    if not sailor:
        pel = [(116, 250), (184, 250), (181, 282), (160, 290), (150, 296), (140, 290), (119, 282)]
        a.part("pelvis", [pel], c.pants, c.pants_s, sk=5, sdir=(1, 0.2))
        a.line([(150, 262), (150, 294)], 0.9)

    # ---- neck
    a.part("neck", [[(CX - c.neck_w, 112), (CX + c.neck_w, 112), (CX + c.neck_w + 1, 150), (CX - c.neck_w - 1, 150)]],
           c.skin, c.skin_s, sk=0, lw=1.6)
    if not back:
        a.paint(a.m["neck"] & a.rect(0, 0, W, 137), c.skin_s)
        a.paint(a.m["neck"] & a.raster([ellipse(CX, 128, 12, 9)]), c.skin_s)

    sh = c.sh
    # ---- torso
    if sailor:
        # skirt
        skirt = [(CX - 27, 228), (CX + 27, 228), (CX + 54, 318), (CX + 28, 322), (CX, 323), (CX - 28, 322), (CX - 54, 318)]
        sk_m = a.part("skirt", [skirt], c.main, c.main_s, sk=0)
        for k in range(-3, 4):
            top, bot = (CX + k * 8.0, 232), (CX + k * 15.6, 322)
            a.line([top, bot], 0.9, clip=sk_m)
            if k % 2:
                a.fill([[top, bot, (CX + (k + 1) * 15.6, 322 if abs(k + 1) < 4 else 318), (CX + (k + 1) * 8.0, 232)]],
                       c.main_s, clip=sk_m & a.rect(0, 232, W, H))
            a.fill([[(bot[0] - 4, bot[1] - 14), (bot[0] + 4, bot[1] - 14), (bot[0], bot[1])]], c.main_s, clip=sk_m)
        body = smooth([(CX - 10, 138), (CX - sh - 4, 148), (CX - sh - 5, 165), (CX - 29, 200), (CX - 27, 226),
                       (CX - 32, 246), (CX, 249), (CX + 32, 246), (CX + 27, 226), (CX + 29, 200), (CX + sh + 5, 165),
                       (CX + sh + 4, 148), (CX + 10, 138)], n=6)
        a.part("torso", [body], c.main, c.main_s, sk=8, sdir=(1, 0.2))
        a.line([(CX - 29, 243), (CX - 10, 241.5), (CX + 10, 241.5), (CX + 29, 243)], 0.8, c.main_s)
        if not back:
            # dickey (the V under the collar) and the sailor collar
            a.fill([[(CX - 10, 138), (CX + 10, 138), (CX, 180)]], c.main_s)
            for side in (-1, 1):
                col = [(CX + side * 9, 136), (CX + side * (sh + 4), 149), (CX + side * (sh - 4), 160),
                       (CX + side * 20, 176), (CX + side * 1, 196), (CX + side * 6, 170)]
                cm = a.part(f"collar_{side}", [smooth(col, n=5)], c.collar, c.collar_s, sk=0, lw=1.3)
                for off in (3.5, 6.5):
                    a.line([(CX + side * (sh + 2 - off * 0.4), 150 + off), (CX + side * (21 - off * 0.2), 175 + off * 0.1),
                            (CX + side * (3 + off * 0.2), 192 - off * 0.5)], 1.1, c.stripe, clip=cm)
            # neckerchief
            for side in (-1, 1):
                tail = [(CX + side * 2, 188), (CX + side * 9, 186), (CX + side * 15, 222), (CX + side * 8, 226),
                        (CX + side * 2, 222)]
                a.part(f"tie_tail_{side}", [tail], c.tie, c.tie_s, sk=3, sdir=(1, 0), lw=1.3)
            a.part("tie_knot", [smooth([(CX - 7, 181), (CX + 7, 181), (CX + 6, 193), (CX - 6, 193)], n=5)],
                   c.tie, c.tie_s, sk=3, sdir=(1, 0.4), lw=1.3)
            a.line([(CX - 12, 183), (CX - 17, 176)], 1.0, c.tie_s)
        else:
            # the collar's square back flap with two stripes
            flap = [(CX - 12, 140), (CX - sh - 3, 150), (CX - sh + 3, 210), (CX + sh - 3, 210), (CX + sh + 3, 150),
                    (CX + 12, 140)]
            fm = a.part("collar_back", [flap], c.collar, c.collar_s, sk=4, sdir=(1, 0.4), lw=1.4)
            for off in (4, 7.5):
                a.line([(CX - sh - 1 + off * 0.9, 152), (CX - sh + 3 + off, 210 - off), (CX + sh - 3 - off, 210 - off),
                        (CX + sh + 1 - off * 0.9, 152)], 1.1, c.stripe, clip=fm)
            for side in (-1, 1):
                a.part(f"tie_peek_{side}", [[(CX + side * (sh - 2), 154), (CX + side * (sh + 4), 152),
                                             (CX + side * (sh + 2), 166)]], c.tie, c.tie_s, lw=1.2)
    else:
        body = smooth([(CX - 12, 136), (CX - sh - 6, 148), (CX - sh - 4, 172), (CX - 37, 214), (CX - 38, 262),
                       (CX, 266), (CX + 38, 262), (CX + 37, 214), (CX + sh + 4, 172), (CX + sh + 6, 148),
                       (CX + 12, 136)], n=6)
        a.part("torso", [body], c.main, c.main_s, sk=9, sdir=(1, 0.2))
        band = [(CX - 38, 256), (CX + 38, 256), (CX + 36, 274), (CX - 36, 274)]
        bm = a.part("band", [band], c.main, c.main_s, sk=6, sdir=(1, 0.2), lw=1.4)
        for k in range(-8, 9):
            a.line([(CX + k * 4.2, 259), (CX + k * 4.2, 272)], 0.6, c.main_s, clip=bm)
        if not back:
            pocket = smooth([(CX - 26, 222), (CX + 26, 222), (CX + 31, 254), (CX - 31, 254)], n=4)
            a.part("pocket", [pocket], c.main, c.main_s, sk=4, sdir=(1, 0.3), lw=1.2)
            for side in (-1, 1):
                a.line([(CX + side * 26, 224), (CX + side * 30, 252)], 0.8, c.main_s)
            # hood rim around the neck
            hood = smooth([(CX - 24, 128), (CX, 136), (CX + 24, 128), (CX + 30, 140), (CX + 14, 156), (CX, 160),
                           (CX - 14, 156), (CX - 30, 140)], n=6)
            a.part("hood", [hood], c.main, c.main_s, sk=4, sdir=(0.3, 1))
            a.fill([smooth([(CX - 13, 140), (CX, 146), (CX + 13, 140), (CX + 8, 152), (CX - 8, 152)], n=4)], c.main_s)
            for side in (-1, 1):
                a.line([(CX + side * 6, 152), (CX + side * 8, 178), (CX + side * 7, 204)], 1.8, (250, 245, 235))
                a.line([(CX + side * 6, 152), (CX + side * 8, 178), (CX + side * 7, 204)], 0.5, LINE)
                a.part(f"aglet_{side}", [capsule((CX + side * 7, 203), (CX + side * 7, 211), 1.8, 1.8)],
                       (60, 60, 70), lw=0.6)
            a.fill([[(CX - 2.5, 166), (CX + 2.5, 166), (CX + 2.5, 172), (CX - 2.5, 172)]], c.accent)
        else:
            hood = smooth([(CX - 30, 132), (CX + 30, 132), (CX + 38, 160), (CX + 24, 200), (CX, 214),
                           (CX - 24, 200), (CX - 38, 160)], n=6)
            a.part("hood", [hood], c.main, c.main_s, sk=7, sdir=(1, 0.4))
            a.fill([smooth([(CX - 18, 140), (CX + 18, 140), (CX + 14, 170), (CX, 180), (CX - 14, 170)], n=5)], c.main_s)
            a.line([(CX, 186), (CX, 210)], 0.9, c.main_s)

    # ---- arms
    for side, lr in ((-1, "right"), (1, "left")):
        s, e, w = j[f"{lr}_shoulder"], j[f"{lr}_elbow"], j[f"{lr}_wrist"]
        d = (v(w) - v(e)) / np.linalg.norm(v(w) - v(e))
        sd = (1.0, 0.1)
        if sailor:
            hand(a, c, tuple(v(w) + d * 1.5), d, side, f"hand_{lr}", "back" if back else "front")
            fm = a.part(f"arm_{lr}", [capsule(s, e, 11, 9), capsule(e, w, 9, 8.6)], c.main, c.main_s, sk=4.5, sdir=sd)
            for off in (5.0, 8.0):
                p = v(w) - d * off
                n = v(-d[1], d[0])
                a.line([tuple(p - n * 10), tuple(p + n * 10)], 1.0, c.stripe, clip=fm)
        else:
            hand(a, c, tuple(v(w) + d * 3), d, side, f"hand_{lr}", "back" if back else "front")
            a.part(f"arm_{lr}", [capsule(s, e, 13.5, 11), capsule(e, tuple(v(w) - d * 5), 11, 10)], c.main, c.main_s,
                   sk=5, sdir=sd)
            cm = a.part(f"cuff_{lr}", [capsule(tuple(v(w) - d * 7), tuple(v(w) + d * 1), 9, 8.2)], c.main, c.main_s,
                        sk=3.5, sdir=sd, lw=1.4)
            n = v(-d[1], d[0])
            for k in (-4, 0, 4):
                p = v(w) - d * 3
                a.line([tuple(p + n * k - d * 3), tuple(p + n * k + d * 3)], 0.6, c.main_s, clip=cm)
        # sleeve crease at the elbow
        n = v(-d[1], d[0])
        a.line([tuple(v(e) - n * 4 * side - d * 2), tuple(v(e) + n * 2 * side)], 0.8, c.main_s)

    # ---- head
    if c.hair == "spiky" or back:
        for side in (-1, 1):
            a.part(f"ear_{side}", [ellipse(CX + side * EAR_DX, EAR_Y, 5.5, 9.5)], c.skin, c.skin_s, sk=2)
            if not back:
                a.line(qbez((CX + side * 37.5, 93), (CX + side * 39, 100), (CX + side * 35.5, 104), 6, end=True), 0.8,
                       (200, 140, 130))
    face = face_front_poly()
    if back:
        a.part("face", [face], c.skin, c.skin_s, sk=0)
    else:
        a.part("face", [face], c.skin, c.skin_s, sk=4, sdir=(1, 0.25))
    if not back:
        polys, strands = (bob_front_polys() if c.hair == "bob" else spiky_front_polys())
        hm = a.raster(polys)
        cast = a.shift(hm, -2 * S, -6 * S) & a.m["face"] & ~hm
        a.paint(cast, c.skin_s)
        face_features_front(a, c, brows=c.hair == "spiky")
        a.part("hair_front", polys, c.hair_c, c.hair_s, sk=7, sdir=(1, 0.5))
        hair_shine(a, c, a.m["hair_front"], 52)
        for st in strands:
            a.line(st, 0.9, c.hair_s, clip=a.m["hair_front"])
    else:
        if c.hair == "bob":
            hb = smooth([(150, 34), (190, 44), (206, 70), (210, 102), (208, 128), (200, 143), (186, 138), (172, 144),
                         (158, 139), (150, 145), (142, 139), (128, 144), (114, 138), (100, 143), (92, 128), (90, 102),
                         (94, 70), (110, 44)], n=6)
            polys = [hb, lock((146, 40), (153, 38), (137, 20), (2, -5), 8)]
            strands = [[(172, 144), (168, 112)], [(150, 145), (150, 100)], [(128, 144), (132, 112)],
                       [(114, 138), (112, 110)], [(186, 138), (188, 110)]]
        else:
            sp = spiky_front_polys()[0][0]
            nape = [(98, 96)]
            for i, x in enumerate(np.linspace(102, 198, 9)):
                dx = (x - 150) / 48
                nape += [(x, 146 - 12 * dx * dx + (0 if i % 2 else -14)), ]
                if i < 8:
                    nape += [(x + 6, 126 - 6 * dx * dx)]
            nape += [(202, 96)]
            polys = [sp[:-4] + [(202, 100)], nape]
            strands = [[(120, 140), (124, 100)], [(140, 148), (142, 100)], [(160, 148), (158, 100)], [(180, 140), (176, 100)]]
        a.part("hair_front", polys, c.hair_c, c.hair_s, sk=8, sdir=(1, 0.4))
        hair_shine(a, c, a.m["hair_front"], 60, 108, 192)
        for st in strands:
            a.line(st, 0.9, c.hair_s, clip=a.m["hair_front"])
    return a.image(), j


def draw_side(c):
    """Profile facing the viewer's right."""
    a = Art()
    sailor = c.outfit == "sailor"
    sh_y = Y_SHOULDER + 2
    S_ = v(150, sh_y)
    E = S_ + c.upper * v(math.sin(math.radians(5)), math.cos(math.radians(5)))
    Wr = E + c.fore * v(math.sin(math.radians(9)), math.cos(math.radians(9)))
    hipn, kneen, anklen = (150, Y_HIP), (153, Y_KNEE), (150, Y_ANKLE)
    hipf, kneef, anklef = (143, Y_HIP), (141, Y_KNEE), (136, Y_ANKLE)

    # hair behind
    if c.hair == "bob":
        a.part("hair_back", [smooth([(150, 38), (122, 46), (106, 74), (104, 108), (108, 134), (124, 143),
                                     (146, 138), (160, 112), (170, 60)], n=8)], c.hair_s)
    else:
        a.part("hair_back", [[(152, 42), (116, 50), (98, 90), (104, 112), (112, 130), (122, 124), (130, 142), (138, 128),
                              (150, 138), (160, 110), (170, 60)]], c.hair_s)

    # far arm (mostly hidden), far leg
    a.part("arm_far", [capsule(S_ + (-4, 0), E + (-12, -2), 9, 8), capsule(E + (-12, -2), Wr + (-18, -6), 8, 7)],
           c.main_s, lw=1.6)
    a.part("hand_far", [capsule(Wr + (-18, -6), Wr + (-21, 14), 6, 5)], c.skin_s, lw=1.6)

    def leg(hp, kn, an, tag, dark):
        f = (lambda col: tuple(int(x * 0.86) for x in col)) if dark else (lambda col: col)
        if sailor:
            a.part(f"shin_{tag}", [capsule(hp, kn, 13, 9.5), smooth([(kn[0] - 9, kn[1]), (kn[0] + 9, kn[1]), (kn[0] + 6, kn[1] + 60),
                                           (an[0] + 6, an[1]), (an[0] - 6, an[1]), (kn[0] - 11, kn[1] + 45)], n=5)],
                   f(c.skin), f(c.skin_s), sk=4)
            sock = a.m[f"shin_{tag}"] & a.rect(0, Y_KNEE + 22, W, H)
            a.paint(a.dilate(sock, S) & a.rect(0, Y_KNEE + 20, W, H) & ~a.shift(sock, 0, 0), LINE)
            a.paint(sock, f(c.sock))
            a.paint(sock & ~a.shift(sock, 4 * S, 0), f(c.sock_s))
            x, y = an
            shoe = smooth([(x - 9, y - 5), (x + 7, y - 4), (x + 18, y + 12), (x + 27, y + 20), (x + 27, y + 28),
                           (x - 10, y + 29), (x - 11, y + 10)], n=5)
            a.part(f"shoe_{tag}", [shoe], f(c.shoe), f(c.shoe_s), sk=4, sdir=(0, 1))
            a.line([(x - 10, y + 25), (x + 26, y + 25)], 0.9, clip=a.m[f"shoe_{tag}"])
        else:
            x, y = an
            shoe = smooth([(x - 12, y - 8), (x + 8, y - 6), (x + 20, y + 10), (x + 30, y + 18), (x + 30, y + 30),
                           (x - 13, y + 30), (x - 14, y + 8)], n=5)
            sm = a.part(f"shoe_{tag}", [shoe], f(c.sock), f(c.sock_s), sk=4, sdir=(0, 1))
            a.paint(sm & a.rect(0, y + 21, W, H), f(c.sole))
            a.line([(x - 14, y + 21), (x + 30, y + 21)], 1.0, clip=a.dilate(sm, S))
            a.line(qbez((x - 8, y + 12), (x + 6, y + 4), (x + 18, y + 16), 8, end=True), 1.6, f(c.accent))
            a.part(f"leg_{tag}", [capsule(hp, kn, 16, 13), capsule(kn, (an[0], an[1] - 2), 13, 12)], f(c.pants),
                   f(c.pants_s), sk=5, clip=a.rect(0, 0, W, an[1] - 1))

    leg(hipf, kneef, anklef, "far", True)
    leg(hipn, kneen, anklen, "near", False)
    if not sailor:
        a.part("pelvis", [[(128, 248), (172, 248), (170, 282), (134, 284)]], c.pants, c.pants_s, sk=5)
    # neck
    a.part("neck", [[(146, 110), (160, 112), (163, 150), (141, 150)]], c.skin, c.skin_s, sk=0, lw=1.6)
    a.paint(a.m["neck"] & a.rect(0, 0, W, 134), c.skin_s)

    if sailor:
        skirt = [(128, 228), (170, 228), (192, 316), (150, 322), (108, 316)]
        skm = a.part("skirt", [skirt], c.main, c.main_s, sk=0)
        for k in range(-3, 4):
            a.line([(150 + k * 6, 232), (150 + k * 13, 320)], 0.9, clip=skm)
            if k % 2 == 0:
                a.fill([[(150 + k * 6, 232), (150 + k * 13, 320), (150 + (k + 1) * 13, 320), (150 + (k + 1) * 6, 232)]],
                       c.main_s, clip=skm & a.rect(0, 232, W, H))
        body = smooth([(142, 138), (130, 150), (127, 176), (130, 206), (129, 228), (126, 246), (150, 249),
                       (174, 246), (169, 226), (174, 198), (176, 178), (168, 152), (160, 140)], n=6)
        a.part("torso", [body], c.main, c.main_s, sk=7, sdir=(-1, 0.2))
        flap = smooth([(146, 136), (128, 148), (122, 200), (136, 202), (156, 150)], n=5)
        fm = a.part("collar", [flap], c.collar, c.collar_s, sk=3, sdir=(-1, 0), lw=1.4)
        a.line([(128.5, 152), (125.5, 197)], 1.1, c.stripe, clip=fm)
        a.line([(125, 197), (134, 198)], 1.1, c.stripe, clip=fm)
        a.line([(160, 142), (170, 170), (172, 186)], 1.4)
        a.part("tie_tail", [[(168, 186), (176, 186), (182, 222), (174, 226)]], c.tie, c.tie_s, sk=3, lw=1.3)
        a.part("tie_knot", [ellipse(172, 186, 6, 6)], c.tie, c.tie_s, sk=2, lw=1.3)
    else:
        body = smooth([(140, 136), (126, 150), (122, 180), (124, 220), (122, 264), (150, 268), (182, 264), (180, 224),
                       (180, 196), (176, 162), (166, 142)], n=6)
        a.part("torso", [body], c.main, c.main_s, sk=8, sdir=(-1, 0.2))
        bm = a.part("band", [[(122, 256), (182, 256), (180, 274), (124, 274)]], c.main, c.main_s, sk=5, sdir=(-1, 0),
                    lw=1.4)
        for k in range(15):
            a.line([(124 + k * 4, 259), (124 + k * 4, 272)], 0.6, c.main_s, clip=bm)
        a.line([(170, 224), (176, 238), (178, 254)], 0.9, c.main_s)
        hood = smooth([(158, 132), (132, 128), (112, 146), (110, 178), (124, 196), (140, 180), (148, 158), (164, 148)], n=6)
        a.part("hood", [hood], c.main, c.main_s, sk=6, sdir=(-1, 0.4))
        a.fill([smooth([(146, 140), (126, 142), (118, 166), (128, 180), (140, 160)], n=4)], c.main_s)
        a.line([(166, 146), (170, 172), (169, 200)], 1.8, (250, 245, 235))
        a.line([(166, 146), (170, 172), (169, 200)], 0.5)

    # near arm
    d = (Wr - E) / np.linalg.norm(Wr - E)
    if sailor:
        hand(a, c, tuple(Wr + d * 1.5), d, 0, "hand", "side")
        fm = a.part("arm", [capsule(S_, E, 11, 9), capsule(E, Wr, 9, 8.6)], c.main, c.main_s, sk=4.5, sdir=(-1, 0))
        for off in (5.0, 8.0):
            p = Wr - d * off
            n = v(-d[1], d[0])
            a.line([tuple(p - n * 10), tuple(p + n * 10)], 1.0, c.stripe, clip=fm)
    else:
        hand(a, c, tuple(Wr + d * 3), d, 0, "hand", "side")
        a.part("arm", [capsule(S_, E, 13.5, 11), capsule(E, Wr - d * 5, 11, 10)], c.main, c.main_s, sk=5, sdir=(-1, 0))
        a.part("cuff", [capsule(Wr - d * 7, Wr + d * 1, 9, 8.2)], c.main, c.main_s, sk=3.5, sdir=(-1, 0), lw=1.4)
    a.line([tuple(E + (-6, 0)), tuple(E + (2, 3))], 0.8, c.main_s)

    # head (profile)
    face = smooth([(150, 48), (172, 56), (183, 74), (185, 92), (189, 101), (191, 104), (186, 108), (186, 113),
                   (184, 116), (185, 120), (179, 127), (168, 131), (154, 124), (140, 110), (128, 90), (132, 62)], n=6)
    a.part("face", [face], c.skin, c.skin_s, sk=3, sdir=(-1, 0.4))
    a.part("ear", [ellipse(146, 98, 6, 9.5, rot=0.15)], c.skin, c.skin_s, sk=2, sdir=(-1, 0))
    if c.hair == "bob":
        polys = [smooth([(108, 90), (112, 58), (132, 40), (158, 36), (178, 46), (190, 66), (187, 86), (176, 72),
                         (160, 70), (150, 80), (144, 110), (134, 132), (118, 136), (108, 120)], n=8),
                 lock((170, 60), (186, 66), (190, 88), (3, 0)),
                 lock((158, 62), (176, 62), (178, 90), (2, 0)),
                 lock((148, 72), (162, 72), (160, 126), (-2, 0)),
                 lock((150, 42), (158, 40), (170, 22), (-3, -4), 8)]
        strands = [[(178, 90), (174, 70)], [(160, 126), (156, 84)], [(130, 130), (128, 96)], [(118, 132), (114, 100)]]
    else:
        polys = [[(104, 100), (98, 72), (110, 54), (104, 40), (124, 42), (132, 28), (146, 36), (160, 24), (166, 40),
                  (186, 36), (182, 54), (196, 62), (188, 70), (192, 88), (178, 74), (166, 72), (156, 80), (150, 96),
                  (144, 108), (136, 124), (128, 112), (118, 128), (114, 110)],
                 lock((168, 62), (186, 66), (194, 92), (3, 0)),
                 lock((152, 66), (170, 66), (174, 94), (1, 0)),
                 lock((146, 72), (160, 74), (152, 108), (-2, 0))]
        strands = [[(174, 94), (170, 72)], [(152, 108), (154, 82)], [(128, 112), (126, 80)], [(120, 60), (132, 44)]]
    hm = a.raster(polys)
    a.paint(a.shift(hm, -2 * S, -5 * S) & a.m["face"] & ~hm, c.skin_s)
    # profile eye
    ey = 94.0
    tall = 11 if c.name == "mika" else 9
    shape = qbez((169, ey - 3), (176, ey - tall - 3), (182, ey - 3), 10, end=True) + \
        qbez((181, ey + 6), (176, ey + tall - 1), (170, ey + 5), 10, end=True)
    wm = a.fill([shape], (255, 255, 255))
    im = a.raster([ellipse(177.5, ey + 2, 4.2, tall - 1)]) & wm
    a.paint(im, c.iris)
    a.paint(im & a.rect(0, 0, W, ey - 1.5), c.iris_d)
    a.paint(im & a.raster([ellipse(178, ey + tall - 3, 3, 3)]), c.iris_l)
    a.fill([ellipse(176.5, ey - 1.5, 1.8, 2.4)], (255, 255, 255))
    a.line(qbez((168, ey - 3), (174, ey - tall - 4), (181, ey - 6), 10, end=True), 3.0)
    a.fill([[(167, ey - 5), (164, ey - 9), (170, ey - 4)]], LINE)
    a.line([(171, ey + 7), (176, ey + 8.5)], 1.0)
    if c.hair == "spiky":
        a.line([(168, 78), (184, 77)], 2.2)
    if c.blush is not None:
        a.fill([ellipse(170, 110, 6, 3)], c.blush, alpha=0.45)
    a.line([(183, 116.5), (179, 117)], 1.1)
    a.part("hair_front", polys, c.hair_c, c.hair_s, sk=7, sdir=(-1, 0.5))
    hair_shine(a, c, a.m["hair_front"], 54, 118, 178)
    for st in strands:
        a.line(st, 0.9, c.hair_s, clip=a.m["hair_front"])
    return a.image()


# ----------------------------------------------------------------------------- output
def yaml_for(c, joints):
    desc = {
        "mika": "1girl, short silver hair, bob cut, red eyes, navy sailor uniform, red neckerchief, "
                "pleated navy skirt, white socks, brown loafers",
        "ren": "1boy, spiky dark teal hair, amber eyes, orange hoodie, grey trousers, white sneakers",
    }[c.name]
    lines = [
        f"# {c.name}: an original character for the cinekit example project.",
        "# The reference art under refs/ and the rig joints below are generated by",
        "# cinekit/scaffold/art.py (re-run it instead of editing these numbers by hand).",
        f"name: {c.name}",
        f'description: "{desc}"',
        'negative: "extra fingers, blurry, lowres, bad anatomy"',
        "references:",
        f"  - {{image: refs/{c.name}_front.png, view: front}}",
        f"  - {{image: refs/{c.name}_side.png, view: side}}",
        f"  - {{image: refs/{c.name}_back.png, view: back}}",
        "rig:",
        "  joints:    # COCO-18, pixels on the front reference (right = the character's right)",
    ]
    for name in JOINT_NAMES:
        x, y = joints[name]
        lines.append(f"    {name}: [{int(round(x))}, {int(round(y))}]")
    lines.append("identity: {ip_adapter: 0.7, reference_attention: 0.6, style_fidelity: 0.5}")
    return "\n".join(lines) + "\n"


def write_characters(root: Path = ROOT, verbose: bool = False) -> list[Path]:
    """Draw mika and ren into ``root/characters`` (art under refs/, one YAML each)."""
    refs = root / "characters" / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    written = []
    for c in (MIKA, REN):
        front, joints = draw_front(c)
        back, _ = draw_front(c, back=True)
        side = draw_side(c)
        front.save(refs / f"{c.name}_front.png", optimize=True)
        side.save(refs / f"{c.name}_side.png", optimize=True)
        back.save(refs / f"{c.name}_back.png", optimize=True)
        (root / "characters" / f"{c.name}.yaml").write_text(yaml_for(c, joints))
        written.append(root / "characters" / f"{c.name}.yaml")
        if verbose:
            print(c.name, {k: (round(x), round(y)) for k, (x, y) in joints.items()})
    from cinekit.scaffold.expressions import write_expressions

    written += write_expressions(root)   # mika's expression art + her YAML's expressions: (cinekit.acting)
    return written


SHIPPED = Path(__file__).resolve().parent  # write_characters(SHIPPED) -> SHIPPED/characters/...


if __name__ == "__main__":
    import sys

    write_characters(SHIPPED if "--write" in sys.argv[1:] else Path.cwd(), verbose=True)
