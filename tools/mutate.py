"""Mutation check: apply curated realistic bugs, one at a time, and see whether the tests catch them.

Usage: python tools/mutate.py [--list FILE] [--only SUBSTRING ...] [--keep]

Each mutation of ``tools/mutations.toml`` names a source file, an original snippet (which must
occur exactly once there), the mutated snippet, the mechanism it breaks and the tests to run
(pytest paths, optional ``-k``). The repository's tracked and untracked-but-not-ignored files
are copied once to a scratch folder; there each mutation is applied, its tests are run
(``PYTHONPATH`` = the copy, so the copy's ``cinekit`` is imported, subprocesses included), and
the file is restored. First, the same test selections run unmutated: a selection that fails
without any bug cannot tell anything, and is reported as ``broken``.

Verdicts: ``caught`` (pytest exit 1 with a FAILED test; an ERROR in setup is ``error``), ``missed`` (the tests passed with the
bug in), ``stale`` (the original snippet is not in the file any more: update the list),
``error`` (pytest could not run: exit 2-5, or a timeout). Exit status 0 only when every
mutation is caught.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIST = ROOT / "tools" / "mutations.toml"
TIMEOUT = 900


def repo_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, check=True,
                         capture_output=True).stdout.decode()
    return [f for f in out.split("\0") if f and (root / f).is_file() and not (root / f).is_symlink()]


def scratch_copy(root: Path) -> Path:
    dest = Path(tempfile.mkdtemp(prefix="cinekit-mutate-"))
    for rel in repo_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    return dest


def run_tests(copy: Path, tests: list[str], k: str | None) -> tuple[int, float, str, bool]:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    if k:
        cmd += ["-k", k]
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return -1, time.perf_counter() - start, "timeout", False
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    failed = [ln for ln in lines if ln.startswith("FAILED") or ln.startswith("ERROR")]
    summary = (failed[0] if failed else (lines[-1] if lines else proc.stderr.strip()[-200:]))
    asserted = any(ln.startswith("FAILED") for ln in failed)
    return proc.returncode, time.perf_counter() - start, summary, asserted


def verdict(rc: int, asserted: bool) -> str:
    """A test must have failed (FAILED), not errored in setup or collection (ERROR: the
    environment, not the bug, may be at fault)."""
    return "caught" if rc == 1 and asserted else "missed" if rc == 0 else "error"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", type=Path, default=LIST)
    ap.add_argument("--only", nargs="*", default=[], help="run mutations whose mechanism or bug contains one of these")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the unmutated runs (only when the suite is known to pass: halves the time)")
    args = ap.parse_args(argv)

    mutations = tomllib.loads(args.list.read_text())["mutation"]
    if args.only:
        mutations = [m for m in mutations if any(s.lower() in (m["mechanism"] + m["bug"]).lower() for s in args.only)]
    start = time.perf_counter()
    copy = scratch_copy(ROOT)
    rows: list[tuple[str, str, str, float, str]] = []
    try:
        baseline: dict[tuple, tuple[int, str]] = {}
        for m in mutations:
            sel = (tuple(m["tests"]), m.get("k"))
            if args.no_baseline:
                baseline[sel] = (0, "not run")
            if sel not in baseline:
                rc, secs, summary, _ = run_tests(copy, list(sel[0]), sel[1])
                baseline[sel] = (rc, summary)
                print(f"baseline {' '.join(sel[0])}{' -k ' + repr(sel[1]) if sel[1] else ''}: "
                      f"{'pass' if rc == 0 else 'FAIL: ' + summary} ({secs:.0f} s)", flush=True)
        for m in mutations:
            path = copy / m["file"]
            sel = (tuple(m["tests"]), m.get("k"))
            text = path.read_text() if path.is_file() else ""
            if text.count(m["original"]) != 1:
                rows.append((m["mechanism"], m["bug"], "stale", 0.0, f"snippet found {text.count(m['original'])}x"))
            elif baseline[sel][0] != 0:
                rows.append((m["mechanism"], m["bug"], "broken", 0.0, f"fails unmutated: {baseline[sel][1]}"))
            else:
                path.write_text(text.replace(m["original"], m["mutated"]))
                try:
                    rc, secs, summary, asserted = run_tests(copy, list(sel[0]), sel[1])
                finally:
                    path.write_text(text)
                rows.append((m["mechanism"], m["bug"], verdict(rc, asserted), secs, summary))
            print(f"{rows[-1][2]:7s} {m['mechanism']}: {m['bug']}  [{rows[-1][4]}]", flush=True)
    finally:
        if args.keep:
            print(f"scratch copy kept at {copy}")
        else:
            shutil.rmtree(copy, ignore_errors=True)
    total = time.perf_counter() - start
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"\n{'mechanism':{width}s}  verdict  seconds  bug")
    for mech, bug, v, secs, _ in rows:
        print(f"{mech:{width}s}  {v:7s}  {secs:7.1f}  {bug}")
    caught = sum(r[2] == "caught" for r in rows)
    print(f"\n{caught}/{len(rows)} caught in {total:.0f} s")
    return 0 if rows and caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
