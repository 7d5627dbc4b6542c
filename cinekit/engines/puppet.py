"""The puppet engine: each character's own reference art, deformed along its rig per frame.

Identity is preserved by construction (the pixels are the reference's); CPU only, real time.
Steps per job: 1. check every rig; 2. build (or reuse) each character's mesh, skinning and
texture; 3. per frame, pose every character and composite them by ``z`` over the background.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from cinekit.errors import EngineError, UserError
from cinekit.inbetween.blend import key_overlay
from cinekit.job import Job
from cinekit.pose.skeleton import MIRROR
from cinekit.puppet.bind import Binding, bind, missing_joints
from cinekit.puppet.deform import frame_scale, part_transforms
from cinekit.puppet.layers import frame_order
from cinekit.puppet.raster import draw_part


@dataclass(eq=False)
class Puppet:
    """One character ready to pose: its part layers (art flipped when mirrored)."""

    binding: Binding
    mirror: bool


def _rig_reference(identity, view: str):
    """(reference, rig) to draw ``view`` with: the nearest view's reference that has a rig
    (the first reference's is the character's ``rig:``, others may carry their own)."""
    from cinekit.pose.views import FALLBACK

    rigs = getattr(identity, "rigs", None) or [identity.rig]
    for candidate in FALLBACK.get(view, (view,)):
        for ref, rig in zip(identity.references, rigs, strict=False):
            if ref.view == candidate and rig is not None:
                return ref, np.asarray(rig, dtype=np.float64)
    return identity.references[0], identity.rig


def build_puppet(rgba: np.ndarray, mask: np.ndarray, rig: np.ndarray, mirror: bool = False,
                 labels: np.ndarray | None = None) -> Puppet:
    """A puppet from reference art ``rgba`` (H, W, 4), figure ``mask`` (H, W) and ``rig`` (18, 2);
    ``labels`` (H, W) part indices (``parts.PART_NAMES``) override the automatic cut."""
    rig = np.asarray(rig, dtype=np.float64)
    if mirror:
        w = rgba.shape[1]
        rgba = rgba[:, ::-1]
        mask = mask[:, ::-1]
        rig = rig[list(MIRROR)].copy()
        rig[:, 0] = (w - 1) - rig[:, 0]
        if labels is not None:
            from cinekit.puppet.parts import PART_NAMES

            swap = {i: PART_NAMES.index(n.replace("right_", "@").replace("left_", "right_").replace("@", "left_"))
                    for i, n in enumerate(PART_NAMES)}
            lut = np.array([swap[i] for i in range(len(PART_NAMES))] + [-1], np.int8)
            labels = lut[labels[:, ::-1]]
    rgba = np.ascontiguousarray(rgba)
    mask = np.ascontiguousarray(mask)
    return Puppet(binding=bind(rgba, mask, rig, labels), mirror=mirror)


def _part_labels(identity, ref, read=None) -> tuple[np.ndarray | None, str]:
    """The user's part label map of ``ref`` (its ``parts:`` image) as part indices, or None,
    and the sha256 of its bytes ("" without one). ``read`` is the run's input snapshot (the
    bytes drawn are the bytes hashed into the cache key)."""
    for r, spec in zip(identity.references, identity.spec.references, strict=False):
        if r is ref and getattr(spec, "parts", None):
            import hashlib
            import io

            from PIL import Image

            from cinekit.identity.core import resolve
            from cinekit.puppet.part_map import labels_from_map

            path = resolve(identity.spec_path, spec.parts)
            try:
                data = read(path) if read is not None else path.read_bytes()
                with Image.open(io.BytesIO(data)) as im:
                    image = np.asarray(im.convert("RGB"))
            except OSError as exc:
                raise UserError(f"{path}: cannot read the part label map ({exc})",
                                hint="`parts:` is a PNG the size of the reference, one flat colour per part "
                                     "(see docs/puppet.md)") from None
            if image.shape[:2] != ref.mask.shape:
                raise UserError(f"{path}: part label map is {image.shape[1]}x{image.shape[0]}, "
                                f"the reference is {ref.mask.shape[1]}x{ref.mask.shape[0]}",
                                hint="draw the label map over the reference, at its size")
            return labels_from_map(image, ref.mask), hashlib.sha256(data).hexdigest()
    return None, ""


class PuppetEngine:
    name = "puppet"
    kinds = frozenset({"still", "clip"})
    version = "2"
    uses_models = False  # weight-free: a model set is never part of its jobs (keys, labels)

    def __init__(self, runtime):
        self.runtime = runtime
        self._puppets: dict[tuple[str, str, str, bool], Puppet] = {}
        self._labels: dict = {}               # Reference -> (part labels or None, sha256 of the map)
        self._held: dict = {}                 # (job, character) -> last (puppet, transforms, scale) drawn
        self._faces: dict[tuple[str, str], object] = {}   # expression art per character (cinekit.acting)
        self.timings: dict[str, float] = {}   # seconds per stage, accumulated over renders

    # 1. -------------------------------------------------------------------------------
    def check_inputs(self, job: Job) -> None:
        """Every character needs a rig with the body joints the puppet bends."""
        problems = []
        for ch in job.characters:
            identity = self.runtime.identities.get(ch.name)
            for view in sorted({ch.view} | {v for _, v, _ in ch.views}):
                _ref, rig = _rig_reference(identity, view)
                missing = missing_joints(rig)
                if missing:
                    what = "has no rig" if rig is None else f"rig lacks {', '.join(missing)}"
                    problems.append(f"character {ch.name!r}: {what}")
        if problems:
            raise UserError(
                "the puppet engine cannot bend " + "; ".join(problems),
                hint="give the character `rig: {from: char_cfg.yaml}` (AnimatedDrawings) or `rig: {joints: ...}` "
                     "with neck, shoulders, elbows, wrists, hips, knees and ankles in reference pixels; "
                     "or render this shot with the previz engine",
            )
        expected = (job.frames, len(job.characters), 18, 2)
        if tuple(job.pose.shape) != expected:
            raise EngineError(f"job {job.shot_id}: pose track is {tuple(job.pose.shape)}, expected {expected}")

    # 2. -------------------------------------------------------------------------------
    def puppet(self, name: str, view: str, mirror: bool) -> Puppet:
        """The cached puppet of a character (built once per reference and mirroring)."""
        identity = self.runtime.identities.get(name)
        ref, rig = _rig_reference(identity, view)
        if ref not in self._labels:      # a Reference is loaded once per run: read its map once
            read = getattr(getattr(self.runtime, "files", None), "read", None)
            self._labels[ref] = _part_labels(identity, ref, read)
        labels, labels_sha = self._labels[ref]
        key = (name, ref.sha256, labels_sha, bool(mirror))
        if key not in self._puppets:
            t = time.perf_counter()
            self._puppets[key] = build_puppet(ref.rgba, ref.mask, rig, mirror, labels=labels)
            self._tick("build", t)
        return self._puppets[key]

    def puppets(self, job: Job) -> list:
        """Per character: its puppet, or ``{(view, mirror): puppet}`` when the drawing changes
        from frame to frame (``JobCharacter.views``)."""
        out = []
        for c in job.characters:
            if not c.views:
                out.append(self.puppet(c.name, c.view, c.mirror))
            else:
                out.append({(v, m): self.puppet(c.name, v, m) for _, v, m in c.views})
        return out

    def face_rig(self, name: str, view: str, mirror: bool):
        """The character's face patches (``acting.face_art.FaceRig``) when the puppet draws the
        reference its rig is on (in this frame's view); None otherwise (no face region known,
        or another view's art)."""
        from cinekit.acting.face_art import load_face_rig
        from cinekit.puppet.parts import PART_NAMES

        identity = self.runtime.identities.get(name)
        ref, _rig = _rig_reference(identity, view)
        if ref is not identity.references[0]:
            return None
        key = (name, ref.sha256, mirror)
        if key not in self._faces:
            labels = self.puppet(name, view, mirror).binding.labels
            head = labels == PART_NAMES.index("head")
            read = getattr(getattr(self.runtime, "files", None), "read", None)
            self._faces[key] = load_face_rig(identity, read, head=head[:, ::-1] if mirror else head)
        return self._faces[key]

    def _tick(self, stage: str, since: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - since

    # 3. -------------------------------------------------------------------------------
    def render_frame(self, job: Job, f: int, puppets: list[Puppet], canvas: np.ndarray,
                     masks: np.ndarray | None = None, coverage: dict | None = None) -> None:
        """Composite frame ``f`` of every character over ``canvas`` (H, W, 3) uint8, in place.

        ``masks`` ``(frames, characters, H, W)`` bool receives each character's coverage;
        ``coverage``, when given, maps ``(character, part name)`` to that part's alpha
        (H, W) uint8 (tests, debugging).
        """
        order = sorted(range(len(job.characters)), key=lambda i: (job.characters[i].z, i))
        for i in order:
            ch = job.characters[i]
            view, flip = ch.view_at(f)
            pup = puppets[i] if isinstance(puppets[i], Puppet) else puppets[i][view, flip]
            t = time.perf_counter()
            target = job.pose[f, i]
            transforms = part_transforms(pup.binding, target)
            scale = frame_scale(pup.binding.rig, target)
            held = self._held.get((id(job), i))
            if transforms is None or scale is None:
                # Nothing to hang the figure on this frame (no neck nor hips, no bone): the
                # last drawn pose of this character holds, rather than a blank frame.
                if held is None or held[0] is not pup:
                    continue
                _, transforms, scale = held
            else:
                self._held[(id(job), i)] = (pup, transforms, scale)
            self._tick("deform", t)
            alpha = masks[f, i] if masks is not None else None     # drawn into in place
            depth = job.depth[f, i] if job.depth is not None else None
            acting = job.acting[i] if job.acting else None
            face = self.face_rig(ch.name, view, flip) if acting is not None else None
            for name in frame_order(view, flip, depth):
                part = pup.binding.parts.get(name)
                if part is None:
                    continue
                cov = None
                if coverage is not None:
                    cov = coverage.setdefault((i, name), np.zeros(canvas.shape[:2], np.uint8))
                draw_part(canvas, alpha, part, transforms, scale, coverage=cov, timings=self.timings)
                if name == "head" and face is not None:   # the expression, with the head's transform
                    from cinekit.acting.puppet_face import draw_face

                    draw_face(canvas, alpha, face, acting, f, transforms, scale, flip,
                              pup.binding.labels.shape[1], coverage=cov, timings=self.timings)

    def part_coverage(self, job: Job, f: int, i: int) -> dict[str, np.ndarray]:
        """Each part's own drawn alpha ``(H, W)`` float32 (0..1) of character ``i`` at frame
        ``f`` (tests, debugging), keyed by part name."""
        puppets = self.puppets(job)
        canvas = np.zeros((job.height, job.width, 3), np.uint8)
        cov: dict = {}
        self.render_frame(job, f, puppets, canvas, coverage=cov)
        return {name: a.astype(np.float32) / 255.0 for (k, name), a in cov.items() if k == i}

    def render(self, job: Job, progress=None):
        from cinekit.engines.base import RenderResult
        from cinekit.render.background import background

        self.check_inputs(job)
        self._held = {}                       # a new clip holds nothing from the last
        puppets = self.puppets(job)
        frames = np.empty((job.frames, job.height, job.width, 3), np.uint8)
        masks = np.zeros((job.frames, len(job.characters), job.height, job.width), bool)
        read = getattr(getattr(self.runtime, "files", None), "read", None)
        base = np.clip(np.asarray(background(job.background, job.width, job.height, read=read), np.float32) + 0.5, 0, 255)
        base = base.astype(np.uint8)
        keys = key_overlay(self, job, puppets, base)      # drawn keys (cinekit.inbetween), or None
        for f in range(job.frames):
            frames[f] = base                  # drawn in place: no per-frame full-size buffers
            self.render_frame(job, f, puppets, frames[f], masks)
            if keys is not None:
                keys.apply(f, frames[f])
            if progress:
                progress(f + 1, job.frames)
        info = {"engine": "puppet", "version": self.version, "views": self.view_report(job)}
        return RenderResult(frames=frames, masks=masks, extras={}, info=info)

    def stream(self, job: Job, progress=None, mask_frames=frozenset()):
        """``render`` one frame at a time (the writer encodes each as it comes: memory does not
        grow with the clip's length); masks only on ``mask_frames``. Same pixels as ``render``."""
        from cinekit.engines.base import Frame, FrameStream
        from cinekit.render.background import background

        self.check_inputs(job)
        self._held = {}                       # a new clip holds nothing from the last
        puppets = self.puppets(job)
        read = getattr(getattr(self.runtime, "files", None), "read", None)
        base = np.clip(np.asarray(background(job.background, job.width, job.height, read=read), np.float32) + 0.5, 0, 255)
        base = base.astype(np.uint8)
        keep = frozenset(mask_frames)
        keys = key_overlay(self, job, puppets, base)      # drawn keys (cinekit.inbetween), or None

        class _OneFrame:  # stands in for render_frame's (frames, C, H, W) masks: keeps one frame's
            def __init__(self, c: int):
                self.masks = np.zeros((c, job.height, job.width), bool)

            def __getitem__(self, key):   # render_frame draws into masks[f, i] in place
                return self.masks[key[1]]

        def frames():
            for f in range(job.frames):
                image = base.copy()               # drawn in place, as in render()
                holder = _OneFrame(len(job.characters)) if f in keep else None
                self.render_frame(job, f, puppets, image, holder)
                if keys is not None:
                    keys.apply(f, image)
                yield Frame(image, {}, holder.masks if holder is not None else None)
                if progress:
                    progress(f + 1, job.frames)

        info = {"engine": "puppet", "version": self.version, "views": self.view_report(job)}
        return FrameStream(frames(), extras=(), masks=True, info=info)

    def view_report(self, job: Job) -> dict[str, dict]:
        """Per character, for the sidecar: the art drawn (frames per view drawn), the views the
        track's body asks for frame by frame (from its yaw, read off the shoulder line's width
        against the drawn rig's), and the planner's note (``JobCharacter.note``: a 3-D motion
        turned to face the camera). Where the character has no art for a view, its art stays
        a readable figure (a torso is narrowed at most to ``deform._SQUASH``, never to a
        profile): ``kept_readable`` says so."""
        from cinekit.pose.skeleton import INDEX

        rs, ls = INDEX["right_shoulder"], INDEX["left_shoulder"]
        out = {}
        for i, ch in enumerate(job.characters):
            identity = self.runtime.identities.get(ch.name)
            wanted = {"front": 0, "three_quarter": 0, "side": 0}
            drawn: dict[str, int] = {}
            for f in range(job.frames):
                view, _ = ch.view_at(f)
                drawn[view] = drawn.get(view, 0) + 1
                ref, rig = _rig_reference(identity, view)
                rest = float(np.hypot(*(rig[ls] - rig[rs])))
                pose = job.pose[f, i]
                s = frame_scale(rig, pose)
                width = float(np.hypot(*(pose[ls] - pose[rs])))
                if s is None or not np.isfinite(width) or rest <= 0:
                    continue
                r = width / (s * rest)
                if ref.view == "front":
                    wanted["front" if r > 0.8 else "three_quarter" if r > 0.45 else "side"] += 1
                else:   # the planner chose this drawing for the body's yaw (pose.views)
                    wanted[ref.view] = wanted.get(ref.view, 0) + 1
            art = {r.view for r in identity.references}
            first = _rig_reference(identity, ch.view)[0].view
            missing = sorted(v for v, n in wanted.items() if n and v not in art and v not in drawn)
            out[ch.name] = {"art": first, "drawn": drawn, "frames_by_view": wanted}
            if ch.note:
                out[ch.name]["note"] = ch.note
            if missing:
                out[ch.name]["kept_readable"] = (
                    f"no {'/'.join(missing)} art: drew the {first} art as a readable {first} figure "
                    f"in those frames rather than squashing it into a profile")
        return out
