"""Every hostile input of issue 13: `check` exits 1 with a located error (file:line:col: field),
never a traceback, an internal error or a pass that render would then fail."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from cinekit.cli import app
from tests.adversarial.hostile import CASES

runner = CliRunner()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_check_refuses_with_a_located_error(tmp_path, case):
    root = case.build(tmp_path)
    start = time.process_time()  # CPU: the test machine is shared, wall time is noise
    result = runner.invoke(app, ["check", str(root)])
    elapsed = time.process_time() - start
    out = result.output
    assert "internal error" not in out and "Traceback" not in out, out
    assert result.exit_code == 1, out
    lines = [line for line in out.splitlines() if line.startswith(case.where)]
    assert lines, f"no error at {case.where}:\n{out}"
    assert any(case.says in line for line in lines), f"{case.says!r} not in {lines}"
    assert elapsed < 5.0, f"{case.name}: check took {elapsed:.1f} s of CPU"
