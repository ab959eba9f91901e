"""``mtasts export posture``: one row per domain of a crawl run (docs/posture-export.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import BinaryIO

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
    if args.format == "parquet" and not args.output and sys.stdout.isatty():
        raise CliError("Parquet is binary: it is not written to a terminal; "
                       "use --output FILE or redirect stdout")
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
            n = _write_file(rel, args.format, out)
            print(f"wrote {n:,} rows of run {run.run_id} to {out}", file=sys.stderr)
        else:
            _write(rel, args.format, sys.stdout.buffer)  # a closed pipe: main() ends quietly
            sys.stdout.buffer.flush()
    return 0


def _write_file(rel, fmt: str, out: Path) -> int:  # type: ignore[no-untyped-def]
    """Write through :func:`_write` into a sibling temporary file, then rename: a failed
    export leaves no half-written file under the requested name."""
    partial = out.with_name(f".{out.name}.partial")
    try:
        with open(partial, "wb") as sink:
            n = _write(rel, fmt, sink)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return n


def _write(rel, fmt: str, sink: BinaryIO) -> int:  # type: ignore[no-untyped-def]
    """The one writer of every destination (stdout or a file, so both get the same bytes):
    stream ``rel`` as ``fmt`` into ``sink``; the number of rows, counted while writing so
    the posture view is evaluated once."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    reader = rel.to_arrow_reader(batch_size=50_000)
    rows = 0
    if fmt == "csv":
        # "needed": strings are quoted, so an empty string ("") differs from NULL (empty field).
        options = pacsv.WriteOptions(quoting_style="needed")
        with pacsv.CSVWriter(sink, reader.schema, write_options=options) as w:
            for batch in reader:
                w.write_batch(batch)
                rows += batch.num_rows
    elif fmt == "parquet":
        with pq.ParquetWriter(sink, reader.schema) as w:
            for batch in reader:
                w.write_batch(batch)
                rows += batch.num_rows
    else:
        for batch in reader:
            for row in batch.to_pylist():
                sink.write(json.dumps(row, ensure_ascii=False, default=str).encode("utf-8"))
                sink.write(b"\n")
            rows += batch.num_rows
    return rows
