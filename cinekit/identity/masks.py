"""The figure mask of a reference: the user's mask cleaned up, the image's alpha, or an automatic one.

Real reference art is rarely cut out for a deformer. Most character sheets are an opaque figure
on a flat backdrop (white paper, a studio wall, a solid colour) with no mask; masks that users
draw include the backdrop seen between an arm and the body. Every engine reads the mask made
here (through ``identity.core``), so the puppet never stretches a sheet of backdrop with an arm.

1. **Backdrop.** Its colour is a *plate*, a smooth (H, W) Lab image: first interpolated from the
   image border (a Coons patch of four median-filtered border profiles: robust to a figure that
   touches the border, keeps a studio gradient), then re-estimated from every backdrop pixel found
   and filled in under the figure (OpenCV inpainting at low resolution). Distances are CIE76
   Delta E on a lightly blurred image (JPEG noise); on a neutral backdrop (white paper, a studio
   wall) a darker pixel of the same chroma is a cast shadow, so lightness counts less there.
2. **Auto-mask** (no mask, no transparency): the backdrop is what a tolerance flood fill from the
   border reaches (the tolerance follows the backdrop's own noise); the figure is the rest,
   lightly smoothed (open/close), keeping the largest component(s), its edge pixels unmixed from
   the backdrop (``identity.edges``). A border that is mostly not one smooth colour means there
   is no flat backdrop: a located error, never a guess.
3. **Clean-up** (any mask): regions inside the figure that have the backdrop's colour, that no
   bone of the rig crosses, and that lie where a gap between limbs can be (between an arm and
   the body or thigh, between the legs) or open onto the outside of a sloppy mask, are backdrop:
   dropped. The figure's own backdrop-coloured areas (the paper inside a drawn outline, a loop of
   hair, a costume in the backdrop's hue) stay. Without a rig nothing is dropped by colour (only
   counted): a gap between an arm and the body cannot be told from a white shirt. Transparent
   pixels inside a user's mask are dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi

from cinekit.identity.edges import decontaminate
from cinekit.pose.skeleton import INDEX

# Tolerances in CIE76 Delta E (a just-noticeable difference is ~2.3).
MIN_TOL, MAX_TOL = 4.0, 14.0
SHADOW_WEIGHT = 0.35          # lightness weight of a darker pixel on a neutral backdrop
NEUTRAL_CHROMA = 10.0         # a backdrop with less chroma than this is "neutral" (paper, a wall)
MIN_BORDER_SHARE = 0.5        # share of the border that must be backdrop for a flat backdrop
_PLATE_SIDE = 96              # the plate is estimated at this longer side (lighting is smooth), then upsampled


class NoBackdropError(ValueError):
    """No figure on a flat backdrop to cut out (``share``: of the border that matched one)."""

    def __init__(self, share: float, empty: bool = False):
        super().__init__("the whole image is one flat colour: there is no figure on it" if empty
                         else f"only {share:.0%} of the image border is one smooth colour")
        self.share = share


@dataclass(frozen=True, eq=False)
class Backdrop:
    """The backdrop of a reference: a smooth Lab plate and how far from it still counts as backdrop."""

    plate: np.ndarray        # (H, W, 3) float32 Lab
    tol: float               # Delta E below which a pixel is backdrop
    neutral: bool            # shadows (darker, same chroma) count as backdrop
    rgb: tuple[int, int, int]  # its median colour (messages)
    border_plate: np.ndarray | None = None  # (H, W, 3) the plate interpolated from the border alone

    def distance(self, lab: np.ndarray, plate: np.ndarray | None = None) -> np.ndarray:
        """Delta E ``(...)`` of ``lab`` ``(..., 3)`` from ``plate`` (default: the plate;
        shadow-tolerant on a neutral backdrop)."""
        d = lab - (self.plate if plate is None else plate)
        dl = d[..., 0]
        if self.neutral:
            dl = np.where(dl < 0, dl * SHADOW_WEIGHT, dl)
        return np.sqrt(dl * dl + d[..., 1] ** 2 + d[..., 2] ** 2)

    def behind_distance(self, lab: np.ndarray) -> np.ndarray:
        """Delta E from what the backdrop may be *behind the figure*, where nobody saw it: the
        nearer of the fitted plate (inpainted from the backdrop around) and the border plate
        (a cast shadow beside the body pulls the first one darker than a gap that is lit)."""
        d = self.distance(lab)
        if self.border_plate is not None:
            d = np.minimum(d, self.distance(lab, self.border_plate))
        return d


@dataclass(frozen=True, eq=False)
class FigureMask:
    """A reference's figure mask and what was done to get it (``check`` reports it)."""

    mask: np.ndarray              # (H, W) bool: the figure every engine uses
    source: str                   # "mask" (the user's), "alpha" or "auto"
    dropped_background: int       # px of backdrop-coloured regions dropped from the figure
    dropped_regions: int          # how many such regions
    dropped_transparent: int      # px of the user's mask that are transparent in the image
    unsure_background: int        # px of backdrop-coloured regions kept (no rig to tell)
    backdrop: Backdrop | None     # None: transparent art, or no flat backdrop around a user mask
    dropped: np.ndarray | None = None  # (H, W) bool: everything dropped (tests, debugging)
    rgb: np.ndarray | None = None      # (H, W, 3) uint8 with the edge unmixed from the backdrop (identity.edges)
    alpha: np.ndarray | None = None    # (H, W) uint8 soft alpha along that edge; ``mask`` is alpha > 127

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB ``(H, W, 3)`` uint8 -> Lab float32, blurred by one pixel (JPEG noise, dithering)."""
    lab = cv2.cvtColor(rgb[..., :3].astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return cv2.GaussianBlur(lab, (0, 0), 1.0)


def _border_band(h: int, w: int) -> tuple[int, int]:
    """(inset, depth) of the band the border profiles are read from: a 1-2 px frame line
    (scans, exported sheets) is skipped."""
    depth = max(3, round(0.01 * min(h, w)))
    return 3, depth


def coons_plate(lab: np.ndarray) -> np.ndarray:
    """A smooth ``(H, W, 3)`` plate interpolated from the four border profiles (Coons patch).

    Each profile is median-filtered along the border (a tenth of its length), so a figure that
    touches the border (feet on the bottom edge) does not leak its colour into the plate.
    """
    h, w = lab.shape[:2]
    inset, depth = _border_band(h, w)

    def profile(band: np.ndarray, axis: int) -> np.ndarray:
        p = np.median(band, axis=axis)
        return ndi.median_filter(p, size=(max(5, len(p) // 10) | 1, 1), mode="mirror")

    top = profile(lab[inset:inset + depth], 0)
    bottom = profile(lab[h - inset - depth:h - inset], 0)
    left = profile(lab[:, inset:inset + depth], 1)
    right = profile(lab[:, w - inset - depth:w - inset], 1)
    # Evaluated on every 4th pixel (the profiles are smooth on that scale), then upsampled.
    xs, ys = np.arange(0, w, 4), np.arange(0, h, 4)
    top, bottom, left, right = top[xs], bottom[xs], left[ys], right[ys]
    u = (xs / max(w - 1, 1)).astype(np.float32)[None, :, None]
    v = (ys / max(h - 1, 1)).astype(np.float32)[:, None, None]
    corners = ((1 - u) * (1 - v) * top[0] + u * (1 - v) * top[-1] + (1 - u) * v * bottom[0] + u * v * bottom[-1])
    plate = (1 - u) * left[:, None] + u * right[:, None] + (1 - v) * top[None] + v * bottom[None] - corners
    return cv2.resize(plate.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def fitted_plate(lab: np.ndarray, known: np.ndarray) -> np.ndarray:
    """A smooth plate from the pixels ``known`` ``(H, W)`` bool to be backdrop, filled in elsewhere.

    Averaged per cell of a ~48 px grid over known pixels only (coarse on purpose: a plate that
    follows every detail would learn a leak into a backdrop-hued costume and leak further), the unknown cells inpainted
    (Telea), smoothed and upsampled: the colour the backdrop would have behind the figure.
    """
    h, w = known.shape
    f = min(1.0, _PLATE_SIDE / max(h, w))
    sw, sh = max(4, round(w * f)), max(4, round(h * f))
    k = known.astype(np.float32)
    share = cv2.resize(k, (sw, sh), interpolation=cv2.INTER_AREA)
    sums = cv2.resize(lab * k[..., None], (sw, sh), interpolation=cv2.INTER_AREA)
    good = share > 0.5
    small = sums / np.maximum(share, 1e-6)[..., None]
    hole = (~good).astype(np.uint8)
    if hole.any() and good.any():
        small = np.stack([cv2.inpaint(np.ascontiguousarray(small[..., c]), hole, 3, cv2.INPAINT_TELEA)
                          for c in range(3)], axis=-1)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)


def _border(h: int, w: int) -> np.ndarray:
    inset, depth = _border_band(h, w)
    band = np.zeros((h, w), bool)
    d = inset + depth
    band[:d], band[-d:], band[:, :d], band[:, -d:] = True, True, True, True
    return band


def _backdrop(plate: np.ndarray, lab: np.ndarray, known: np.ndarray) -> Backdrop:
    """A Backdrop on ``plate`` whose tolerance follows the noise of the ``known`` backdrop pixels."""
    known = known if known.any() else np.ones_like(known)
    sample = np.flatnonzero(known.ravel())[::7]        # statistics on a seventh of the pixels
    at_plate, at_lab = plate.reshape(-1, 3)[sample], lab.reshape(-1, 3)[sample]
    med = np.median(at_plate, axis=0)
    neutral = float(np.hypot(med[1], med[2])) < NEUTRAL_CHROMA
    d = Backdrop(plate, MIN_TOL, neutral, (0, 0, 0)).distance(at_lab, at_plate)
    noise = float(np.percentile(d, 75))
    tol = float(np.clip(MIN_TOL + 3.0 * noise, MIN_TOL, MAX_TOL))
    rgb = cv2.cvtColor(med.reshape(1, 1, 3).astype(np.float32), cv2.COLOR_LAB2RGB).reshape(3)
    return Backdrop(plate, tol, neutral, tuple(int(round(c)) for c in np.clip(rgb * 255, 0, 255)))


def _flood(lab: np.ndarray, backdrop: Backdrop, seeds: np.ndarray) -> np.ndarray:
    """Pixels within tolerance of the backdrop that are connected to a ``seeds`` pixel."""
    near = backdrop.distance(lab) < backdrop.tol
    labels, _ = ndi.label(near)
    keep = np.unique(labels[seeds & near])
    return np.isin(labels, keep[keep > 0])


def find_backdrop(lab: np.ndarray) -> tuple[np.ndarray, Backdrop]:
    """(backdrop pixels ``(H, W)`` bool, Backdrop) of an opaque image; NoBackdropError if not flat."""
    h, w = lab.shape[:2]
    border = _border(h, w)
    border_plate = coons_plate(lab)
    backdrop = _backdrop(border_plate, lab, border)
    bg = _flood(lab, backdrop, border)
    for _ in range(2):   # refit on every backdrop pixel found: the plate then follows gradients inside
        backdrop = _backdrop(fitted_plate(lab, bg), lab, bg)
        bg = _flood(lab, backdrop, border)
    backdrop = dataclasses.replace(backdrop, border_plate=border_plate)
    share = float(bg[border].mean())
    if share < MIN_BORDER_SHARE:
        raise NoBackdropError(share)
    if (~bg).sum() < 1e-3 * bg.size:
        raise NoBackdropError(share, empty=True)
    return bg, backdrop


def _smooth(fig: np.ndarray) -> np.ndarray:
    """Open then close by a ~1 px disc (specks, 1 px frame lines, ragged edges); keep the
    largest component and any other at least 3 % of its size (a hand or a prop drawn apart)."""
    r = max(1, round(min(fig.shape) / 400))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    out = cv2.morphologyEx(fig.astype(np.uint8), cv2.MORPH_OPEN, disc)
    out = cv2.morphologyEx(out, cv2.MORPH_CLOSE, disc).astype(bool)
    labels, n = ndi.label(out)
    if n > 1:
        sizes = ndi.sum(out, labels, np.arange(1, n + 1))
        keep = np.flatnonzero(sizes >= 0.03 * sizes.max()) + 1
        out = np.isin(labels, keep)
    return out


def bone_groups(rig: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The rig's bones drawn 3 px wide ``(H, W)`` uint8: 0 = none, else 1 + the index of the body
    part in head, torso, right arm, left arm, right leg, left leg. Limbs are extended by a
    quarter past the wrist or ankle (into the hand or foot); the torso is the spine and the
    shoulder and hip lines; the head bone runs from the neck past the nose (or up the spine)."""
    out = np.zeros(shape, np.uint8)
    rig = np.asarray(rig, dtype=np.float64)
    j = lambda n: rig[INDEX[n]]  # noqa: E731
    neck, hips = j("neck"), 0.5 * (j("right_hip") + j("left_hip"))
    nose = j("nose")
    head_end = neck + 1.5 * (nose - neck) if np.isfinite(nose).all() else neck + 0.5 * (neck - hips)
    groups = [
        [(neck, head_end)],
        [(neck, hips), (j("right_shoulder"), j("left_shoulder")), (j("right_hip"), j("left_hip"))],
    ]
    for limb in ("shoulder", "hip"):
        for side in ("right", "left"):
            a, b, c = (j(f"{side}_{n}") for n in (("shoulder", "elbow", "wrist") if limb == "shoulder"
                                                   else ("hip", "knee", "ankle")))
            groups.append([(a, b), (b, c), (c, c + 0.25 * (c - b))])
    for g, segs in enumerate(groups):
        for a, b in segs:
            if np.isfinite(a).all() and np.isfinite(b).all():
                cv2.line(out, (int(round(a[0])), int(round(a[1]))), (int(round(b[0])), int(round(b[1]))), g + 1, 3)
    return out


def gap_zones(rig: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Where a gap between limbs can be ``(H, W)`` bool: between each arm and the body or the
    thigh beside it (the polygon shoulder, elbow, wrist, a quarter forearm past the wrist,
    same-side knee, hip) and between the legs (hips, knees, ankles)."""
    out = np.zeros(shape, np.uint8)
    rig = np.asarray(rig, dtype=np.float64)
    j = lambda n: rig[INDEX[n]]  # noqa: E731
    polys = [np.array([j(f"{s}_shoulder"), j(f"{s}_elbow"), j(f"{s}_wrist"),
                       j(f"{s}_wrist") + 0.25 * (j(f"{s}_wrist") - j(f"{s}_elbow")), j(f"{s}_knee"), j(f"{s}_hip")])
             for s in ("right", "left")]
    polys.append(np.array([j("right_hip"), j("right_knee"), j("right_ankle"),
                           j("left_ankle"), j("left_knee"), j("left_hip")]))
    for poly in polys:
        if np.isfinite(poly).all():
            cv2.fillPoly(out, [np.round(poly).astype(np.int32)], 1)
    return out.astype(bool)


def backdrop_regions(fig: np.ndarray, lab: np.ndarray, backdrop: Backdrop, rig: np.ndarray | None):
    """Backdrop-coloured regions inside ``fig``: (to drop, kept for want of a rig, region count).

    A region is a connected core of pixels within 0.7 of the tolerance (so that it does not run
    on into the shaded rim of a backdrop-hued costume and reach a bone there), of at least
    ~0.02 % of the figure and within half the tolerance on average. With a rig it is dropped when
    no bone runs through it and either it opens onto the outside of the figure (a halo of a
    generous mask) or it lies mostly where a gap between limbs can be (``gap_zones``: between an
    arm and the body, between the legs); a loop of hair or the paper inside a drawn hand stays. The dropped area
    then grows by up to two pixels into the anti-aliased rim within the full tolerance, and
    takes the specks of noise it encloses.
    """
    d = backdrop.behind_distance(lab)
    core = fig & (d < 0.7 * backdrop.tol)
    core = cv2.morphologyEx(core.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    labels, n = ndi.label(core)
    if n == 0:
        return np.zeros_like(fig), np.zeros_like(fig), 0
    idx = np.arange(1, n + 1)
    sizes = ndi.sum(core, labels, idx)
    big = (sizes >= max(24, 2e-4 * fig.sum())) & (ndi.mean(d, labels, idx) < 0.5 * backdrop.tol)
    if rig is None:
        return np.zeros_like(fig), np.isin(labels, idx[big]), 0
    bones = bone_groups(rig, fig.shape)
    # A bone crosses a region when it runs through its inside, not along its rim: a hand-placed
    # joint a few pixels off the middle of an arm must not claim the gap next to the arm.
    inside = cv2.erode(core.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    crossed = np.zeros(n + 1, bool)
    crossed[np.unique(labels[(bones > 0) & inside])] = True
    zones = gap_zones(rig, fig.shape)
    outside = ~cv2.dilate(fig.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    near_outside = cv2.dilate(outside.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    in_zone = ndi.mean(zones, labels, idx)
    touches_outside = ndi.maximum(near_outside, labels, idx) > 0
    drop_ids = idx[big & ~crossed[1:] & (touches_outside | (in_zone >= 0.5))]
    drop = np.isin(labels, drop_ids)
    if drop.any():
        rim = cv2.dilate(drop.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        drop |= rim & fig & (d < backdrop.tol)
        drop = ndi.binary_fill_holes(drop) & fig     # specks of JPEG noise inside a gap go with it
    return drop, np.zeros_like(fig), len(drop_ids)


_MEMO: OrderedDict[bytes, FigureMask] = OrderedDict()
_MEMO_LOCK = threading.Lock()


def figure_mask(rgba: np.ndarray, user_mask: np.ndarray | None = None, rig: np.ndarray | None = None,
                cleanup: bool = True) -> FigureMask:
    """``_figure_mask``, remembered for the last few inputs: ``cinekit check`` and the identity
    loader of the same run ask for the same mask (the result is shared: do not modify it)."""
    key = hashlib.sha1(np.ascontiguousarray(rgba).tobytes())
    key.update(b"-" if user_mask is None else np.packbits(user_mask).tobytes())
    key.update(b"-" if rig is None else np.asarray(rig, np.float64).tobytes())
    key.update(bytes([cleanup]))
    digest = key.digest()
    with _MEMO_LOCK:
        if digest in _MEMO:
            _MEMO.move_to_end(digest)
            return _MEMO[digest]
    result = _figure_mask(rgba, user_mask, rig, cleanup)
    with _MEMO_LOCK:
        _MEMO[digest] = result
        while len(_MEMO) > 8:
            _MEMO.popitem(last=False)
    return result


def _figure_mask(rgba: np.ndarray, user_mask: np.ndarray | None, rig: np.ndarray | None,
                 cleanup: bool) -> FigureMask:
    """The figure mask of reference art ``rgba`` ``(H, W, 4)`` uint8 (see the module docstring).

    ``user_mask`` ``(H, W)`` bool is the user's mask, if any; ``rig`` ``(18, 2)`` pixels tells
    gaps between limbs from the figure's own backdrop-coloured areas; ``cleanup=False`` keeps the
    user's mask (or the alpha, or the flood fill) as it is. Raises NoBackdropError for an opaque
    image without mask and without a flat backdrop.
    """
    alpha = rgba[..., 3]
    transparent = alpha <= 127
    if user_mask is not None:
        fig = user_mask.astype(bool).copy()
        dropped_alpha = fig & transparent if cleanup else np.zeros_like(fig)
        fig &= ~dropped_alpha
        backdrop, lab = None, None
        if cleanup and transparent.mean() < 0.05:   # opaque art: read the backdrop around the mask
            outside = ~cv2.dilate(user_mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
            if outside.sum() > 0.05 * outside.size:
                lab = to_lab(rgba)
                candidate = _backdrop(fitted_plate(lab, outside), lab, outside)
                # The backdrop must be flat: most of what lies outside the mask matches the plate.
                if (candidate.distance(lab)[outside] < candidate.tol).mean() > 0.8:
                    backdrop = dataclasses.replace(candidate, border_plate=coons_plate(lab))
        result = dict(source="mask", dropped_transparent=int(dropped_alpha.sum()))
        dropped = dropped_alpha
    elif transparent.any():
        return FigureMask(~transparent, "alpha", 0, 0, 0, 0, None)
    else:
        lab = to_lab(rgba)
        bg, backdrop = find_backdrop(lab)
        fig = _smooth(~bg)
        fig |= ndi.binary_fill_holes(fig) & ~bg   # specks the smoothing opened that are not backdrop
        result = dict(source="auto", dropped_transparent=0)
        dropped = np.zeros_like(fig)
    if backdrop is None or not cleanup:
        return FigureMask(fig, dropped_background=0, dropped_regions=0, unsure_background=0,
                          backdrop=backdrop, dropped=dropped, **result)
    drop, unsure, n = backdrop_regions(fig, lab, backdrop, rig)
    fig &= ~drop
    rgb = alpha = None
    if result["source"] == "auto":
        # Cut by us from a flat backdrop: unmix the edge, or the old backdrop outlines the figure.
        # (A user's mask is kept as drawn: its edge is the user's decision.)
        rgb, alpha = decontaminate(rgba[..., :3], fig, backdrop.plate)
        fig &= alpha > 127
    return FigureMask(fig, dropped_background=int(drop.sum()), dropped_regions=n,
                      unsure_background=int(unsure.sum()), backdrop=dataclasses.replace(backdrop, border_plate=None),
                      dropped=dropped | drop, rgb=rgb, alpha=alpha, **result)
