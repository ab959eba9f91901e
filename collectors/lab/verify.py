"""A deployment checked against its design (``mtasts lab verify PLAN``): what the crawl
observed of each lab domain, compared with what the rendered plan says must be there.

Pure: the plan (``plan.json``, written by ``mtasts lab render``) and the crawl's raw rows
(``crawl_observations``, ``crawl_policy``, ``crawl_smtp`` as dicts) in, one
:class:`Check` per line of the checklist out. The CLI runs the crawl (the lab package does
not import the crawler; tests/test_architecture.py).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass
from typing import Any

from collectors.lab import configs
from collectors.lab.deploy import DeployPlan
from collectors.lab.design import SERVERS, LabNames, ServerSpec

PLAN_FILE = "plan.json"

# What an RFC 8461 sender's probe must find at each kind of server (crawl_smtp.outcome):
# STARTTLS with a certificate valid for the MX name; no STARTTLS; a certificate no sender
# accepts (RFC 8461 section 4.2: untrusted and for another name).
SMTP_OUTCOME = {"valid": "ok", "required": "ok", "none": "no_starttls", "wrong_name": "cert_invalid"}


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist."""

    label: str       # a-f
    what: str        # e.g. "MX", "_mta-sts TXT"
    ok: bool
    found: str       # what was observed (and, on failure, what was expected)
    advisory: bool = False   # advice, not the design: a miss is a WARN and fails nothing

    def line(self) -> str:
        state = "OK  " if self.ok else ("WARN" if self.advisory else "FAIL")
        return f"{state} {self.label.upper()} {self.what:<16} {self.found}"


def plan_json(plan: DeployPlan) -> str:
    """The plan as ``mtasts lab render`` writes it beside the files (``plan.json``)."""
    return json.dumps(asdict(plan), indent=2, sort_keys=True) + "\n"


def load_plan(text: str) -> DeployPlan:
    """A plan back from ``plan.json``; ValueError (one line) when it is not one."""
    try:
        data = json.loads(text)
        plan = DeployPlan(**data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a plan written by 'mtasts lab render': {exc}") from exc
    problems = plan.problems()
    if problems:
        raise ValueError("; ".join(problems))
    return plan


def lab_domains(plan: DeployPlan) -> list[str]:
    """The domains to crawl: one per server, A to F."""
    names = LabNames(plan.base)
    return [names.domain(s.label) for s in SERVERS]


def verify_server(plan: DeployPlan, server: ServerSpec, observation: dict[str, Any] | None,
                  policy: dict[str, Any] | None, smtp: dict[str, Any] | None) -> list[Check]:
    """The checks of one lab domain, from its crawl rows (None: no such row)."""
    label = server.label
    if observation is None:
        return [Check(label, "observed", False, "the crawl has no row for this domain")]
    names = LabNames(plan.base)
    return [
        _mx(label, names.mx_host(label), observation),
        _address(plan, server, smtp),
        _sts_record(label, server.sts_policy, plan.policy_id, observation),
        _tlsrpt_record(label, server.sts_policy, names.tlsrpt_uri, observation),
        _policy(plan, server, names, policy),
        _smtp_tls(server, names.mx_host(label), smtp),
    ]


def _mx(label: str, mx_host: str, obs: dict[str, Any]) -> Check:
    found = list(obs.get("mx_exchanges") or [])
    ok = obs.get("mx_rcode") == "NOERROR" and found == [mx_host]
    return Check(label, "MX", ok, f"{', '.join(found) or obs.get('mx_rcode')}"
                 + ("" if ok else f" (expected {mx_host})"))


def _address(plan: DeployPlan, server: ServerSpec, smtp: dict[str, Any] | None) -> Check:
    """The MX host's address: the probe asks A first and AAAA only when there is no A, so
    for C an IPv6 address found means no A record (design: IPv6 only)."""
    expected = server_address(plan, server)
    what = "AAAA, no A" if server.ipv6_only else "A"
    found = (smtp or {}).get("address")
    ok = found is not None and _same_address(found, expected)
    shown = found or f"none ({(smtp or {}).get('detail') or 'not probed'})"
    return Check(server.label, what, ok, f"{shown}" + ("" if ok else f" (expected {expected})"))


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def _sts_record(label: str, published: bool, policy_id: str, obs: dict[str, Any]) -> Check:
    if not published:
        ok = not obs.get("sts_txt")
        return Check(label, "_mta-sts TXT", ok, "none, as designed" if ok else f"{obs.get('sts_txt')} (expected none)")
    ok = obs.get("sts_status") == "valid" and obs.get("sts_id") == policy_id
    found = f"id={obs.get('sts_id')}" if obs.get("sts_id") else f"{obs.get('sts_rcode')}, {obs.get('sts_status')}"
    return Check(label, "_mta-sts TXT", ok, found + ("" if ok else f" (expected id={policy_id}, the plan's)"))


def _tlsrpt_record(label: str, published: bool, uri: str, obs: dict[str, Any]) -> Check:
    if not published:
        ok = not obs.get("tlsrpt_txt")
        return Check(label, "_smtp._tls TXT", ok,
                     "none, as designed" if ok else f"{obs.get('tlsrpt_txt')} (expected none)")
    rua = list(obs.get("tlsrpt_rua") or [])
    ok = obs.get("tlsrpt_status") == "valid" and rua == [uri]
    found = f"rua={','.join(rua)}" if rua else f"{obs.get('tlsrpt_rcode')}, {obs.get('tlsrpt_status')}"
    return Check(label, "_smtp._tls TXT", ok, found + ("" if ok else f" (expected rua={uri})"))


def _policy(plan: DeployPlan, server: ServerSpec, names: LabNames, row: dict[str, Any] | None) -> Check:
    """RFC 8461 section 3.3: HTTPS with a certificate valid for mta-sts.<domain> (the fetch
    verifies it; outcome "ok" only then), and the body the renderer wrote."""
    label, host = server.label, names.policy_host(server.label)
    if not server.sts_policy:
        return Check(label, "policy", row is None, "none fetched, as designed" if row is None
                     else f"{host} answered {row.get('outcome')} (expected no policy)")
    if row is None:
        return Check(label, "policy", False, f"not fetched (no valid _mta-sts record for {names.domain(label)})")
    if row.get("outcome") != "ok":
        detail = row.get("tls_subclass") or row.get("detail") or row.get("phase")
        return Check(label, "policy", False, f"https://{host}: {row.get('outcome')} ({detail})")
    body = bytes(row.get("body") or b"")
    expected = configs.policy_text(names, label)
    if body != expected:
        return Check(label, "policy", False, f"https://{host} serves {body[:80]!r}, not the rendered "
                                             f"policy/{label}/mta-sts.txt")
    address = (row.get("addresses") or [None])[0]
    ok = address is not None and _same_address(address, plan.policy_v4)
    return Check(label, "policy", ok, f"https://{host} at {address}: valid certificate, the rendered policy"
                 + ("" if ok else f" (expected the policy server {plan.policy_v4})"))


def _smtp_tls(server: ServerSpec, mx_host: str, row: dict[str, Any] | None) -> Check:
    expected = SMTP_OUTCOME[server.tls]
    if row is None:
        return Check(server.label, "SMTP TLS", False, f"{mx_host} not probed (expected {expected})")
    outcome = row.get("outcome")
    sans = list(row.get("cert_sans") or [])
    facts = {"ok": f"STARTTLS, {row.get('tls_version')}, certificate valid for {mx_host}",
             "no_starttls": "no STARTTLS offered",
             "cert_invalid": f"STARTTLS, certificate refused ({row.get('tls_subclass')}: {row.get('verify_error')}), "
                             f"for {', '.join(sans) or 'no name'}",
             }.get(outcome or "", f"{outcome}: {row.get('detail')}")
    # D: refused, and for another name than its MX host (the design fails it twice)
    ok = outcome == expected and not (server.tls == "wrong_name" and mx_host in sans)
    return Check(server.label, "SMTP TLS", ok, facts + ("" if ok else f" (expected {expected}: {server.description})"))


def server_address(plan: DeployPlan, server: ServerSpec) -> str:
    """The address the plan gives a receiving server (C: its IPv6 address)."""
    return plan.receiver_c_v6 if server.ipv6_only else plan.receivers_v4[server.label]


def plaintext_mail_check(server: ServerSpec, reply: tuple[int, str] | str) -> Check:
    """E requires TLS (``smtpd_tls_security_level = encrypt``): MAIL FROM without STARTTLS
    must be refused with 530 (RFC 3207 section 4). ``reply`` is the server's answer to
    ``MAIL FROM:<>`` sent in the clear, or why there was none."""
    if isinstance(reply, str):
        return Check(server.label, "TLS required", False, f"no answer to MAIL without STARTTLS: {reply}")
    code, text = reply
    ok = code == 530
    return Check(server.label, "TLS required", ok, f"MAIL without STARTTLS answered {code} {text[:80]}"
                 + ("" if ok else " (expected 530: smtpd_tls_security_level = encrypt)"))


def ptr_check(plan: DeployPlan, server: ServerSpec, found: list[str] | str) -> Check:
    """Reverse DNS of the server's address (docs/lab-deploy.md section 1): advice, since only
    some senders look at it; ``found`` is the PTR names, or why there were none."""
    names = LabNames(plan.base)
    expected = names.mx_host(server.label)
    address = server_address(plan, server)
    if isinstance(found, str):
        return Check(server.label, "PTR", False, f"{address}: {found} (set it to {expected})", advisory=True)
    shown = [n.rstrip(".").lower() for n in found]
    ok = shown == [expected]
    return Check(server.label, "PTR", ok, f"{address} -> {', '.join(shown) or 'none'}"
                 + ("" if ok else f" (set it to {expected})"), advisory=not ok)


def verify(plan: DeployPlan, observations: dict[str, dict[str, Any]], policies: dict[str, dict[str, Any]],
           probes: dict[str, dict[str, Any]], plaintext_replies: dict[str, tuple[int, str] | str] | None = None,
           ptr: dict[str, list[str] | str] | None = None) -> list[Check]:
    """Every check of the deployment: rows keyed by domain (observations, policies) and by MX host
    (probes); the TLS-required server's answer to MAIL in the clear and the PTR names of each
    server's address, keyed by label, when they were asked."""
    names = LabNames(plan.base)
    out: list[Check] = []
    for server in SERVERS:
        domain = names.domain(server.label)
        out += verify_server(plan, server, observations.get(domain), policies.get(domain),
                             probes.get(names.mx_host(server.label)))
        if server.tls == "required" and plaintext_replies is not None:
            out.append(plaintext_mail_check(server, plaintext_replies.get(server.label, "not asked")))
        if ptr is not None:
            out.append(ptr_check(plan, server, ptr.get(server.label, "not asked")))
    return out
