"""Face keypoints for pose ControlNets: the OpenPose 70-point face, shaped by the expression.

Layout (OpenPose's face, the iBUG 300-W 68 points plus two pupils): 0-16 jaw, 17-21 and
22-26 brows, 27-30 nose bridge, 31-35 nostrils, 36-41 and 42-47 eyes (corner, two upper-lid
points, corner, two lower-lid points), 48-59 outer lips, 60-67 inner lips, 68-69 pupils.
Drawn as ``controlnet_aux.open_pose.util.draw_facepose`` does: a white disc of radius 3 per
point.

The shape is a hand-made mean face in a frame where the eyes sit at (-0.5, 0) and (0.5, 0)
(unit: the eye distance, y towards the chin), placed on the pose track's eyes; the frame's
mouth opening, eye closure and expression move the lids, lips and brows (``SHAPES``).
Without both eyes in the track (a profile, a back view) no face is drawn.
"""

from __future__ import annotations

import cv2
import numpy as np

from cinekit.pose.skeleton import INDEX

# Expression -> offsets of the face's controls (blended by the expression weights):
# smile (mouth corners up, lips wider), brow_in (inner brow ends down = frown), brow_up,
# open (mouth opening added), squint (eyes narrowed).
SHAPES: dict[str, dict[str, float]] = {
    "smile": {"smile": 1.0, "squint": 0.3},
    "happy": {"smile": 1.0, "squint": 0.3},
    "laugh": {"smile": 1.0, "open": 0.5, "squint": 0.5},
    "angry": {"brow_in": 1.0, "smile": -0.3, "squint": 0.3},
    "sad": {"smile": -0.7, "brow_in": -0.8},
    "surprised": {"brow_up": 1.0, "open": 0.6},
    "blink": {"squint": 1.0},
    "mouth_open": {"open": 1.0},
}


def _face_shape(c: dict[str, float], mouth: float, eyes: float) -> np.ndarray:
    """The 70 points ``(70, 2)`` in the eye frame for controls ``c`` (see ``SHAPES``)."""
    smile, brow_in, brow_up = c.get("smile", 0.0), c.get("brow_in", 0.0), c.get("brow_up", 0.0)
    opening = float(np.clip(mouth + c.get("open", 0.0), 0, 1))
    lid = float(np.clip(1.0 - eyes - c.get("squint", 0.0) * 0.4, 0, 1))       # 1 open .. 0 shut
    pts = []
    for k in range(17):                                   # jaw, viewer's left ear to right ear
        a = np.pi * k / 16
        pts.append((-1.0 * np.cos(a), 0.05 + 1.55 * np.sin(a) ** 1.2 + 0.1 * opening * np.sin(a)))
    for side in (-1, 1):                                  # brows, outer to inner on the left, then inner to outer
        xs = np.linspace(-0.95, -0.2, 5) if side < 0 else np.linspace(0.2, 0.95, 5)
        for x in xs:
            inner = 1 - (abs(x) - 0.2) / 0.75             # 1 at the inner end
            pts.append((x, -0.38 - 0.12 * brow_up - 0.06 * np.sin(np.pi * (1 - inner)) + 0.12 * brow_in * inner))
    for y in np.linspace(0.1, 0.55, 4):                   # nose bridge
        pts.append((0.0, y))
    for x in np.linspace(-0.18, 0.18, 5):                 # nostrils
        pts.append((x, 0.68 - 0.05 * (1 - abs(x) / 0.18)))
    for side in (-1, 1):                                  # eyes
        cx = 0.5 * side
        up, low = -0.11 * lid, 0.07 * lid
        outer, inner = cx + 0.22 * side, cx - 0.2 * side
        ring = [(outer, 0.0), (cx + 0.08 * side, up), (cx - 0.08 * side, up), (inner, 0.0),
                (cx - 0.08 * side, low), (cx + 0.08 * side, low)]
        if side < 0:                                      # viewer's left eye: starts at its outer corner
            pts += ring
        else:                                             # viewer's right eye: starts at its inner corner
            pts += [ring[3], ring[2], ring[1], ring[0], ring[5], ring[4]]
    w = 0.38 + 0.08 * max(smile, 0)
    my, corner = 1.05, 1.05 - 0.1 * smile
    top, bottom = my - 0.06, my + 0.07 + 0.4 * opening
    outer = [(-w, corner), (-0.22, top - 0.01), (-0.08, top - 0.03), (0.0, top), (0.08, top - 0.03), (0.22, top - 0.01),
             (w, corner), (0.22, bottom - 0.02), (0.08, bottom), (0.0, bottom), (-0.08, bottom), (-0.22, bottom - 0.02)]
    pts += outer
    gap_top, gap_bottom = my - 0.01, my - 0.01 + 0.36 * opening
    pts += [(-w + 0.06, corner), (-0.1, gap_top), (0.0, gap_top), (0.1, gap_top),
            (w - 0.06, corner), (0.1, gap_bottom), (0.0, gap_bottom), (-0.1, gap_bottom)]
    pts += [(-0.5, 0.0), (0.5, 0.0)] if lid > 0.3 else [(np.nan, np.nan)] * 2   # pupils (hidden when shut)
    return np.array(pts, dtype=np.float64)


def controls(weights: dict[str, float]) -> dict[str, float]:
    """The face controls of an expression mix ``{name: weight}`` (unknown names: neutral)."""
    out: dict[str, float] = {}
    for name, w in weights.items():
        for k, v in SHAPES.get(name, {}).items():
            out[k] = out.get(k, 0.0) + w * v
    return out


def face_keypoints(pose: np.ndarray, weights: dict[str, float] | None = None, mouth: float = 0.0,
                   eyes: float = 0.0) -> np.ndarray | None:
    """The 70 face points ``(70, 2)`` pixels of one ``(18, 2)`` pose (NaN: hidden), or None
    when the pose lacks an eye."""
    re, le = pose[INDEX["right_eye"]], pose[INDEX["left_eye"]]
    if not (np.isfinite(re).all() and np.isfinite(le).all()):
        return None
    x = le - re
    unit = float(np.hypot(*x))
    if unit < 1e-6:
        return None
    x = x / unit
    y = np.array([-x[1], x[0]])
    mid = (re + le) / 2
    below = pose[INDEX["neck"]] if np.isfinite(pose[INDEX["neck"]]).all() else pose[INDEX["nose"]]
    if np.isfinite(below).all() and np.dot(y, below - mid) < 0:   # a mirrored face: chin is still down
        y = -y
    shape = _face_shape(controls(weights or {}), mouth, eyes)
    return mid + unit * (shape[:, :1] * x + shape[:, 1:] * y)


def draw_face_points(canvas: np.ndarray, points: np.ndarray, radius: int = 3) -> None:
    """White discs at the finite ``points`` (``draw_facepose``'s style), in place."""
    for px, py in points[np.isfinite(points).all(axis=1)]:
        if px > 0 and py > 0:
            cv2.circle(canvas, (int(px), int(py)), radius, (255, 255, 255), thickness=-1)


def draw_mannequin_face(canvas: np.ndarray, pose: np.ndarray, acting, f: int, colour=(30, 30, 40)) -> None:
    """The previz mannequin's face at frame ``f``: eyes and lips along the face keypoints."""
    weights, mouth, eyes = acting.state(f) if acting is not None else ({}, 0.0, 0.0)
    pts = face_keypoints(pose, weights, mouth, eyes)
    if pts is None:
        return
    unit = float(np.hypot(*(pts[45] - pts[36]))) / 1.44
    width = max(1, int(round(unit / 10)))
    draw = lambda idx, closed: cv2.polylines(  # noqa: E731
        canvas, [np.round(pts[list(idx)] * 4).astype(np.int32)], closed, colour, width, cv2.LINE_AA, shift=2)
    draw(range(36, 42), True)
    draw(range(42, 48), True)
    draw(range(17, 22), False)
    draw(range(22, 27), False)
    lips = np.round(pts[48:60] * 4).astype(np.int32)
    if mouth > 0.05 or controls(weights).get("open", 0) > 0.05:
        cv2.fillPoly(canvas, [np.round(pts[60:68] * 4).astype(np.int32)], (90, 30, 40), cv2.LINE_AA, shift=2)
    cv2.polylines(canvas, [lips], True, colour, width, cv2.LINE_AA, shift=2)


def draw_faces(control: np.ndarray, job, first: int = 0) -> np.ndarray:
    """Add every character's face to control frames ``(F, H, W, 3)`` of ``job`` in place (and
    return them; frame ``k`` is the job's frame ``first + k``): shaped by the job's acting, neutral for a character at rest. A job without
    acting (every face at rest all shot long) keeps the body-only map it always had."""
    if not job.acting:
        return control
    for k in range(control.shape[0]):
        f = first + k
        for i in range(len(job.characters)):
            acting = job.acting[i] if job.acting else None
            weights, mouth, eyes = acting.state(f) if acting is not None else ({}, 0.0, 0.0)
            pts = face_keypoints(job.pose[f, i], weights, mouth, eyes)
            if pts is not None:
                # the disc shrinks with a small face, so the mouth's points stay apart
                unit = float(np.hypot(*(job.pose[f, i, INDEX["left_eye"]] - job.pose[f, i, INDEX["right_eye"]])))
                draw_face_points(control[k], pts, radius=int(np.clip(round(unit / 12), 1, 3)))
    return control
