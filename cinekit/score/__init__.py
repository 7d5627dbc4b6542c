"""Consistency scores (palette, identity, temporal), CI gates and the review page.

Stable API (used by ``render --ci``)::

    from cinekit.score import score_output, check_gates
    scores = score_output("renders/ep01/s020.mp4")        # dict, JSON-safe
    failed = [g for g in check_gates(scores, project.config.gates) if g.status == "fail"]

Character regions come from ``<id>.masks.npz`` next to each output, written with
``cinekit.score.regions.write_masks(main_output_path, result.masks, names)``.
Nothing here imports torch at import time.
"""

from __future__ import annotations

from cinekit.score.gates import GateResult, check_gates, score_output, validate_gates
from cinekit.score.regions import masks_path, read_masks, write_masks

__all__ = ["GateResult", "check_gates", "masks_path", "read_masks", "score_output", "validate_gates", "write_masks"]
