"""``mtasts check DOMAIN...``: one or a few domains checked now, no database needed.

The same crawl code as ``mtasts crawl`` (observer, writer, the ``posture`` view), run
into a database in memory that is dropped afterwards; so a domain gets the verdicts a
crawl would give it. Prints each finding with its RFC section and what to fix, or with
``--json`` one object per domain with exactly the posture export's columns. Exit
status: 0 when no domain is misconfigured, 1 when one is, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from collectors.cli.common import CliError
from collectors.cli.crawl import add_network_options, resolver_of, settings_overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="check the MTA-STS/TLS-RPT posture of a few domains now (no database)",
        description="Check domains now with the crawler's code and print a verdict per domain: "
                    "each finding with its RFC section and what to fix. Exit status 1 when any "
                    "domain is misconfigured (the posture export's 'misconfigured' or "
                    "'delivery_risk'), else 0.")
    p.add_argument("domains", nargs="+", metavar="DOMAIN", help="domain names; - reads them from stdin")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per domain and line, with the posture export's columns")
    add_network_options(p)
    p.set_defaults(func=_check)


def _domains(given: list[str]) -> list[str]:
    names = [line for line in sys.stdin.read().split() if line] if given == ["-"] else given
    if not names:
        raise CliError("no domains on standard input (one a line)")
    return names


def _entries(names: list[str]) -> list[Any]:
    from collectors.crawl import InputEntry, normalise_domain

    entries, bad = [], []
    for i, raw in enumerate(names, 1):
        domain, reason = normalise_domain(raw)
        entries.append(InputEntry(i, i, raw, domain, reason))
        if reason:
            bad.append(f"{raw!r} ({reason})")
    if bad:
        raise CliError(f"not a domain name: {', '.join(bad)}")
    return entries


@contextmanager
def crawled(args: argparse.Namespace, names: list[str]) -> Iterator[tuple[Any, str]]:
    """Crawl ``names`` now into a database in memory: (a cursor on it, the run id), for as
    long as the ``with`` block lasts (``mtasts check``, ``mtasts lab verify``)."""
    from collectors.crawl import CrawlSettings, load_input, run_crawl
    from collectors.store import open_store

    if args.ca_bundle:
        from pathlib import Path

        if not Path(args.ca_bundle).is_file():
            raise CliError(f"no such CA bundle: {args.ca_bundle}")
    settings = CrawlSettings(resolver=resolver_of(args), concurrency=min(50, len(names)), **{
        k: v for k, v in settings_overrides(args).items() if v is not None})  # type: ignore[arg-type]
    with open_store(":memory:") as store:
        run = store.start_run("crawl", "mtasts check", parameters={"settings": settings.to_parameters()})
        load_input(store, run, _entries(names), "mtasts check")
        run_crawl(store, run, settings, progress=False)
        yield store.con.cursor(), run.run_id


def rows_of(cur: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """A query's rows as dicts by column name."""
    rel = cur.sql(sql, params=params)
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]


def _crawl(args: argparse.Namespace, names: list[str]) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Crawl ``names`` in memory: the posture rows (export columns) and uncovered MX hosts."""
    with crawled(args, names) as (cur, run_id):
        rows = rows_of(cur, "SELECT * EXCLUDE (run_id) FROM posture WHERE run_id = $run ORDER BY rank",
                       {"run": run_id})
        uncovered: dict[str, list[str]] = {}
        for domain, host in cur.execute(
                "SELECT domain, mx_host FROM crawl_mx WHERE run_id = ? AND covered = false"
                " ORDER BY domain, preference, mx_host", [run_id]).fetchall():
            uncovered.setdefault(domain, []).append(host)
    return rows, uncovered


def misconfigured(row: dict[str, Any]) -> bool:
    """The posture's own verdicts: misconfigured, or a compliant sender would not deliver."""
    return bool(row.get("misconfigured") or row.get("delivery_risk"))


def _headline(row: dict[str, Any]) -> str:
    if misconfigured(row):
        return "MISCONFIGURED" + (" (mail from compliant senders is not delivered)" if row.get("delivery_risk") else "")
    if row.get("policy_mode"):
        return f"ok: MTA-STS in {row['policy_mode']} mode"
    return "no MTA-STS"


def _human(row: dict[str, Any], uncovered: list[str]) -> str:
    from collectors.crawl import advise

    lines = [f"{row['domain']}: {_headline(row)}"]
    for a in advise(row, uncovered):
        lines.append(f"  {a.level:<7} {a.rfc:<13} {a.message}")
        if a.fix:
            lines.append(f"  {'':<7} {'':<13} fix: {a.fix}")
    return "\n".join(lines)


def _check(args: argparse.Namespace) -> int:
    rows, uncovered = _crawl(args, _domains(args.domains))
    for row in rows:
        if args.json:
            print(json.dumps(row, ensure_ascii=False, default=str))  # as 'export --format jsonl'
        else:
            print(_human(row, uncovered.get(row["domain"], [])))
    return 1 if any(misconfigured(r) for r in rows) else 0
