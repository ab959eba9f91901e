"""``mtasts report``: render every notebook through papermill into ``reports/<month>/``.

Without ``--db`` it renders the embedded sample (``data/sample/``, a local
simulation), imported into a temporary database; every page then says so.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from collectors.cli.common import CliError, month_arg


def _buckets(value: str) -> list[int]:
    try:
        buckets = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"rank buckets are comma-separated integers, not {value!r}")
    if not buckets or buckets[0] <= 0:
        raise argparse.ArgumentTypeError("rank buckets must be positive")
    return buckets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="render the study's report (notebooks -> HTML, figures, tables)",
        description="Render every notebook through papermill into OUT/<month>/: executed "
                    "notebooks, HTML pages with code hidden, figures (PNG, SVG, PDF), tables (CSV), "
                    "key figures (JSON), a paper/ folder (PDF figures, CSV and LaTeX tables, "
                    "CITATION.md) and an index.html. Without --db, renders the embedded "
                    "sample in data/sample/ (a local simulation).")
    p.add_argument("--db", metavar="PATH", default=None,
                   help="DuckDB database to report on (default: the embedded sample)")
    p.add_argument("--month", metavar="YYYY-MM", type=month_arg, default=None,
                   help="the month to report (default: the month of the newest crawl run)")
    p.add_argument("--out", metavar="DIR", default="reports",
                   help="report folder; the month's report goes to DIR/<month>/ (default: %(default)s)")
    p.add_argument("--run", metavar="RUN", action="append", default=[], dest="run_ids",
                   help="a crawl run to report (repeat; default: every finished run up to the month)")
    p.add_argument("--lab-id", metavar="RUN", default="", help="only this lab evidence (ingest) run")
    p.add_argument("--rank-buckets", metavar="N,N,...", type=_buckets,
                   default=[1000, 10_000, 100_000, 1_000_000],
                   help="top-N buckets of the adoption funnel (default: 1000,10000,100000,1000000)")
    p.add_argument("--notebook", metavar="NAME", action="append", default=[], dest="notebooks",
                   help="render only this notebook (repeat); the other pages keep their files, and the same "
                        "database gives the same bytes")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from collectors.report import NOTEBOOKS, SampleError, import_sample, render_report

    unknown = sorted(set(args.notebooks) - set(NOTEBOOKS))
    if unknown:
        raise CliError(f"no notebook {', '.join(unknown)} (there are: {', '.join(NOTEBOOKS)})")
    notebooks = tuple(n for n in NOTEBOOKS if not args.notebooks or n in args.notebooks)
    common = dict(month=args.month or "", run_ids=args.run_ids, lab_id=args.lab_id,
                  rank_buckets=args.rank_buckets, notebooks=notebooks,
                  log=lambda line: print(f"  {line}", file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="mtasts-report-") as tmp:
        if args.db is None:
            db = Path(tmp) / "sample.duckdb"
            try:
                meta = import_sample(db)
            except SampleError as exc:
                raise CliError(str(exc)) from exc
            note = f"{meta.get('description', '')} Produced by {meta.get('produced_by', '?')} on {meta.get('created_at', '?')}."
            print("rendering the embedded sample (local simulation) from data/sample", file=sys.stderr)
            common.update(local_simulation=True, data_note=note.strip(),
                          db_label="data/sample (the embedded sample, imported into a temporary database)")
        else:
            db = Path(args.db)
            if not db.is_file():
                raise CliError(f"no database at {args.db}")
        try:
            result = render_report(db, args.out, **common)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    print(f"report for {result.month}: {result.out_dir / 'index.html'} ({result.seconds:.1f} s)")
    failed = [p for p in result.pages if not p.ok]
    if failed:
        raise CliError("; ".join(f"notebook {p.name} failed: {p.error}" for p in failed), exit_code=1)
    return 0
