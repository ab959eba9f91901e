"""The checklist of ``mtasts lab verify`` (collectors.lab.verify), from crawl rows as the
crawler writes them: every check passes on the design, and each deviation fails exactly its
own line with what was found. The rows' shape is the crawl's (observe.py); the run against
real servers is tests/lab/test_lab_separate_hosts.py."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.cli import main
from collectors.lab import configs
from collectors.lab.deploy import DeployPlan
from collectors.lab.design import SERVERS, LabNames
from collectors.lab.verify import load_plan, plan_json, verify

PLAN = DeployPlan(base="example.org", receivers_v4={"a": "198.51.100.11", "b": "198.51.100.12",
                                                   "d": "198.51.100.14", "e": "198.51.100.15", "f": "198.51.100.16"},
                  receiver_c_v6="2001:db8::13", policy_v4="198.51.100.10", policy_id="20261206", serial=2026120601)
NAMES = LabNames(PLAN.base)
OUTCOME = {"valid": "ok", "required": "ok", "none": "no_starttls", "wrong_name": "cert_invalid"}


def _as_designed() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The rows a crawl of a deployment exactly as designed yields (keyed as the CLI keys them)."""
    observations, policies, probes = {}, {}, {}
    for s in SERVERS:
        domain, mx = NAMES.domain(s.label), NAMES.mx_host(s.label)
        observations[domain] = {
            "domain": domain, "mx_rcode": "NOERROR", "mx_exchanges": [mx],
            "sts_rcode": "NOERROR" if s.sts_policy else "NXDOMAIN",
            "sts_txt": '[["v=STSv1; id=20261206"]]' if s.sts_policy else None,
            "sts_status": "valid" if s.sts_policy else "absent", "sts_id": PLAN.policy_id if s.sts_policy else None,
            "tlsrpt_rcode": "NOERROR" if s.sts_policy else "NXDOMAIN",
            "tlsrpt_txt": "[[...]]" if s.sts_policy else None,
            "tlsrpt_status": "valid" if s.sts_policy else "absent",
            "tlsrpt_rua": [NAMES.tlsrpt_uri] if s.sts_policy else []}
        if s.sts_policy:
            policies[domain] = {"domain": domain, "outcome": "ok", "addresses": [PLAN.policy_v4],
                                "body": configs.policy_text(NAMES, s.label)}
        probes[mx] = {"mx_host": mx, "outcome": OUTCOME[s.tls], "tls_version": "TLSv1.3",
                      "address": PLAN.receiver_c_v6 if s.ipv6_only else PLAN.receivers_v4[s.label],
                      "tls_subclass": "self_signed" if s.tls == "wrong_name" else None,
                      "cert_sans": ["wrong-name.invalid"] if s.tls == "wrong_name" else [mx]}
    return observations, policies, probes


def _failed(observations, policies, probes) -> list[str]:
    return [c.line() for c in verify(PLAN, observations, policies, probes) if not c.ok]


def test_a_deployment_as_designed_passes_every_check() -> None:
    checks = verify(PLAN, *_as_designed())
    assert len(checks) == 6 * len(SERVERS) and all(c.ok for c in checks), [c.line() for c in checks if not c.ok]


@pytest.mark.parametrize("break_it, line", [
    (lambda o, p, s: o["a.audit.example.org"].update(sts_id="20240101"),
     "FAIL A _mta-sts TXT     id=20240101 (expected id=20261206, the plan's)"),
    (lambda o, p, s: s["mx.c.audit.example.org"].update(address="198.51.100.13"),
     "FAIL C AAAA, no A       198.51.100.13 (expected 2001:db8::13)"),
    (lambda o, p, s: s["mx.d.audit.example.org"].update(outcome="ok"),
     "FAIL D SMTP TLS         STARTTLS, TLSv1.3, certificate valid for mx.d.audit.example.org "
     "(expected cert_invalid: untrusted certificate with the wrong name)"),
    (lambda o, p, s: s["mx.d.audit.example.org"].update(cert_sans=["mx.d.audit.example.org"]),
     "FAIL D SMTP TLS         STARTTLS, certificate refused (self_signed: None), for mx.d.audit.example.org "
     "(expected cert_invalid: untrusted certificate with the wrong name)"),
    (lambda o, p, s: s["mx.b.audit.example.org"].update(outcome="ok"),
     "FAIL B SMTP TLS         STARTTLS, TLSv1.3, certificate valid for mx.b.audit.example.org "
     "(expected no_starttls: no TLS)"),
    (lambda o, p, s: o["f.audit.example.org"].update(sts_txt='[["v=STSv1; id=1"]]'),
     """FAIL F _mta-sts TXT     [["v=STSv1; id=1"]] (expected none)"""),
    (lambda o, p, s: o["e.audit.example.org"].update(mx_exchanges=["mail.example.org"]),
     "FAIL E MX               mail.example.org (expected mx.e.audit.example.org)"),
    (lambda o, p, s: p["b.audit.example.org"].update(outcome="tls_error", tls_subclass="name_mismatch"),
     "FAIL B policy           https://mta-sts.b.audit.example.org: tls_error (name_mismatch)"),
    (lambda o, p, s: p["c.audit.example.org"].update(body=b"version: STSv1\r\nmode: testing\r\n"),
     "FAIL C policy           https://mta-sts.c.audit.example.org serves b'version: STSv1\\r\\nmode: testing\\r\\n', "
     "not the rendered policy/c/mta-sts.txt"),
    (lambda o, p, s: o["d.audit.example.org"].update(tlsrpt_rua=["mailto:x@example.org"]),
     "FAIL D _smtp._tls TXT   rua=mailto:x@example.org (expected rua=https://tlsrpt.audit.example.org/v1/report)"),
])
def test_each_deviation_fails_exactly_its_own_line(break_it, line) -> None:
    rows = _as_designed()
    break_it(*rows)
    assert _failed(*rows) == [line]


def test_a_missing_probe_or_domain_is_a_failure_not_a_pass() -> None:
    observations, policies, probes = _as_designed()
    del probes["mx.a.audit.example.org"], observations["f.audit.example.org"]
    failed = _failed(observations, policies, probes)
    assert any(line.startswith("FAIL A SMTP TLS") and "not probed" in line for line in failed)
    assert "FAIL F observed         the crawl has no row for this domain" in failed


@given(st.text(string.ascii_letters + string.digits, min_size=1, max_size=32), st.integers(1, 2**31))
def test_the_plan_round_trips_through_plan_json(policy_id: str, serial: int) -> None:
    plan = DeployPlan(**{**{f: getattr(PLAN, f) for f in PLAN.__slots__}, "policy_id": policy_id, "serial": serial})
    assert load_plan(plan_json(plan)) == plan


@pytest.mark.parametrize("text, reason", [
    ("{", "not a plan written by 'mtasts lab render'"),
    ('{"base": "example.org"}', "not a plan written by 'mtasts lab render'"),
    (plan_json(PLAN).replace('"2001:db8::13"', '"198.51.100.13"'), "server C: needs an IPv6 address"),
])
def test_a_bad_plan_is_refused_with_one_line(tmp_path: Path, capsys, text: str, reason: str) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(text)
    assert main(["lab", "verify", str(plan), "--resolver", "127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert reason in err and len(err.strip().splitlines()) == 1


def test_the_tls_required_server_must_refuse_mail_in_the_clear() -> None:
    observations, policies, probes = _as_designed()
    ptr = {s.label: [f"{NAMES.mx_host(s.label)}."] for s in SERVERS}
    refused = verify(PLAN, observations, policies, probes, {"e": (530, "5.7.0 Must issue a STARTTLS command first")}, ptr)
    assert all(c.ok for c in refused) and len(refused) == 6 * 6 + 1 + 6
    (e_line,) = [c.line() for c in refused if c.what == "TLS required"]
    assert e_line.startswith("OK   E TLS required     MAIL without STARTTLS answered 530 5.7.0")
    accepted = verify(PLAN, observations, policies, probes, {"e": (250, "2.1.0 Ok")}, ptr)
    assert [c.line() for c in accepted if not c.ok] == [
        "FAIL E TLS required     MAIL without STARTTLS answered 250 2.1.0 Ok "
        "(expected 530: smtpd_tls_security_level = encrypt)"]
    silent = verify(PLAN, observations, policies, probes, {"e": "TimeoutError: timed out"}, ptr)
    assert [c.what for c in silent if not c.ok] == ["TLS required"]


def test_a_missing_or_other_ptr_is_advice_not_a_failure() -> None:
    observations, policies, probes = _as_designed()
    ptr = {s.label: [f"{NAMES.mx_host(s.label)}."] for s in SERVERS}
    ptr["a"], ptr["c"] = "no PTR record", ["host-198-51-100-11.provider.example."]
    checks = verify(PLAN, observations, policies, probes, {"e": (530, "5.7.0")}, ptr)
    warned = [c for c in checks if not c.ok]
    assert [c.line() for c in warned] == [
        "WARN A PTR              198.51.100.11: no PTR record (set it to mx.a.audit.example.org)",
        "WARN C PTR              2001:db8::13 -> host-198-51-100-11.provider.example (set it to mx.c.audit.example.org)"]
    assert all(c.advisory for c in warned)
    assert [c.line() for c in checks if c.what == "PTR" and c.ok][0] == "OK   B PTR              198.51.100.12 -> mx.b.audit.example.org"
