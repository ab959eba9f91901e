"""``mtasts lab verify PLAN``: a deployment checked against the plan it was rendered from.

The crawl's own code (DNS, the policy fetch, the SMTP probe; ``mtasts check`` with
``--probe-smtp``) observes the six lab domains into a database in memory; two questions of
the lab's own follow (E's answer to MAIL without STARTTLS, and each address's PTR); the
lab's :mod:`collectors.lab.verify` compares each observation with the design and the
rendered files. Prints one line per check (OK/FAIL, WARN for advice, and what was found);
exit status 1 on any failure, 2 on a usage error (docs/lab-deploy.md, the closing checklist).
"""

from __future__ import annotations

import argparse
import smtplib
from pathlib import Path
from typing import Any

from collectors.cli.check import crawled, rows_of
from collectors.cli.common import CliError
from collectors.cli.crawl import add_network_options, resolver_of

EHLO_NAME = "mtasts-lab-verify.invalid"

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
                    "status 1 when any check fails; PTR records are advice (WARN). Never sends mail: the "
                    "probe QUITs after STARTTLS, and E is asked MAIL FROM without STARTTLS (it must "
                    "refuse), never RCPT or DATA.")
    p.add_argument("plan", type=Path, metavar="PLAN", help="plan.json in the folder 'mtasts lab render' wrote")
    add_network_options(p, probe_option=False)
    p.set_defaults(func=_cmd_verify, probe_smtp=True)   # each server's TLS is half the checklist


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
    from collectors.lab import SERVERS, lab_domains, load_plan, server_address, verify

    try:
        plan = load_plan(args.plan.read_text())
    except OSError as exc:
        raise CliError(f"cannot read the plan: {exc}") from exc
    except ValueError as exc:
        raise CliError(f"{args.plan}: {exc}") from exc
    seen = _observed(args, lab_domains(plan))
    timeout = args.timeout or 10.0
    plaintext = {s.label: _mail_in_the_clear(server_address(plan, s), args.smtp_port or 25, timeout)
                 for s in SERVERS if s.tls == "required"}
    ptr = {s.label: _ptr(server_address(plan, s), resolver_of(args), args.dns_timeout or 2.0) for s in SERVERS}
    checks = verify(plan, seen["crawl_observations"], seen["crawl_policy"], seen["crawl_smtp"], plaintext, ptr)
    for check in checks:
        print(check.line())
    failed = sum(not c.ok and not c.advisory for c in checks)
    warned = sum(not c.ok and c.advisory for c in checks)
    graded = sum(not c.advisory or c.ok for c in checks)
    print(f"{graded - failed} of {graded} checks passed" + (f", {failed} FAILED" if failed else "")
          + (f"; {warned} warning{'s' if warned != 1 else ''} (advice)" if warned else ""))
    return 1 if failed else 0


def _mail_in_the_clear(address: str, port: int, timeout: float) -> tuple[int, str] | str:
    """The server's answer to ``MAIL FROM:<>`` without STARTTLS (then QUIT: no RCPT, no DATA,
    nothing is sent), or why there was none."""
    try:
        with smtplib.SMTP(address, port, local_hostname=EHLO_NAME, timeout=timeout) as smtp:
            smtp.ehlo()
            code, text = smtp.mail("")
            return code, text.decode("utf-8", "replace").replace("\n", " ")
    except (OSError, smtplib.SMTPException) as exc:
        return f"{type(exc).__name__}: {exc}"


def _ptr(address: str, resolver: tuple[str, int] | None, dns_timeout: float) -> list[str] | str:
    """The PTR names of ``address`` (RFC 1035 section 3.5), or why there are none."""
    import dns.exception
    import dns.resolver
    import dns.reversename

    res = dns.resolver.Resolver(configure=resolver is None)
    if resolver is not None:
        res.nameservers, res.port = [resolver[0]], resolver[1]
    res.lifetime = dns_timeout * 3
    try:
        answer = res.resolve(dns.reversename.from_address(address), "PTR")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return "no PTR record"
    except (dns.exception.DNSException, OSError) as exc:
        return f"no answer ({type(exc).__name__})"
    return [r.target.to_text() for r in answer]
