"""Benchmark: the whole report on a one-million-domain crawl database.

The database is written by a generator (tests/report/report_fixture.py) that
produces rows of exactly the crawler's raw tables (migrations/002_crawl.sql), so
the crawler's own views classify them, as they would a real crawl. Two runs a
month apart (the trend and lifecycle sections join them). Goal: the whole report
(every notebook through papermill, HTML export, index) in under two minutes.
Prints the time per notebook; writes benchmarks/results/report_bench.json.

    python -m benchmarks.report_bench [--domains N] [--runs R] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "report"))

from report_fixture import build_crawl_db  # noqa: E402

from collectors.report import render_report  # noqa: E402

GOAL_SECONDS = 120.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="build and render here instead of a temporary folder")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        db = root / "bench.duckdb"
        if db.exists():
            db.unlink()
        t0 = time.perf_counter()
        build_crawl_db(db, n=args.domains, runs=args.runs, with_lab=True)
        build_s = time.perf_counter() - t0
        print(f"generated {args.runs} run(s) x {args.domains:,} domains in {build_s:.1f} s "
              f"({db.stat().st_size / 2**20:.0f} MiB)", flush=True)
        result = render_report(db, root / "reports", log=lambda line: print(f"  {line}", flush=True))
    per = {p.name: round(p.seconds, 2) for p in result.pages}
    verdict = "met" if result.seconds < GOAL_SECONDS and result.ok else "NOT met"
    print(f"whole report: {result.seconds:.1f} s (goal < {GOAL_SECONDS:.0f} s: {verdict})")
    for name, s in per.items():
        print(f"  {name:<14} {s:7.1f} s")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "report_bench.json").write_text(json.dumps({
        "domains": args.domains, "runs": args.runs, "generate_seconds": round(build_s, 1),
        "report_seconds": round(result.seconds, 2), "per_notebook_seconds": per,
        "goal_seconds": GOAL_SECONDS, "ok": result.ok}, indent=2) + "\n")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
