"""``mtasts monthly``: the scheduled job: crawl the month's list, ingest new lab evidence,
render the month's report. Idempotent for a month: a finished crawl of the same list in the
same month is not repeated, an interrupted one is resumed, and ingest adds nothing twice.

It composes the other subcommands (crawl, ingest, report) as a user would type them, and
adds what a scheduled job needs: a lock (two runs never overlap on one database) and a
sanity gate (collectors.crawl.sanity) between the crawl and anything published.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import os
import shlex
from pathlib import Path
from typing import Any

from collectors.cli.common import CliError, add_db_option, month_arg, open_db
from collectors.crawl import DEFAULT_CANARIES, Canary, check_run


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
    gate = p.add_argument_group(
        "sanity gate", "checked after the crawl, before anything is ingested or published; a month "
        "that fails stops with exit status 3 and its crawl run is marked failed")
    gate.add_argument("--canary", action="append", default=[], metavar="DOMAIN:COLUMN=VALUE",
                      help="a domain whose posture value is known, e.g. gmail.com:mx_status=ok (repeat; "
                           "default: gmail.com, google.com, outlook.com, yahoo.com have mx_status ok, "
                           "checked when they are in the list)")
    gate.add_argument("--gate-top", type=int, default=1000, metavar="N",
                      help="the DNS failure share is over the N best-ranked domains (default %(default)s)")
    gate.add_argument("--max-dns-failure-share", type=float, default=0.2, metavar="F",
                      help="most share of those with NXDOMAIN/SERVFAIL/timeout for the MX query "
                           "(default %(default)s)")
    gate.add_argument("--skip-sanity-gate", action="store_true", help="publish without the gate")
    add_db_option(p)
    p.set_defaults(func=_monthly)


def _crawl_run_of_month(db: str, month: str, input_list: str) -> tuple[str, str] | None:
    """The newest crawl run of ``input_list`` started in ``month``: (run_id, status)."""
    with open_db(db) as store:
        found = store.run_of_month("crawl", input_list, month)
    return (found.run_id, found.status) if found else None


def _lock(db: str) -> Any:
    """Hold ``.<db name>.monthly.lock`` beside the database for this process: a second
    monthly job on the same database stops at once instead of crawling alongside."""
    path = Path(db).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path.with_name(f".{path.name}.monthly.lock"), "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise CliError(f"another 'mtasts monthly' is running on {db} ({holder}); "
                       "wait for it to end, this run did nothing", exit_code=75) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}, started {dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}\n")
    fh.flush()
    return fh


def _monthly(args: argparse.Namespace) -> int:
    try:
        canaries = [Canary.parse(c) for c in args.canary]
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    lock = _lock(args.db)
    try:
        return _run_month(args, canaries)
    finally:
        lock.close()


def _crawl_of_month(args: argparse.Namespace, month: str, this_month: str, input_list: str,
                    extra: list[str]) -> str:
    """The month's finished crawl run of the list: reused, resumed or crawled now."""
    from collectors.cli import main

    found = _crawl_run_of_month(args.db, month, input_list)
    if found and found[1] == "finished":
        print(f"monthly: {month}: crawl {found[0]} of {input_list} already finished; not repeated")
        return found[0]
    if found and found[1] != "failed":
        print(f"monthly: {month}: resuming crawl {found[0]} of {input_list}")
        cmd = ["crawl", "--resume", found[0], "--db", args.db, *extra]
    elif month != this_month:
        # A crawl is dated when it runs: crawling now cannot fill another month.
        raise CliError(f"no usable crawl of {input_list} in {month}, and a crawl run now would be dated "
                       f"{this_month}; use --month {this_month} (or omit --month)")
    else:
        if found:
            print(f"monthly: {month}: crawl {found[0]} failed the sanity gate; crawling the list again")
        cmd = ["crawl", args.list, "--db", args.db, *extra] + (["--top", str(args.top)] if args.top else [])
    rc = main(cmd)
    after = _crawl_run_of_month(args.db, month, input_list)
    if rc:
        if after and after[1] not in ("finished", "failed"):  # a run exists and is not done
            advice = f"run 'mtasts monthly' again to resume crawl {after[0]}"
        else:
            advice = "no crawl was started: fix the cause above, then run 'mtasts monthly' again"
        raise CliError(f"the crawl failed (exit {rc}); {advice}", rc)
    assert after is not None
    return after[0]


def _gate(args: argparse.Namespace, run_id: str, canaries: list[Canary]) -> None:
    """Stop before publishing a month whose crawl is implausible; mark that run failed."""
    if args.skip_sanity_gate:
        print(f"monthly: sanity gate skipped (--skip-sanity-gate) for crawl {run_id}")
        return
    with open_db(args.db) as store:
        report = check_run(store.con, run_id, canaries=canaries or DEFAULT_CANARIES,
                           canaries_required=bool(canaries), top=args.gate_top,
                           max_dns_failure_share=args.max_dns_failure_share)
        if report.ok:
            print(f"monthly: sanity gate passed for crawl {run_id}: DNS failures {report.dns_failure_share:.1%}"
                  f" of the top {report.top:,}; canaries {', '.join(report.canaries_checked) or 'none in the list'}")
            return
        row = store.con.execute("SELECT summary FROM runs WHERE run_id = ?", [run_id]).fetchone()
        summary = {**json.loads((row and row[0]) or "{}"), "sanity_gate": list(report.problems)}
        store.finish_run(run_id, "failed", summary)
    problems = "".join(f"\n  - {p}" for p in report.problems)
    raise CliError(
        f"crawl {run_id} failed the sanity gate; nothing was ingested or published:{problems}\n"
        "Check the resolver and the network (e.g. --crawl-args \"--resolver IP\"). The run is "
        "marked failed; the next 'mtasts monthly' crawls the list again.", exit_code=3)


def _run_month(args: argparse.Namespace, canaries: list[Canary]) -> int:
    from collectors.cli import main

    this_month = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")
    month = args.month or this_month
    try:
        extra = shlex.split(args.crawl_args)
    except ValueError as exc:  # unbalanced quotes
        raise CliError(f"--crawl-args is not a valid flag list: {exc}") from exc
    input_list = args.list + (f" (top {args.top})" if args.top else "")
    run_id = _crawl_of_month(args, month, this_month, input_list, extra)
    _gate(args, run_id, canaries)
    if args.evidence:
        cmd = ["ingest", "--db", args.db, *args.evidence]
        if args.year:
            cmd += ["--year", str(args.year)]
        rc = main(cmd)
        if rc:
            raise CliError(f"the ingest failed (exit {rc}); the crawl of {month} is kept, and "
                           "'mtasts monthly' again adds only what is new", rc)
    if args.skip_report:
        return 0
    return main(["report", "--db", args.db, "--month", month, "--out", args.out])
