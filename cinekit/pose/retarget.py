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
"""

from __future__ import annotations

import numpy as np

from cinekit.pose.angles import (
    DEFAULT_LENGTHS,
    N_BONES,
    ROOT,
    body_height,
    bone_angles,
    bone_lengths,
    from_angles,
    rest_pose,
    wrap_angle,
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


_TORSO_BONES = np.array([k for k, (p, c) in enumerate(BONES)
                         if p == ROOT and JOINTS[c] in ("right_shoulder", "left_shoulder", "right_hip", "left_hip")])
_HIPS = np.array([INDEX["right_hip"], INDEX["left_hip"]])


def _spine_angle(poses: np.ndarray) -> np.ndarray:
    """Direction neck -> hip midpoint ``(..., 18, 2) -> (...)`` radians (NaN if missing)."""
    v = poses[..., _HIPS, :].mean(axis=-2) - poses[..., ROOT, :]
    return np.arctan2(v[..., 1], v[..., 0])


def torso_offsets(poses: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Per torso bone (neck -> shoulders, neck -> hips), the turn ``(4,)`` radians that gives
    ``poses`` ``(..., 18, 2)`` the torso shape of ``rest`` ``(18, 2)`` (any units, e.g. a rig
    in pixels): the rest's angle of each bone to its spine minus the motion's (circular mean
    over frames). 0 where either side lacks the bone."""
    rel = wrap_angle(bone_angles(poses)[..., _TORSO_BONES] - _spine_angle(poses)[..., None]).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        src = np.arctan2(np.nanmean(np.sin(rel), axis=0), np.nanmean(np.cos(rel), axis=0))
    rest = np.asarray(rest, dtype=np.float64)
    want = wrap_angle(bone_angles(rest)[_TORSO_BONES] - _spine_angle(rest))
    off = wrap_angle(want - src)
    return np.where(np.isfinite(off), off, 0.0)


def retarget(poses: np.ndarray, lengths: np.ndarray, rest: np.ndarray | None = None) -> np.ndarray:
    """Body-space ``poses`` ``(..., 18, 2)`` re-drawn with target bone ``lengths`` ``(17,)``
    -> ``(..., 18, 2)`` body space; see the module docstring for the root and floor rules.

    ``rest`` ``(18, 2)`` (the character's rig, any units): also give the torso the rest's
    shape (``torso_offsets``: where the shoulders sit below the neck, how wide the hips are
    for their length), so the track is the drawing's torso moved by the motion, not the
    mocap actor's torso with the drawing's bone lengths (which puts a wide-hipped
    character's hips a tenth of its height inside its drawn ones)."""
    poses = np.asarray(poses, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.shape != (N_BONES,) or not np.isfinite(lengths).all():
        raise ValueError(f"target lengths must be 17 finite numbers, got shape {lengths.shape}")
    src = source_lengths(poses)
    ratio = float(body_height(lengths) / body_height(src))
    angles = bone_angles(poses)
    bones = lengths
    if rest is not None:
        angles = angles.copy()
        angles[..., _TORSO_BONES] += torso_offsets(poses, rest)
        # The torso is one body: a bone of it that the motion foreshortens (a lean towards
        # the camera shortens neck -> hips) stays as short, relative to its usual length;
        # at full length it would push the hips apart instead.
        with np.errstate(invalid="ignore", divide="ignore"):
            fore = bone_lengths(poses)[..., _TORSO_BONES] / src[_TORSO_BONES]
        bones = np.broadcast_to(lengths, (*poses.shape[:-2], N_BONES)).copy()
        bones[..., _TORSO_BONES] *= np.where(np.isfinite(fore), np.clip(fore, 0.3, 1.0), 1.0)
    out = from_angles(ratio * poses[..., ROOT, :], angles, bones)

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
