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


def kmeans_lab(lab: np.ndarray, k: int = 5, iterations: int = 25, max_samples: int = 20000,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dominant colours of ``lab`` ``(N, 3)``: ``(centres (k', 3), shares (k',))``, largest share first.

    Lloyd's k-means in Lab with a deterministic k-means++ start (fixed seed): the same pixels
    give the same palette. Empty clusters are dropped, so ``k' <= k``.
    """
    lab = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
    if len(lab) == 0:
        raise ValueError("no pixels to cluster (empty region)")
    rng = np.random.default_rng(seed)
    if len(lab) > max_samples:
        lab = lab[rng.choice(len(lab), max_samples, replace=False)]
    k = min(k, len(np.unique(lab.round(3), axis=0)))
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
        if np.allclose(new, centres, atol=1e-6):
            centres = new
            break
        centres = new
    labels = ((lab[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    counts = np.bincount(labels, minlength=len(centres)).astype(np.float64)
    keep = counts > 0
    centres, shares = centres[keep], counts[keep] / counts.sum()
    order = np.argsort(-shares, kind="stable")
    return centres[order], shares[order]


@dataclass(frozen=True)
class PaletteMatch:
    """The result of matching two palettes: one number plus what it is made of."""

    delta_e: float                  # share-weighted mean CIEDE2000 over matched colour pairs
    reference: np.ndarray           # (k, 3) Lab centres of the reference
    output: np.ndarray              # (k, 3) Lab centres of the output region
    reference_shares: np.ndarray    # (k,)
    output_shares: np.ndarray       # (k,)
    pairs: list[tuple[int, int, float]]  # (reference index, output index, delta E)


def match_palettes(ref_centres: np.ndarray, ref_shares: np.ndarray, out_centres: np.ndarray,
                   out_shares: np.ndarray) -> PaletteMatch:
    """Pair dominant colours one to one (Hungarian on share-weighted CIEDE2000, scipy), average their ΔE.

    Each pair weighs the mean of its two cluster shares, so a large fill that changed counts
    more than a speck of line art. When one palette has more colours than the other, each
    colour left over is paired with its nearest colour on the other side and weighs half its
    own share: the weights always sum to 1, and a new colour in the output is never ignored.
    """
    from scipy.optimize import linear_sum_assignment

    cost = delta_e_ciede2000(ref_centres[:, None, :], out_centres[None, :, :])
    # Minimise what is reported (the share-weighted sum), not the bare ΔE sum: CIEDE2000 is
    # not a metric, and an unweighted assignment can swap two large fills to spare a small one.
    rows, cols = linear_sum_assignment(cost * (ref_shares[:, None] + out_shares[None, :]))
    pairs = [(int(r), int(c)) for r, c in zip(rows, cols)]
    weights = [(ref_shares[r] + out_shares[c]) / 2 for r, c in pairs]
    for r in sorted(set(range(len(ref_centres))) - set(rows.tolist())):
        pairs.append((r, int(cost[r].argmin())))
        weights.append(ref_shares[r] / 2)
    for c in sorted(set(range(len(out_centres))) - set(cols.tolist())):
        pairs.append((int(cost[:, c].argmin()), c))
        weights.append(out_shares[c] / 2)
    w = np.array(weights)
    d = np.array([cost[r, c] for r, c in pairs])
    value = float((w * d).sum() / w.sum())
    pairs = [(r, c, float(cost[r, c])) for r, c in pairs]
    return PaletteMatch(value, ref_centres, out_centres, ref_shares, out_shares, pairs)


def region_pixels(image: np.ndarray, mask: np.ndarray | None = None, skip_dark: bool = True) -> np.ndarray:
    """RGB pixels ``(N, 3)`` of ``image`` ``(..., H, W, 3|4)`` inside ``mask`` ``(..., H, W)`` bool.

    With ``skip_dark`` near-black pixels (line art, sum of RGB <= 90) are left out when the region
    has other pixels, so the palette describes fills rather than outline thickness.
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
    return px


def palette_delta_e(reference: np.ndarray, reference_mask: np.ndarray | None, output: np.ndarray,
                    output_mask: np.ndarray | None, k: int = 5) -> PaletteMatch:
    """ΔE between the dominant colours of a reference (inside its mask) and an output region.

    ``reference``: ``(H, W, 3|4)`` uint8 (alpha is the mask when ``reference_mask`` is None);
    ``output``: ``(H, W, 3)`` or several frames ``(F, H, W, 3)`` uint8 with ``output_mask``
    ``(H, W)`` / ``(F, H, W)`` bool or None (whole frame).
    """
    ref_px = region_pixels(reference, reference_mask)
    out_px = region_pixels(output, output_mask)
    if len(ref_px) == 0 or len(out_px) == 0:
        raise ValueError("empty region: the reference mask or the output region has no pixels")
    rc, rs = kmeans_lab(srgb_to_lab(ref_px), k)
    oc, os_ = kmeans_lab(srgb_to_lab(out_px), k)
    return match_palettes(rc, rs, oc, os_)
