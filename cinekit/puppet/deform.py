"""Pose a bound mesh: one similarity (rotation + uniform scale) per part, blended per vertex.

All transforms are ``(2, 3)`` affine matrices from reference pixels to output pixels.

- scale ``s``: the frame's uniform scale, the median over body bones of target length / rig
  length (the track is retargeted to the rig's proportions, so every bone agrees).
- torso: an upper frame pinned at the target neck and a lower frame pinned at the target
  hip midpoint, each turned by the spine's rotation averaged with the shoulder line's (upper)
  or hip line's (lower) when that line is not foreshortened (a side view collapses it); the
  vertex blend between the two frames bends the torso.
- head: rigid, turned with the neck->nose bone (or with the upper torso when the target has
  no nose).
- limbs: forward kinematics from where the torso puts the shoulder / hip, each bone turned
  to the target bone's direction at scale ``s``; a bone whose target joint is missing keeps
  its rest angle to its parent. Limbs therefore never detach from the drawn body.
"""

from __future__ import annotations

import numpy as np

from cinekit.pose.skeleton import BONES, INDEX
from cinekit.puppet.bind import LIMB_BONES, PARTS, Binding

_BODY_BONES = tuple(b for b in BONES if b[1] <= 13 and b != (1, 0))


def _angle(v: np.ndarray) -> float:
    return float(np.arctan2(v[1], v[0]))


def _wrap(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


def _similarity(theta: float, s: float, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``x -> dst + s R(theta) (x - src)`` as a ``(2, 3)`` matrix."""
    c, si = np.cos(theta) * s, np.sin(theta) * s
    lin = np.array([[c, -si], [si, c]])
    return np.hstack([lin, (dst - lin @ src)[:, None]])


def _apply(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    return m[:, :2] @ p + m[:, 2]


def _ok(*pts: np.ndarray) -> bool:
    return all(np.isfinite(p).all() for p in pts)


def frame_scale(rig: np.ndarray, target: np.ndarray) -> float | None:
    """Median target/rig length over the body bones present in both; None if none is."""
    ratios = []
    for a, b in _BODY_BONES:
        if _ok(rig[a], rig[b], target[a], target[b]):
            lr = np.hypot(*(rig[b] - rig[a]))
            if lr > 1.0:
                ratios.append(np.hypot(*(target[b] - target[a])) / lr)
    return float(np.median(ratios)) if ratios else None


def _line_turn(rest: np.ndarray, tgt: np.ndarray, s: float, spine_turn: float) -> tuple[float, float]:
    """(turn of a left-right line, its reliability in [0, 1]) relative to the spine's turn."""
    rl = np.hypot(*rest)
    tl = np.hypot(*tgt)
    if not np.isfinite(tgt).all() or rl < 1e-6 or tl < 1e-6:
        return 0.0, 0.0
    rel = _wrap(_angle(tgt) - _angle(rest) - spine_turn)
    rho = float(np.clip((tl / (s * rl) - 0.3) / 0.4, 0.0, 1.0))
    if abs(rel) > np.pi / 4:   # the line flipped (a turn away), not a tilt
        rho = 0.0
    return rel, rho


def part_transforms(binding: Binding, target: np.ndarray) -> np.ndarray | None:
    """``(len(PARTS), 2, 3)`` transforms taking the rest mesh to ``target`` ``(18, 2)`` pixels.

    None when the frame cannot be drawn (no neck, no hips, or no measurable bone).
    """
    rig = binding.rig
    target = np.asarray(target, dtype=np.float64)
    neck_t = target[INDEX["neck"]]
    hips_t = target[[INDEX["right_hip"], INDEX["left_hip"]]]
    if not np.isfinite(neck_t).all() or not np.isfinite(hips_t).all(axis=1).any():
        return None
    s = frame_scale(rig, target)
    if s is None or s <= 0:
        return None
    neck_r, hip_r = rig[INDEX["neck"]], binding.hip_mid
    if np.isfinite(hips_t).all():
        hip_t = hips_t.mean(axis=0)
    else:  # one hip hidden: the other one, moved by the rest offset
        k = int(np.isfinite(hips_t).all(axis=1).argmax())
        side = rig[INDEX["right_hip"] if k == 0 else INDEX["left_hip"]]
        hip_t = hips_t[k] + s * (hip_r - side)
    spine_r, spine_t = neck_r - hip_r, neck_t - hip_t
    turn = _wrap(_angle(spine_t) - _angle(spine_r)) if np.hypot(*spine_t) > 1e-6 else 0.0

    sh_rel, sh_rho = _line_turn(rig[INDEX["left_shoulder"]] - rig[INDEX["right_shoulder"]],
                                target[INDEX["left_shoulder"]] - target[INDEX["right_shoulder"]], s, turn)
    hp_rel, hp_rho = _line_turn(rig[INDEX["left_hip"]] - rig[INDEX["right_hip"]],
                                target[INDEX["left_hip"]] - target[INDEX["right_hip"]], s, turn)
    theta_u = turn + sh_rel * sh_rho / (1 + sh_rho)
    theta_l = turn + hp_rel * hp_rho / (1 + hp_rho)
    upper = _similarity(theta_u, s, neck_r, neck_t)
    lower = _similarity(theta_l, s, hip_r, hip_t)

    nose_t = target[INDEX["nose"]]
    if np.isfinite(nose_t).all() and np.hypot(*(nose_t - neck_t)) > 1e-6:
        theta_h = _angle(nose_t - neck_t) - _angle(binding.head_dir)
    else:
        theta_h = theta_u
    head = _similarity(theta_h, s, neck_r, neck_t)

    out = {"head": head, "torso_upper": upper, "torso_lower": lower}
    for side in ("right", "left"):
        for frame, chain in ((upper, (f"{side}_upper_arm", f"{side}_forearm")),
                             (lower, (f"{side}_thigh", f"{side}_shin"))):
            parent_turn = theta_u if frame is upper else theta_l
            a0 = LIMB_BONES[chain[0]][0]
            attach = _apply(frame, rig[a0])
            for part in chain:
                a, b = LIMB_BONES[part]
                if _ok(target[a], target[b]) and np.hypot(*(target[b] - target[a])) > 1e-6:
                    theta = _angle(target[b] - target[a]) - _angle(rig[b] - rig[a])
                else:
                    theta = parent_turn
                m = _similarity(theta, s, rig[a], attach)
                out[part] = m
                attach = _apply(m, rig[b])
                parent_turn = theta
    return np.stack([out[p] for p in PARTS])


def deform_vertices(binding: Binding, transforms: np.ndarray) -> np.ndarray:
    """Blended vertex positions ``(N, 2)`` output pixels (linear blend skinning)."""
    m = binding.weights @ transforms.reshape(len(PARTS), 6)   # (N, 6) per-vertex affine
    v = binding.mesh.vertices
    x = m[:, 0] * v[:, 0] + m[:, 1] * v[:, 1] + m[:, 2]
    y = m[:, 3] * v[:, 0] + m[:, 4] * v[:, 1] + m[:, 5]
    return np.stack([x, y], axis=1)


def posed_joints(binding: Binding, transforms: np.ndarray) -> np.ndarray:
    """Where the puppet puts each rig joint ``(18, 2)`` (NaN where the rig has none)."""
    rig = binding.rig
    out = np.full_like(rig, np.nan)
    idx = {p: i for i, p in enumerate(PARTS)}
    out[INDEX["neck"]] = _apply(transforms[idx["torso_upper"]], rig[INDEX["neck"]])
    for j in ("right_shoulder", "left_shoulder"):
        out[INDEX[j]] = _apply(transforms[idx["torso_upper"]], rig[INDEX[j]])
    for j in ("right_hip", "left_hip"):
        out[INDEX[j]] = _apply(transforms[idx["torso_lower"]], rig[INDEX[j]])
    for part, (_a, b) in LIMB_BONES.items():
        out[b] = _apply(transforms[idx[part]], rig[b])
    if binding.has_nose:
        out[INDEX["nose"]] = _apply(transforms[idx["head"]], rig[INDEX["nose"]])
    return out
