"""The resolved job: everything an engine needs to render one shot, already validated.

Every engine receives the same ``Job``; engines differ only in how they turn it into pixels.
A job is plain data (picklable for Ray, serialisable with ``to_record`` for metadata and the
manifest): the pose track is computed once by the planner, never by an engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

Kind = Literal["still", "clip"]


@dataclass(frozen=True)
class JobCharacter:
    """One character as placed in a shot."""

    name: str
    spec_path: str            # the character's YAML, absolute
    position: float           # horizontal placement in [0, 1] of the frame (0 left)
    scale: float = 1.0        # relative to the camera's framing
    mirror: bool = False      # faces the other way
    z: int = 0                # draw order: higher is in front
    view: str = "front"       # front | three_quarter | side | back: picks the reference
    # Per-frame art (``view: auto``): ((first frame, view, mirror), ...) segments, in frame
    # order; empty = ``view`` and ``mirror`` on every frame.
    views: tuple[tuple[int, str, bool], ...] = ()
    note: str = ""            # what the planner kept from the motion (recorded in the sidecar)

    def view_at(self, f: int) -> tuple[str, bool]:
        """(view, mirror) of the art drawn at frame ``f``."""
        out = (self.view, self.mirror)
        for start, view, flip in self.views:
            if start > f:
                break
            out = (view, flip)
        return out


@dataclass(frozen=True, eq=False)
class Job:
    """One still or clip to render.

    ``pose`` is the per-frame pose track ``(frames, characters, 18, 2)`` in output pixels
    (NaN = joint not visible); ``frames`` is 1 for a still and ``round(duration * fps)`` for a clip.
    """

    shot_id: str
    shotlist: str             # shot list path relative to the project root
    kind: Kind
    engine: str
    width: int
    height: int
    fps: float
    frames: int
    seed: int
    steps: int
    guidance: float
    prompt: str               # character placeholders already substituted
    negative: str
    characters: tuple[JobCharacter, ...]
    pose: np.ndarray          # (frames, characters, 18, 2) pixels
    output: str               # output stem relative to the output folder, e.g. "ep01/s010"
    background: tuple[int, int, int] | str = (235, 235, 240)  # RGB or an absolute image path
    camera: str = "medium"
    model: str | None = None  # named model set in cinekit.yaml (diffusers engines)
    refine: float | None = None
    raw_prompt: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # engine-specific, JSON-safe
    # (frames, characters, 18) each joint's depth toward the camera in body heights (NaN:
    # unknown; from a BVH's 3-D or keyframe ``depth:``): the puppet's per-frame layer order
    depth: np.ndarray | None = None
    # per character: its face over the shot (cinekit.acting.timeline.CharacterActing), None at rest
    acting: tuple = ()

    @property
    def duration(self) -> float:
        return self.frames / self.fps if self.kind == "clip" else 0.0

    def to_record(self) -> dict[str, Any]:
        """JSON-safe description (no pose array; its digest stands in for it)."""
        import copy
        import hashlib

        # Field by field, not ``asdict``: asdict deep-copies the pose array (the whole track).
        rec = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("pose", "characters", "depth", "acting")}
        rec["options"] = copy.deepcopy(self.options)
        rec["pose"] = {
            "shape": list(self.pose.shape),
            "sha256": hashlib.sha256(np.ascontiguousarray(self.pose, dtype=np.float64).tobytes()).hexdigest(),
        }
        if self.depth is not None:
            rec["depth"] = hashlib.sha256(np.ascontiguousarray(self.depth, dtype=np.float64).tobytes()).hexdigest()
        if any(a is not None for a in self.acting):  # absent at rest: older records keep their keys
            rec["acting"] = [None if a is None else {"names": list(a.names), "sha256": hashlib.sha256(a.digest_bytes()).hexdigest()}
                             for a in self.acting]
        rec["characters"] = [{f.name: getattr(c, f.name) for f in fields(c)} for c in self.characters]
        for c in rec["characters"]:
            c["views"] = [list(v) for v in c["views"]]
        rec["background"] = list(self.background) if isinstance(self.background, tuple) else self.background
        return rec
