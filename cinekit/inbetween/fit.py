"""Register a key drawing to a character: the pose whose puppet render matches the drawing.

Silhouette/part matching by analysis-by-synthesis: the puppet engine renders the character at
a candidate pose over the shot's background, and the loss is the mean colour difference to
the drawing after a Gaussian blur (the blur widens the basin: a limb a few pixels off still
"sees" its drawn place). Colour, not only the silhouette, tells the parts apart (a sleeve
over a torso). The pose is parametrised as in keyframe in-betweening (``pose.angles``): neck
position, scale, the torso's turn and shape (each torso bone, the shoulders' width), and one
turn per limb segment and for the head, a child following its parent (turning an upper arm
carries the forearm). The limbs' turns do not include the torso's, so each parameter moves
one part of the render: the search is nearly separable.

Search (all renders at a reduced size, ``FIT_SIZE`` px on the long side): 1. the nearest
library pose (the lowest loss among the candidates given: the track's own pose and the
library's, placed like the character; the ``starts`` nearest are each searched); 2. the body's placement (shift, scale, turn, shoulder
width) by Powell (scipy.optimize) on the blurred loss; 3. coordinate descent, each parameter on
a shrinking grid, blurred loss first then sharp (a grid steps over the local bumps a limb
crossing another part makes, where a gradient would stop).

What cannot be fitted: a joint the drawing hides (a forearm behind the torso, legs crossing
in one colour) has no silhouette to match; its fitted place is a guess near the start pose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cinekit.pose.angles import ROOT, bone_angles, bone_lengths, from_angles

# Parameter -> the bones (skeleton.BONES indices) its turn is added to. Order = descent order:
# the body first, then upper limbs before lower ones.
GROUPS: dict[str, tuple[int, ...]] = {
    "turn": (1, 4, 7, 10),           # the torso alone: limbs keep their own angles (decoupled search)
    "head": (0, 13, 14, 15, 16),
    "right_upper_arm": (2, 3), "left_upper_arm": (5, 6),
    "right_thigh": (8, 9), "left_thigh": (11, 12),
    "right_forearm": (3,), "left_forearm": (6,),
    "right_shin": (9,), "left_shin": (12,),
    # the torso's shape (a turned body: three-quarter hips, a shrug): each torso bone alone
    "right_shoulder": (1,), "left_shoulder": (4,), "right_hip": (7,), "left_hip": (10,),
}
FACE = (13, 14, 15, 16)                  # eye and ear bones: rigid with the head (nose bone)
SHOULDERS = (1, 4)                       # neck -> shoulders: log length
NAMES = ("dx", "dy", "scale", *GROUPS, "shoulder_width")
FIT_SIZE = 256
"""Long side (px) of the renders the fit compares: loss cost is per pixel, accuracy is per figure."""

Renderer = Callable[[np.ndarray], np.ndarray]   # pose (18, 2) frame px -> image (h, w, 3) float32 0..1


@dataclass(frozen=True)
class Fit:
    pose: np.ndarray          # (18, 2) frame pixels
    loss: float               # final mean blurred colour difference (0..1)
    start: str                # which candidate the search started from
    renders: int              # how many renders it took


def pose_from_params(base: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The pose of parameters ``p`` (``NAMES`` order) applied to ``base`` (18, 2) pixels."""
    angles = bone_angles(base).copy()
    lengths = bone_lengths(base) * float(np.exp(p[2]))
    for value, bones in zip(p[3:3 + len(GROUPS)], GROUPS.values(), strict=True):
        angles[list(bones)] += value
    width = p[-1]
    lengths[list(SHOULDERS)] *= float(np.exp(width))
    root = base[ROOT] + p[:2]
    pose = from_angles(root, angles, lengths)
    return np.where(np.isnan(base), np.nan, pose)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (0, 0), sigma) if sigma > 0 else image


class _Loss:
    """The blurred mean colour difference of a pose's render to the target; counts renders."""

    def __init__(self, render: Renderer, target: np.ndarray, sigma: float):
        self.render, self.sigma = render, sigma
        self.target = blur(target.astype(np.float32), sigma)
        self.calls = 0

    def __call__(self, pose: np.ndarray) -> float:
        self.calls += 1
        image = blur(self.render(pose), self.sigma)
        return float(np.abs(image - self.target).mean())


def fit_pose(render: Renderer, target: np.ndarray, candidates: Sequence[tuple[str, np.ndarray]],
             height_px: float, sweeps: int = 3, starts: int = 1) -> Fit:
    """Fit a pose to ``target`` (h, w, 3 float 0..1, the size ``render`` returns).

    ``candidates``: ``(name, pose (18, 2) frame px)`` to start from (the nearest wins);
    ``height_px``: the figure's height in frame pixels (sets the translation steps);
    ``starts``: how many of the nearest candidates are searched from (the best fit wins).
    """
    coarse = _Loss(render, target, sigma=3.0)
    fine = _Loss(render, target, sigma=1.0)

    # 1. nearest library pose (its face turned as the first candidate's: library poses differ
    #    in where the eyes sit on the head, which the rigid head part cannot show)
    face = bone_angles(np.asarray(candidates[0][1], np.float64))
    face = face[list(FACE)] - face[0]

    def canonical(pose):
        angles, lengths = bone_angles(pose), bone_lengths(pose)
        angles[list(FACE)] = angles[0] + face
        return np.where(np.isnan(pose), np.nan, from_angles(pose[ROOT], angles, lengths))

    scored = [(coarse(canonical(np.asarray(pose, np.float64))), name, canonical(np.asarray(pose, np.float64)))
              for name, pose in candidates]
    scored.sort(key=lambda s: s[0])
    fits = [(*_search(base, coarse, fine, height_px, sweeps), name, base) for _, name, base in scored[:starts]]
    best, p, start, base = min(fits, key=lambda f: f[0])
    return Fit(pose=pose_from_params(base, p), loss=float(best), start=start, renders=coarse.calls + fine.calls)


def _search(base: np.ndarray, coarse: _Loss, fine: _Loss, height_px: float, sweeps: int) -> tuple[float, np.ndarray]:
    """(sharp loss, parameters) of the search from ``base`` (steps 2-4 of the module's docstring)."""
    from scipy.optimize import minimize

    # 2. the body's placement (shift, scale, turn, shoulder width): Powell on the blurred loss
    p = np.zeros(len(NAMES))
    body = [0, 1, 2, 3, len(NAMES) - 1]
    unit = np.array([height_px, height_px, 1, 1, 1]) * 0.05

    def placement(z, loss=coarse, at=np.zeros(len(NAMES))):
        q = at.copy()
        q[body] += z * unit
        return loss(pose_from_params(base, q))

    res = minimize(placement, np.zeros(len(body)), method="Powell", options={"maxfev": 80, "xtol": 1e-2})
    p[body] = res.x * unit
    # 3. coordinate descent. (loss, grid span factor, points each side): wide and blurred first, then narrow and sharp
    schedule = [(coarse, 1.0, None), (coarse, 1 / 3, 2), (fine, 1 / 9, 2), (fine, 1 / 27, 1)][:sweeps + 1]
    for loss, shrink, points in schedule:
        best = loss(pose_from_params(base, p))
        for i, name in enumerate(NAMES):
            span, n = {"dx": (0.1 * height_px, 4), "dy": (0.1 * height_px, 4),
                       "scale": (0.15, 2), "shoulder_width": (0.4, 2)}.get(
                           name, (np.radians(20), 2) if name.endswith(("shoulder", "hip")) else (np.radians(75), 5))
            n = points or n
            better = None
            for d in np.linspace(-span * shrink, span * shrink, 2 * n + 1):
                if d == 0:
                    continue
                q = p.copy()
                q[i] += d
                value = loss(pose_from_params(base, q))
                if value < best:
                    best, better = value, q
            if better is not None:
                p = better
    # 4. the placement again on the sharp loss, the limbs now in place (scale and shift are
    #    coupled with the limbs: a figure fitted a little small reaches with longer turns)
    best = fine(pose_from_params(base, p))
    res = minimize(placement, np.zeros(len(body)), args=(fine, p), method="Powell",
                   options={"maxfev": 60, "xtol": 1e-3})
    if res.fun < best:
        p[body] += res.x * unit
        best = float(res.fun)
    return best, p


def joint_errors(fitted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-joint distance ``(18,)`` in the poses' units (NaN where either lacks the joint)."""
    return np.hypot(*(np.asarray(fitted) - np.asarray(truth)).T)
