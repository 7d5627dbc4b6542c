"""Quality gates in `cinekit render --ci`: score each output, fail the shots that fall short.

Gates live under ``gates:`` in cinekit.yaml (e.g. ``palette_delta_e: {max: 8}``). Cached outputs
are checked too, so a shot that failed its gate keeps failing until it is fixed, not only on the
run that rendered it; but they are not scored again: the scores of an output are stored in its
sidecar (``"scores"``) the first time, and reused while the output and the scoring set-up
(score version, embedder) are unchanged. A re-rendered output has a new sidecar, hence new scores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cinekit import __version__
from cinekit.render.outputs import main_output
from cinekit.render.run import Outcome
from cinekit.render.writers import sidecar_path, write_json

SCORES_VERSION = "1"  # bump when a score's definition changes: stored scores are then recomputed


def score_signature(project) -> dict[str, Any]:
    """What, besides the output itself, decides its scores."""
    return {"version": SCORES_VERSION, "cinekit": __version__, "embedder": project.config.embedder}


def stored_scores(record: dict[str, Any] | None, signature: dict[str, Any]) -> dict[str, Any] | None:
    """The scores a sidecar record holds, if they were computed with ``signature``."""
    stored = (record or {}).get("scores")
    if isinstance(stored, dict) and stored.get("signature") == signature and isinstance(stored.get("result"), dict):
        return stored["result"]
    return None


def _store(sidecar: Path, signature: dict[str, Any], scores: dict[str, Any]) -> None:
    """Add the scores to a committed sidecar (atomic rewrite; the output files are untouched)."""
    try:
        record = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return  # no valid sidecar: nothing to attach the scores to (they are recomputed next time)
    record["scores"] = {"signature": signature, "result": scores}
    write_json(sidecar, record)


def apply_gates(project, outcomes: list[Outcome], out_dir: Path, fmt: str) -> int:
    """Check every rendered/cached output against ``project.config.gates``; mark failures.

    A failing shot becomes ``failed`` with exit code 3 and a message per gate saying which
    score missed and by how much (the JUnit report carries it). Returns the number failed.
    Runs under the output folder's lock (it writes scores into sidecars).
    """
    from cinekit.score import gates as scoring

    gates = project.config.gates
    if not gates:
        return 0
    signature = score_signature(project)
    failed = 0
    for outcome in outcomes:
        if outcome.status not in ("rendered", "cached"):
            continue
        scores = stored_scores(outcome.record, signature)
        if scores is None:
            path = main_output(out_dir, outcome.job, fmt)
            scores = json.loads(json.dumps(scoring.score_output(path, project)))  # JSON-safe, as stored
            _store(sidecar_path((Path(out_dir) / outcome.job.output).with_suffix(".x")), signature, scores)
            if outcome.record is not None:
                outcome.record["scores"] = {"signature": signature, "result": scores}
        misses = [g for g in scoring.check_gates(scores, gates) if g.status == "fail"]
        if misses:
            outcome.status = "failed"
            outcome.exit_code = 3
            outcome.error = "quality gate: " + "; ".join(g.message for g in misses)
            failed += 1
    return failed
