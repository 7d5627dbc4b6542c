"""The puppet's face: a frame's expression patch drawn with the head part's own transform.

The patch is a rigid piece of the head (``face_art.FaceRig``, reference pixels), so it goes
through the very path the head's rigid core takes (``puppet.raster.draw_part`` with one core
in the head's slot): same affine, same texture level, same "over" compositing. It is drawn
right after the head part, before the parts in front of it (a hand over the face covers it).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from cinekit.acting.face_art import FaceRig
from cinekit.puppet.bind import PARTS, Crop
from cinekit.puppet.raster import draw_part

HEAD_SLOT = PARTS.index("head")


def face_layer(rig: FaceRig, acting, f: int, mirror: bool, ref_width: int):
    """A one-core part (``draw_part``'s duck type) of frame ``f``'s face, None at rest.
    ``mirror``: the puppet's art is flipped (``ref_width`` wide), so is the patch."""
    weights, mouth, eyes = acting.state(f)
    patch = rig.patch(weights, mouth, eyes)
    if patch is None:
        return None
    x0, y0, x1, _ = rig.box
    if mirror:
        patch = np.ascontiguousarray(patch[:, ::-1])
        x0 = (ref_width - 1) - (x1 - 1)
    return SimpleNamespace(cores=[(HEAD_SLOT, Crop(patch, x0, y0))], band=())


def draw_face(canvas: np.ndarray, alpha: np.ndarray | None, rig: FaceRig | None, acting, f: int,
              transforms: np.ndarray, scale: float, mirror: bool, ref_width: int,
              coverage: np.ndarray | None = None, timings: dict | None = None) -> None:
    """Draw frame ``f``'s face over the head just drawn (nothing at rest or without a face rig)."""
    if rig is None or acting is None:
        return
    layer = face_layer(rig, acting, f, mirror, ref_width)
    if layer is not None:
        draw_part(canvas, alpha, layer, transforms, scale, coverage=coverage, timings=timings)
