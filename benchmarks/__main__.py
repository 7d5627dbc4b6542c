"""Run every ``benchmarks/bench_*.py`` (or the ones named): ``python -m benchmarks [NAME ...]``.

A bench module defines ``run() -> dict``; the runner writes what it returns to
``bench-results/<name>.json`` (``bench_batch.py`` -> ``batch.json``). A module that writes its
own file may define ``main()`` instead. Each bench runs in its own Python process, so one that
fails, crashes or leaks is reported and the others still run; the exit status is 1 if any
failed. ``--list`` shows what would run; ``CINEKIT_BENCH_TIMEOUT`` (seconds, default 1800)
bounds each one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "bench-results"


def discover() -> list[str]:
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def run_one(module: str) -> None:
    """In the child process: import the bench, run it, write its results."""
    import importlib

    mod = importlib.import_module(f"benchmarks.{module}")
    name = module.removeprefix("bench_")
    if hasattr(mod, "run"):
        results = mod.run()
        if isinstance(results, dict):
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    elif hasattr(mod, "main"):
        mod.main()
    else:
        raise SystemExit(f"{module}: defines neither run() nor main()")


VERDICT_KEYS = ("ok", "pass", "identity_ok")


def verdict_failures(data, where: str = "") -> list[str]:
    """Where a bench's own results say it missed: false ``ok``/``pass``/``identity_ok`` entries and
    ``identical_output: false`` without an ``identity_ok`` beside it (paths like ``speed.ok``)."""
    out: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{where}.{key}" if where else key
            if key in VERDICT_KEYS and value is False:
                out.append(path)
            elif key == "identical_output" and value is False and "identity_ok" not in data:
                out.append(path)
            else:
                out += verdict_failures(value, path)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += verdict_failures(value, f"{where}[{i}]")
    return out


def judge(module: str, started: float) -> str:
    """``ok`` or why the bench's results file says it failed."""
    path = RESULTS / f"{module.removeprefix('bench_')}.json"
    if not path.is_file() or path.stat().st_mtime < started:
        return "ok"                          # no verdict written: the process status decides
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        return f"failed (unreadable results: {e})"
    missed = verdict_failures(data)
    return "ok" if not missed else "failed (" + ", ".join(missed[:3]) + (" ..." if len(missed) > 3 else "") + ")"


def main(argv: list[str]) -> int:
    available = discover()
    if "--list" in argv:
        print("\n".join(available))
        return 0
    wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in argv if not a.startswith("-")]
    unknown = [w for w in wanted if w not in available]
    if unknown:
        print(f"unknown bench: {', '.join(unknown)} (have: {', '.join(available)})", file=sys.stderr)
        return 2
    timeout = float(os.environ.get("CINEKIT_BENCH_TIMEOUT", "1800"))
    summary = []
    for module in wanted or available:
        print(f"== {module}", flush=True)
        start, wall = time.perf_counter(), time.time()
        code = f"from benchmarks.__main__ import run_one; run_one({module!r})"
        try:
            proc = subprocess.run([sys.executable, "-c", code], cwd=HERE.parent, timeout=timeout)
            status = judge(module, wall - 1) if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        except subprocess.TimeoutExpired:
            status = f"failed (timeout after {timeout:.0f} s)"
        summary.append((module, status, time.perf_counter() - start))
    print("\n== summary")
    for module, status, seconds in summary:
        name = module.removeprefix("bench_")
        print(f"{module:24s} {status:40s} {seconds:7.1f} s   bench-results/{name}.json")
    return 1 if any(s != "ok" for _, s, _ in summary) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
