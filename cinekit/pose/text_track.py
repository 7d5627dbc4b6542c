"""A text motion's segments -> a body-space pose track, with the feet that must stay planted.

Each segment draws its own poses over ``[t0, t1)`` (``text_motion.timeline``):

- **gait** (walk, run): ``gait.gait_poses`` from the passing position (a foot under the body,
  phase ``duty / 2``) through its whole steps, mirrored for ``left``; ``in place`` neither
  travels nor claims a planted foot;
- **wave**: the library ``wave`` pose, forearm swinging +-``WAVE_SWING`` rad at ``WAVE_HZ`` x speed;
- **jump**: keyframes stand -> crouch -> the library ``jump`` pose (in the air, lifted along a
  parabola) -> crouch -> stand, eased (``keyframes.interpolate``);
- **pose**: the library pose, held.

From the second segment on, the first ``blend`` seconds mix the previous segment's last pose
into this one's poses: bone angles along the shortest arc, lengths and neck linearly, weight
``ease_in_out`` of the blend's progress (as ``keyframes`` does between keys). After the last
segment the track holds its last pose.

The track stays on a treadmill (no horizontal root travel); ``plant`` says which foot carries
the body over each frame interval, and ``gait.lock_feet`` turns that into travel after the
track is retargeted to a character (``render.plan``). ``contact`` marks every foot the track
claims is on the ground (both feet in double support), for ``gait.foot_skate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cinekit.pose import gait as gaits
from cinekit.pose.angles import ROOT, bone_angles, bone_lengths, from_angles, wrap_angle
from cinekit.pose.camera import mirror
from cinekit.pose.easing import ease_in_out
from cinekit.pose.keyframes import interpolate, sample_times
from cinekit.pose.skeleton import BONES, INDEX
from cinekit.pose.text_motion import Segment, parse, timeline

WAVE_HZ, WAVE_SWING = 2.0, 0.45
JUMP_HEIGHT = 0.12          # body units added over the flight, on top of the library pose's own lift
CROUCH_DROP = 0.12          # pelvis drop of the crouch before and after a jump
_FOREARM_R = BONES.index((INDEX["right_elbow"], INDEX["right_wrist"]))


@dataclass(frozen=True)
class TextTrack:
    poses: np.ndarray        # (F, 18, 2) body space, no horizontal travel
    contact: np.ndarray      # (F, 2) bool: right / left foot planted
    plant: np.ndarray        # (F,) int8: what carries the body into frame k (gait.lock_feet)
    segments: tuple[Segment, ...]


def blend(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Poses from ``a`` towards ``b`` (``(..., 18, 2)`` broadcast) by weight ``w`` ``(...)`` in
    [0, 1]: angles on the shortest arc, bone lengths and neck linear; a bone missing on one side
    is taken from the other."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    aa, ab = bone_angles(a), bone_angles(b)
    la, lb = bone_lengths(a), bone_lengths(b)
    aa, ab = np.where(np.isnan(aa), ab, aa), np.where(np.isnan(ab), aa, ab)
    la, lb = np.where(np.isnan(la), lb, la), np.where(np.isnan(lb), la, lb)
    ww = np.asarray(w, dtype=np.float64)[..., None]
    return from_angles(a[..., ROOT, :] + ww * (b[..., ROOT, :] - a[..., ROOT, :]),
                       aa + ww * wrap_angle(ab - aa), la + ww * (lb - la))


def crouch(stand: np.ndarray, drop: float = CROUCH_DROP) -> np.ndarray:
    """``stand`` ``(18, 2)`` with the body lowered by ``drop`` over the same feet, knees out."""
    pose = np.array(stand, dtype=np.float64)
    legs = [INDEX[n] for n in ("right_knee", "right_ankle", "left_knee", "left_ankle")]
    upper = [j for j in range(18) if j not in legs]
    pose[upper, 1] += drop
    for side, out in (("right", -1.0), ("left", 1.0)):
        hip, ankle = pose[None, INDEX[f"{side}_hip"]], np.asarray(stand, dtype=np.float64)[None, INDEX[f"{side}_ankle"]]
        knee, foot = gaits._leg(hip, ankle, forward=out)
        pose[INDEX[f"{side}_knee"]], pose[INDEX[f"{side}_ankle"]] = knee[0], foot[0]
    return pose


def _gait(seg: Segment, local: np.ndarray, foot: int = 0):
    """``foot``: 0/1, the (drawn) foot in stance at the start."""
    g = gaits.GAITS[seg.verb]
    step = seg.duration / seg.steps
    raw = 1 - foot if seg.clause.direction == "left" else foot
    phase = g.duty / 2.0 + 0.5 * raw + local / (2.0 * step)
    poses, contact = gaits.gait_poses(g, phase)
    plant = gaits.plant_labels(g, phase)
    if seg.clause.direction == "left":
        poses, contact = mirror(poses, 0.0), contact[:, ::-1]
        plant = np.where(plant >= 0, 1 - plant, plant).astype(np.int8)
    elif seg.clause.direction == "in_place":  # a treadmill: the feet slide by design, claimed by none
        contact, plant = np.zeros_like(contact), np.full_like(plant, gaits.NO_TRAVEL)
    return poses, contact, plant


def _action(seg: Segment, local: np.ndarray, library: Mapping[str, np.ndarray]) -> np.ndarray:
    n = len(local)
    if seg.verb == "wave":
        base = np.asarray(library["wave"], dtype=np.float64)
        angles = np.broadcast_to(bone_angles(base), (n, len(BONES))).copy()
        angles[:, _FOREARM_R] += WAVE_SWING * np.sin(2.0 * np.pi * WAVE_HZ * seg.clause.speed * local)
        return from_angles(np.broadcast_to(base[ROOT], (n, 2)), angles, bone_lengths(base))
    # jump
    d = seg.duration
    stand, air = np.asarray(library["stand"], dtype=np.float64), np.asarray(library["jump"], dtype=np.float64)
    low = crouch(stand)
    keys = [(0.0, stand, "ease_in_out"), (0.3 * d, low, "ease_out"), (0.42 * d, air, "linear"),
            (0.62 * d, air, "ease_in"), (0.76 * d, low, "ease_in_out"), (d, stand)]
    poses = interpolate(keys, local)
    w = np.clip((local - 0.36 * d) / (0.34 * d), 0.0, 1.0)
    poses[..., 1] -= (JUMP_HEIGHT * 4.0 * w * (1.0 - w))[:, None]
    return poses


def _draw(seg: Segment, local: np.ndarray, library: Mapping[str, np.ndarray], foot: int = 0):
    """``(poses (n, 18, 2), contact (n, 2), plant (n,))`` of one segment at local seconds."""
    n = len(local)
    if seg.clause.kind == "gait":
        return _gait(seg, local, foot)
    no_contact, no_plant = np.zeros((n, 2), bool), np.full(n, gaits.NO_TRAVEL, np.int8)
    if seg.clause.kind == "action":
        return _action(seg, local, library), no_contact, no_plant
    pose = np.asarray(library[pose_key(seg.verb, library)], dtype=np.float64)
    return np.broadcast_to(pose, (n, 18, 2)).copy(), no_contact, no_plant


def pose_key(verb: str, library: Mapping[str, np.ndarray]) -> str:
    """The library name a pose verb stands for (words are read lower-case)."""
    if verb in library:
        return verb
    return next(name for name in library if name.lower() == verb)


def build(segments: list[Segment], library: Mapping[str, np.ndarray], frames: int, fps: float) -> TextTrack:
    """The track of ``segments`` at ``frames`` frame times ``i / fps`` (see the module docstring)."""
    times = sample_times(frames, fps)
    mids = np.concatenate([[0.0], (times[1:] + times[:-1]) / 2.0]) if frames else times
    poses = np.full((frames, 18, 2), np.nan)
    contact = np.zeros((frames, 2), bool)
    plant = np.full(frames, gaits.NO_TRAVEL, np.int8)
    prev_end, prev_foot = None, None
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        sel = (times >= seg.t0) & ((times < seg.t1) | last)
        msel = (mids >= seg.t0) & ((mids < seg.t1) | last)
        msel[0] = False
        local = np.minimum(times[sel] - seg.t0, seg.duration)
        foot = prev_foot or 0
        p, c, _ = _draw(seg, local, library, foot)
        _, _, mid_plant = _draw(seg, np.minimum(mids[msel] - seg.t0, seg.duration), library, foot)
        if prev_end is not None and seg.blend > 0:
            w = ease_in_out(np.clip(local / seg.blend, 0.0, 1.0))
            p = blend(prev_end, p, w)
            mw = mids[msel] - seg.t0 < seg.blend
            if seg.clause.kind != "gait" and prev_foot is not None:  # stepping out of a gait:
                mid_plant = np.where(mw, prev_foot, mid_plant).astype(np.int8)  # the stance foot stays
                c = c.copy()
                c[local < seg.blend, prev_foot] = True
        if last:  # after the motion: hold, nothing planted
            c = c & (times[sel] - seg.t0 <= seg.duration)[:, None]
            mid_plant = np.where(mids[msel] - seg.t0 <= seg.duration, mid_plant, gaits.NO_TRAVEL).astype(np.int8)
        poses[sel], contact[sel], plant[msel] = p, c, mid_plant
        end, end_contact, _ = _draw(seg, np.array([seg.duration]), library, foot)
        prev_end = end[0]
        down = np.flatnonzero(end_contact[0])
        prev_foot = int(down[0]) if seg.clause.kind == "gait" and len(down) == 1 else None
    return TextTrack(poses, contact, _down_throughout(plant, contact), tuple(segments))


def _down_throughout(plant: np.ndarray, contact: np.ndarray) -> np.ndarray:
    """Lock only a foot that is down at both ends of its interval: the foot named at mid-interval
    may have landed half-way through it (its swing would then move the body); else the other
    foot if it is down throughout, else keep the last speed (a stance change between frames)."""
    out = plant.copy()
    for k in range(1, len(plant)):
        p = int(plant[k])
        if p < 0:
            continue
        both = contact[k - 1] & contact[k]
        if not both[p]:
            out[k] = 1 - p if both[1 - p] else gaits.CARRY
    return out


def text_track(text: str, library: Mapping[str, np.ndarray], frames: int, fps: float,
               motions=()) -> TextTrack:
    """Parse ``text`` against ``library``'s still poses (every name but the stored ``motions``,
    whose frames are not read) and build its track (``TextMotionError`` if it does not parse)."""
    stills = [name for name in library if name not in set(motions)]
    return build(timeline(parse(text, stills)), library, frames, fps)
