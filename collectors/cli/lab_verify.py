"""``mtasts lab verify PLAN``: a deployment checked against the plan it was rendered from.

The crawl's own code (DNS, the policy fetch, the SMTP probe; ``mtasts check`` with
``--probe-smtp``) observes the six lab domains into a database in memory; the lab's
:mod:`collectors.lab.verify` compares each observation with the design and the rendered
files. Prints one line per check (OK/FAIL and what was found); exit status 1 on any
failure, 2 on a usage error (docs/lab-deploy.md, the closing checklist).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from collectors.cli.check import crawled, rows_of
from collectors.cli.common import CliError
from collectors.cli.crawl import add_network_options

_TABLES = {  # table -> its key column
    "crawl_observations": "domain",
    "crawl_policy": "domain",
    "crawl_smtp": "mx_host",
}


def add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="check a deployed lab against its rendered plan (DNS, policies, each server's TLS)",
        description="Check a lab deployment against the plan 'mtasts lab render' wrote (OUT/plan.json): "
                    "MX and A/AAAA records (C: IPv6 only), the _mta-sts TXT with the plan's id and the "
                    "_smtp._tls TXT, each policy over HTTPS with a valid certificate and equal to the "
                    "rendered one, and each server's STARTTLS as designed. One line per check; exit "
                    "status 1 when any check fails. Never sends mail (the probe QUITs after STARTTLS).")
    p.add_argument("plan", type=Path, metavar="PLAN", help="plan.json in the folder 'mtasts lab render' wrote")
    add_network_options(p)
    p.set_defaults(func=_cmd_verify, probe_smtp=True)


def _observed(args: argparse.Namespace, domains: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Each crawl table's rows of this check, keyed by domain or MX host."""
    args.probe_smtp = True  # each server's TLS is half the checklist
    out: dict[str, dict[str, dict[str, Any]]] = {}
    with crawled(args, domains) as (cur, run_id):
        for table, key in _TABLES.items():
            rows = rows_of(cur, f"SELECT * FROM {table} WHERE run_id = $run", {"run": run_id})
            out[table] = {row[key]: row for row in rows}
    return out


def _cmd_verify(args: argparse.Namespace) -> int:
    from collectors.lab import lab_domains, load_plan, verify

    try:
        plan = load_plan(args.plan.read_text())
    except OSError as exc:
        raise CliError(f"cannot read the plan: {exc}") from exc
    except ValueError as exc:
        raise CliError(f"{args.plan}: {exc}") from exc
    seen = _observed(args, lab_domains(plan))
    checks = verify(plan, seen["crawl_observations"], seen["crawl_policy"], seen["crawl_smtp"])
    for check in checks:
        print(check.line())
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} of {len(checks)} checks passed" + (f", {failed} FAILED" if failed else ""))
    return 1 if failed else 0
