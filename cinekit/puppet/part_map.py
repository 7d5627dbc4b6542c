"""A user's part label map (``parts:`` on a reference): read it, and say what is wrong with it.

Light on purpose (numpy only): ``cinekit check`` reads it without importing OpenCV or the
puppet. One flat RGB colour per part (``PART_COLOURS``, tabled in docs/puppet.md); black,
white, grey and transparent pixels are "not labelled" and take the automatic cut. Any other
colour is most likely a typo in the map (a part the engine would silently ignore), so
``check`` refuses it with the nearest known colour as the hint.
"""

from __future__ import annotations

import numpy as np

PART_NAMES: tuple[str, ...] = (
    "torso", "head",
    "right_upper_arm", "right_forearm", "right_hand", "left_upper_arm", "left_forearm", "left_hand",
    "right_thigh", "right_shin", "right_foot", "left_thigh", "left_shin", "left_foot",
)
PART_COLOURS: dict[str, tuple[int, int, int]] = {
    "torso": (255, 0, 0), "head": (255, 255, 0),
    "right_upper_arm": (0, 255, 0), "right_forearm": (0, 160, 0), "right_hand": (0, 80, 0),
    "left_upper_arm": (0, 0, 255), "left_forearm": (0, 0, 160), "left_hand": (0, 0, 80),
    "right_thigh": (255, 0, 255), "right_shin": (160, 0, 160), "right_foot": (80, 0, 80),
    "left_thigh": (0, 255, 255), "left_shin": (0, 160, 160), "left_foot": (0, 80, 80),
}
TOLERANCE = 24          # per channel: a label colour saved through a lossy tool still counts
_NEUTRAL = 24           # max - min channel below this: black/white/grey, i.e. "not labelled"
_STRAY_SHARE = 0.002    # an unknown colour covering more of the map than this is an error
# (a few antialiased pixels along a part's outline are not)


def labels_from_map(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A part label map (H, W, 3+) RGB in ``PART_COLOURS`` -> part indices (H, W) int8;
    figure pixels of no listed colour are -1 (unlabelled), as is everything outside ``mask``."""
    out = np.full(mask.shape, -1, np.int8)
    rgb = image[..., :3].astype(np.int16)
    for name, c in PART_COLOURS.items():
        out[(np.abs(rgb - c).max(axis=-1) <= TOLERANCE) & mask] = PART_NAMES.index(name)
    return out


def part_map_problem(rgba: np.ndarray, width: int, height: int) -> tuple[str, str] | None:
    """(message, hint) for a label map ``rgba`` (H, W, 4) uint8 that cannot label a reference of
    ``width`` x ``height``: another size, no known colour at all, or a colour area that is
    no part's; None when it is fine."""
    h, w = rgba.shape[:2]
    if (w, h) != (width, height):
        return (f"the part label map is {w}x{h}, the reference is {width}x{height}",
                "draw the label map over the reference, at its size")
    rgb = rgba[..., :3].astype(np.int16)
    opaque = rgba[..., 3] > 127
    known = np.zeros((h, w), bool)
    for c in PART_COLOURS.values():
        known |= np.abs(rgb - c).max(axis=-1) <= TOLERANCE
    neutral = (rgb.max(axis=-1) - rgb.min(axis=-1)) < _NEUTRAL
    stray = opaque & ~known & ~neutral
    table = "see the colour table in docs/puppet.md"
    if not (known & opaque).any():
        return ("the part label map has no part colour: it labels nothing",
                f"paint each part in its flat colour (torso 255,0,0; head 255,255,0; ...): {table}")
    if stray.sum() > _STRAY_SHARE * h * w:
        colours, counts = np.unique(rgb[stray].reshape(-1, 3), axis=0, return_counts=True)
        top = colours[counts.argmax()]
        share = 100.0 * stray.sum() / (h * w)
        near = min(PART_COLOURS, key=lambda n: int(np.abs(top - PART_COLOURS[n]).max()))
        return (f"{share:.1f} % of the part label map is in colours no part has "
                f"(most of it {tuple(int(v) for v in top)})",
                f"the nearest part colour is {near} {PART_COLOURS[near]}; black, white or grey leave a "
                f"pixel to the automatic cut; {table}")
    return None
