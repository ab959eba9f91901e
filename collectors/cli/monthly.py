"""``mtasts monthly``: the scheduled job: crawl the month's list, ingest new lab evidence,
render the month's report. Idempotent for a month: a finished crawl of the same list in the
same month is not repeated, an interrupted one is resumed, and ingest adds nothing twice.

It only composes the other subcommands (crawl, ingest, report), as a user would type them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex

from collectors.cli.common import CliError, add_db_option, month_arg, open_db


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monthly", help="crawl the month's list, ingest new lab evidence, render the month's report",
        description="The scheduled monthly job. Idempotent for a month: a finished crawl of the same "
                    "list in the same month is reused, an interrupted one resumed; ingest adds nothing "
                    "twice; the month's report is rendered again from the database.")
    p.add_argument("--list", required=True, metavar="LIST",
                   help="the list to crawl: a file or tranco:latest / tranco:DATE")
    p.add_argument("--top", type=int, metavar="N", help="only the first N entries")
    p.add_argument("--month", type=month_arg, metavar="YYYY-MM",
                   help="the month (default: the current month, UTC)")
    p.add_argument("--evidence", action="append", default=[], metavar="PATH",
                   help="lab evidence to ingest (repeat; files or folders)")
    p.add_argument("--year", type=int, metavar="YYYY", help="year of classic-syslog Postfix logs")
    p.add_argument("--crawl-args", default="", metavar="'FLAGS'",
                   help="extra flags for 'mtasts crawl', quoted, e.g. \"--probe-smtp --rate 2000\"")
    p.add_argument("--out", default="reports", metavar="DIR", help="report folder (default: %(default)s)")
    p.add_argument("--skip-report", action="store_true", help="crawl and ingest only")
    add_db_option(p)
    p.set_defaults(func=_monthly)


def _crawl_run_of_month(db: str, month: str, input_list: str) -> tuple[str, str] | None:
    """The newest crawl run of ``input_list`` started in ``month``: (run_id, status)."""
    with open_db(db) as store:
        found = store.run_of_month("crawl", input_list, month)
    return (found.run_id, found.status) if found else None


def _monthly(args: argparse.Namespace) -> int:
    from collectors.cli import main

    this_month = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")
    month = args.month or this_month
    try:
        extra = shlex.split(args.crawl_args)
    except ValueError as exc:  # unbalanced quotes
        raise CliError(f"--crawl-args is not a valid flag list: {exc}") from exc
    input_list = args.list + (f" (top {args.top})" if args.top else "")
    found = _crawl_run_of_month(args.db, month, input_list)
    if found and found[1] == "finished":
        print(f"monthly: {month}: crawl {found[0]} of {input_list} already finished; not repeated")
    else:
        if found:
            print(f"monthly: {month}: resuming crawl {found[0]} of {input_list}")
            cmd = ["crawl", "--resume", found[0], "--db", args.db, *extra]
        elif month != this_month:
            # A crawl is dated when it runs: crawling now cannot fill another month.
            raise CliError(f"no crawl of {input_list} in {month}, and a crawl run now would be dated "
                           f"{this_month}; use --month {this_month} (or omit --month)")
        else:
            cmd = ["crawl", args.list, "--db", args.db, *extra]
            if args.top:
                cmd += ["--top", str(args.top)]
        rc = main(cmd)
        if rc:
            raise CliError(f"the crawl failed (exit {rc}); run 'mtasts monthly' again to resume it", rc)
    if args.evidence:
        cmd = ["ingest", "--db", args.db, *args.evidence]
        if args.year:
            cmd += ["--year", str(args.year)]
        rc = main(cmd)
        if rc:
            raise CliError(f"the ingest failed (exit {rc})", rc)
    if args.skip_report:
        return 0
    return main(["report", "--db", args.db, "--month", month, "--out", args.out])
