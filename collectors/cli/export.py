"""``mtasts export posture``: one row per domain of a crawl run (docs/posture-export.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from collectors.cli.common import CliError, add_db_option, open_db

FORMATS = ("csv", "parquet", "jsonl")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export derived tables (posture) as CSV, Parquet or JSON lines",
                       description="Export derived tables of the store.")
    what = p.add_subparsers(dest="export_what", metavar="TABLE")
    what.required = True
    posture = what.add_parser(
        "posture", help="per-domain MTA-STS/TLS-RPT posture of a crawl run",
        description="One row per domain of a crawl run, columns as in docs/posture-export.md.")
    add_db_option(posture)
    posture.add_argument("--run", default="latest", metavar="RUN", help="run id or 'latest' (default)")
    posture.add_argument("--format", choices=FORMATS, default="csv", help="output format (default csv)")
    posture.add_argument("--output", "-o", metavar="FILE", help="output file (default: stdout)")
    posture.set_defaults(func=_posture)


def _posture(args: argparse.Namespace) -> int:
    with open_db(args.db, must_exist=True, read_only=True) as store:
        run = store.get_run(args.run, kind="crawl")
        if run is None:
            raise CliError(f"no crawl run {args.run!r} in {args.db}")
        # The posture view (views/010_crawl.sql) is the one list of the documented columns.
        query = ("SELECT * EXCLUDE (run_id) FROM posture WHERE run_id = $run"
                 " ORDER BY rank NULLS LAST, domain")
        con = store.con.cursor()  # get_run leaves a result open on store.con
        rel = con.sql(query, params={"run": run.run_id})
        if args.output:
            out = Path(args.output)
            if out.parent and not out.parent.exists():
                raise CliError(f"no such folder for --output: {out.parent}")
            _write_file(rel, args.format, out)
            n = con.execute("SELECT count(*) FROM posture WHERE run_id = ?", [run.run_id]).fetchone()[0]
            print(f"wrote {n:,} rows of run {run.run_id} to {out}", file=sys.stderr)
        else:
            try:
                _write_stdout(rel, args.format)
            except BrokenPipeError:  # e.g. piped into head
                sys.stderr.close()
                return 0
    return 0


def _write_file(rel, fmt: str, out: Path) -> None:  # type: ignore[no-untyped-def]
    if fmt == "csv":
        rel.write_csv(str(out), header=True)
    elif fmt == "parquet":
        rel.write_parquet(str(out))
    else:
        with open(out, "w", encoding="utf-8") as fh:
            _jsonl(rel, fh)


def _write_stdout(rel, fmt: str) -> None:  # type: ignore[no-untyped-def]
    if fmt == "jsonl":
        _jsonl(rel, sys.stdout)
        return
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    reader = rel.to_arrow_reader(batch_size=50_000)
    sink = sys.stdout.buffer
    if fmt == "csv":
        options = pacsv.WriteOptions(quoting_style="needed")
        with pacsv.CSVWriter(sink, reader.schema, write_options=options) as w:
            for batch in reader:
                w.write_batch(batch)
    else:
        with pq.ParquetWriter(sink, reader.schema) as w:
            for batch in reader:
                w.write_batch(batch)
    sink.flush()


def _jsonl(rel, fh) -> None:  # type: ignore[no-untyped-def]
    reader = rel.to_arrow_reader(batch_size=50_000)
    for batch in reader:
        for row in batch.to_pylist():
            fh.write(json.dumps(row, ensure_ascii=False, default=str))
            fh.write("\n")
