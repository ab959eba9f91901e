"""What to fix: a domain's posture verdicts read as findings with their RFC section and a fix.

Input is one row of the ``posture`` view (the export's columns and vocabulary) plus
the MX hosts its policy does not cover; nothing here decides a verdict (the views
do), it only words them for ``mtasts check``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

Level = Literal["error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Advice:
    """One finding about a domain: how bad, which rule, what is wrong, what to do."""

    level: Level
    rfc: str
    message: str
    fix: str = ""


_TLS = {
    "name_mismatch": "the certificate does not name mta-sts.{d}: add mta-sts.{d} to its subjectAltName",
    "self_signed": "the certificate is self-signed: use one from a CA senders trust",
    "expired": "the certificate has expired: renew it",
    "unknown_ca": "the certificate's issuer is not trusted: serve the full chain from a public CA",
    "no_certificate": "no certificate was offered: configure TLS for mta-sts.{d}",
}
_FETCH = {
    "dns_error": "mta-sts.{d} does not resolve: publish its A/AAAA record",
    "tcp_error": "nothing answers on port 443 of mta-sts.{d}: serve the policy over HTTPS",
    "http_error": "the policy URL did not answer 200: serve https://mta-sts.{d}/.well-known/mta-sts.txt",
    "redirect": "the policy URL redirects, which senders must not follow: serve it directly",
    "too_large": "the policy exceeds 64 KiB: shorten it",
    "timeout": "the policy fetch timed out: make mta-sts.{d} answer quickly",
    "syntax_error": "the policy does not parse: it needs version: STSv1, mode, max_age and mx lines",
}


def suggested_pattern(host: str) -> str:
    """An ``mx`` pattern that covers ``host``: a wildcard for its parent when it has one
    (RFC 8461 4.1: a wildcard matches one left-most label), else the host itself."""
    labels = host.rstrip(".").split(".")
    return "*." + ".".join(labels[1:]) if len(labels) > 2 else host


def _record(p: dict[str, Any], d: str) -> list[Advice]:
    status = p.get("sts_record")
    if status == "absent" and p.get("mx_status") == "null_mx":
        return [Advice("info", "RFC 7505", "null MX: the domain accepts no mail, so needs no MTA-STS")]
    if status == "absent":
        return [Advice("info", "RFC 8461 3.1", "no MTA-STS record: senders fall back to opportunistic TLS",
                       f'publish _mta-sts.{d} TXT "v=STSv1; id=YYYYMMDDhhmmss" and a policy at '
                       f"https://mta-sts.{d}/.well-known/mta-sts.txt")]
    if status == "invalid":
        return [Advice("error", "RFC 8461 3.1", "the _mta-sts TXT record is invalid",
                       'it must read "v=STSv1; id=<1-32 letters or digits>"')]
    if status == "multiple":
        return [Advice("error", "RFC 8461 3.1", "more than one _mta-sts TXT record: senders ignore them all",
                       "keep exactly one")]
    if status == "dns_error":
        return [Advice("error", "RFC 8461 3.1", "the _mta-sts TXT query failed (SERVFAIL or timeout)",
                       "check the zone's name servers and DNSSEC")]
    return []


def _policy(p: dict[str, Any], d: str) -> list[Advice]:
    fetch = p.get("policy_fetch")
    if fetch in (None, "ok", "not_attempted"):
        out = []
        if p.get("policy_mode") == "testing":
            out.append(Advice("info", "RFC 8461 5", "mode testing: senders report failures but still deliver",
                              "switch to mode: enforce once TLS-RPT reports show no failures"))
        if p.get("policy_mode") == "none":
            out.append(Advice("info", "RFC 8461 5", "mode none: the policy is switched off"))
        return out
    if fetch == "tls_error":
        sub = p.get("policy_tls_subclass") or ""
        fix = _TLS.get(sub, "fix the HTTPS certificate of mta-sts.{d}").format(d=d)
        return [Advice("error", "RFC 8461 3.3", f"the policy could not be fetched: TLS failed ({sub or 'other'})", fix)]
    fix = _FETCH.get(fetch, "serve the policy at https://mta-sts.{d}/.well-known/mta-sts.txt").format(d=d)
    rfc = "RFC 8461 3.2" if fetch == "syntax_error" else "RFC 8461 3.3"
    return [Advice("error", rfc, f"the policy could not be used: {fetch}", fix)]


def _mx(p: dict[str, Any], uncovered: Sequence[str]) -> list[Advice]:
    out = []
    if p.get("mx_status") == "none":
        out.append(Advice("warning", "RFC 5321 5.1", "no MX record (no such domain, or no MX data): senders deliver to the domain's address, if any"))
    elif p.get("mx_status") == "dns_error":
        out.append(Advice("error", "RFC 5321 5.1", "the MX query failed (SERVFAIL or timeout)"))
    level: Level = "error" if p.get("policy_mode") == "enforce" else "warning"
    for host in uncovered:
        out.append(Advice(level, "RFC 8461 4.1", f"the policy's mx patterns do not cover {host}",
                          f"add `mx: {suggested_pattern(host)}`"))
    starttls = p.get("mx_starttls")
    if starttls == "no_starttls":
        out.append(Advice("error", "RFC 8461 4.2", "an MX host offers no STARTTLS", "enable STARTTLS"))
    elif starttls == "cert_invalid":
        out.append(Advice("error", "RFC 8461 4.2", "an MX host's certificate fails validation",
                          "use a certificate from a public CA that names the MX host"))
    return out


def _tlsrpt(p: dict[str, Any], d: str) -> list[Advice]:
    status = p.get("tlsrpt_record")
    if status == "absent" and p.get("sts_record") == "valid":
        return [Advice("warning", "RFC 8460 3", "no TLS-RPT record: you will not hear of failed deliveries",
                       f'publish _smtp._tls.{d} TXT "v=TLSRPTv1; rua=mailto:tlsrpt@{d}"')]
    if status in ("invalid", "multiple"):
        return [Advice("warning", "RFC 8460 3", f"the _smtp._tls TXT record is {status}",
                       'keep one record reading "v=TLSRPTv1; rua=mailto:..."')]
    return []


def advise(posture: dict[str, Any], uncovered: Sequence[str] = ()) -> list[Advice]:
    """Every finding about one domain, worst first."""
    d = str(posture.get("domain", ""))
    found = _record(posture, d) + _policy(posture, d) + _mx(posture, uncovered) + _tlsrpt(posture, d)
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda a: order[a.level])


__all__ = ["Advice", "advise", "suggested_pattern"]
