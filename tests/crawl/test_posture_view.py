"""The posture view classifies raw observation rows into the export vocabulary
(verdicts contract): rows are written here directly, no servers involved."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from collectors.crawl.writer import BatchWriter

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
POLICY_OK = {"outcome": "ok", "policy_ok": True, "policy_mode": "enforce", "policy_max_age": 86400,
             "policy_mx": ["mx.d.test"], "policy_findings": "[]", "fetch_findings": "[]"}


def _obs(domain: str, **kw: Any) -> dict[str, Any]:
    row = {"domain": domain, "observed_at": NOW, "mx_rcode": "NOERROR", "mx_ad": False,
           "mx_preferences": [10], "mx_exchanges": [f"mx.{domain}"], "sts_rcode": "NXDOMAIN",
           "sts_status": "absent", "sts_findings": "[]", "tlsrpt_rcode": "NXDOMAIN",
           "tlsrpt_status": "absent", "tlsrpt_findings": "[]", "sts_cname_chain": []}
    row.update(kw)
    return row


def _mx(domain: str, host: str, covered: bool | None = None, subclass: str | None = None) -> dict[str, Any]:
    return {"domain": domain, "observed_at": NOW, "mx_host": host, "preference": 10,
            "covered": covered, "mismatch_subclass": subclass}


def _policy(domain: str, **kw: Any) -> dict[str, Any]:
    row = {"domain": domain, "observed_at": NOW, "policy_host": f"mta-sts.{domain}", "cname_chain": []}
    row.update(kw)
    return row


def _write(store, domains: list[dict[str, list[dict[str, Any]]]], hosts: list[tuple[str, dict]] = ()) -> str:
    run = store.start_run("crawl", "test")
    store.con.execute(
        "INSERT INTO crawl_domains SELECT ?, ?, 'test', 'v', row_number() OVER (), row_number() OVER (), d"
        " FROM unnest(?) t(d)",
        [run.run_id, NOW, [rows["crawl_observations"][0]["domain"] for rows in domains]])

    async def go() -> None:
        w = BatchWriter(store.con, run)
        for table, row in hosts:
            w.add_host_row(table, row)
        for rows in domains:
            await w.add_domain(rows)
        await w.close()
    asyncio.run(go())
    return run.run_id


def _posture(store, run_id: str) -> dict[str, dict[str, Any]]:
    cur = store.con.execute("SELECT * FROM posture WHERE run_id = ?", [run_id])
    cols = [d[0] for d in cur.description]
    return {r[1]: dict(zip(cols, r)) for r in cur.fetchall()}


def test_mx_status_and_dnssec(store) -> None:
    run_id = _write(store, [
        {"crawl_observations": [_obs("ok.test", mx_ad=True)], "crawl_mx": [_mx("ok.test", "mx.ok.test")]},
        {"crawl_observations": [_obs("null.test", mx_exchanges=[""], mx_preferences=[0])],
         "crawl_mx": [_mx("null.test", "")]},
        {"crawl_observations": [_obs("nx.test", mx_rcode="NXDOMAIN", mx_exchanges=[], mx_preferences=[])]},
        {"crawl_observations": [_obs("nodata.test", mx_exchanges=[], mx_preferences=[])]},
        {"crawl_observations": [_obs("bogus.test", mx_rcode="SERVFAIL", mx_cd_rcode="NOERROR",
                                     mx_exchanges=[], mx_preferences=[])]},
        {"crawl_observations": [_obs("to.test", mx_rcode="TIMEOUT", mx_exchanges=[], mx_preferences=[])]},
    ])
    p = _posture(store, run_id)
    assert {d: (r["mx_status"], r["dnssec"], r["tlsa"], r["mx_starttls"]) for d, r in p.items()} == {
        "ok.test": ("ok", "secure", "no", "not_probed"),
        "null.test": ("null_mx", "insecure", "n/a", "n/a"),
        "nx.test": ("none", "insecure", "n/a", "n/a"),
        "nodata.test": ("none", "insecure", "n/a", "n/a"),
        "bogus.test": ("dns_error", "bogus", "n/a", "n/a"),
        "to.test": ("dns_error", "unknown", "n/a", "n/a"),
    }
    assert all(r["mx_policy_match"] == "n/a" and r["policy_fetch"] == "not_attempted" for r in p.values())
    assert not any(r["misconfigured"] for r in p.values())


def test_policy_verdicts(store) -> None:
    valid = {"sts_rcode": "NOERROR", "sts_status": "valid", "sts_id": "abc"}
    run_id = _write(store, [
        {"crawl_observations": [_obs("d.test", **valid)], "crawl_mx": [_mx("d.test", "mx.d.test", True)],
         "crawl_policy": [_policy("d.test", **POLICY_OK)]},
        {"crawl_observations": [_obs("some.test", **valid)],
         "crawl_mx": [_mx("some.test", "mx.some.test", True), _mx("some.test", "mx2.some.test", False, "typo")],
         "crawl_policy": [_policy("some.test", **POLICY_OK)]},
        {"crawl_observations": [_obs("none.test", **valid)],
         "crawl_mx": [_mx("none.test", "mx.none.test", False, "wrong_tld")],
         "crawl_policy": [_policy("none.test", **{**POLICY_OK, "policy_mode": "testing"})]},
        {"crawl_observations": [_obs("syntax.test", **valid)], "crawl_mx": [_mx("syntax.test", "mx.syntax.test")],
         "crawl_policy": [_policy("syntax.test", outcome="ok", policy_ok=False, policy_mode=None)]},
        {"crawl_observations": [_obs("tls.test", **valid)], "crawl_mx": [_mx("tls.test", "mx.tls.test")],
         "crawl_policy": [_policy("tls.test", outcome="tls_error", tls_subclass="expired",
                                  cname_chain=["shared.provider.test"])]},
        {"crawl_observations": [_obs("multi.test", sts_rcode="NOERROR", sts_status="multiple",
                                     sts_findings=json.dumps([{"code": "sts_record.multiple"}]))],
         "crawl_mx": [_mx("multi.test", "mx.multi.test")]},
        {"crawl_observations": [_obs("sf.test", sts_rcode="SERVFAIL", sts_status="absent")],
         "crawl_mx": [_mx("sf.test", "mx.sf.test")]},
    ])
    p = _posture(store, run_id)
    d = p["d.test"]
    assert (d["policy_fetch"], d["policy_mode"], d["policy_max_age"], d["policy_mx"], d["mx_policy_match"],
            d["misconfigured"], d["delivery_risk"], d["sts_id"]) == (
        "ok", "enforce", 86400, "mx.d.test", "all", False, False, "abc")
    s = p["some.test"]
    assert (s["mx_policy_match"], s["misconfigured"], s["delivery_risk"], s["misconfig_classes"],
            s["mismatch_subclass"]) == ("some", True, True, "mx_not_covered", "typo")
    n = p["none.test"]
    assert (n["mx_policy_match"], n["delivery_risk"], n["mismatch_subclass"]) == ("none", False, "wrong_tld")
    sx = p["syntax.test"]
    assert (sx["policy_fetch"], sx["policy_mode"], sx["mx_policy_match"], sx["misconfig_classes"]) == (
        "syntax_error", None, "n/a", "policy_retrieval")
    t = p["tls.test"]
    assert (t["policy_fetch"], t["policy_tls_subclass"], t["policy_host_cname"]) == (
        "tls_error", "expired", "shared.provider.test")
    m = p["multi.test"]
    assert (m["sts_record"], m["policy_fetch"], m["misconfig_classes"], m["findings"]) == (
        "multiple", "not_attempted", "invalid_txt", "sts_record.multiple")
    assert p["sf.test"]["sts_record"] == "dns_error" and not p["sf.test"]["misconfigured"]


def test_smtp_and_tlsa_are_shared_per_host(store) -> None:
    valid = {"sts_rcode": "NOERROR", "sts_status": "valid", "sts_id": "1"}
    hosts = [
        ("crawl_tlsa", {"mx_host": "mx.shared.test", "observed_at": NOW, "rcode": "NOERROR", "records": ["3 1 1 aa"]}),
        ("crawl_smtp", {"mx_host": "mx.shared.test", "observed_at": NOW, "outcome": "cert_invalid"}),
        ("crawl_smtp", {"mx_host": "mx.good.test", "observed_at": NOW, "outcome": "ok"}),
        ("crawl_smtp", {"mx_host": "mx.shared.test", "observed_at": NOW, "outcome": "ok"}),  # ignored duplicate
    ]
    run_id = _write(store, [
        {"crawl_observations": [_obs("a.test", **valid)], "crawl_mx": [_mx("a.test", "mx.shared.test", True)],
         "crawl_policy": [_policy("a.test", **POLICY_OK)]},
        {"crawl_observations": [_obs("b.test")], "crawl_mx": [_mx("b.test", "mx.shared.test"),
                                                             _mx("b.test", "mx.good.test")]},
    ], hosts)
    p = _posture(store, run_id)
    assert (p["a.test"]["tlsa"], p["a.test"]["mx_starttls"], p["a.test"]["misconfig_classes"],
            p["a.test"]["delivery_risk"]) == ("yes", "cert_invalid", "mx_cert_invalid", True)
    assert (p["b.test"]["tlsa"], p["b.test"]["mx_starttls"], p["b.test"]["misconfigured"]) == (
        "yes", "cert_invalid", False)
    assert store.con.execute("SELECT count(*) FROM crawl_smtp").fetchone()[0] == 2


def test_a_broken_tls_handshake_is_tls_error_between_cert_invalid_and_tcp_error(store) -> None:
    valid = {"sts_rcode": "NOERROR", "sts_status": "valid", "sts_id": "1"}
    hosts = [("crawl_smtp", {"mx_host": f"mx.{o}.test", "observed_at": NOW, "outcome": o})
             for o in ("ok", "cert_invalid", "tls_error", "tcp_error")]

    def domain(name: str, *outcomes: str) -> dict[str, list[dict[str, Any]]]:
        return {"crawl_observations": [_obs(name, **valid)], "crawl_policy": [_policy(name, **POLICY_OK)],
                "crawl_mx": [_mx(name, f"mx.{o}.test", True) for o in outcomes]}
    run_id = _write(store, [domain("a.test", "ok", "tls_error"), domain("b.test", "cert_invalid", "tls_error"),
                            domain("c.test", "tls_error", "tcp_error")], hosts)
    p = _posture(store, run_id)
    assert [p[d]["mx_starttls"] for d in ("a.test", "b.test", "c.test")] == ["tls_error", "tls_error", "tcp_error"]
    # no certificate a sender could verify: the same class and risk as an invalid one
    assert (p["a.test"]["misconfig_classes"], p["a.test"]["delivery_risk"]) == ("mx_cert_invalid", True)


def test_a_domain_is_written_once(store) -> None:
    rows = {"crawl_observations": [_obs("x.test")], "crawl_mx": [_mx("x.test", "mx.x.test")]}
    run_id = _write(store, [rows])
    with pytest.raises(Exception):
        _write_again = store.con.execute(
            "INSERT INTO crawl_observations (run_id, observed_at, input_list, tool_version, domain,"
            " mx_rcode, sts_rcode, tlsrpt_rcode) VALUES (?, ?, 't', 'v', 'x.test', 'NOERROR', 'NOERROR', 'NOERROR')",
            [run_id, NOW])
    assert len(_posture(store, run_id)) == 1
