"""Walk and run cycles whose feet plant, the root motion that keeps them planted, foot skate.

A gait is generated *on a treadmill* in body space (see ``skeleton``): the pelvis stays at
x = 0, facing +x, and a foot in stance slides backwards at the walking speed. ``lock_feet``
then moves the whole body so that the stance foot stays put: the root travels exactly as far
as the character's own legs carry it. It runs after retargeting (``render.plan``), so a
character with shorter shins or a re-shaped torso still plants its feet (retargeting keeps
bone angles, not foot positions: without the lock a drawn character's stance foot drifts).

Cycle (phase ``phi`` in [0, 1), one cycle = two steps): the right foot is in stance for
``phi in [0, duty)`` (heel strike at 0, under its hip at ``duty / 2``), the left foot half a
cycle later. A stance foot moves linearly from ``+sweep / 2`` to ``-sweep / 2`` relative to its
hip (``sweep = duty * stride``: constant speed, no slip on the treadmill); a swinging foot
returns along a smoothstep with a ``sin`` lift. The pelvis height is the highest a stance leg
of reach ``reach * leg`` allows (the bob of a walk), with a small hop over a run's flight
phase. Knees come from two-bone IK bending forward; arms swing against the legs.
Legs swing in the picture plane while the torso faces the viewer, as cut-out animation and
AnimatedDrawings move front-view art.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cinekit.pose.angles import DEFAULT_LENGTHS, REST_POSE
from cinekit.pose.skeleton import BONES, INDEX

R_ANKLE, L_ANKLE = INDEX["right_ankle"], INDEX["left_ankle"]
ANKLES = (R_ANKLE, L_ANKLE)
NO_TRAVEL, CARRY = -1, -2
"""``plant`` labels besides a foot index (0 right, 1 left): no root travel; keep the last speed."""


def _bone(parent: str, child: str) -> float:
    return float(DEFAULT_LENGTHS[BONES.index((INDEX[parent], INDEX[child]))])


THIGH, SHIN = _bone("right_hip", "right_knee"), _bone("right_knee", "right_ankle")
UPPER_ARM, FOREARM = _bone("right_shoulder", "right_elbow"), _bone("right_elbow", "right_wrist")
LEG = THIGH + SHIN
"""Default leg length (hip to ankle), body units."""


@dataclass(frozen=True)
class Gait:
    """One gait's shape, body units (``LEG`` = 0.5) and seconds at speed 1."""

    name: str
    step_time: float      # seconds per step (half a cycle)
    stride: float         # root travel per cycle (two steps)
    duty: float           # share of a cycle a foot is on the ground (> 0.5: double support)
    lift: float           # swing foot clearance at mid-swing
    reach: float          # stance leg length / LEG at full extension (< 1 keeps the knee soft)
    hop: float            # extra pelvis rise over a flight phase
    lean: float           # torso lean forward, radians
    arm_swing: float      # upper-arm swing amplitude, radians
    elbow: float          # forearm bend, radians (more on the forward swing)

    @property
    def sweep(self) -> float:
        """How far a stance foot travels relative to its hip, body units."""
        return self.duty * self.stride

    @property
    def speed(self) -> float:
        """Root speed, body units per second, at speed 1."""
        return self.stride / (2.0 * self.step_time)


GAITS: dict[str, Gait] = {
    "walk": Gait("walk", step_time=0.5, stride=0.64, duty=0.6, lift=0.06, reach=0.985, hop=0.0,
                 lean=0.05, arm_swing=0.35, elbow=0.25),
    "run": Gait("run", step_time=0.32, stride=1.0, duty=0.38, lift=0.16, reach=0.93, hop=0.035,
                lean=0.18, arm_swing=0.75, elbow=1.35),
}


def in_stance(gait: Gait, phase: np.ndarray) -> np.ndarray:
    """``(F, 2)`` bool: right / left foot on the ground at ``phase`` ``(F,)``."""
    phase = np.asarray(phase, dtype=np.float64)
    return np.stack([np.mod(phase, 1.0) < gait.duty, np.mod(phase - 0.5, 1.0) < gait.duty], axis=-1)


def _foot(gait: Gait, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One foot's ``(dx, height)`` relative to its hip / above the floor; its stance starts at 0."""
    u = np.mod(phase, 1.0)
    half = gait.sweep / 2.0
    stance = u < gait.duty
    s = np.where(stance, u / gait.duty, 0.0)
    w = np.where(stance, 0.0, (u - gait.duty) / (1.0 - gait.duty))
    smooth = w * w * (3.0 - 2.0 * w)
    dx = np.where(stance, half - 2.0 * half * s, -half + 2.0 * half * smooth)
    height = np.where(stance, 0.0, gait.lift * np.sin(np.pi * w))
    return dx, height


def _pelvis_height(gait: Gait, phase: np.ndarray) -> np.ndarray:
    """Pelvis height ``(F,)``: the lowest a stance foot allows; a hop over flight phases."""
    reach = gait.reach * LEG
    dxr, _ = _foot(gait, phase)
    dxl, _ = _foot(gait, phase - 0.5)
    st = in_stance(gait, phase)
    h = np.full(np.shape(phase), np.inf)
    for k, dx in enumerate((dxr, dxl)):
        h = np.where(st[:, k], np.minimum(h, np.sqrt(reach**2 - dx**2)), h)
    # Flight (no foot down, a run): from take-off to landing height, plus a parabolic hop.
    edge = np.sqrt(reach**2 - (gait.sweep / 2.0) ** 2)
    if gait.duty < 0.5:  # the two flights are alike: phase mod 1/2 in [duty, 1/2)
        w = np.clip((np.mod(phase, 0.5) - gait.duty) / (0.5 - gait.duty), 0.0, 1.0)
    else:
        w = np.zeros(np.shape(phase))
    return np.where(np.isfinite(h), h, edge + gait.hop * 4.0 * w * (1.0 - w))


def two_bone_ik(hip: np.ndarray, target: np.ndarray, thigh, shin, bend) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone IK (law of cosines): ``(knee, ankle)`` ``(F, 2)`` for ``hip`` and ``target`` ``(F, 2)``,
    bone lengths ``thigh``/``shin`` (scalars or ``(F,)``), the knee on side ``bend`` (+1/-1, ``(F,)``:
    the sign of ``cross(target - hip, knee - hip)``). An unreachable target gets a straight
    leg pointing at it."""
    thigh, shin = np.broadcast_to(thigh, hip.shape[:1]), np.broadcast_to(shin, hip.shape[:1])
    d = target - hip
    dist = np.clip(np.hypot(d[:, 0], d[:, 1]), 1e-9, None)
    u = d / dist[:, None]
    reach = np.clip(dist, np.abs(thigh - shin) + 1e-9, thigh + shin - 1e-9)
    cos_a = np.clip((thigh**2 + reach**2 - shin**2) / (2.0 * thigh * reach), -1.0, 1.0)
    a = np.arccos(cos_a) * np.where(np.asarray(bend) < 0, -1.0, 1.0)
    ca, sa = np.cos(a), np.sin(a)
    knee = hip + thigh[:, None] * np.stack([u[:, 0] * ca - u[:, 1] * sa, u[:, 0] * sa + u[:, 1] * ca], axis=-1)
    to = hip + u * reach[:, None] - knee
    ankle = knee + shin[:, None] * to / np.clip(np.hypot(to[:, 0], to[:, 1]), 1e-12, None)[:, None]
    return knee, ankle


def _leg(hip: np.ndarray, foot: np.ndarray, forward: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The default leg reaching for ``foot`` with the knee bent towards ``forward`` x (image
    coordinates, y down: a knee ahead of a downward leg is on the negative cross side)."""
    return two_bone_ik(hip, foot, THIGH, SHIN, np.full(len(hip), -np.sign(forward)))


def _rot(v: np.ndarray, a: np.ndarray | float) -> np.ndarray:
    """Rotate vectors ``(..., 2)`` by ``a`` radians (image coordinates, y down)."""
    c, s = np.cos(a), np.sin(a)
    return np.stack([v[..., 0] * c - v[..., 1] * s, v[..., 0] * s + v[..., 1] * c], axis=-1)


def gait_poses(gait: Gait, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Treadmill poses at ``phase`` ``(F,)`` (cycles): ``((F, 18, 2) body space, facing +x, pelvis
    at x = 0, floor y = 0; (F, 2) bool right / left foot in stance)``."""
    phase = np.asarray(phase, dtype=np.float64).reshape(-1)
    n = len(phase)
    pose = np.full((n, 18, 2), np.nan)
    h = _pelvis_height(gait, phase)
    rest = REST_POSE
    pelvis = np.stack([np.zeros(n), -h], axis=-1)
    rest_pelvis = 0.5 * (rest[INDEX["right_hip"]] + rest[INDEX["left_hip"]])
    lean = gait.lean
    for name in ("right_hip", "left_hip"):
        pose[:, INDEX[name]] = pelvis + (rest[INDEX[name]] - rest_pelvis)
    neck = pelvis + _rot(rest[INDEX["neck"]] - rest_pelvis, lean)
    pose[:, INDEX["neck"]] = neck
    for name in ("nose", "right_eye", "left_eye", "right_ear", "left_ear", "right_shoulder", "left_shoulder"):
        pose[:, INDEX[name]] = neck + _rot(rest[INDEX[name]] - rest[INDEX["neck"]], lean)
    forward = {}
    for side, shift in (("right", 0.0), ("left", 0.5)):
        dx, lift = _foot(gait, phase - shift)
        hip = pose[:, INDEX[f"{side}_hip"]]
        target = np.stack([hip[:, 0] + dx, -lift], axis=-1)
        knee, ankle = _leg(hip, target)
        pose[:, INDEX[f"{side}_knee"]], pose[:, INDEX[f"{side}_ankle"]] = knee, ankle
        forward[side] = dx / (gait.sweep / 2.0)  # +1 foot ahead .. -1 behind (stance range)
    for side, other in (("right", "left"), ("left", "right")):
        swing = np.clip(forward[other], -1.5, 1.5) * gait.arm_swing  # the arm follows the other leg
        # about the arm's rest angle (hanging a little outwards), turned forward (+x) by `swing`:
        # the arm nearer the viewer's left crosses the torso less than swinging about vertical
        rest_upper = np.arctan2(*(rest[INDEX[f"{side}_elbow"]] - rest[INDEX[f"{side}_shoulder"]])[::-1])
        upper = rest_upper - swing
        fore = upper - gait.elbow * (1.0 + 0.5 * np.clip(swing / max(gait.arm_swing, 1e-9), 0, 1))
        shoulder = pose[:, INDEX[f"{side}_shoulder"]]
        elbow = shoulder + UPPER_ARM * np.stack([np.cos(upper), np.sin(upper)], axis=-1)
        pose[:, INDEX[f"{side}_elbow"]] = elbow
        pose[:, INDEX[f"{side}_wrist"]] = elbow + FOREARM * np.stack([np.cos(fore), np.sin(fore)], axis=-1)
    return pose, in_stance(gait, phase)


def plant_labels(gait: Gait, phase_mid: np.ndarray) -> np.ndarray:
    """``(F,)`` int8: the foot that carries the body over each frame interval (mid-interval phase
    ``phase_mid``): 0 right, 1 left; with both down, the one that landed last; ``CARRY`` in flight."""
    st = in_stance(gait, phase_mid)
    since = np.stack([np.mod(phase_mid, 1.0), np.mod(phase_mid - 0.5, 1.0)], axis=-1)
    newer = np.where(since[:, 0] <= since[:, 1], 0, 1)
    out = np.where(st[:, 0] & st[:, 1], newer, np.where(st[:, 0], 0, np.where(st[:, 1], 1, CARRY)))
    return out.astype(np.int8)


def lock_feet(poses: np.ndarray, plant: np.ndarray) -> np.ndarray:
    """Move each frame of ``poses`` ``(F, 18, 2)`` horizontally so the planted foot stays put.

    ``plant[k]`` (``(F,)`` int) names what carries the body from frame ``k - 1`` to ``k``: foot
    0 (right ankle) or 1 (left ankle), whose x change is cancelled; ``CARRY`` keeps the last
    interval's shift (flight); ``NO_TRAVEL`` adds none. ``plant[0]`` is unused. Same units."""
    poses = np.asarray(poses, dtype=np.float64)
    x = poses[:, list(ANKLES), 0]  # (F, 2)
    shift = np.zeros(len(poses))
    last = 0.0
    for k in range(1, len(poses)):
        p = int(plant[k])
        if p >= 0:
            step = -(x[k, p] - x[k - 1, p])
            last = step if np.isfinite(step) else 0.0
            shift[k] = shift[k - 1] + last
        elif p == CARRY:
            shift[k] = shift[k - 1] + last
        else:
            shift[k] = shift[k - 1]
            last = 0.0
    out = poses.copy()
    out[..., 0] += shift[:, None]
    return out


_LEGS = ((INDEX["right_hip"], INDEX["right_knee"], R_ANKLE), (INDEX["left_hip"], INDEX["left_knee"], L_ANKLE))


def pin_feet(poses: np.ndarray, contact: np.ndarray) -> np.ndarray:
    """Hold each planted ankle where it landed: for every run of ``contact`` ``(F, 2)`` (right,
    left), the ankle keeps its position of the run's first frame and the leg is re-solved by
    ``two_bone_ik`` with its own bone lengths and knee side. ``lock_feet`` cancels the
    carrying foot's drift; this also holds the other foot of a double support, which a
    retargeted body (other leg proportions than the gait's) would otherwise drag."""
    out = np.array(poses, dtype=np.float64)
    contact = np.asarray(contact, dtype=bool)
    for k, (hip, knee, ankle) in enumerate(_LEGS):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], contact[:, k].astype(int), [0]])))
        for start, stop in zip(edges[::2], edges[1::2]):
            idx = np.arange(start + 1, stop)
            if len(idx) == 0 or not np.isfinite(out[start, ankle]).all():
                continue
            h, kn, an = out[idx, hip], out[idx, knee], out[idx, ankle]
            d, v = an - h, kn - h
            bend = np.sign(d[:, 0] * v[:, 1] - d[:, 1] * v[:, 0])
            thigh, shin = np.hypot(*(kn - h).T), np.hypot(*(an - kn).T)
            target = np.broadcast_to(out[start, ankle], h.shape)
            out[idx, knee], out[idx, ankle] = two_bone_ik(h, target, thigh, shin, bend)
    return out


def foot_skate(poses: np.ndarray, contact: np.ndarray) -> tuple[float, float]:
    """How far feet slide while on the ground: ``(max px/frame, max slide per stance)``.

    ``poses`` ``(F, 18, 2)`` (any units, usually rendered pixels); ``contact`` ``(F, 2)`` bool
    right / left foot on the ground. A frame interval counts for a foot when it is down at both
    ends; a stance is a run of such intervals, its slide the summed horizontal |dx|."""
    poses = np.asarray(poses, dtype=np.float64)
    contact = np.asarray(contact, dtype=bool)
    worst_step = worst_stance = 0.0
    for k, joint in enumerate(ANKLES):
        dx = np.abs(np.diff(poses[:, joint, 0]))
        down = contact[1:, k] & contact[:-1, k]
        if not down.any():
            continue
        worst_step = max(worst_step, float(dx[down].max()))
        run = 0.0
        for on, d in zip(down, dx):
            run = run + d if on else 0.0
            worst_stance = max(worst_stance, run)
    return worst_step, worst_stance
