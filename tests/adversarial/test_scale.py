"""`check` of a 10,000-shot list of 64x64 stills: under 5 s of CPU (issue 13: it took 27 s)."""

from __future__ import annotations

import time

from typer.testing import CliRunner

from cinekit.cli import app
from tests.project_factory import CONFIG, make_project


def test_check_of_ten_thousand_shots_is_fast(tmp_path):
    shots = "defaults: {size: [64, 64]}\nshots:\n" + "".join(
        f"  - id: s{i:05d}\n    prompt: '{{ann}} waves'\n    characters: [{{name: ann, pose: wave}}]\n" for i in range(10000))
    root = make_project(tmp_path / "p", shots, config=CONFIG.replace("[256, 192]", "[64, 64]"))
    runner = CliRunner()
    runner.invoke(app, ["check", str(tmp_path / "missing")])  # warm the imports, as a second command would
    cpu, wall = time.process_time(), time.perf_counter()
    result = runner.invoke(app, ["check", str(root)])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert result.exit_code == 0, result.output
    assert "10000 shot(s)" in result.output
    # CPU time, not wall time: the test machine is shared; wall time is printed for the record.
    print(f"check of 10,000 shots: {cpu:.2f} s CPU, {wall:.2f} s wall")
    assert cpu < 5.0, f"{cpu:.2f} s CPU"
