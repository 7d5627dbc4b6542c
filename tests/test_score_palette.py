"""Palette score: CIEDE2000 against Sharma, Wu & Dalal (2005) test data; ΔE rises as hair is recoloured."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cinekit.score.palette import delta_e_ciede2000, kmeans_lab, palette_delta_e, srgb_to_lab

# Sharma, Wu & Dalal (2005), Table 1: L1 a1 b1, L2 a2 b2, ΔE00 (the 34 published pairs).
SHARMA = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


def test_ciede2000_matches_sharma_table_vectorised():
    data = np.array(SHARMA)
    got = delta_e_ciede2000(data[:, 0:3], data[:, 3:6])
    np.testing.assert_allclose(got, data[:, 6], atol=5e-5)
    # symmetric, and zero on identical colours
    np.testing.assert_allclose(delta_e_ciede2000(data[:, 3:6], data[:, 0:3]), data[:, 6], atol=5e-5)
    assert np.all(delta_e_ciede2000(data[:, 0:3], data[:, 0:3]) == 0)


def test_ciede2000_broadcasts_to_a_matrix():
    data = np.array(SHARMA)
    m = delta_e_ciede2000(data[:5, None, 0:3], data[None, :7, 3:6])
    assert m.shape == (5, 7)
    assert m[2, 2] == pytest.approx(SHARMA[2][6], abs=5e-5)


def test_srgb_to_lab_known_values():
    lab = srgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]], np.uint8))
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)  # sRGB red, D65


def test_kmeans_finds_the_colours_and_their_shares():
    px = np.array([[200, 30, 30]] * 600 + [[30, 30, 200]] * 300 + [[240, 240, 240]] * 100, np.uint8)
    centres, shares = kmeans_lab(srgb_to_lab(px), k=3)
    np.testing.assert_allclose(shares, [0.6, 0.3, 0.1])
    np.testing.assert_allclose(centres[0], srgb_to_lab(np.array([200, 30, 30], np.uint8)), atol=1e-6)
    again = kmeans_lab(srgb_to_lab(px), k=3)
    np.testing.assert_array_equal(again[0], centres)  # deterministic


def draw_character(hair=(120, 40, 160)) -> np.ndarray:
    """A drawn figure (RGBA 200x400) with a distinct hair region, skin face, shirt, trousers, outline."""
    im = Image.new("RGBA", (200, 400), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.rectangle([60, 100, 140, 230], fill=(40, 110, 60, 255), outline=(20, 20, 20, 255), width=3)   # shirt
    d.rectangle([65, 230, 135, 380], fill=(50, 60, 120, 255), outline=(20, 20, 20, 255), width=3)   # trousers
    d.ellipse([65, 25, 135, 100], fill=(245, 210, 180, 255), outline=(20, 20, 20, 255), width=3)    # face
    d.chord([58, 8, 142, 80], 180, 360, fill=hair + (255,), outline=(20, 20, 20, 255), width=3)     # hair
    return np.asarray(im).copy()


def hair_mask(rgba: np.ndarray, hair=(120, 40, 160)) -> np.ndarray:
    return np.all(rgba[..., :3] == np.array(hair, np.uint8), axis=-1) & (rgba[..., 3] > 0)


def hue_shift(rgba: np.ndarray, mask: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate the hue of the pixels in ``mask`` by ``degrees`` (HSV, PIL)."""
    hsv = np.asarray(Image.fromarray(rgba[..., :3]).convert("HSV")).astype(np.int32)
    hsv[..., 0] = np.where(mask, (hsv[..., 0] + round(degrees / 360 * 256)) % 256, hsv[..., 0])
    rgb = np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"))
    out = rgba.copy()
    out[..., :3] = np.where(mask[..., None], rgb, rgba[..., :3])
    return out


HUE_STEPS = (0, 15, 30, 60, 90, 120, 150, 180)


def hair_delta_e_curve() -> list[float]:
    ref = draw_character()
    mask = hair_mask(ref)
    assert mask.sum() > 1000
    # the "output": the character pasted on a grey background in a wider frame, hair recoloured
    out = []
    for deg in HUE_STEPS:
        art = hue_shift(ref, mask, deg)
        frame = np.full((480, 640, 3), 128, np.uint8)
        region = np.zeros((480, 640), bool)
        alpha = art[..., 3] > 127
        frame[40:440, 220:420][alpha] = art[..., :3][alpha]
        region[40:440, 220:420] = alpha
        out.append(palette_delta_e(ref, None, frame, region).delta_e)
    return out


def test_palette_delta_e_rises_with_hair_hue_shift():
    curve = hair_delta_e_curve()
    print("hair hue shift -> ΔE:", dict(zip(HUE_STEPS, [round(v, 3) for v in curve])))
    assert curve[0] < 0.5
    assert all(b > a for a, b in zip(curve, curve[1:])), curve


def test_whole_frame_region_includes_background():
    ref = draw_character()
    frame = np.full((400, 200, 3), 128, np.uint8)
    alpha = ref[..., 3] > 127
    frame[alpha] = ref[..., :3][alpha]
    inside = palette_delta_e(ref, None, frame, alpha).delta_e
    whole = palette_delta_e(ref, None, frame, None).delta_e
    assert inside < 0.5 < whole


def test_palette_score_ranks_by_ciede2000_where_cie76_disagrees():
    """A saturated blue reference; output A a more saturated blue, output B a lighter violet.
    CIEDE2000 (chroma differences weighted down at high chroma) ranks A closer (7.2 vs 20.5);
    CIE76 (Euclidean Lab) ranks B closer (22.4 vs 41.1). The score must follow CIEDE2000."""
    ref_rgb, a_rgb, b_rgb = (40, 60, 200), (7, 31, 252), (135, 109, 252)
    lab = srgb_to_lab(np.array([ref_rgb, a_rgb, b_rgb], np.uint8))
    cie76 = np.linalg.norm(lab[1:] - lab[0], axis=1)
    assert cie76[0] > cie76[1]                                     # CIE76: B is closer
    reference = np.zeros((40, 20, 4), np.uint8)
    reference[...] = (*ref_rgb, 255)
    scores = []
    for rgb in (a_rgb, b_rgb):
        frame = np.full((40, 40, 3), 128, np.uint8)
        region = np.zeros((40, 40), bool)
        region[5:35, 10:30] = True
        frame[region] = rgb
        scores.append(palette_delta_e(reference, None, frame, region).delta_e)
    assert scores[0] < scores[1]                                   # CIEDE2000: A is closer
    assert scores == pytest.approx([7.179, 20.457], abs=0.01)
