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
from cinekit.job import Job
from cinekit.pose.skeleton import MIRROR
from cinekit.puppet.bind import Binding, bind, layer_order, missing_joints
from cinekit.puppet.deform import deform_vertices, frame_scale, part_transforms
from cinekit.puppet.mesh import build_mesh
from cinekit.puppet.raster import Texture, draw_layers


@dataclass(eq=False)
class Puppet:
    """One character ready to pose: its binding and texture (art flipped when mirrored)."""

    binding: Binding
    texture: Texture
    mirror: bool


def _rig_reference(identity, view: str):
    """(reference, rig) to draw ``view`` with: the view's reference when it has a rig of its
    own, else the first reference (the only one a rig is given for today)."""
    ref = identity.reference_for(view)
    rigs = getattr(identity, "rigs", None)  # per-reference rigs, if the identity ever has them
    if rigs and ref is not identity.references[0]:
        for r, rig in zip(identity.references, rigs, strict=False):
            if r is ref and rig is not None:
                return ref, np.asarray(rig, dtype=np.float64)
    return identity.references[0], identity.rig


def build_puppet(rgba: np.ndarray, mask: np.ndarray, rig: np.ndarray, mirror: bool = False) -> Puppet:
    """A puppet from reference art ``rgba`` (H, W, 4), figure ``mask`` (H, W) and ``rig`` (18, 2)."""
    rig = np.asarray(rig, dtype=np.float64)
    if mirror:
        w = rgba.shape[1]
        rgba = rgba[:, ::-1]
        mask = mask[:, ::-1]
        rig = rig[list(MIRROR)].copy()
        rig[:, 0] = (w - 1) - rig[:, 0]
    rgba = np.ascontiguousarray(rgba)
    mask = np.ascontiguousarray(mask)
    mesh = build_mesh(mask)
    return Puppet(binding=bind(mesh, mask, rig), texture=Texture.from_reference(rgba, mask), mirror=mirror)


class PuppetEngine:
    name = "puppet"
    kinds = frozenset({"still", "clip"})
    version = "1"

    def __init__(self, runtime):
        self.runtime = runtime
        self._puppets: dict[tuple[str, str, bool], Puppet] = {}
        self.timings: dict[str, float] = {}   # seconds per stage, accumulated over renders

    # 1. -------------------------------------------------------------------------------
    def check_inputs(self, job: Job) -> None:
        """Every character needs a rig with the body joints the puppet bends."""
        problems = []
        for ch in job.characters:
            identity = self.runtime.identities.get(ch.name)
            _ref, rig = _rig_reference(identity, ch.view)
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
        key = (name, ref.sha256, bool(mirror))
        if key not in self._puppets:
            t = time.perf_counter()
            self._puppets[key] = build_puppet(ref.rgba, ref.mask, rig, mirror)
            self._tick("build", t)
        return self._puppets[key]

    def _tick(self, stage: str, since: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - since

    # 3. -------------------------------------------------------------------------------
    def render_frame(self, job: Job, f: int, puppets: list[Puppet], canvas: np.ndarray,
                     masks: np.ndarray | None = None) -> None:
        """Composite frame ``f`` of every character over ``canvas`` (H, W, 3) float32, in place."""
        order = sorted(range(len(job.characters)), key=lambda i: (job.characters[i].z, i))
        for i in order:
            ch, pup = job.characters[i], puppets[i]
            t = time.perf_counter()
            target = job.pose[f, i]
            transforms = part_transforms(pup.binding, target)
            if transforms is None:        # no neck or hips this frame: nothing to draw
                continue
            scale = frame_scale(pup.binding.rig, target)
            verts = deform_vertices(pup.binding, transforms)
            self._tick("deform", t)
            alpha = np.zeros(canvas.shape[:2], np.float32) if masks is not None else None
            draw_layers(canvas, alpha, pup.texture, scale, pup.binding.mesh.vertices, verts,
                        pup.binding.mesh.triangles, pup.binding.tri_layer,
                        layer_order(ch.view, ch.mirror), timings=self.timings)
            if masks is not None:
                masks[f, i] = alpha > 0.5

    def part_coverage(self, job: Job, f: int, i: int, mesh_only: bool = False) -> dict[str, np.ndarray]:
        """Each part's own coverage ``(H, W)`` float32 of character ``i`` at frame ``f`` (tests,
        debugging): head and torso together, then each limb bone (with its hand or foot).

        A triangle belongs to the part with the largest summed weight of its vertices. With
        ``mesh_only`` the texture is taken as opaque: the coverage of the triangles themselves.
        """
        from cinekit.puppet.bind import PARTS

        ch = job.characters[i]
        pup = self.puppet(ch.name, ch.view, ch.mirror)
        b = pup.binding
        tri_part = b.weights[b.mesh.triangles].sum(axis=1).argmax(axis=1)
        names = ["head+torso"] + list(PARTS[3:])
        tri_group = np.maximum(tri_part - 2, 0).astype(np.int32)
        transforms = part_transforms(b, job.pose[f, i])
        out: dict[int, np.ndarray] = {}
        if transforms is not None:
            canvas = np.zeros((job.height, job.width, 3), np.float32)
            texture = Texture(rgba=np.full_like(pup.texture.rgba, 255)) if mesh_only else pup.texture
            draw_layers(canvas, None, texture, frame_scale(b.rig, job.pose[f, i]), b.mesh.vertices,
                        deform_vertices(b, transforms), b.mesh.triangles, tri_group,
                        list(range(len(names))), layer_alpha=out)
        return {names[k]: v for k, v in out.items()}

    def layer_coverage(self, job: Job, f: int, i: int) -> dict[str, np.ndarray]:
        """Each draw layer's own coverage ``(H, W)`` float32 of character ``i`` at frame ``f`` (tests, debugging)."""
        from cinekit.puppet.bind import LAYER_NAMES

        ch = job.characters[i]
        pup = self.puppet(ch.name, ch.view, ch.mirror)
        transforms = part_transforms(pup.binding, job.pose[f, i])
        out: dict[int, np.ndarray] = {}
        if transforms is not None:
            canvas = np.zeros((job.height, job.width, 3), np.float32)
            draw_layers(canvas, None, pup.texture, frame_scale(pup.binding.rig, job.pose[f, i]),
                        pup.binding.mesh.vertices, deform_vertices(pup.binding, transforms),
                        pup.binding.mesh.triangles, pup.binding.tri_layer, layer_order(ch.view, ch.mirror),
                        layer_alpha=out)
        return {LAYER_NAMES[k]: v for k, v in out.items()}

    def render(self, job: Job, progress=None):
        from cinekit.engines.base import RenderResult
        from cinekit.render.background import background

        self.check_inputs(job)
        puppets = [self.puppet(c.name, c.view, c.mirror) for c in job.characters]
        frames = np.empty((job.frames, job.height, job.width, 3), np.uint8)
        masks = np.zeros((job.frames, len(job.characters), job.height, job.width), bool)
        base = background(job.background, job.width, job.height).astype(np.float32)
        for f in range(job.frames):
            canvas = base.copy()
            self.render_frame(job, f, puppets, canvas, masks)
            t = time.perf_counter()
            np.clip(canvas + 0.5, 0, 255, out=canvas)
            frames[f] = canvas.astype(np.uint8)
            self._tick("composite", t)
            if progress:
                progress(f + 1, job.frames)
        return RenderResult(frames=frames, masks=masks, extras={}, info={"engine": "puppet", "version": self.version})

    def stream(self, job: Job, progress=None, mask_frames=frozenset()):
        """``render`` one frame at a time (the writer encodes each as it comes: memory does not
        grow with the clip's length); masks only on ``mask_frames``. Same pixels as ``render``."""
        from cinekit.engines.base import Frame, FrameStream
        from cinekit.render.background import background

        self.check_inputs(job)
        puppets = [self.puppet(c.name, c.view, c.mirror) for c in job.characters]
        read = getattr(getattr(self.runtime, "files", None), "read", None)
        base = background(job.background, job.width, job.height, read=read).astype(np.float32)
        keep = frozenset(mask_frames)

        class _OneFrame:  # stands in for render_frame's (frames, C, H, W) masks: keeps one frame's
            def __init__(self, c: int):
                self.masks = np.zeros((c, job.height, job.width), bool)

            def __setitem__(self, key, value):
                self.masks[key[1]] = value

        def frames():
            for f in range(job.frames):
                canvas = base.copy()
                holder = _OneFrame(len(job.characters)) if f in keep else None
                self.render_frame(job, f, puppets, canvas, holder)
                t = time.perf_counter()
                np.clip(canvas + 0.5, 0, 255, out=canvas)
                image = canvas.astype(np.uint8)
                self._tick("composite", t)
                yield Frame(image, {}, holder.masks if holder is not None else None)
                if progress:
                    progress(f + 1, job.frames)

        return FrameStream(frames(), extras=(), masks=True, info={"engine": "puppet", "version": self.version})
