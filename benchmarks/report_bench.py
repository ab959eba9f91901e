"""Benchmark: the whole report on a ten-million-domain, two-run crawl database.

The database is SYNTHETIC: written by a generator (tests/report/report_fixture.py)
that produces rows of exactly the crawler's raw tables (migrations/002_crawl.sql),
so the crawler's own views classify them, as they would a real crawl, plus a small
ingested lab round. Two runs a month apart (the trend and lifecycle sections join
them). Goal: the whole report (every notebook through papermill, figures in three
formats, HTML export, paper folder, index) in under three minutes, with the peak
memory of this process and of every kernel under 8 GB. Prints the time per
notebook; writes benchmarks/results/report_bench.json.

    python -m benchmarks.report_bench [--domains N] [--runs R] [--keep DIR]

With ``--keep DIR`` an existing ``DIR/bench.duckdb`` of the same size is reused
(generating ten million domains twice takes longer than the report).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "report"))

from report_fixture import build_crawl_db  # noqa: E402

from collectors.report import render_report  # noqa: E402

GOAL_SECONDS = 180.0
GOAL_PEAK_BYTES = 8 * 2**30


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="build and render here instead of a temporary folder")
    ap.add_argument("--generate-only", action="store_true",
                    help="only write the synthetic database into --keep (data preparation, not measured)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        db = root / "bench.duckdb"
        marker = root / f"bench-{args.domains}x{args.runs}.done"
        t0 = time.perf_counter()
        if not marker.exists():
            for stale in (db, marker):
                stale.unlink(missing_ok=True)
            build_crawl_db(db, n=args.domains, runs=args.runs, with_lab=True)
            marker.touch()
        build_s = time.perf_counter() - t0
        print(f"synthetic database: {args.runs} run(s) x {args.domains:,} domains, generated in "
              f"{build_s:.1f} s ({db.stat().st_size / 2**20:.0f} MiB)", flush=True)
        if args.generate_only:
            return 0
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        result = render_report(db, root / "reports", log=lambda line: print(f"  {line}", flush=True))
    peak = max(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
    per = {p.name: round(p.seconds, 2) for p in result.pages}
    verdict = "met" if result.seconds < GOAL_SECONDS and peak < GOAL_PEAK_BYTES and result.ok else "NOT met"
    print(f"whole report: {result.seconds:.1f} s, peak memory {peak / 2**30:.2f} GiB "
          f"(goal < {GOAL_SECONDS:.0f} s and < {GOAL_PEAK_BYTES / 2**30:.0f} GiB: {verdict})")
    for name, s in per.items():
        print(f"  {name:<14} {s:7.1f} s")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "report_bench.json").write_text(json.dumps({
        "domains": args.domains, "runs": args.runs, "generate_seconds": round(build_s, 1),
        "synthetic": True, "report_seconds": round(result.seconds, 2), "per_notebook_seconds": per,
        "peak_memory_bytes": peak, "goal_seconds": GOAL_SECONDS, "goal_peak_bytes": GOAL_PEAK_BYTES,
        "ok": result.ok}, indent=2) + "\n")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
