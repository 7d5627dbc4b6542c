"""Quality gates in `cinekit render --ci`: score each output, fail the shots that fall short.

Gates live under ``gates:`` in cinekit.yaml (e.g. ``palette_delta_e: {max: 8}``). Cached outputs
are scored too, so a shot that failed its gate keeps failing until it is fixed, not only on the
run that rendered it.
"""

from __future__ import annotations

from pathlib import Path

from cinekit.render.outputs import main_output
from cinekit.render.run import Outcome


def apply_gates(project, outcomes: list[Outcome], out_dir: Path, fmt: str) -> int:
    """Score every rendered/cached output against ``project.config.gates``; mark failures.

    A failing shot becomes ``failed`` with exit code 3 and a message per gate saying which
    score missed and by how much (the JUnit report carries it). Returns the number failed.
    """
    from cinekit.score.gates import check_gates, score_output

    gates = project.config.gates
    if not gates:
        return 0
    failed = 0
    for outcome in outcomes:
        if outcome.status not in ("rendered", "cached"):
            continue
        path = main_output(out_dir, outcome.job, fmt)
        scores = score_output(path, project)
        misses = [g for g in check_gates(scores, gates) if g.status == "fail"]
        if misses:
            outcome.status = "failed"
            outcome.exit_code = 3
            outcome.error = "quality gate: " + "; ".join(g.message for g in misses)
            failed += 1
    return failed
