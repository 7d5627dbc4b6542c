"""Pose a bound puppet: one transform per bone (``bind.PARTS``), blended per vertex at the joints.

All transforms are ``(2, 3)`` affine matrices from reference pixels to output pixels.

- scale ``s``: the frame's uniform scale, the median over body bones of target length / rig
  length (the track is retargeted to the rig's proportions, so every bone agrees).
- torso: an upper frame pinned at the target neck and a lower frame pinned at the target
  hip midpoint, each the affine that best maps the rig's torso vectors onto the track's,
  its stretch clamped (``_fit_frame``); the vertex blend between the two bends the waist.
- head: rigid, turned with the neck->nose bone (or with the upper torso when the target has
  no nose).
- limbs: each bone turned to the target bone's direction at scale ``s`` and hung from the
  track's joint (so the drawn elbows, wrists, knees and ankles are the track's); where the
  track lacks a joint, from where its parent puts it, keeping its rest angle to the parent.
"""

from __future__ import annotations

import numpy as np

from cinekit.pose.skeleton import BONES, INDEX
from cinekit.puppet.bind import LIMB_BONES, PARTS, Binding

_BODY_BONES = tuple(b for b in BONES if b[1] <= 13 and b != (1, 0))
_BONE_A = np.array([a for a, _ in _BODY_BONES])
_BONE_B = np.array([b for _, b in _BODY_BONES])


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
    """Median target/rig length over the body bones present in both; None if none is.

    Vectorised over the bones (it runs per character per frame): the same ratios, in the
    same order, as a loop over ``_BODY_BONES``."""
    ra, rb, ta, tb = rig[_BONE_A], rig[_BONE_B], target[_BONE_A], target[_BONE_B]
    ok = np.isfinite(ra).all(axis=1) & np.isfinite(rb).all(axis=1) & np.isfinite(ta).all(axis=1) & np.isfinite(tb).all(axis=1)
    lr = np.hypot(rb[:, 0] - ra[:, 0], rb[:, 1] - ra[:, 1])
    ok[ok] = lr[ok] > 1.0
    if not ok.any():
        return None
    lt = np.hypot(tb[ok, 0] - ta[ok, 0], tb[ok, 1] - ta[ok, 1])
    return float(np.median(lt / lr[ok]))


def limb_turn(rig: np.ndarray, target: np.ndarray, a: int, b: int, parent_turn: float) -> float:
    """The turn (radians) of bone ``a -> b`` from the rig to the target; the parent's turn
    when the target lacks the bone (it then keeps its rest angle to its parent)."""
    if _ok(target[a], target[b]) and np.hypot(*(target[b] - target[a])) > 1e-6:
        return _angle(target[b] - target[a]) - _angle(rig[b] - rig[a])
    return parent_turn


def _fit_turn(rest: list[np.ndarray], tgt: list[np.ndarray], fallback: float) -> float:
    """The rotation (radians) that best turns the ``rest`` vectors onto the ``tgt`` ones
    (least squares, Kabsch in 2D), over the pairs present in both; ``fallback`` if none."""
    cross = dot = 0.0
    for r, t in zip(rest, tgt, strict=True):
        if np.isfinite(r).all() and np.isfinite(t).all():
            cross += r[0] * t[1] - r[1] * t[0]
            dot += r @ t
    if cross == 0.0 and dot == 0.0:
        return fallback
    return float(np.arctan2(cross, dot))


_SQUASH = (0.35, 1.6)   # a torso frame's stretch range, relative to the frame's scale


def _fit_frame(rest: list[np.ndarray], tgt: list[np.ndarray], theta: float, s: float,
               src: np.ndarray, dst: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """The ``(2, 3)`` affine pinned at ``src -> dst`` that best maps the ``rest`` vectors onto
    the ``tgt`` ones (weighted least squares), its stretch clamped to ``_SQUASH`` times ``s``.

    Why not a similarity: a body turning or leaning in depth narrows its hips and shoulders
    in the track; following that a little keeps the joints on the track, and the clamp keeps
    a front drawing readable (it is never squashed into a profile it cannot show). Falls back
    to the similarity (``theta``, ``s``) when the vectors do not span the plane.
    """
    pairs = [(r * w, t * w) for r, t, w in zip(rest, tgt, weights, strict=True)
             if np.isfinite(r).all() and np.isfinite(t).all()]
    base = _similarity(theta, s, src, dst)
    if len(pairs) < 2:
        return base
    x = np.array([r for r, _ in pairs])
    y = np.array([t for _, t in pairs])
    sv = np.linalg.svd(x, compute_uv=False)
    if sv[-1] < 0.2 * sv[0]:
        # The vectors nearly share one direction (an AnimatedDrawings neck high above narrow
        # shoulders): the least-squares affine is undetermined across it. Ridge towards the
        # similarity: the shoulders still land on the track where the vectors tell (a body
        # turning in depth narrows them), the similarity settles the rest. The similarity
        # alone left the drawn shoulders up to 1.7 % of the figure's height off the track.
        lam = (0.05 * sv[0]) ** 2
        a = (y.T @ x + lam * base[:, :2]) @ np.linalg.inv(x.T @ x + lam * np.eye(2))
    else:
        a = np.linalg.lstsq(x, y, rcond=None)[0].T          # y ~ a @ x
    u, sig, vt = np.linalg.svd(a)
    if np.linalg.det(a) <= 0:                             # a mirror: the track turned its back
        return base
    lin = u @ np.diag(np.clip(sig, _SQUASH[0] * s, _SQUASH[1] * s)) @ vt
    return np.hstack([lin, (dst - lin @ src)[:, None]])


def _complete_torso(rig: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """``target`` (18, 2) with a missing neck or missing hips put where the rig's torso puts
    them, turned and scaled with the half that is there (a waist-up video has no hips, a
    detector loses them for a frame): the figure is drawn from what exists. None when
    neither the neck nor a hip, or no bone to scale by, is there."""
    neck, hips = INDEX["neck"], [INDEX["right_hip"], INDEX["left_hip"]]
    has_neck, has_hips = _ok(target[neck]), np.isfinite(target[hips]).all(axis=1).any()
    if has_neck and has_hips:
        return target
    s = frame_scale(rig, target)
    if (not has_neck and not has_hips) or s is None or s <= 0:
        return None
    out = target.copy()
    if has_neck:    # the hips hang below the neck as in the rig, turned with the shoulders
        pairs = [INDEX["right_shoulder"], INDEX["left_shoulder"]]
        src = rig[neck]
        theta = _fit_turn([rig[j] - src for j in pairs], [target[j] - target[neck] for j in pairs], 0.0)
        for j in hips:
            out[j] = _apply(_similarity(theta, s, src, target[neck]), rig[j])
    else:           # the neck stands above the hips as in the rig, turned with the hip line
        k = [j for j in hips if _ok(target[j])]
        src = rig[k[0]]
        theta = _fit_turn([rig[j] - src for j in hips], [target[j] - target[k[0]] for j in hips], 0.0)
        out[neck] = _apply(_similarity(theta, s, src, target[k[0]]), rig[neck])
    return out


def part_transforms(binding: Binding, target: np.ndarray) -> np.ndarray | None:
    """``(len(PARTS), 2, 3)`` transforms taking the rest mesh to ``target`` ``(18, 2)`` pixels.

    None when the frame cannot be drawn (no neck, no hips, or no measurable bone).
    """
    rig = binding.rig
    target = _complete_torso(rig, np.asarray(target, dtype=np.float64))
    if target is None:
        return None
    neck_t = target[INDEX["neck"]]
    hips_t = target[[INDEX["right_hip"], INDEX["left_hip"]]]
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
    j = lambda n: INDEX[n]  # noqa: E731
    # Each torso frame follows the track's torso (``_fit_frame``): the upper one its
    # neck -> shoulders (the spine only settles a rig whose neck lies on the shoulder line),
    # the lower one its hip midpoint -> hips and the spine; the turns are the fallbacks.
    theta_u = _fit_turn([rig[j("right_shoulder")] - neck_r, rig[j("left_shoulder")] - neck_r, -spine_r],
                        [target[j("right_shoulder")] - neck_t, target[j("left_shoulder")] - neck_t, -spine_t], turn)
    theta_l = _fit_turn([rig[j("right_hip")] - hip_r, rig[j("left_hip")] - hip_r, spine_r],
                        [target[j("right_hip")] - hip_t, target[j("left_hip")] - hip_t, spine_t], turn)
    upper = _fit_frame([rig[j("right_shoulder")] - neck_r, rig[j("left_shoulder")] - neck_r, -spine_r],
                       [target[j("right_shoulder")] - neck_t, target[j("left_shoulder")] - neck_t, -spine_t],
                       theta_u, s, neck_r, neck_t, (1.0, 1.0, 0.1))
    lower = _fit_frame([rig[j("right_hip")] - hip_r, rig[j("left_hip")] - hip_r, spine_r],
                       [target[j("right_hip")] - hip_t, target[j("left_hip")] - hip_t, spine_t],
                       theta_l, s, hip_r, hip_t, (1.0, 1.0, 0.3))

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
            # A limb hangs from the track's joint (so the drawn limb lands on the track),
            # from where the torso puts it when the track lacks that joint.
            attach = target[a0] if _ok(target[a0]) else _apply(frame, rig[a0])
            for part in chain:
                a, b = LIMB_BONES[part]
                theta = limb_turn(rig, target, a, b, parent_turn)
                m = _similarity(theta, s, rig[a], attach)
                out[part] = m
                attach = target[b] if _ok(target[b]) else _apply(m, rig[b])
                parent_turn = theta
    return np.stack([out[p] for p in PARTS])


def deform_vertices(part, transforms: np.ndarray) -> np.ndarray:
    """Blended vertex positions ``(N, 2)`` output pixels of a ``PartLayer`` (linear blend
    skinning: each vertex moves by its weighted sum of the ``(len(PARTS), 2, 3)`` transforms)."""
    m = part.weights @ transforms.reshape(len(PARTS), 6)   # (N, 6) per-vertex affine
    v = part.vertices
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
