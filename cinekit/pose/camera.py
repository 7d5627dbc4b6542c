"""Framing: body-space pose tracks -> output pixels, and horizontal mirroring.

A framing preset is a vertical window ``(top, bottom)`` of body space (units of the tallest
character, y down, floor at 0) that maps onto the frame's rows ``[0, height]``, and a width
``span_x`` of body units that must fit across the frame (0 = no constraint):

- ``close_up``: head and shoulders fill the frame;
- ``medium``: waist up;
- ``full``: the whole body with a margin, raised hands and a T-pose included;
- ``wide``: the whole figure (head top to feet, about 1.14 units) is 45% of the frame height,
  floor at 80% of the frame height.

One body unit is ``min(height / (bottom - top), width / span_x)`` pixels (a portrait frame
shrinks the figure rather than cutting its arms; the floor stays at the same fraction of the
height); character ``i`` stands on the shared floor line at ``x = positions[i] * width`` and is
drawn ``scales[i] / max(scales)`` times as big, so a taller character stays taller and the
tallest one fits the window.

A custom camera ``{"center": [cx, cy], "scale": s}`` (optionally ``"base": preset``, default
``full``) zooms the base framing by ``s`` about the point ``(cx * width, cy * height)`` of the
base shot, which becomes the frame centre: ``p' = (p - c) * s + (width / 2, height / 2)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cinekit.pose.skeleton import MIRROR

_WIDE_SPAN = 1.14 / 0.45
FRAMINGS: dict[str, tuple[float, float, float]] = {
    "close_up": (-1.20, -0.68, 0.0),
    "medium": (-1.22, -0.38, 0.0),
    "full": (-1.30, 0.10, 1.45),
    "wide": (-0.8 * _WIDE_SPAN, 0.2 * _WIDE_SPAN, 1.6),
}
"""Preset name -> ``(top, bottom, span_x)``: body-space y at the frame's top and bottom rows,
and the body-space width that must fit across the frame (0 = none)."""

POSITIONS: dict[str, float] = {
    "far_left": 0.15, "left": 0.3, "center": 0.5, "right": 0.7, "far_right": 0.85,
}
"""Named horizontal placements, as fractions of the frame width."""

Camera = str | Mapping


def position_value(position: str | float) -> float:
    """A placement name (``POSITIONS``) or a number (fraction of the frame width) -> float."""
    if isinstance(position, str):
        try:
            return POSITIONS[position]
        except KeyError:
            raise ValueError(
                f"unknown position {position!r}; use a number in [0, 1] or one of "
                f"{', '.join(POSITIONS)}"
            ) from None
    value = float(position)
    if not np.isfinite(value):
        raise ValueError(f"position must be finite, got {position!r}")
    return value


def mirror(pose: np.ndarray, axis_x: float = 0.0) -> np.ndarray:
    """Flip ``(..., 18, 2)`` about the vertical line ``x = axis_x`` and swap left/right joints
    (``skeleton.MIRROR``) so the result is still a valid pose; same units."""
    out = np.array(np.asarray(pose, dtype=np.float64)[..., MIRROR, :])
    out[..., 0] = 2.0 * axis_x - out[..., 0]
    return out


def _window(camera: Camera) -> tuple[float, float, float, tuple[float, float, float] | None]:
    """``camera`` -> ``(top, bottom, span_x, zoom)``, ``zoom = (cx, cy, s)`` for custom ones."""
    if isinstance(camera, str):
        if camera not in FRAMINGS:
            raise ValueError(f"unknown camera {camera!r}; use one of {', '.join(FRAMINGS)} "
                             "or {center: [x, y], scale: s}")
        return (*FRAMINGS[camera], None)
    if isinstance(camera, Mapping):
        extra = set(camera) - {"center", "scale", "base"}
        if extra:
            raise ValueError(f"custom camera takes center, scale, base; got {sorted(extra)}")
        top, bottom, span_x, _ = _window(camera.get("base", "full"))
        cx, cy = (float(v) for v in camera.get("center", (0.5, 0.5)))
        s = float(camera.get("scale", 1.0))
        if not s > 0:
            raise ValueError(f"camera scale must be > 0, got {s}")
        return top, bottom, span_x, (cx, cy, s)
    raise ValueError(f"camera must be a preset name or a mapping, got {type(camera).__name__}")


def place(
    tracks_body: Sequence[np.ndarray],
    positions: Sequence[str | float],
    scales: Sequence[float] | None,
    camera: Camera,
    width: int,
    height: int,
) -> np.ndarray:
    """Frame characters' body-space tracks (each ``(F, 18, 2)``, or ``(18, 2)`` held) at
    ``positions`` with relative ``scales`` (None = all 1) -> ``(F, C, 18, 2)`` pixels."""
    if len(tracks_body) != len(positions):
        raise ValueError(f"{len(tracks_body)} tracks but {len(positions)} positions")
    n = len(tracks_body)
    scales = np.ones(n) if scales is None else np.asarray(scales, dtype=np.float64)
    if scales.shape != (n,) or not np.all(scales > 0):
        raise ValueError(f"need {n} positive scales, got {scales.tolist()}")
    tracks = [np.asarray(t, dtype=np.float64) for t in tracks_body]
    frames = max((t.shape[0] for t in tracks if t.ndim == 3), default=1)
    stacked = []
    for t in tracks:
        if t.ndim == 2:
            t = np.broadcast_to(t, (frames, *t.shape))
        if t.shape != (frames, 18, 2):
            raise ValueError(f"every track must be ({frames}, 18, 2), got {t.shape}")
        stacked.append(t)
    body = np.stack(stacked, axis=1) if stacked else np.zeros((frames, 0, 18, 2))

    top, bottom, span_x, zoom = _window(camera)
    unit = height / (bottom - top)  # pixels per body unit at scale 1
    if span_x > 0:
        unit = min(unit, width / span_x)
    floor = height * top / (top - bottom)  # same fraction of the height whatever the unit
    rel = (scales / scales.max())[None, :, None] if n else np.ones((1, 0, 1))
    x0 = np.array([position_value(p) for p in positions]) * width
    out = np.empty_like(body)
    out[..., 0] = x0[None, :, None] + body[..., 0] * unit * rel
    out[..., 1] = floor + body[..., 1] * unit * rel
    if zoom is not None:
        cx, cy, s = zoom
        out[..., 0] = (out[..., 0] - cx * width) * s + width / 2
        out[..., 1] = (out[..., 1] - cy * height) * s + height / 2
    return out
