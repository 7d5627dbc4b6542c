"""Palette consistency: CIEDE2000 between the dominant colours of a reference and an output region.

Pure numpy; no I/O. Colours are sRGB uint8 in, CIELAB (D65, 2 deg observer) inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# D65 reference white (2 degree observer), XYZ scaled to Y = 1.
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]])


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB ``(..., 3)`` uint8 (or floats in [0, 1]) -> CIELAB ``(..., 3)`` float64 (IEC 61966-2-1, CIE 1976)."""
    c = np.asarray(rgb)
    c = c.astype(np.float64) / 255.0 if c.dtype == np.uint8 else c.astype(np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _SRGB_TO_XYZ.T / _WHITE_D65
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def delta_e_ciede2000(lab1: np.ndarray, lab2: np.ndarray, kL: float = 1.0, kC: float = 1.0,
                      kH: float = 1.0) -> np.ndarray:
    """CIEDE2000 colour difference of ``(..., 3)`` Lab arrays (broadcasting), Sharma, Wu & Dalal 2005, eqs. 1-22."""
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]

    # 1. a' with the G correction, C' and h' (degrees in [0, 360); h' = 0 where a' = b = 0).
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    c7 = c_bar ** 7
    g = 0.5 * (1 - np.sqrt(c7 / (c7 + 25.0 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.where((a1p == 0) & (b1 == 0), 0.0, np.degrees(np.arctan2(b1, a1p)) % 360)
    h2p = np.where((a2p == 0) & (b2 == 0), 0.0, np.degrees(np.arctan2(b2, a2p)) % 360)

    # 2. Differences dL', dC', dH'.
    dLp = L2 - L1
    dCp = c2p - c1p
    cprod = c1p * c2p
    dh = h2p - h1p
    dhp = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dhp = np.where(cprod == 0, 0.0, dhp)
    dHp = 2 * np.sqrt(cprod) * np.sin(np.radians(dhp) / 2)

    # 3. Weighting functions.
    Lp_bar = (L1 + L2) / 2
    Cp_bar = (c1p + c2p) / 2
    hsum = h1p + h2p
    hp_bar = np.where(np.abs(h1p - h2p) <= 180, hsum / 2,
                      np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2))
    hp_bar = np.where(cprod == 0, hsum, hp_bar)
    t = (1 - 0.17 * np.cos(np.radians(hp_bar - 30)) + 0.24 * np.cos(np.radians(2 * hp_bar))
         + 0.32 * np.cos(np.radians(3 * hp_bar + 6)) - 0.20 * np.cos(np.radians(4 * hp_bar - 63)))
    d_theta = 30 * np.exp(-(((hp_bar - 275) / 25) ** 2))
    cp7 = Cp_bar ** 7
    r_c = 2 * np.sqrt(cp7 / (cp7 + 25.0 ** 7))
    l50 = (Lp_bar - 50) ** 2
    s_l = 1 + 0.015 * l50 / np.sqrt(20 + l50)
    s_c = 1 + 0.045 * Cp_bar
    s_h = 1 + 0.015 * Cp_bar * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c

    tl, tc, th = dLp / (kL * s_l), dCp / (kC * s_c), dHp / (kH * s_h)
    return np.sqrt(tl ** 2 + tc ** 2 + th ** 2 + r_t * tc * th)


def _lloyd(lab: np.ndarray, k: int, iterations: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """One k-means run from a k-means++ start: (centres, labels, inertia)."""
    centres = [lab[rng.integers(len(lab))]]
    d2 = ((lab - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        if d2.sum() == 0:
            break
        centres.append(lab[rng.choice(len(lab), p=d2 / d2.sum())])
        d2 = np.minimum(d2, ((lab - centres[-1]) ** 2).sum(axis=1))
    centres = np.array(centres)
    for _ in range(iterations):
        labels = ((lab[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
        new = np.array([lab[labels == j].mean(axis=0) if (labels == j).any() else centres[j]
                        for j in range(len(centres))])
        done = np.allclose(new, centres, atol=1e-4)
        centres = new
        if done:
            break
    dist = ((lab[:, None, :] - centres[None]) ** 2).sum(axis=2)
    labels = dist.argmin(axis=1)
    return centres, labels, float(dist.min(axis=1).sum())


def kmeans_lab(lab: np.ndarray, k: int = 8, iterations: int = 30, max_samples: int = 20000,
               seed: int = 0, restarts: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Dominant colours of ``lab`` ``(N, 3)``: ``(centres (k', 3), shares (k',))``, largest share first.

    Lloyd's k-means in Lab from k-means++ starts, the best of ``restarts`` runs (lowest
    inertia), all from a fixed seed: the same pixels give the same palette. Empty clusters
    are dropped, so ``k' <= k``.
    """
    lab = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
    if len(lab) == 0:
        raise ValueError("no pixels to cluster (empty region)")
    rng = np.random.default_rng(seed)
    if len(lab) > max_samples:
        lab = lab[rng.choice(len(lab), max_samples, replace=False)]
    k = min(k, len(np.unique(lab.round(3), axis=0)))
    centres, labels, _ = min((_lloyd(lab, k, iterations, rng) for _ in range(max(1, restarts))),
                             key=lambda run: run[2])
    counts = np.bincount(labels, minlength=len(centres)).astype(np.float64)
    keep = counts > 0
    centres, shares = centres[keep], counts[keep] / counts.sum()
    order = np.lexsort((centres[:, 0], -shares))
    return centres[order], shares[order]


REFERENCE_COLOURS = 8    # k-means clusters of the reference
OUTPUT_COLOURS = 8       # k-means clusters of the output region (same k: identical regions give 0)
MAX_PIXELS = 50000       # pixels sampled per region before clustering (deterministic)


@dataclass(frozen=True)
class PaletteMatch:
    """The result of matching two palettes: one number plus what it is made of."""

    delta_e: float                  # output-share-weighted mean CIEDE2000 over matched pairs
    reference: np.ndarray           # (kr, 3) Lab centres of the reference
    output: np.ndarray              # (ko, 3) Lab centres of the output region
    reference_shares: np.ndarray    # (kr,)
    output_shares: np.ndarray       # (ko,)
    pairs: list[tuple[int, int, float]]  # (reference index, output index, delta E)


def match_palettes(ref_centres: np.ndarray, ref_shares: np.ndarray, out_centres: np.ndarray,
                   out_shares: np.ndarray) -> PaletteMatch:
    """Match each output colour to its own reference colour (Hungarian, scipy) and average the ΔE.

    The question asked is "are the output's colours the reference's colours": an output shows
    part of a character (framing, occlusion, a close-up without legs), so reference colours
    that are absent cost nothing, while every output colour must find a reference colour.
    Each pair weighs the output cluster's share (a recoloured jacket counts more than a
    recoloured button). The assignment is one to one, so two distinct output colours cannot
    both hide behind one reference colour, and it minimises the reported weighted sum
    (CIEDE2000 is not a metric; an unweighted assignment could trade a large fill for a small
    one). When the output has more colours than the reference, the extra ones are paired with
    their nearest reference colour.
    """
    from scipy.optimize import linear_sum_assignment

    cost = delta_e_ciede2000(out_centres[:, None, :], ref_centres[None, :, :])   # (ko, kr)
    rows, cols = linear_sum_assignment(cost * out_shares[:, None])
    pairs = [(int(c), int(r)) for r, c in zip(rows, cols)]
    for r in sorted(set(range(len(out_centres))) - set(rows.tolist())):
        pairs.append((int(cost[r].argmin()), r))
    w = np.array([out_shares[o] for _, o in pairs])
    d = np.array([cost[o, r] for r, o in pairs])
    value = float((w * d).sum() / w.sum())
    return PaletteMatch(value, ref_centres, out_centres, ref_shares, out_shares,
                        [(r, o, float(cost[o, r])) for r, o in pairs])


def erode(mask: np.ndarray, pixels: int = 1) -> np.ndarray:
    """Shrink ``(H, W)`` or ``(F, H, W)`` masks by ``pixels`` (4-neighbourhood), frame by frame.

    Edge pixels blend the figure with what is behind it; a mask that would vanish is kept.
    """
    from scipy import ndimage

    m = np.asarray(mask, bool)
    if m.all():
        return m   # a whole-frame region has no edge to drop
    frames = m[None] if m.ndim == 2 else m
    out = np.stack([ndimage.binary_erosion(f, iterations=pixels) if pixels else f for f in frames])
    out = np.where(out.reshape(len(out), -1).any(axis=1)[:, None, None], out, frames)
    return out[0] if m.ndim == 2 else out


def region_pixels(image: np.ndarray, mask: np.ndarray | None = None, skip_dark: bool = True,
                  max_pixels: int = MAX_PIXELS, seed: int = 0) -> np.ndarray:
    """RGB pixels ``(N, 3)`` of ``image`` ``(..., H, W, 3|4)`` inside ``mask`` ``(..., H, W)`` bool.

    With ``skip_dark`` near-black pixels (line art, sum of RGB <= 90) are left out when the region
    has other pixels, so the palette describes fills rather than outline thickness. At most
    ``max_pixels`` pixels are returned (a fixed-seed sample).
    """
    image = np.asarray(image)
    rgb = image[..., :3]
    if mask is None:
        mask = image[..., 3] > 127 if image.shape[-1] == 4 else np.ones(image.shape[:-1], bool)
    px = rgb[np.broadcast_to(mask, rgb.shape[:-1])]
    if skip_dark and len(px):
        light = px.astype(np.int32).sum(axis=1) > 90
        if light.any():
            px = px[light]
    if len(px) > max_pixels:
        px = px[np.random.default_rng(seed).choice(len(px), max_pixels, replace=False)]
    return px


def palette_delta_e(reference: np.ndarray, reference_mask: np.ndarray | None, output: np.ndarray,
                    output_mask: np.ndarray | None, k_reference: int = REFERENCE_COLOURS,
                    k_output: int = OUTPUT_COLOURS, erode_pixels: int = 1) -> PaletteMatch:
    """ΔE between the dominant colours of a reference (inside its mask) and an output region.

    ``reference``: ``(H, W, 3|4)`` uint8 (alpha is the mask when ``reference_mask`` is None);
    ``output``: ``(H, W, 3)`` or several frames ``(F, H, W, 3)`` uint8 with ``output_mask``
    ``(H, W)`` / ``(F, H, W)`` bool or None (whole frame). Both masks are eroded by
    ``erode_pixels`` so anti-aliased edges (figure blended with background) are left out.
    """
    reference = np.asarray(reference)
    if reference_mask is None:
        reference_mask = reference[..., 3] > 127 if reference.shape[-1] == 4 else np.ones(reference.shape[:2], bool)
    ref_px = region_pixels(reference, erode(reference_mask, erode_pixels))
    out_px = region_pixels(output, None if output_mask is None else erode(output_mask, erode_pixels))
    if len(ref_px) == 0 or len(out_px) == 0:
        raise ValueError("empty region: the reference mask or the output region has no pixels")
    rc, rs = kmeans_lab(srgb_to_lab(ref_px), k_reference)
    oc, os_ = kmeans_lab(srgb_to_lab(out_px), k_output)
    return match_palettes(rc, rs, oc, os_)
