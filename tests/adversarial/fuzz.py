"""The long fuzz campaign of issue 13 (`make fuzz`): N generated documents through `check`.

    python -m tests.adversarial.fuzz --n 10000 [--seed 1] [--report fuzz-report.json]

Prints: documents, accepted / rejected, tracebacks, internal errors, hangs over 5 s, memory
(the peak RSS of the whole campaign process, which bounds every document's peak, and the
traced peak allocation of a sample of documents), the fraction of
rejections whose every error is located (file:line[:col]), and one example of each failure.
Exit status 1 when any traceback, internal error or hang was seen.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.adversarial.generators import any_document, make_fuzz_project, run_check, run_render

BATCH = 25            # documents per hypothesis example
MEMORY_SAMPLE = 10    # trace allocations of one document in this many (tracing slows Python ~2x)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="documents to generate (default 10,000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--report", type=Path, default=None, help="write the figures and failures as JSON here")
    ap.add_argument("--render", action="store_true",
                    help="also `render` every accepted document: anything check passes must render")
    args = ap.parse_args(argv)

    root = make_fuzz_project(Path(tempfile.mkdtemp(prefix="cinekit-fuzz-")) / "p")
    run_check(root, "cinekit.yaml", (root / "cinekit.yaml").read_bytes(), hang_after=120)  # imports: not timed
    stats: Counter = Counter()
    peaks: list[int] = []
    slowest = [0.0, ""]
    failures: dict[str, dict] = {}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()

    # Documents are drawn in batches: hypothesis' per-example bookkeeping (seeding, replay
    # records) costs more than generating one small document.
    @seed(args.seed)
    @settings(max_examples=max(1, args.n // BATCH), deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(any_document, min_size=BATCH, max_size=BATCH))
    def one(batch):
        for rel, data in batch:
            if stats["documents"] >= args.n:
                return
            sampled = stats["documents"] % MEMORY_SAMPLE == 0
            if sampled:
                tracemalloc.start()
            out = run_check(root, rel, data, measure_memory=sampled)
            if sampled:
                tracemalloc.stop()
                peaks.append(out.peak_bytes)
            record(rel, data, out)
            if args.render and out.exit_code == 0:
                code, output, tb = run_render(root)
                stats["rendered"] += 1
                if code != 0 or tb or "internal error" in output:
                    stats["render failed after check passed"] += 1
                    failures.setdefault("render failed after check passed", {
                        "file": rel, "data": data[:2000].decode("utf-8", "replace"), "traceback": tb,
                        "output": output[-2000:]})

    def record(rel, data, out):
        stats["documents"] += 1
        stats[f"exit {out.exit_code}"] += 1
        if out.seconds > slowest[0]:
            slowest[:] = [out.seconds, rel]
        for name, bad in (("traceback", out.traceback), ("internal error", out.internal), ("hang", out.hang),
                          ("unexpected exit", out.exit_code not in (0, 1) and not out.hang)):
            if bad:
                stats[name] += 1
                failures.setdefault(name, {"file": rel, "data": data[:2000].decode("utf-8", "replace"),
                                           "traceback": out.traceback})
        if out.exit_code == 1:
            stats["rejected"] += 1
            stats["rejected, all located"] += not out.unlocated
            if out.unlocated:
                failures.setdefault("unlocated", {"file": rel, "lines": out.unlocated[:5],
                                                  "data": data[:2000].decode("utf-8", "replace")})
        if stats["documents"] % 500 == 0:
            print(f"  {stats['documents']} documents, {time.perf_counter() - start:.0f} s", flush=True)

    one()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    peaks.sort()
    n = stats["documents"]
    rejected = stats["rejected"]
    figures = {
        "documents": n,
        "accepted (exit 0)": stats["exit 0"],
        "rejected (exit 1)": rejected,
        "tracebacks": stats["traceback"],
        "internal errors": stats["internal error"],
        "hangs over 5 s": stats["hang"],
        "other exit codes": stats["unexpected exit"],
        "peak RSS of the whole campaign (MB; bounds every document)": round(rss / 1024, 1),
        "RSS growth over the campaign (MB)": round((rss - rss_before) / 1024, 1),
        f"traced peak per document, 1 in {MEMORY_SAMPLE} sampled: max (MB)": round(peaks[-1] / 2**20, 2) if peaks else 0,
        "traced peak per document, sampled: median (MB)": round(peaks[len(peaks) // 2] / 2**20, 2) if peaks else 0,
        "slowest document (s)": round(slowest[0], 2),
        **({"accepted documents rendered": stats["rendered"],
            "render failed after check passed": stats["render failed after check passed"]} if args.render else {}),
        "rejections with every error located": f"{stats['rejected, all located']}/{rejected}"
                                                + (f" ({stats['rejected, all located'] / rejected:.1%})" if rejected else ""),
        "wall time (s)": round(time.perf_counter() - start, 1),
    }
    width = max(len(k) for k in figures)
    print("\nfuzz campaign of `cinekit check`")
    for k, v in figures.items():
        print(f"  {k:<{width}}  {v}")
    for name, example in failures.items():
        print(f"\nfirst {name}: {example['file']}\n{json.dumps(example, indent=2)[:3000]}")
    if args.report:
        args.report.write_text(json.dumps({"figures": figures, "failures": failures}, indent=2))
    bad = (stats["traceback"] + stats["internal error"] + stats["hang"] + stats["unexpected exit"]
           + stats["render failed after check passed"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
