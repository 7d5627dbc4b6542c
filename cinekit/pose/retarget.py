"""Retarget body-space poses to a character's proportions, and read proportions off a rig.

``retarget`` keeps every frame's bone angles and root (neck) trajectory and swaps in the
target's bone lengths, then:

- scales the root trajectory by ``ratio = body_height(target) / body_height(source)`` so a
  walk that travels one source height travels one target height;
- re-anchors each frame vertically so its lowest ankle sits at ``ratio *`` the source's lowest
  ankle height (a foot on the floor, y = 0, stays on the floor; a jump keeps its scaled
  air time). Frames with no ankle use the rest-stance offset instead.

Source proportions are the per-bone median over the frames (missing bones filled from
``DEFAULT_LENGTHS`` scaled to the body). All lengths are body-space units unless noted.

The torso (neck, shoulders, hips) is not a chain of free bones: where the "neck" sits is a
convention of the skeleton (COCO and the BVH importers put it between the shoulders, an
AnimatedDrawings rig at the base of the head, well above them). Keeping the source's
neck->shoulder *angles* with the target's *lengths* then swings a drawn character's
shoulders up to neck height and out sideways (measured: shoulders, elbows and wrists
0.21-0.40 figure heights off on the four AnimatedDrawings characters). With a ``Torso``
(the target's rest shape, from its rig), the shoulders and hips are placed in the target's
shape instead, posed by the source's torso axis, and moved only by the source's deviation
from its own typical torso (a shrug, a turn that narrows the shoulders).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from cinekit.pose.angles import (
    DEFAULT_LENGTHS,
    N_BONES,
    REST_POSE,
    ROOT,
    body_height,
    bone_angles,
    bone_lengths,
    from_angles,
    rest_pose,
)
from cinekit.pose.skeleton import BONES, INDEX, JOINTS

_ANKLES = np.array([INDEX["right_ankle"], INDEX["left_ankle"]])
FACE_JOINTS: tuple[int, ...] = tuple(
    INDEX[n] for n in ("nose", "right_eye", "left_eye", "right_ear", "left_ear")
)
"""Joints a rig may omit; their bones are filled from ``DEFAULT_LENGTHS`` proportions."""
BODY_JOINTS: tuple[int, ...] = tuple(i for i in range(len(JOINTS)) if i not in FACE_JOINTS)
"""Neck, shoulders, elbows, wrists, hips, knees, ankles: a rig must have all of them."""
_BODY_BONES = np.array([c in BODY_JOINTS for _, c in BONES])

_NECK = INDEX["neck"]
TORSO_JOINTS: tuple[int, ...] = tuple(
    INDEX[n] for n in ("right_shoulder", "left_shoulder", "right_hip", "left_hip")
)
"""The joints placed by a ``Torso``, in its order."""
_TORSO_BONES = np.array([BONES.index((_NECK, j)) for j in TORSO_JOINTS])
_FRONT_SIGN = np.array([-1.0, 1.0, -1.0, 1.0])  # side of each torso joint in a front view


@dataclass(frozen=True)
class Torso:
    """A body's rest torso: ``TORSO_JOINTS`` relative to the neck, ``along`` the neck -> hip
    midpoint axis (down) and ``across`` it (+ = the figure's left in a front view), ``(4,)`` each,
    in the units of the lengths it goes with."""

    along: np.ndarray
    across: np.ndarray


def torso_axes(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit torso axes of ``(..., 18, 2)`` poses -> ``(down, side)``, each ``(..., 2)``: ``down``
    from the neck to the hip midpoint (without both hips: the shoulder line turned by 90 deg),
    ``side`` = ``down`` turned by -90 deg (image +x for an upright front view). NaN where neither
    is known."""
    p = np.asarray(poses, dtype=np.float64)
    neck = p[..., _NECK, :]
    down = 0.5 * (p[..., INDEX["right_hip"], :] + p[..., INDEX["left_hip"], :]) - neck
    line = p[..., INDEX["left_shoulder"], :] - p[..., INDEX["right_shoulder"], :]
    alt = np.stack([-line[..., 1], line[..., 0]], axis=-1)
    n = np.hypot(down[..., 0], down[..., 1])
    use_alt = ~(n > 1e-9)
    down = np.where(use_alt[..., None], alt, down)
    n = np.hypot(down[..., 0], down[..., 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        down = np.where((n > 1e-9)[..., None], down / n[..., None], np.nan)
    side = np.stack([down[..., 1], -down[..., 0]], axis=-1)
    return down, side


def torso_coords(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(along, across)`` ``(..., 4)`` of ``TORSO_JOINTS`` relative to the neck on
    ``torso_axes`` (same units as ``poses``; NaN where a joint or the axes are missing)."""
    p = np.asarray(poses, dtype=np.float64)
    down, side = torso_axes(p)
    rel = p[..., TORSO_JOINTS, :] - p[..., _NECK, None, :]
    return (rel * down[..., None, :]).sum(-1), (rel * side[..., None, :]).sum(-1)


_DEFAULT_ACROSS = np.abs(torso_coords(REST_POSE)[1])  # frontal half-widths of the default body


def _torso_vectors(poses: np.ndarray, torso: Torso, ratio: float, src_height: float) -> np.ndarray:
    """Target neck -> torso joint vectors ``(..., 4, 2)`` for source ``poses`` ``(..., 18, 2)``
    (a body ``src_height`` tall, ankles to nose).

    The source's typical torso (median ``along``; 90th percentile of ``|across|``, its frontal
    width, but at least 3/4 of the default body's, so that a clip seen from the side all
    along stays narrow) maps onto ``torso``; a frame's deviation from it carries over:
    ``along`` additively (scaled by ``ratio``, a shrug), ``across`` as a fraction of the
    frontal width (a turn narrows the shoulders, a back view swaps their sides). NaN where
    the source lacks them.
    """
    along, across = torso_coords(poses)
    flat_al, flat_ac = along.reshape(-1, 4), np.abs(across.reshape(-1, 4))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing joint: NaN, no warning
        ref_along = np.nanmedian(flat_al, axis=0)
        ref_across = np.maximum(np.nanpercentile(flat_ac, 90, axis=0), 0.75 * _DEFAULT_ACROSS * src_height)
        w = np.clip(across / (_FRONT_SIGN * np.where(ref_across > 1e-9, ref_across, np.nan)), -1.25, 1.25)
    out_along = torso.along + (along - ref_along) * ratio
    out_across = torso.across * w
    down, side = torso_axes(poses)
    return out_along[..., None] * down[..., None, :] + out_across[..., None] * side[..., None, :]


def complete_lengths(lengths: np.ndarray) -> np.ndarray:
    """Fill NaN entries of ``(17,)`` bone lengths with ``DEFAULT_LENGTHS * s``, ``s`` = ratio of
    the present bones' total length to their default total (same units as ``lengths``)."""
    lengths = np.asarray(lengths, dtype=np.float64).copy()
    have = np.isfinite(lengths)
    if not have.any():
        return DEFAULT_LENGTHS.copy()
    s = lengths[have].sum() / DEFAULT_LENGTHS[have].sum()
    lengths[~have] = DEFAULT_LENGTHS[~have] * s
    return lengths


def source_lengths(poses: np.ndarray) -> np.ndarray:
    """Proportions of a motion: per-bone median length over frames, ``(..., 18, 2) -> (17,)``,
    missing bones completed with ``complete_lengths``."""
    lens = bone_lengths(np.asarray(poses, dtype=np.float64)).reshape(-1, N_BONES)
    with np.errstate(all="ignore"):
        have = np.isfinite(lens).any(axis=0)
        med = np.full(N_BONES, np.nan)
        if have.any():
            med[have] = np.nanmedian(lens[:, have], axis=0)
    return complete_lengths(med)


def _lowest_ankle(poses: np.ndarray) -> np.ndarray:
    """Largest ankle y per pose ``(..., 18, 2) -> (...)``; -inf where both ankles are missing."""
    y = poses[..., _ANKLES, 1]
    return np.where(np.isnan(y), -np.inf, y).max(axis=-1)


def retarget(poses: np.ndarray, lengths: np.ndarray, torso: Torso | None = None,
             rest: np.ndarray | None = None) -> np.ndarray:
    """Body-space ``poses`` ``(..., 18, 2)`` re-drawn with target bone ``lengths`` ``(17,)``
    -> ``(..., 18, 2)`` body space; see the module docstring for the root and floor rules.

    ``torso`` (the target's rest torso, e.g. ``torso_from_rig``): shoulders and hips take the
    target's shape instead of the source's neck -> shoulder / hip angles; None keeps the angles.
    ``rest`` ``(18, 2)`` (the character's rig, pixels) is shorthand for ``torso_from_rig(rest)``.
    """
    if torso is None and rest is not None:
        torso = torso_from_rig(rest)
    poses = np.asarray(poses, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.shape != (N_BONES,) or not np.isfinite(lengths).all():
        raise ValueError(f"target lengths must be 17 finite numbers, got shape {lengths.shape}")
    src = source_lengths(poses)
    ratio = float(body_height(lengths) / body_height(src))
    angles = bone_angles(poses)
    lens = np.broadcast_to(lengths, angles.shape).copy()
    if torso is not None:
        vec = _torso_vectors(poses, torso, ratio, float(body_height(src)))
        ok = np.isfinite(vec).all(axis=-1)
        angles[..., _TORSO_BONES] = np.where(ok, np.arctan2(vec[..., 1], vec[..., 0]), angles[..., _TORSO_BONES])
        lens[..., _TORSO_BONES] = np.where(ok, np.hypot(vec[..., 0], vec[..., 1]), lens[..., _TORSO_BONES])
    out = from_angles(ratio * poses[..., ROOT, :], angles, lens)

    src_low, new_low = _lowest_ankle(poses), _lowest_ankle(out)
    # Fallback: where a frame has no ankle, shift by the rest-stance neck offset.
    rest_dy = rest_pose(lengths)[ROOT, 1] - ratio * rest_pose(src)[ROOT, 1]
    ok = np.isfinite(src_low) & np.isfinite(new_low)
    dy = np.where(ok, ratio * np.where(ok, src_low, 0.0) - np.where(ok, new_low, 0.0), rest_dy)
    out[..., 1] += dy[..., None]
    return out


def lengths_from_rig(rig_pose_pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """A character's proportions from its rig joints ``(18, 2)`` on its reference art (pixels)
    -> ``(lengths (17,) in its own body units, standing ankles-to-nose height in pixels)``.

    Face joints may be missing (filled from ``DEFAULT_LENGTHS`` proportions scaled to the
    body); a missing body joint raises ValueError naming every missing one. The rig should be
    a front view: foreshortened bones are taken at face value.
    """
    rig = np.asarray(rig_pose_pixels, dtype=np.float64)
    if rig.shape != (len(JOINTS), 2):
        raise ValueError(f"rig pose must be (18, 2), got {rig.shape}")
    missing = [JOINTS[j] for j in BODY_JOINTS if not np.isfinite(rig[j]).all()]
    if missing:
        raise ValueError(f"rig is missing body joints: {', '.join(missing)}")
    px = bone_lengths(rig)
    short = [f"{JOINTS[p]}-{JOINTS[c]}" for (p, c), ln, body in zip(BONES, px, _BODY_BONES, strict=True)
             if body and not ln > 0]
    if short:
        raise ValueError(f"rig has zero-length bones: {', '.join(short)}")
    px = np.where(np.isfinite(px), px, np.nan)
    px = complete_lengths(np.where(_BODY_BONES | np.isfinite(px), px, np.nan))
    height = float(body_height(px))
    return px / height, height


def torso_from_rig(rig_pose_pixels: np.ndarray) -> Torso:
    """A character's rest ``Torso`` from its rig joints ``(18, 2)`` (pixels), in the body units of
    ``lengths_from_rig`` (ValueError as there for a rig without its body joints)."""
    _, height = lengths_from_rig(rig_pose_pixels)
    along, across = torso_coords(np.asarray(rig_pose_pixels, dtype=np.float64))
    return Torso(along=along / height, across=across / height)
