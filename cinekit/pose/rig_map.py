"""Rigs that are not (only) a humanoid: which rig joints drive the body, and what the rest do.

An AnimatedDrawings ``char_cfg.yaml`` names 16 joints (root, hip, torso, neck and the four
limbs). A drawn character may have more: six arms, four legs, a tail. The motion (COCO-18)
drives one body, so a rig says which of its joints play the body's joints:

- by default the AnimatedDrawings names (``DEFAULT_MAP``);
- ``rig: {from: char_cfg.yaml, map: {rig_joint: body_joint, ...}}`` overrides or extends it
  (``body_joint`` a COCO-18 body joint, or ``rigid``); a body joint played by a rig joint
  named in ``map`` is no longer played by its default one;
- every other joint **follows its parent rigidly** (the transform of the body bone that
  ends at its nearest body-joint ancestor, see ``anchor_bone``) once ``map:`` is given;
  without ``map:``, extra limbs are refused by ``cinekit check`` (``rig_problems``), since a
  limb that silently stops moving is worse than an error that says how to fix it.

``map_skeleton`` is pure: skeleton list in, ``RigMapping`` out (the humanoid ``(18, 2)``
joints, the extra joints and the parent each one follows). ``follow_extras`` poses the
extra joints along a pose track, for engines and for the control maps that want them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from cinekit.pose.skeleton import INDEX, JOINTS, empty_pose

DEFAULT_MAP: dict[str, str] = {
    "neck": "neck",
    "right_shoulder": "right_shoulder", "right_elbow": "right_elbow", "right_hand": "right_wrist",
    "left_shoulder": "left_shoulder", "left_elbow": "left_elbow", "left_hand": "left_wrist",
    "right_hip": "right_hip", "right_knee": "right_knee", "right_foot": "right_ankle",
    "left_hip": "left_hip", "left_knee": "left_knee", "left_foot": "left_ankle",
}
"""AnimatedDrawings joint name -> COCO-18 name ("right" = the character's right in both)."""
SPINE: tuple[str, ...] = ("root", "hip", "torso")
"""AnimatedDrawings spine joints: no COCO joint, drawn by the torso, never an "extra limb"."""
RIGID = "rigid"
BODY_TARGETS: tuple[str, ...] = tuple(JOINTS[:14])
"""The body joints a rig joint may play (COCO-18 without the face)."""

# The body bone whose motion a joint carries (the bone ending at it): the torso for the
# neck, shoulders and hips (spine: hip midpoint -> neck), the limb bone for the others.
_ANCHOR_BONE: dict[str, tuple[str, str]] = {
    "neck": ("hip_mid", "neck"), "right_shoulder": ("hip_mid", "neck"),
    "left_shoulder": ("hip_mid", "neck"), "right_hip": ("hip_mid", "neck"),
    "left_hip": ("hip_mid", "neck"), "nose": ("neck", "nose"),
    "right_elbow": ("right_shoulder", "right_elbow"), "right_wrist": ("right_elbow", "right_wrist"),
    "left_elbow": ("left_shoulder", "left_elbow"), "left_wrist": ("left_elbow", "left_wrist"),
    "right_knee": ("right_hip", "right_knee"), "right_ankle": ("right_knee", "right_ankle"),
    "left_knee": ("left_hip", "left_knee"), "left_ankle": ("left_knee", "left_ankle"),
}


class RigMapError(ValueError):
    """A ``map:`` that cannot be applied; ``key`` is the map entry at fault (None: the file)."""

    def __init__(self, message: str, key: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.key, self.hint = key, hint


@dataclass(frozen=True)
class RigMapping:
    humanoid: np.ndarray                                   # (18, 2) pixels, NaN = not played
    extra: dict[str, tuple[float, float]] = field(default_factory=dict)   # name -> (x, y)
    parents: dict[str, str] = field(default_factory=dict)  # extra -> COCO joint or extra name
    body_of: dict[str, str] = field(default_factory=dict)  # rig joint -> COCO joint it plays
    unmapped: tuple[str, ...] = ()                         # extra limb joints map: must name


def _skeleton_table(skeleton: Sequence[Mapping]) -> dict[str, tuple[tuple[float, float], str | None]]:
    """``[{name, loc, parent}, ...]`` -> ``{name: ((x, y), parent)}``; RigMapError if malformed."""
    table: dict[str, tuple[tuple[float, float], str | None]] = {}
    if not isinstance(skeleton, Sequence) or isinstance(skeleton, (str, bytes)):
        raise RigMapError("'skeleton' must be a list of joints ({name, loc, parent})")
    for i, joint in enumerate(skeleton):
        try:
            name, loc = str(joint["name"]), joint["loc"]
            xy = (float(loc[0]), float(loc[1]))
        except (KeyError, TypeError, IndexError, ValueError):
            raise RigMapError(f"skeleton[{i}] is not a joint with a name and a loc [x, y]") from None
        if name in table:
            raise RigMapError(f"joint {name!r} appears twice in the skeleton")
        parent = joint.get("parent")
        table[name] = (xy, None if parent is None else str(parent))
    for name, (_xy, parent) in table.items():
        if parent is not None and parent not in table:
            raise RigMapError(f"joint {name!r} has parent {parent!r}, which is not in the skeleton")
    return table


def map_skeleton(skeleton: Sequence[Mapping], mapping: Mapping[str, str] | None = None) -> RigMapping:
    """AnimatedDrawings ``skeleton`` (+ optional user ``mapping``) -> ``RigMapping``.

    Raises ``RigMapError`` (with the offending ``map`` key) for a key that is not a rig joint,
    a value that is neither a body joint nor ``rigid``, or a body joint played twice.
    """
    from cinekit.spec.diagnose import suggest

    table = _skeleton_table(skeleton)
    user = dict(mapping or {})
    for key, value in user.items():
        if key not in table:
            raise RigMapError(f"{key!r} is not a joint of the rig", key,
                              suggest(key, table) or f"rig joints: {', '.join(table)}")
        if value != RIGID and value not in BODY_TARGETS:
            raise RigMapError(f"{key!r}: {value!r} is not a body joint", key,
                              suggest(value, BODY_TARGETS + (RIGID,))
                              or f"use one of {', '.join(BODY_TARGETS)}, or {RIGID!r}")
    claimed: dict[str, str] = {}
    for key, value in user.items():   # in the map's order: the later entry is the one at fault
        if value != RIGID and value in claimed:
            raise RigMapError(f"{claimed[value]!r} and {key!r} both play {value!r}", key,
                              f"map one of them to another body joint, or to {RIGID!r}")
        if value != RIGID:
            claimed[value] = key
    body_of: dict[str, str] = {}
    for name in table:
        if name in user:
            if user[name] != RIGID:
                body_of[name] = user[name]
        elif name in DEFAULT_MAP and DEFAULT_MAP[name] not in claimed:
            body_of[name] = DEFAULT_MAP[name]
    humanoid = empty_pose()
    for name, body in body_of.items():
        humanoid[INDEX[body]] = table[name][0]
    extra = {n: xy for n, (xy, _p) in table.items() if n not in body_of}
    parents = {}
    for name in extra:
        parent = table[name][1]
        parents[name] = body_of.get(parent, parent) if parent is not None else _nearest_body(
            np.asarray(table[name][0]), humanoid)
    unmapped = () if mapping is not None else tuple(
        n for n in extra if n not in SPINE and n not in user)
    return RigMapping(humanoid, extra, parents, body_of, unmapped)


def _nearest_body(xy: np.ndarray, humanoid: np.ndarray) -> str:
    d = np.linalg.norm(humanoid[:14] - xy, axis=1)
    return JOINTS[int(np.nanargmin(d))] if np.isfinite(d).any() else "neck"


def anchor(mapping: RigMapping, name: str) -> str:
    """The COCO joint whose bone an extra joint ``name`` follows: its nearest ancestor that
    plays a body joint (the spine joints count as the neck's torso bone)."""
    seen = set()
    while name in mapping.extra and name not in seen:
        seen.add(name)
        parent = mapping.parents[name]
        if parent in SPINE or parent is None:
            return "neck"
        name = parent
    return name if name in INDEX else "neck"


def anchor_bone(joint: str) -> tuple[str, str]:
    """The body bone ``(from, to)`` carrying COCO ``joint`` (``hip_mid`` = hips' midpoint)."""
    return _ANCHOR_BONE[joint]


def _point(pose: np.ndarray, name: str) -> np.ndarray:
    if name == "hip_mid":
        return 0.5 * (pose[..., INDEX["right_hip"], :] + pose[..., INDEX["left_hip"], :])
    return pose[..., INDEX[name], :]


def follow_extras(mapping: RigMapping, track: np.ndarray) -> dict[str, np.ndarray]:
    """Extra joints along a pose ``track`` ``(F, 18, 2)`` (the rig's pixels mapped as the track's
    body is) -> ``{name: (F, 2)}``: each moves rigidly with its anchor's bone (rotation and
    uniform scale from the rig's bone to the track's, pinned at the bone's end). NaN where
    that bone is missing in a frame."""
    track = np.asarray(track, dtype=np.float64)
    rig = mapping.humanoid
    out = {}
    for name, xy in mapping.extra.items():
        a, b = anchor_bone(anchor(mapping, name))
        ra, rb = _point(rig, a), _point(rig, b)
        ta, tb = _point(track, a), _point(track, b)
        rv, tv = rb - ra, tb - ta
        # complex numbers: the similarity rig bone -> track bone, applied about the bone's end
        z = (tv[..., 0] + 1j * tv[..., 1]) / complex(rv[0], rv[1])
        off = complex(xy[0] - rb[0], xy[1] - rb[1]) * z
        out[name] = np.stack([tb[..., 0] + off.real, tb[..., 1] + off.imag], axis=-1)
    return out


def unmapped_message(mapping: RigMapping) -> tuple[str, str]:
    """(message, hint) for a rig whose extra limbs no ``map:`` accounts for."""
    names = ", ".join(mapping.unmapped)
    example = ", ".join(f"{n}: {RIGID}" for n in mapping.unmapped)
    first = mapping.unmapped[0]
    guess = next((b for b in BODY_TARGETS if b.split("_")[-1] in first), "right_wrist")
    return (
        f"the rig has joints that are not body joints: {names}; the motion cannot move them",
        f"add `map: {{{example}}}` under rig: to let them follow their parent rigidly, or map "
        f"one to the body joint it should play (e.g. `{first}: {guess}`)",
    )
