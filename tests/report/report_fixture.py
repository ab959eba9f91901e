"""SYNTHETIC CRAWL OBSERVATIONS, not a real crawl: rows of the crawler's raw tables
(collectors/store/migrations/002_crawl.sql) generated from a target posture, so
the crawler's own views (views/010_crawl.sql) classify them and the report reads
the real ``posture`` view. Used by the report tests until a testbed crawl runs
in them, and by benchmarks/report_bench.py for a million-domain database.

Two runs a month apart carry a known set of lifecycle changes; one domain's
remote strings (policy text, MX host name) are HTML with a script in it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

HOSTILE_POLICY_MX = '<script>alert("policy")</script>.example'
HOSTILE_MX_HOST = "<img src=x onerror=alert(1)>.mx.example"
HOSTILE_NOTICE = 'Remote server said: <script>alert("notice")</script> (STARTTLS required by MTA-STS)'
HOSTILE_RANK = 7

_MX_ORGS = ["google.com", "outlook.com", "self", "mimecast.com", "pphosted.com", "hostnet.net"]
_POLICY_HOSTS = ["", "", "", "mta-sts.hosted.uriports.com", "mta-sts.mailhardener.com",
                 "sts.powerdmarc.com"]
_FETCH = ["ok", "tls_error", "http_error", "dns_error", "redirect", "timeout", "too_large",
          "tcp_error", "syntax_error"]


def _choice(rng: np.random.Generator, n: int, values: list, p: list) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return rng.choice(np.asarray(values, dtype=object), size=n, p=p / p.sum())


def target_posture(n: int, seed: int = 1) -> pd.DataFrame:
    """The intended posture of ``d<rank>.example``, rank 1..n (scalar columns)."""
    rng = np.random.default_rng(seed)
    rank = np.arange(1, n + 1)
    domain = np.char.add(np.char.add("d", rank.astype(str)), ".example").astype(object)
    mx_status = _choice(rng, n, ["ok", "none", "null_mx", "dns_error"], [90, 6, 2, 2])
    has_mx = mx_status == "ok"
    org = _choice(rng, n, _MX_ORGS, [30, 25, 25, 5, 5, 10])
    mx_host = np.where(org == "self", np.char.add("mx1.", domain.astype(str)).astype(object),
                       np.char.add("mx.", org.astype(str)).astype(object))
    p_record = 0.02 + 0.30 * (rank <= 1000) + 0.05 * (rank <= 10_000)
    has_record = rng.random(n) < p_record
    sts_record = np.where(has_record, _choice(rng, n, ["valid", "invalid", "multiple"], [96, 3, 1]),
                          "absent").astype(object)
    valid = sts_record == "valid"
    fetch = np.where(valid, _choice(rng, n, _FETCH, [80, 8, 4, 3, 1, 1, 0.5, 1.5, 1]),
                     "not_attempted").astype(object)
    ok = fetch == "ok"
    match = np.where(ok & has_mx, _choice(rng, n, ["all", "some", "none"], [94, 2, 4]), "n/a")
    secure = rng.random(n) < 0.08
    return pd.DataFrame({
        "domain": domain, "rank": rank.astype("int64"), "mx_status": mx_status,
        "mx_host": np.where(mx_status == "ok", mx_host, None),
        "sts_record": sts_record,
        "sts_id": np.where(has_record, "20240101T000000", None),
        "policy_fetch": fetch,
        "policy_mode": np.where(ok, _choice(rng, n, ["enforce", "testing", "none"], [55, 35, 10]), None),
        "policy_max_age": np.where(ok, rng.choice([86400, 604800, 31557600], size=n), 0),
        "mx_policy_match": match.astype(object),
        "mismatch_subclass": np.where(np.isin(match, ["some", "none"]),
                                      _choice(rng, n, ["wrong_tld", "wrong_domain", "extra_label",
                                                       "typo", "mta_sts_in_pattern", "other"],
                                              [2, 3, 2, 2, 1, 1]), None),
        "tls_subclass": np.where(fetch == "tls_error",
                                 _choice(rng, n, ["name_mismatch", "self_signed", "expired",
                                                  "unknown_ca"], [90, 4, 3, 3]), None),
        "tlsrpt": np.where((has_record & (rng.random(n) < 0.7)) | (rng.random(n) < 0.01),
                           "valid", "absent").astype(object),
        "dnssec_secure": secure & (mx_status != "dns_error"),
        "tlsa": has_mx & secure & (rng.random(n) < 0.3),
        "policy_cname": np.where(valid, _choice(rng, n, _POLICY_HOSTS, [1] * 6), None),
        "policy_body_extra": None,
    })


def next_month(before: pd.DataFrame, seed: int = 2) -> pd.DataFrame:
    """The next run: the same domains with a known set of lifecycle changes applied."""
    rng = np.random.default_rng(seed)
    after = before.copy()
    ok = (after["policy_fetch"] == "ok").to_numpy()
    r = rng.random(len(after))
    mode_none = (after["policy_mode"] == "none").to_numpy()
    same_id = ok & (r < 0.02)                           # policy changed, id not (RFC 8461 3.1)
    new_id = ok & (r >= 0.02) & (r < 0.04)              # id changed, policy not
    removed = ok & (r >= 0.04) & (r < 0.06)             # record gone (8.3 unless mode none)
    published = (after["sts_record"] == "absent").to_numpy() & (r < 0.01)
    after.loc[same_id, "policy_max_age"] += 1
    after.loc[new_id, "sts_id"] = "20250101T000000"
    after.loc[removed, ["sts_record", "sts_id", "policy_fetch", "policy_mode", "mx_policy_match",
                        "mismatch_subclass", "policy_cname"]] = ["absent", None, "not_attempted",
                                                                 None, "n/a", None, None]
    after.loc[published, ["sts_record", "sts_id", "policy_fetch", "policy_mode", "policy_max_age"]] = \
        ["valid", "20250101T000000", "ok", "testing", 86400]
    after.loc[published, "mx_policy_match"] = np.where(
        after.loc[published, "mx_status"] == "ok", "all", "n/a")
    after.attrs["expected"] = {
        "policy_changed_same_id": int(same_id.sum()), "id_changed_same_policy": int(new_id.sum()),
        "removed_without_mode_none": int((removed & ~mode_none).sum()),
        "removed_after_mode_none": int((removed & mode_none).sum()),
        "published": int(published.sum())}
    return after


def _hostile(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    i = HOSTILE_RANK - 1
    for col, value in {"mx_status": "ok", "mx_host": HOSTILE_MX_HOST, "sts_record": "valid",
                       "sts_id": "x1", "policy_fetch": "ok", "policy_mode": "enforce",
                       "policy_max_age": 86400, "mx_policy_match": "none",
                       "mismatch_subclass": "other", "policy_cname": None}.items():
        frame.at[i, col] = value
    frame.at[i, "policy_body_extra"] = HOSTILE_POLICY_MX
    return frame


# The target posture turned into the crawler's raw rows (one SQL per table).
_PROV = "$run AS run_id, $at AS observed_at, $list AS input_list, $tool AS tool_version"
_RAW_SQL = {
    "crawl_domains": f"""
        SELECT {_PROV}, rank AS position, rank, domain FROM target""",
    "crawl_observations": f"""
        SELECT {_PROV}, domain,
          CASE mx_status WHEN 'none' THEN 'NXDOMAIN' WHEN 'dns_error' THEN 'SERVFAIL'
                         ELSE 'NOERROR' END AS mx_rcode,
          dnssec_secure AS mx_ad,
          CASE mx_status WHEN 'ok' THEN (CASE mx_policy_match WHEN 'some' THEN [10, 20] ELSE [10] END)
                         WHEN 'null_mx' THEN [0] ELSE [] END AS mx_preferences,
          CASE mx_status WHEN 'ok' THEN (CASE mx_policy_match WHEN 'some' THEN [mx_host, 'mx2.' || domain]
                                                             ELSE [mx_host] END)
                         WHEN 'null_mx' THEN [''] ELSE [] END AS mx_exchanges,
          CASE sts_record WHEN 'absent' THEN 'NXDOMAIN' ELSE 'NOERROR' END AS sts_rcode,
          CASE sts_record WHEN 'absent' THEN '[]'::JSON
               ELSE to_json([['v=STSv1; id=' || coalesce(sts_id, '') || ';']]) END AS sts_txt,
          sts_record AS sts_status, CASE WHEN sts_record = 'valid' THEN sts_id END AS sts_id,
          '[]'::JSON AS sts_findings,
          CASE tlsrpt WHEN 'absent' THEN 'NXDOMAIN' ELSE 'NOERROR' END AS tlsrpt_rcode,
          tlsrpt AS tlsrpt_status,
          CASE tlsrpt WHEN 'valid' THEN ['mailto:tlsrpt@' || domain] ELSE [] END AS tlsrpt_rua,
          '[]'::JSON AS tlsrpt_findings, 12.5 AS duration_ms
        FROM target""",
    "crawl_mx": f"""
        SELECT {_PROV}, domain, mx_host, 10 AS preference,
               CASE WHEN policy_fetch = 'ok' THEN mx_policy_match = 'all' END AS covered,
               CASE WHEN policy_fetch = 'ok' AND mx_policy_match <> 'all' THEN mismatch_subclass END
                 AS mismatch_subclass
        FROM target WHERE mx_status = 'ok'
        UNION ALL
        SELECT {_PROV}, domain, 'mx2.' || domain, 20, true, NULL
        FROM target WHERE mx_status = 'ok' AND mx_policy_match = 'some'""",
    "crawl_policy": f"""
        SELECT {_PROV}, domain, 'mta-sts.' || domain AS policy_host,
          'NOERROR' AS a_rcode, ['127.0.0.1'] AS addresses,
          CASE WHEN policy_cname IS NULL THEN [] ELSE [policy_cname] END AS cname_chain,
          '127.0.0.1' AS address, 443 AS port,
          CASE WHEN policy_fetch = 'syntax_error' THEN 'ok' ELSE policy_fetch END AS outcome,
          tls_subclass,
          CASE policy_fetch WHEN 'ok' THEN 200 WHEN 'syntax_error' THEN 200 WHEN 'http_error' THEN 404
               WHEN 'redirect' THEN 301 END AS http_status,
          'text/plain' AS content_type, body::BLOB AS body, octet_length(body::BLOB) AS body_bytes,
          false AS body_truncated, 9.0 + (hash(domain) % 200) AS t_total_ms,
          '[]'::JSON AS fetch_findings,
          policy_fetch = 'ok' AS policy_ok, 'STSv1' AS policy_version, policy_mode,
          CASE WHEN policy_fetch = 'ok' THEN policy_max_age END AS policy_max_age, policy_mx,
          'LF' AS policy_line_ending, '[]'::JSON AS policy_findings
        FROM (SELECT *,
                CASE WHEN policy_body_extra IS NOT NULL THEN [policy_body_extra]
                     WHEN mx_policy_match IN ('some', 'none') THEN ['mx.wrong-' || domain]
                     WHEN mx_host IS NULL THEN ['mx.' || domain] ELSE [mx_host] END AS policy_mx,
                'version: STSv1' || chr(10) || 'mode: ' || coalesce(policy_mode, 'bogus') || chr(10)
                  || 'mx: ' || coalesce(policy_body_extra, mx_host, 'mx.' || domain) || chr(10)
                  || 'max_age: ' || policy_max_age || chr(10) AS body
              FROM target WHERE sts_record = 'valid')""",
    "crawl_tlsa": f"""
        SELECT DISTINCT {_PROV}, mx_host, 'NOERROR' AS rcode, true AS ad,
               ['3 1 1 0123456789abcdef'] AS records
        FROM target WHERE tlsa AND mx_host NOT IN
          (SELECT mx_host FROM target WHERE NOT tlsa AND mx_host IS NOT NULL)""",
}


def write_run(store, frame: pd.DataFrame, *, run_id: str, started: dt.datetime,
              input_list: str) -> None:
    """One finished crawl run whose raw tables say what ``frame`` says."""
    con = store.con
    listed = "".join(f"{d}\n" for d in frame["domain"]).encode()
    run = store.start_run("crawl", input_list, run_id=run_id,
                          inputs=[{"name": input_list, "sha256": hashlib.sha256(listed).hexdigest(),
                                   "bytes": len(listed)}],
                          parameters={"list_date": started.date().isoformat(),
                                      "synthetic": "tests/report/report_fixture.py",
                                      "settings": {"resolver": "127.0.0.1:5353", "probe_smtp": False,
                                                   "timeout": 10.0}})
    args = {"run": run.run_id, "at": started, "list": input_list, "tool": run.tool_version}
    con.register("target", frame)
    try:
        for table, sql in _RAW_SQL.items():
            con.execute(f"INSERT INTO {table} BY NAME {sql}", args)
        con.execute(f"INSERT INTO crawl_inputs BY NAME SELECT {_PROV}, 'synthetic' AS source,"
                    " $n AS entries, $n AS accepted, 0 AS quarantined",
                    {**args, "n": len(frame)})
    finally:
        con.unregister("target")
    store.finish_run(run.run_id, summary={"domains": len(frame)})
    con.execute("UPDATE runs SET started_at = ?, finished_at = ? WHERE run_id = ?",
                [started, started + dt.timedelta(hours=1), run.run_id])


def build_crawl_db(path: Path, n: int = 2000, runs: int = 2, with_lab: bool = True) -> dict:
    """A migrated store with ``runs`` synthetic crawl runs (one a month) of ``n`` domains."""
    from collectors.store import open_store

    store = open_store(path)
    frame = _hostile(target_posture(n))
    run_ids, expected = [], {}
    for k in range(runs):
        started = dt.datetime(2025, 9 + k, 3, 2, 0, tzinfo=dt.timezone.utc)
        run_id = f"crawl-synthetic-{k + 1}"
        write_run(store, frame, run_id=run_id, started=started, input_list=f"synthetic-top{n}.csv")
        run_ids.append(run_id)
        frame = next_month(frame, seed=10 + k)
        expected[f"after_{run_id}"] = frame.attrs["expected"]
    store.close()
    if with_lab:
        ingest_lab_evidence(path, path.parent / "lab-evidence")
    return {"run_ids": run_ids, "months": [f"2025-{9 + k:02d}" for k in range(runs)],
            "lifecycle_expected": expected}


LAB_DOMAIN = "lab.example"
_DELIVERS = {  # server label -> delivered, for an enforcing and an opportunistic sender
    "postfix-mta-sts": {"a": True, "b": False, "c": True, "d": False, "e": True, "f": True},
    "postfix-opportunistic": {"a": True, "b": True, "c": True, "d": True, "e": True, "f": True},
}


def write_lab_evidence(folder: Path) -> list[Path]:
    """A small lab round as the lab writes it: a CSV send ledger, the recorder's JSON
    lines, and the RFC 3464 notices the enforcing sender's user got (one quoting HTML)."""
    import uuid
    from email.utils import format_datetime

    folder.mkdir(parents=True, exist_ok=True)
    t0 = dt.datetime(2025, 10, 5, 10, 0, tzinfo=dt.timezone.utc)
    ledger = ["provider,sent_at,from,to,message_id"]
    received, mbox = [], []
    for p_i, (provider, delivers) in enumerate(_DELIVERS.items()):
        sender = f"alice@{provider}.sender.example"
        for l_i, (label, delivered) in enumerate(delivers.items()):
            to = f"{uuid.UUID(int=p_i * 16 + l_i + 1)}@{label}.{LAB_DOMAIN}"
            sent = t0 + dt.timedelta(minutes=p_i)
            msg_id = f"m{p_i}{l_i}@{provider}.sender.example"
            ledger.append(f"{provider},{sent.isoformat()},{sender},{to},<{msg_id}>")
            if delivered:
                tls = label not in "bf"
                received.append(json.dumps({
                    "format": "mtasts-recorder/1",
                    "received_at": (sent + dt.timedelta(seconds=3)).isoformat().replace("+00:00", "Z"),
                    "server_label": label, "recipient": f"recorder@{label}.{LAB_DOMAIN}",
                    "original_recipient": to, "sender": sender, "client_address": f"127.0.1.{p_i + 1}",
                    "client_helo": f"{provider}.sender.example", "client_hostname": f"{provider}.sender.example",
                    "client_protocol": "ESMTPS" if tls else "ESMTP", "envid": None,
                    "message_id": f"<{msg_id}>", "received_with": "ESMTPS" if tls else "ESMTP",
                    "queue_id": f"Q{p_i}{l_i}ABC", "tls_protocol": "TLSv1.3" if tls else None,
                    "tls_cipher": "TLS_AES_256_GCM_SHA384" if tls else None, "tls_bits": 256 if tls else None}))
                continue
            for kind, after, action, status, words in (
                    ("delay", 60, "delayed", "4.7.5", "Delayed Mail (still being retried)"),
                    ("failure", 300, "failed", "5.7.5", "Undelivered Mail Returned to Sender")):
                date = format_datetime(sent + dt.timedelta(seconds=after))
                human = (f"This is the mail system at host {provider}.sender.example.\n\n"
                         f"{words}: your message to <{to}> could not be delivered.\n"
                         + (HOSTILE_NOTICE if kind == "failure"
                            else "TLS is required, but was not offered by host mx.lab.example") + "\n")
                mbox.append(
                    f"From MAILER-DAEMON {(sent + dt.timedelta(seconds=after)).strftime('%a %b %d %H:%M:%S %Y')}\n"
                    f"From: MAILER-DAEMON@{provider}.sender.example\nTo: {sender}\nSubject: {words}\n"
                    f"Date: {date}\nMessage-ID: <notice-{kind}-{p_i}{l_i}@{provider}.sender.example>\n"
                    "MIME-Version: 1.0\n"
                    'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
                    f"--B\nContent-Type: text/plain; charset=utf-8\n\n{human}\n"
                    "--B\nContent-Type: message/delivery-status\n\n"
                    f"Reporting-MTA: dns; {provider}.sender.example\n\n"
                    f"Final-Recipient: rfc822; {to}\nAction: {action}\nStatus: {status}\n"
                    "Diagnostic-Code: smtp; STARTTLS is required by the MTA-STS policy\n\n"
                    "--B--\n\n")
    files = {"ledger.csv": "\n".join(ledger) + "\n", "received.jsonl": "\n".join(received) + "\n",
             "notices.mbox": "".join(mbox)}
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return [folder / name for name in files]


def ingest_lab_evidence(db: Path, folder: Path) -> None:
    """Ingest the lab round through ``mtasts ingest`` (the real parsers and views)."""
    from collectors.cli import main

    files = write_lab_evidence(folder)
    code = main(["ingest", "--db", str(db), "--lab-domain", LAB_DOMAIN, *map(str, files)])
    if code != 0:
        raise RuntimeError(f"mtasts ingest failed with exit code {code}")
