"""The training images of a character: its references, its puppet in new poses, augmented.

Sources (``Source``): every reference (art + figure mask from ``identity.masks``, view from the
YAML) and, when the character has a rig, the puppet engine's renders of the front art in poses
from the bundled library (new silhouettes, same pixels: identity by construction). Each source
gets ``variants`` augmented images (``augment``), drawn from one ``numpy`` generator seeded by
the run's seed, so a resumed run rebuilds exactly the same pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cinekit.train.augment import AugmentSettings, augment
from cinekit.train.captions import caption

# Front-view library poses that read well on front art (no side-view poses: the puppet would
# draw front art in a profile's joints).
PUPPET_POSES = ("wave", "cheer", "t_pose", "a_pose", "idle", "reach", "jump", "point", "arms_crossed", "think")


@dataclass(frozen=True, eq=False)
class Source:
    """One image of the character before augmentation."""

    label: str               # "refs/mika_front.png" or "puppet:wave"
    view: str
    rgb: np.ndarray          # (H, W, 3) uint8
    mask: np.ndarray         # (H, W) bool: the figure


@dataclass(eq=False)
class Pool:
    """The fixed training set: ``images`` (N, S, S, 3) uint8 and one caption per image."""

    images: np.ndarray
    captions: list[str]
    sources: list[str]
    info: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.captions)


def reference_sources(identity) -> list[Source]:
    out = []
    for ref in identity.references:
        rgba = ref.rgba
        rel = ref.path.name
        out.append(Source(rel, ref.view, np.ascontiguousarray(rgba[..., :3]), ref.mask.copy()))
    return out


def _pose_pixels(body: np.ndarray, rig: np.ndarray, height_px: float) -> np.ndarray:
    """A body-space pose (18, 2) in the rig's pixels: scaled by the rig's height, its lowest
    ankle on the rig's floor and its centre on the rig's centre."""
    px = body * height_px
    ok = np.isfinite(px).all(axis=1) & np.isfinite(rig).all(axis=1)
    shift_x = np.nanmean(rig[ok, 0]) - np.nanmean(px[ok, 0])
    ankles = [10, 13]
    shift_y = np.nanmax(rig[ankles, 1]) - np.nanmax(px[ankles, 1])
    return px + [shift_x, shift_y]


def puppet_sources(runtime, name: str, count: int) -> list[Source]:
    """The puppet engine's renders of ``name`` in ``count`` library poses (none without a rig).

    Each render is on a canvas 1.5x the front reference (room for raised arms), its figure mask
    is the engine's own coverage mask."""
    if count <= 0:
        return []
    from cinekit.engines.puppet import PuppetEngine
    from cinekit.job import Job, JobCharacter
    from cinekit.pose.library import load_library
    from cinekit.pose.retarget import lengths_from_rig, retarget

    identity = runtime.identities.get(name)
    if identity.rig is None:
        return []
    try:
        lengths, height_px = lengths_from_rig(identity.rig)
    except ValueError:
        return []
    library = load_library()
    ref = identity.references[0]
    h0, w0 = ref.mask.shape
    W, H = int(w0 * 1.5), int(h0 * 1.25)
    rig = identity.rig + [(W - w0) / 2, H - h0]
    engine = PuppetEngine(runtime)
    out = []
    for pose_name in PUPPET_POSES[:count]:
        body = retarget(np.asarray(library[pose_name], np.float64), lengths, rest=identity.rig)
        pose = _pose_pixels(body, rig, height_px)
        job = Job(shot_id=f"train-{pose_name}", shotlist="", kind="still", engine="puppet", width=W, height=H,
                  fps=1.0, frames=1, seed=0, steps=1, guidance=0.0, prompt="", negative="",
                  characters=(JobCharacter(name=name, spec_path=str(identity.spec_path), position=0.5, view=ref.view),),
                  pose=pose[None, None], output="", background=(255, 255, 255))
        result = engine.render(job)
        mask = result.masks[0, 0]
        if mask.sum() < 0.05 * ref.mask.sum():    # the pose left the canvas or drew nothing
            continue
        out.append(Source(f"puppet:{pose_name}", ref.view, result.frames[0], mask))
    return out


def build_pool(sources: list[Source], *, size: int, variants: int, seed: int, trigger: str, description: str,
               settings: AugmentSettings = AugmentSettings()) -> Pool:
    """``variants`` augmented images of every source at ``size`` x ``size``, seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    images, captions, labels, info = [], [], [], []
    for src in sources:
        for _ in range(variants):
            img, what = augment(src.rgb, src.mask, size, rng, settings)
            images.append(img)
            captions.append(caption(trigger, src.view, description))
            labels.append(src.label)
            info.append(what)
    return Pool(np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8), captions, labels, info)
