"""`make bench` (python -m benchmarks) fails when a bench's own verdict says it missed."""

from __future__ import annotations

import json
import time

from benchmarks import __main__ as runner


def test_verdicts_found_at_any_depth():
    assert runner.verdict_failures({"ok": True, "speed": {"ok": True, "identical_output": True}}) == []
    assert runner.verdict_failures({"memory": {"ok": True}, "speed": {"ok": False}}) == ["speed.ok"]
    assert runner.verdict_failures({"results": {"tiny": {"pass": False}}}) == ["results.tiny.pass"]
    assert runner.verdict_failures({"runs": [{"identity_ok": False}]}) == ["runs[0].identity_ok"]
    # a byte difference fails unless the bench judged it (explained and bounded) next to it
    assert runner.verdict_failures({"identical_output": False}) == ["identical_output"]
    assert runner.verdict_failures({"identical_output": False, "identity_ok": True}) == []


def test_a_results_file_with_ok_false_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "RESULTS", tmp_path)
    started = time.time() - 1
    (tmp_path / "clip.json").write_text(json.dumps({"speed": {"ok": False, "ratio": 1.2}, "memory": {"ok": True}}))
    assert runner.judge("bench_clip", started) == "failed (speed.ok)"
    (tmp_path / "still.json").write_text(json.dumps({"ok": True, "results": {"tiny": {"identity_ok": True}}}))
    assert runner.judge("bench_still", started) == "ok"
    assert runner.judge("bench_clip", time.time() + 60) == "ok"      # a stale file from an earlier run is not read
