"""The previz engine: OpenPose control maps and a flat-mannequin animatic. No weights, no torch.

Each character is a mannequin in its own palette (dominant colours of its reference art), so
a director can read who is where; shot id, time code and prompt are burned in. The control
maps are exactly what the diffusers engines feed their ControlNet.
"""

from __future__ import annotations

import textwrap

import numpy as np

from cinekit.job import Job
from cinekit.pose.draw import draw_control_frames
from cinekit.pose.skeleton import INDEX
from cinekit.render.background import background
from cinekit.spec.validate import PLACEHOLDER

_LIMB_CHAINS = (
    ("right_shoulder", "right_elbow", "right_wrist"), ("left_shoulder", "left_elbow", "left_wrist"),
    ("right_hip", "right_knee", "right_ankle"), ("left_hip", "left_knee", "left_ankle"),
)
_FONT_CACHE: dict[int, object] = {}


def _font(size: int):
    from PIL import ImageFont

    if size not in _FONT_CACHE:
        try:
            _FONT_CACHE[size] = ImageFont.load_default(size=size)
        except TypeError:  # Pillow without FreeType sizes
            _FONT_CACHE[size] = ImageFont.load_default()
    return _FONT_CACHE[size]


# Where on the reference art each mannequin part takes its colour: joint pairs whose segment
# is sampled (thigh/upper-arm colours, not the hands), and the head above the neck.
_PART_SAMPLES = {
    "torso": (("neck", "right_hip"), ("neck", "left_hip")),
    "arms": (("right_shoulder", "right_elbow"), ("left_shoulder", "left_elbow")),
    "legs": (("right_hip", "right_knee"), ("left_hip", "left_knee")),
    "head": (("neck", "nose"),),
}


def part_colours(identity) -> dict[str, tuple[int, int, int]]:
    """Colours for the mannequin's torso/arms/legs/head read from the character's own art.

    With a rig, each part takes the dominant colour of the reference around its bones (so a
    silver-haired girl gets a silver head); without one, the palette's first colours stand in.
    """
    from cinekit.identity.core import dominant_colours

    palette = identity.palette or [(120, 120, 140)]
    fallback = {"torso": palette[0], "arms": palette[min(1, len(palette) - 1)],
                "legs": palette[min(1, len(palette) - 1)], "head": palette[min(2, len(palette) - 1)]}
    rig, ref = identity.rig, identity.references[0]
    if rig is None:
        return fallback
    h, w = ref.mask.shape
    yy, xx = np.mgrid[0:h, 0:w]
    out = {}
    for part, segments in _PART_SAMPLES.items():
        region = np.zeros((h, w), bool)
        for a, b in segments:
            pa, pb = rig[INDEX[a]], rig[INDEX[b]]
            if not (np.isfinite(pa).all() and np.isfinite(pb).all()):
                continue
            length = float(np.linalg.norm(pb - pa))
            centre = pa + (pb - pa) * (0.5 if part != "head" else 1.3)  # the head sits above the nose
            region |= (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= (0.35 * length) ** 2
        region &= ref.mask
        out[part] = dominant_colours(ref.rgba, region, k=1)[0] if region.any() else fallback[part]
    return out


def draw_mannequin(canvas: np.ndarray, pose: np.ndarray, colours: dict[str, tuple[int, int, int]],
                   mask: np.ndarray | None = None) -> None:
    """Draw one flat mannequin for ``pose`` (18, 2) pixels onto ``canvas`` (H, W, 3) in place.

    Sizes follow the pose's own scale (shoulder-to-hip length), so a close-up gets thick limbs.
    """
    import cv2

    p = {name: pose[i] for name, i in INDEX.items()}
    ok = {name: bool(np.isfinite(xy).all()) for name, xy in p.items()}
    torso_len = np.nanmean([np.linalg.norm(p["neck"] - p[h]) for h in ("right_hip", "left_hip") if ok[h]] or [40.0])
    width = max(2, int(round(torso_len * 0.22)))
    body, arms, legs, skin = colours["torso"], colours["arms"], colours["legs"], colours["head"]
    outline = (30, 30, 40)

    def pt(name):
        return tuple(int(round(v * 4)) for v in p[name])  # 2 bits of sub-pixel precision

    layers = [canvas] + ([mask] if mask is not None else [])
    for layer in layers:
        colour = (lambda c: 255) if layer is mask else (lambda c: c)
        # Far limbs first (left side of the character), then torso, near limbs, head.
        for chain, fill in ((_LIMB_CHAINS[1], arms), (_LIMB_CHAINS[3], legs)):
            _chain(cv2, layer, chain, ok, pt, width, colour(fill), colour(outline))
        torso = [n for n in ("neck", "right_shoulder", "right_hip", "left_hip", "left_shoulder") if ok[n]]
        if len(torso) >= 3:
            poly = np.array([pt(n) for n in ("right_shoulder", "right_hip", "left_hip", "left_shoulder") if ok[n]], np.int32)
            cv2.fillPoly(layer, [poly], colour(body), cv2.LINE_AA, shift=2)
            cv2.polylines(layer, [poly], True, colour(outline), max(1, width // 6), cv2.LINE_AA, shift=2)
        for chain, fill in ((_LIMB_CHAINS[0], arms), (_LIMB_CHAINS[2], legs)):
            _chain(cv2, layer, chain, ok, pt, width, colour(fill), colour(outline))
        if ok["nose"] and ok["neck"]:
            radius = max(3, int(np.linalg.norm(p["nose"] - p["neck"]) * 0.75))
            cv2.line(layer, pt("neck"), pt("nose"), colour(skin), width, cv2.LINE_AA, shift=2)
            cv2.circle(layer, pt("nose"), radius * 4, colour(skin), -1, cv2.LINE_AA, shift=2)
            cv2.circle(layer, pt("nose"), radius * 4, colour(outline), max(1, width // 6), cv2.LINE_AA, shift=2)


def _chain(cv2, layer, chain, ok, pt, width, fill, outline) -> None:
    for a, b in zip(chain, chain[1:]):
        if ok[a] and ok[b]:
            cv2.line(layer, pt(a), pt(b), outline, width + 2, cv2.LINE_AA, shift=2)
            cv2.line(layer, pt(a), pt(b), fill, width, cv2.LINE_AA, shift=2)


def burn_in(frame: np.ndarray, job: Job, index: int) -> np.ndarray:
    """Shot id, time code and prompt on translucent bars (returns a new frame)."""
    from PIL import Image, ImageDraw

    h, w = frame.shape[:2]
    size = max(10, h // 32)
    font = _font(size)
    im = Image.fromarray(frame)
    overlay = Image.new("RGBA", im.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    seconds = index / job.fps
    code = f"{int(seconds // 60):02d}:{seconds % 60:05.2f}  f{index + 1}/{job.frames}" if job.kind == "clip" else "still"
    draw.rectangle((0, 0, w, size + 8), fill=(0, 0, 0, 150))
    draw.text((6, 4), f"{job.shot_id}  {job.camera}", font=font, fill=(255, 255, 255, 255))
    tw = draw.textlength(code, font=font)
    draw.text((w - tw - 6, 4), code, font=font, fill=(255, 255, 255, 255))
    shown = PLACEHOLDER.sub(lambda m: m.group(1), job.raw_prompt or job.prompt)  # "{mika}" -> "mika"
    lines = textwrap.wrap(shown, width=max(20, int(w / (size * 0.55))))[:2]
    if lines:
        bar = (size + 4) * len(lines) + 8
        draw.rectangle((0, h - bar, w, h), fill=(0, 0, 0, 150))
        for i, line in enumerate(lines):
            draw.text((6, h - bar + 4 + i * (size + 4)), line, font=font, fill=(255, 255, 255, 255))
    im = Image.alpha_composite(im.convert("RGBA"), overlay).convert("RGB")
    return np.asarray(im)


class PrevizEngine:
    name = "previz"
    kinds = frozenset({"still", "clip"})
    version = "1"
    uses_models = False  # weight-free: a model set is never part of its jobs (keys, labels)

    def __init__(self, runtime):
        self.runtime = runtime
        self._part_colours: dict[str, dict] = {}

    def _colours(self, name: str) -> dict[str, tuple[int, int, int]]:
        if name not in self._part_colours:
            self._part_colours[name] = part_colours(self.runtime.identities.get(name))
        return self._part_colours[name]

    def check_inputs(self, job: Job) -> None:
        """Previz draws any pose; nothing can be missing once the spec validated."""

    def render(self, job: Job, progress=None):
        from cinekit.engines.base import collect

        return collect(self.stream(job, progress, mask_frames=range(job.frames)), job.frames)

    def stream(self, job: Job, progress=None, mask_frames=frozenset()):
        """Frames one at a time (the writer encodes each as it comes); masks on ``mask_frames``."""
        from cinekit.engines.base import FrameStream

        colours = [self._colours(c.name) for c in job.characters]  # before the first frame: errors early
        keep = frozenset(mask_frames)
        read = getattr(getattr(self.runtime, "files", None), "read", None)
        backdrop = background(job.background, job.width, job.height, read=read)

        def frames():
            from cinekit.engines.base import Frame

            order = sorted(range(len(job.characters)), key=lambda i: (job.characters[i].z, i))
            for f in range(job.frames):
                canvas = backdrop.copy()
                masks = np.zeros((len(job.characters), job.height, job.width), bool) if f in keep else None
                for i in order:  # a mask is drawn only on the frames whose masks are kept
                    mask = np.zeros((job.height, job.width), np.uint8) if masks is not None else None
                    draw_mannequin(canvas, job.pose[f, i], colours[i], mask)
                    if job.acting and job.acting[i] is not None:   # the face acts (cinekit.acting)
                        from cinekit.acting.face_keypoints import draw_mannequin_face

                        draw_mannequin_face(canvas, job.pose[f, i], job.acting[i], f)
                    if masks is not None:
                        masks[i] = mask > 127
                control = draw_control_frames(job.pose[f:f + 1], job.width, job.height)[0]
                if job.acting:
                    from cinekit.acting.face_keypoints import draw_faces

                    control = draw_faces(control[None], job, first=f)[0]
                yield Frame(burn_in(canvas, job, f), {"control": control}, masks)
                if progress:
                    progress(f + 1, job.frames)

        return FrameStream(frames(), extras=("control",), masks=True)
