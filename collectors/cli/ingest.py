"""``mtasts ingest PATH...``: the audit lab's evidence into the store (issue 5).

Files and folders of any kind, mixed in one call; each is recognised by its content
(``--format`` overrides). One run per call; re-ingesting adds nothing twice.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from collectors.cli.common import CliError, add_db_option, open_db
from collectors.lab_ingest import FORMATS

# DuckDB's buffer pool for an ingest: bounded, so memory stays flat however large the logs.
# Measured on a 1.1 GB log (and 2.2 GB): 192MB 11.0 s, 256MB 10.2 s, 512MB 9.8 s; with 256MB
# peak RSS is 750 MiB at 1.1 GB and 783 MiB at 2.2 GB, where 512MB still grows (its pool is
# filling). The rest of the RSS is Arrow batches in flight, also bounded.
_MEMORY_LIMIT = os.environ.get("MTASTS_INGEST_MEMORY_LIMIT", "256MB")
_FORMATS = FORMATS
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))+\.?$")


def _year(value: str) -> int:
    if not value.isdigit() or not 1970 <= int(value) <= 9999:
        raise argparse.ArgumentTypeError(f"not a year: {value}")
    return int(value)


def _domain(value: str) -> str:
    if not _DOMAIN.match(value):
        raise argparse.ArgumentTypeError(f"not a domain name: {value}")
    return value.lower().rstrip(".")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest", help="ingest audit-lab evidence (Postfix logs, access logs, reports, ledger, notices)",
        description=(
            "Ingest audit-lab evidence into the store: Postfix logs (syslog, RFC 5424, maillog_file, "
            "container stdout; plain or gzip), policy-server access logs, the recorder's JSON lines, "
            "the published lab's exports, TLS-RPT reports (files, .gz, e-mail, mbox, Maildir, POST "
            "captures), the send ledger CSV and users' delay/bounce notices. Each file is recognised "
            "by its content; folders are walked. Re-ingesting a file adds nothing; a grown log "
            "resumes where the last run stopped."),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files and folders, any mix of kinds")
    add_db_option(p)
    p.add_argument("--year", type=_year, metavar="YYYY",
                   help="year of the first line of classic syslog files (default: from the file's date)")
    p.add_argument("--format", choices=_FORMATS, help="read every PATH as this format (no detection)")
    p.add_argument("--lab-domain", action="append", type=_domain, default=[], metavar="D",
                   help="a lab domain (test addresses are <uuid>@<label>.D); repeatable")
    p.add_argument("--pseudonymise", action="store_true",
                   help="hash sender local parts (HMAC with a per-database salt)")
    p.add_argument("--reader", choices=("auto", "compiled", "python"), default="auto",
                   help="how Postfix logs are read: the compiled reader (fast; built by pip install "
                        "with a C compiler), the Python reader (its reference: the same rows), or auto: "
                        "compiled when it is built and --pseudonymise is not given (default)")
    p.add_argument("--keep-other-lines", action="store_true",
                   help="keep every line of daemons without a parser (postscreen, dnsblog, tlsproxy, anvil, ...) "
                        "and of other programs (amavis, ...) raw in postfix_other_lines; by default they are "
                        "counted per host, program, kind and hour (postfix_other_line_counts)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_ingest)


def _check_paths(values: list[str]) -> list[Path]:
    paths = []
    for value in values:
        path = Path(value)
        if not path.exists():
            raise CliError(f"no such file or folder: {value}")
        if not os.access(path, os.R_OK):
            raise CliError(f"cannot read: {value}")
        if not (path.is_file() or path.is_dir()):
            raise CliError(f"not a regular file or folder: {value}")
        paths.append(path)
    return paths


def _ingest(args: argparse.Namespace) -> int:
    from collectors.lab_ingest import COMPILED_READER_AVAILABLE, IngestOptions, ingest

    paths = _check_paths(args.paths)
    if args.reader == "compiled" and not COMPILED_READER_AVAILABLE:
        raise CliError("--reader compiled: the compiled Postfix reader is not built "
                       "(reinstall with a C compiler: pip install -e .)")
    if args.reader == "compiled" and args.pseudonymise:
        raise CliError("--pseudonymise reads Postfix logs with the Python reader: use --reader auto or python")
    options = IngestOptions(year=args.year, format=args.format, lab_domains=tuple(args.lab_domain),
                            pseudonymise=args.pseudonymise, reader=args.reader,
                            keep_other_lines=args.keep_other_lines)
    with open_db(args.db) as store:
        # Bound DuckDB's own memory (its buffer pool keeps table blocks until the limit, then
        # evicts or spills them) so that the ingest stays flat however large the logs are;
        # the log tables have no index to hold in memory. This process ends with the command.
        store.con.execute(f"SET memory_limit = '{_MEMORY_LIMIT}'")
        # The parser keeps one core busy; DuckDB's inserts get the others (one on two cores:
        # measured, two writer threads only fight the parser for the second core).
        store.con.execute(f"SET threads = {max(1, (os.cpu_count() or 2) - 1)}")
        try:
            summary = ingest(store, paths, options)
        except OSError as exc:
            raise CliError(f"cannot read {getattr(exc, 'filename', '') or 'an input'}: "
                           f"{exc.strerror or exc}") from exc
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, default=str))
    else:
        _print_summary(summary)
    return _refuse_unrecognised(paths, summary)


def _refuse_unrecognised(paths: list[Path], summary) -> int:  # type: ignore[no-untyped-def]
    """Exit 1 when a file named on the command line (not one found in a folder) was not
    recognised as any evidence format: its bytes are in quarantine, but the user asked
    for it by name and got nothing from it."""
    named = {p.resolve() for p in paths if p.is_file()}
    missed = [f.source_name for f in summary.files
              if f.format is None and f.status != "empty" and Path(f.source_name).resolve() in named]
    if not missed:
        return 0
    print(f"mtasts: error: not recognised as lab evidence: {', '.join(missed)} (kept in quarantine; "
          f"if it is one of the formats, name it with --format: {', '.join(FORMATS)})", file=sys.stderr)
    return 1


def _print_summary(summary) -> None:
    """The run's summary: what each file gave, then per source and per table. ``added`` is
    what a table gained; ``updated``, stored rows a different reading replaced (a session or
    queue file completed by a re-read); ``duplicates``, rows already stored (or repeated in
    the input), not added."""
    out = sys.stdout
    print(f"run {summary.run_id}", file=out)
    print("files:", file=out)
    for f in summary.files:
        note = f"  ({f.note})" if f.note else ""
        print(f"  {f.source_name}: {f.format or '?'} {f.status}, {f.lines:,} lines, "
              f"{sum(f.added.values()):,} rows added, {sum(f.updated.values()):,} updated, "
              f"{sum(f.duplicates.values()):,} duplicates, {f.quarantined:,} quarantined{note}", file=out)
    print("per source:", file=out)
    for fmt, c in summary.by_format().items():
        print(f"  {fmt:<14} files {c.get('files', 0):>4}  added {c.get('added', 0):>12,}  "
              f"updated {c.get('updated', 0):>10,}  duplicates {c.get('duplicates', 0):>12,}  "
              f"quarantined {c.get('quarantined', 0):>8,}", file=out)
    print(f"per table: {'':<15} {'added':>12} {'updated':>10} {'duplicates':>12}", file=out)
    for table, c in summary.by_table().items():
        print(f"  {table:<26} {c['added']:>12,} {c['updated']:>10,} {c['duplicates']:>12,}", file=out)
    print(f"quarantined: {summary.quarantined:,}", file=out)
    print("(added: new rows; updated: stored sessions/queue files a later reading completed or changed; "
          "duplicates: already stored or repeated in the input, not added)", file=out)
