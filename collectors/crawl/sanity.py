"""The sanity gate of a month's crawl: is this run fit to publish?

A crawl through a broken resolver (one that answers NXDOMAIN or SERVFAIL for
everything, or times out) finishes "successfully" with every domain absent. Two
checks catch it before the month is published: canary domains whose answers are
known (gmail.com has MX records), and a bound on the share of DNS failures
(NXDOMAIN, SERVFAIL, timeouts) among the best-ranked domains, where real failures
are rare. Read-only; the caller decides what to do with a failed run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

# MX rcodes that mean "no answer" (crawl_observations.mx_rcode; NOERROR is an answer).
DNS_FAILURES = ("NXDOMAIN", "SERVFAIL", "TIMEOUT", "REFUSED", "ERROR")


@dataclass(frozen=True, slots=True)
class Canary:
    """A domain whose posture column has a known value, e.g. gmail.com mx_status = ok."""

    domain: str
    column: str
    expected: str

    @classmethod
    def parse(cls, text: str) -> "Canary":
        """``DOMAIN:COLUMN=VALUE`` (e.g. ``gmail.com:mx_status=ok``); ValueError otherwise."""
        domain, sep, rest = text.partition(":")
        column, sep2, expected = rest.partition("=")
        if not (sep and sep2 and domain and column.isidentifier() and expected):
            raise ValueError(f"a canary is DOMAIN:COLUMN=VALUE (e.g. gmail.com:mx_status=ok), not {text!r}")
        return cls(domain.lower().rstrip("."), column, expected)


# Mail domains at the top of every list, whose MX records are not in doubt.
DEFAULT_CANARIES = tuple(Canary(d, "mx_status", "ok")
                         for d in ("gmail.com", "google.com", "outlook.com", "yahoo.com"))


@dataclass(frozen=True, slots=True)
class SanityReport:
    """What the gate found: ``ok`` when no problem; each problem one sentence."""

    run_id: str
    problems: tuple[str, ...]
    top: int                      # domains the failure share was computed over
    dns_failure_share: float
    canaries_checked: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def _text(value: Any) -> str:
    """A posture value as the export writes it (booleans true/false, NULL empty)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _canary_problems(con: Any, run_id: str, canaries: Sequence[Canary], required: bool) -> tuple[list[str], list[str]]:
    problems, checked = [], []
    columns = {c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'posture'").fetchall()}
    for c in canaries:
        if c.column not in columns:
            problems.append(f"canary {c.domain}: posture has no column {c.column!r}")
            continue
        row = con.execute(f'SELECT "{c.column}" FROM posture WHERE run_id = ? AND domain = ?',
                          [run_id, c.domain]).fetchone()
        if row is None:
            if required:
                problems.append(f"canary {c.domain} is not in the crawled list")
            continue
        checked.append(c.domain)
        if _text(row[0]) != c.expected:
            problems.append(f"canary {c.domain}: {c.column} is {_text(row[0]) or 'empty'!r},"
                            f" expected {c.expected!r}")
    return problems, checked


def check_run(con: Any, run_id: str, *, canaries: Sequence[Canary] = DEFAULT_CANARIES,
              canaries_required: bool = False, top: int = 1000,
              max_dns_failure_share: float = 0.2) -> SanityReport:
    """Check one finished crawl run. Canaries absent from the list are skipped unless
    ``canaries_required`` (the user named them); the DNS failure share is over the
    ``top`` best-ranked domains (RFC 1035 rcodes of the MX query, plus timeouts)."""
    problems, checked = _canary_problems(con, run_id, canaries, canaries_required)
    n, failed = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE o.mx_rcode IN (SELECT unnest($fail)))"
        " FROM (SELECT domain FROM crawl_domains WHERE run_id = $run ORDER BY rank NULLS LAST, position"
        "       LIMIT $top) d"
        " JOIN crawl_observations o ON o.run_id = $run AND o.domain = d.domain",
        {"run": run_id, "top": top, "fail": list(DNS_FAILURES)}).fetchone()
    share = failed / n if n else 0.0
    if n == 0:
        problems.append("no domain of the list was observed")
    elif share > max_dns_failure_share:
        problems.append(f"{failed:,} of the top {n:,} domains ({share:.0%}) got no MX answer"
                        f" (NXDOMAIN, SERVFAIL or timeout); the bound is {max_dns_failure_share:.0%}")
    return SanityReport(run_id, tuple(problems), n, share, tuple(checked))


__all__ = ["DEFAULT_CANARIES", "DNS_FAILURES", "Canary", "SanityReport", "check_run"]
