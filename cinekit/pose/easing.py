"""Easing curves: map segment progress ``u`` in [0, 1] to eased progress in [0, 1].

Every curve is monotone non-decreasing with ``f(0) = 0`` and ``f(1) = 1``; inputs are
clipped to [0, 1]. Quadratic in/out are Penner's easeInQuad / easeOutQuad (R. Penner,
"Robert Penner's Easing Equations", 2001); in-out is the cubic Hermite smoothstep.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _u(u: np.ndarray | float) -> np.ndarray:
    return np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)


def linear(u: np.ndarray | float) -> np.ndarray:
    """``f(u) = u``."""
    return _u(u)


def ease_in(u: np.ndarray | float) -> np.ndarray:
    """Slow start, ``f(u) = u^2`` (Penner easeInQuad)."""
    u = _u(u)
    return u * u


def ease_out(u: np.ndarray | float) -> np.ndarray:
    """Slow end, ``f(u) = 1 - (1 - u)^2`` (Penner easeOutQuad)."""
    u = _u(u)
    return 1.0 - (1.0 - u) ** 2


def ease_in_out(u: np.ndarray | float) -> np.ndarray:
    """Slow start and end, ``f(u) = 3u^2 - 2u^3`` (smoothstep: zero slope at both ends)."""
    u = _u(u)
    return u * u * (3.0 - 2.0 * u)


def hold(u: np.ndarray | float) -> np.ndarray:
    """Step: ``f(u) = 0`` for ``u < 1``, ``1`` at ``u = 1`` (hold the key until the next one)."""
    return (_u(u) >= 1.0).astype(np.float64)


EASINGS: dict[str, Callable[[np.ndarray | float], np.ndarray]] = {
    "linear": linear,
    "ease_in": ease_in,
    "ease_out": ease_out,
    "ease_in_out": ease_in_out,
    "hold": hold,
}
"""Easing curves by the name used in shot YAML (``ease:``)."""


def ease(name: str, u: np.ndarray | float) -> np.ndarray:
    """Apply the easing curve called ``name`` to ``u``; unknown names raise ValueError."""
    try:
        fn = EASINGS[name]
    except KeyError:
        raise ValueError(f"unknown ease {name!r}; choose one of {', '.join(EASINGS)}") from None
    return fn(u)
