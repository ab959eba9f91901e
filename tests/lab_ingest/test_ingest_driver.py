"""The ingest driver and ``mtasts ingest``: detection, gzip, truncation, garbage, idempotency,
resuming a grown log, HTTP logs, pseudonymisation, and the three derived views.

The small logs here are hand-written UNIT-TEST FIXTURES (Postfix 3.x / nginx formats);
real lab evidence is produced by the lab (issue 6)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collectors.cli import main as cli_main
from collectors.lab_ingest import IngestOptions, http_log, ingest

REPO = Path(__file__).resolve().parents[2]
MAILLOG = REPO.parent / "shared" / "external" / "postfix" / "maillogger" / "maillog"
CIPHER = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
UUID = {label: f"{i:08x}-1f0e-4c1a-9b7e-00000000000{i}" for i, label in enumerate("abcdef", 1)}


def count(store, table: str) -> int:
    return store.con.cursor().execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def sender_log() -> str:
    """A sending Postfix (MTA-STS enforcing) writing to lab servers a..f (fixture)."""
    lines = []
    for i, label in enumerate("abcdef"):
        qid = f"3A1B2C3D{i}E"
        rcpt = f"{UUID[label]}@{label}.lab.example"
        lines.append(f"Mar  3 10:00:0{i} snd postfix/cleanup[311]: {qid}: message-id=<m{label}@sender.example>")
        lines.append(f"Mar  3 10:00:0{i} snd postfix/qmgr[312]: {qid}: from=<bob@sender.example>, size=612, nrcpt=1 (queue active)")
        relay = f"mx-{label}.lab.example[127.0.0.{11 + i}]:25"
        if label in "ace":
            lines.append(f"Mar  3 10:00:1{i} snd postfix/smtp[40{i}]: Verified TLS connection established to {relay}: {CIPHER}")
            lines.append(f"Mar  3 10:00:1{i} snd postfix/smtp[40{i}]: {qid}: to=<{rcpt}>, relay={relay}, delay=0.4, delays=0.02/0.01/0.3/0.08, dsn=2.0.0, status=sent (250 2.0.0 Ok)")
            lines.append(f"Mar  3 10:00:1{i} snd postfix/qmgr[312]: {qid}: removed")
        elif label == "f":
            lines.append(f"Mar  3 10:00:1{i} snd postfix/smtp[40{i}]: {qid}: to=<{rcpt}>, relay={relay}, delay=0.4, delays=0.02/0.01/0.3/0.08, dsn=2.0.0, status=sent (250 2.0.0 Ok)")
        else:
            reason = ("TLS is required, but was not offered by host mx-b.lab.example[127.0.0.12]" if label == "b"
                      else "Server certificate not trusted")
            lines.append(f"Mar  3 10:00:1{i} snd postfix/smtp[40{i}]: {qid}: to=<{rcpt}>, relay={relay}, delay=0.2, delays=0.02/0/0.17/0, dsn=4.7.4, status=deferred ({reason})")
            lines.append(f"Mar  3 10:01:1{i} snd postfix/bounce[41{i}]: {qid}: sender delay notification: 7D{i}E7D{i}E7")
            lines.append(f"Mar  3 10:05:1{i} snd postfix/smtp[40{i}]: {qid}: to=<{rcpt}>, relay={relay}, delay=310, delays=300/0/10/0, dsn=5.7.4, status=bounced ({reason})")
            lines.append(f"Mar  3 10:05:1{i} snd postfix/bounce[41{i}]: {qid}: sender non-delivery notification: 8D{i}E8D{i}E8")
    return "\n".join(lines) + "\n"


def receiver_log() -> str:
    """Lab server A receiving the test message over TLS (fixture)."""
    rcpt = f"{UUID['a']}@a.lab.example"
    return (
        "Mar  3 10:00:10 lab-a postfix-a/smtpd[2101]: connect from snd.example[127.0.0.2]\n"
        f"Mar  3 10:00:10 lab-a postfix-a/smtpd[2101]: Anonymous TLS connection established from snd.example[127.0.0.2]: {CIPHER}\n"
        "Mar  3 10:00:10 lab-a postfix-a/smtpd[2101]: 4Q2xYz1bcdz9sQ: client=snd.example[127.0.0.2]\n"
        "Mar  3 10:00:10 lab-a postfix-a/cleanup[2104]: 4Q2xYz1bcdz9sQ: message-id=<ma@sender.example>\n"
        "Mar  3 10:00:10 lab-a postfix-a/qmgr[1990]: 4Q2xYz1bcdz9sQ: from=<bob@sender.example>, size=1234, nrcpt=1 (queue active)\n"
        f"Mar  3 10:00:11 lab-a postfix-a/local[2105]: 4Q2xYz1bcdz9sQ: to=<{rcpt}>, relay=local, delay=0.1, delays=0.05/0.01/0/0.04, dsn=2.0.0, status=sent (delivered to command: /usr/local/bin/mtasts-recorder)\n"
        "Mar  3 10:00:11 lab-a postfix-a/qmgr[1990]: 4Q2xYz1bcdz9sQ: removed\n"
        "Mar  3 10:00:11 lab-a postfix-a/smtpd[2101]: disconnect from snd.example[127.0.0.2] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7\n")


def http_lab_log() -> str:
    """The policy server's access log in the lab's format (host first) (fixture)."""
    return "".join(
        f'mta-sts.{label}.lab.example 127.0.0.2 - - [03/Mar/2024:09:59:5{i} +0000] '
        f'"GET /.well-known/mta-sts.txt HTTP/1.1" 200 87 "-" "postfix-mta-sts-resolver"\n'
        for i, label in enumerate("abcde"))


def ledger_csv() -> str:
    rows = [f"postfix-mta-sts,2024-03-03T10:00:00Z,bob@sender.example,{UUID[l]}@{l}.lab.example,m{l}@sender.example"
            for l in "abcdef"]
    return "provider,sent_at,from,to,message_id\n" + "\n".join(rows) + "\n"


# -- single files -------------------------------------------------------------------------

def test_maillogger_log_ingests_completely(store) -> None:
    s = ingest(store, [MAILLOG], IngestOptions(year=2020))
    (f,) = s.files
    assert (f.format, f.status, f.lines, f.quarantined) == ("postfix", "complete", 8, 0)
    # 6 deliveries + 1 qmgr line (a queue file row) + 1 connect timeout (kept raw) = every line
    assert f.added == {"postfix_deliveries": 6, "postfix_messages": 1, "postfix_other_lines": 1}


def test_gzip_and_truncated_gzip(store, tmp_path: Path) -> None:
    text = sender_log().encode()
    full = tmp_path / "mail.log.1.gz"
    full.write_bytes(gzip.compress(text))
    cut = tmp_path / "mail.log.2.gz"
    cut.write_bytes(gzip.compress(text * 50)[: len(gzip.compress(text * 50)) // 2])
    s = ingest(store, [full, cut], IngestOptions(year=2024))
    a, b = s.files
    assert a.status == "complete" and a.quarantined == 0 and a.added["postfix_deliveries"] == 8
    assert b.status == "truncated" and b.lines > 0
    reasons = [r[0] for r in store.con.cursor().execute(
        "SELECT reason FROM quarantine WHERE source_name = ?", [str(cut)]).fetchall()]
    assert any("truncated" in r for r in reasons)


def test_garbage_lines_are_counted_kept_and_do_not_stop_the_file(store, tmp_path: Path) -> None:
    log = tmp_path / "mixed.log"
    good = sender_log().splitlines()
    junk = ["\x00\x01\x02 binary", "<html><body>oops</body></html>", "   ", "random text without a stamp",
            "Mar 99 99:99:99 nothing", "\udcff\udcfe".encode("utf-8", "surrogateescape").decode("latin-1")]
    used_junk = (junk * 10)[: len(good)]
    lines = [x for pair in zip(good, used_junk) for x in pair]
    log.write_bytes("\n".join(lines).encode("utf-8", "replace") + b"\n" + os.urandom(300).replace(b"\n", b"x") + b"\n")
    s = ingest(store, [log], IngestOptions(year=2024))
    (f,) = s.files
    assert f.format == "postfix" and f.status == "complete"
    garbage = sum(1 for j in used_junk if j.strip()) + 1   # blank lines are not garbage; +1 random bytes
    assert f.quarantined == count(store, "quarantine") == garbage
    assert count(store, "postfix_deliveries") == 8


def test_same_file_twice_adds_nothing_and_a_grown_log_resumes(store, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    text = sender_log()
    first, second = text[: len(text) // 2], text[len(text) // 2:]
    cut = first.rfind("\n") + 1
    first, second = text[:cut], text[cut:]
    log.write_text(first)
    s1 = ingest(store, [log], IngestOptions(year=2024))
    n1 = count(store, "postfix_deliveries")
    s2 = ingest(store, [log], IngestOptions(year=2024))
    assert s2.files[0].status == "skipped" and count(store, "postfix_deliveries") == n1
    log.write_text(first + second)
    s3 = ingest(store, [log], IngestOptions(year=2024))
    assert s3.files[0].status == "resumed"
    assert count(store, "postfix_deliveries") == 8
    # everything once, even a copy of the whole log under another name
    copy = tmp_path / "copy.log"
    copy.write_text(first + second)
    ingest(store, [copy], IngestOptions(year=2024))
    assert count(store, "postfix_deliveries") == 8
    assert count(store, "postfix_messages") == len({r for r in store.con.cursor().execute(
        "SELECT queue_id FROM postfix_messages").fetchall()})
    assert s1.files[0].added["postfix_deliveries"] == n1


def test_a_grown_log_quarantines_a_re_read_bad_line_once(store, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("Mar  3 10:00:10 lab-a postfix-a/smtpd[2101]: connect from snd.example[127.0.0.2]\n"
                   "not a log line\n")
    ingest(store, [log], IngestOptions(year=2024, format="postfix"))
    with log.open("a") as fh:   # the open session makes the next run re-read from its first line
        fh.write("Mar  3 10:00:11 lab-a postfix-a/smtpd[2101]: disconnect from snd.example[127.0.0.2] commands=1\n")
    ingest(store, [log], IngestOptions(year=2024, format="postfix"))
    assert count(store, "quarantine") == 1 and count(store, "postfix_smtpd_sessions") == 1


def test_half_written_last_line_is_read_again_when_the_file_grows(store, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    text = sender_log()
    log.write_text(text + "Mar  3 10:09:00 snd postfix/qmgr[312]: 3A1B2C3D")
    s1 = ingest(store, [log], IngestOptions(year=2024))
    assert s1.files[0].quarantined == 0   # it parses as a log line: kept as such
    log.write_text(text + "Mar  3 10:09:00 snd postfix/qmgr[312]: 3A1B2C3D1E: removed\n")
    s2 = ingest(store, [log], IngestOptions(year=2024))
    assert s2.files[0].status in ("complete", "resumed")


def test_year_rollover_and_year_from_mtime(store, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("Dec 31 23:59:59 mx postfix/qmgr[1]: 1A2B3C4D5E: from=<a@b.example>, size=1, nrcpt=1 (queue active)\n"
                   "Jan  1 00:00:01 mx postfix/qmgr[1]: 1A2B3C4D5E: removed\n")
    stamp = time.mktime((2025, 1, 1, 12, 0, 0, 0, 0, 0))
    os.utime(log, (stamp, stamp))
    ingest(store, [log])   # no --year: the file's date (Jan 2025) and a first line in December -> 2024
    row = store.con.cursor().execute("SELECT first_seen_at, removed_at FROM postfix_messages").fetchone()
    assert (row[0].year, row[1].year) == (2024, 2025)


def test_http_logs_every_format(store, tmp_path: Path) -> None:
    combined = tmp_path / "access.log"
    combined.write_text(
        '192.0.2.7 - - [03/Mar/2024:10:00:00 +0100] "GET /.well-known/mta-sts.txt HTTP/1.1" 200 87 "-" "Google-SMTP-STS"\n'
        '192.0.2.7 - - [03/Mar/2024:10:00:01 +0100] "GET /favicon.ico HTTP/1.1" 404 0 "-" "x"\n')
    lab = tmp_path / "lab-access.log"
    lab.write_text(http_lab_log())
    js = tmp_path / "access.json"
    js.write_text('{"time_iso8601":"2024-03-03T10:00:00+00:00","remote_addr":"2001:db8::1","host":"mta-sts.c.lab.example",'
                  '"request":"GET /.well-known/mta-sts.txt HTTP/2.0","status":200,"body_bytes_sent":87,'
                  '"http_user_agent":"Microsoft-STS"}\n')
    s = ingest(store, [combined, lab, js])
    assert [f.format for f in s.files] == ["http", "http", "http"] and s.quarantined == 0
    rows = store.con.cursor().execute(
        "SELECT log_format, host, server_label, client_addr, user_agent, is_policy_fetch, fetched_at"
        " FROM policy_fetches_http ORDER BY log_format, server_label").fetchall()
    combined_rows = [r for r in rows if r[0] == "combined"]
    assert combined_rows[0][1] is None and combined_rows[0][6].hour == 9   # +0100 -> UTC
    assert sum(r[5] for r in combined_rows) == 1
    assert [r[2] for r in rows if r[0] == "lab_host_combined"] == list("abcde")
    assert [r for r in rows if r[0] == "json"][0][1:5] == ("mta-sts.c.lab.example", "c", "2001:db8::1", "Microsoft-STS")


def test_the_lab_nginx_format_constant_matches_the_parser() -> None:
    assert http_log.LAB_NGINX_LOG_FORMAT.startswith("$host $remote_addr")
    line = (http_log.LAB_NGINX_LOG_FORMAT.replace("$host", "mta-sts.b.lab.example").replace("$remote_addr", "::1")
            .replace("$remote_user", "-").replace("$time_local", "03/Mar/2024:10:00:00 +0000")
            .replace("$request", "GET /.well-known/mta-sts.txt HTTP/1.1").replace("$status", "200")
            .replace("$body_bytes_sent", "87").replace("$http_referer", "-").replace("$http_user_agent", "ua"))
    got = http_log.parse_line(line)
    assert got is not None and (got.server_label, got.is_policy_fetch, got.client_addr) == ("b", True, "::1")


def test_pseudonymise_hashes_sender_local_parts_consistently(store, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(receiver_log())
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(ledger_csv())
    ingest(store, [log, ledger], IngestOptions(pseudonymise=True, year=2024))
    cur = store.con.cursor()
    (sender,) = cur.execute("SELECT sender FROM postfix_messages").fetchone()
    (from_addr,) = cur.execute("SELECT DISTINCT from_addr FROM ledger").fetchone()
    assert sender.endswith("@sender.example") and not sender.startswith("bob@")
    assert sender == from_addr    # same salt, same hash: joins still work
    assert cur.execute("SELECT count(*) FROM lab_settings").fetchone()[0] == 1


# -- the views on a small evidence set -------------------------------------------------------

def evidence(tmp_path: Path) -> list[Path]:
    files = {"sender.log": sender_log(), "lab-a.log.gz": None, "policy-access.log": http_lab_log(),
             "ledger.csv": ledger_csv()}
    out = []
    for name, text in files.items():
        p = tmp_path / name
        if name.endswith(".gz"):
            p.write_bytes(gzip.compress(receiver_log().encode()))
        else:
            p.write_text(text)
        out.append(p)
    return out


def test_views_say_who_delivered_where_with_which_tls_and_when_notices_came(store, tmp_path: Path) -> None:
    s = ingest(store, evidence(tmp_path), IngestOptions(year=2024, lab_domains=("lab.example",)))
    assert s.quarantined == 0, s.as_dict()
    cur = store.con.cursor()
    deliveries = {r[0]: r[1:] for r in cur.execute(
        "SELECT server_label, provider, delivered, tls_protocol, client_address, sender_tls_trust"
        " FROM lab_deliveries").fetchall()}
    assert {k: v[1] for k, v in deliveries.items()} == dict(a=True, b=False, c=True, d=False, e=True, f=True)
    assert deliveries["a"][0] == "postfix-mta-sts" and deliveries["a"][2] == "TLSv1.3"
    assert deliveries["a"][3] == "127.0.0.2"              # from the receiving server's session
    assert deliveries["c"][4] == "Verified" and deliveries["f"][4] is None
    behaviour = {r[0]: r[1:] for r in cur.execute(
        "SELECT server_label, verdict, provider_verdict, policy_fetched, first_fetch_after_first_send_s"
        " FROM provider_behaviour").fetchall()}
    assert behaviour["b"][0] == behaviour["d"][0] == "enforces MTA-STS"
    assert behaviour["a"][0] == "delivered" and behaviour["f"][0].startswith("control")
    assert {v[1] for v in behaviour.values()} == {"enforces MTA-STS"}
    assert behaviour["a"][2] is True and behaviour["a"][3] < 0       # fetched before the first send
    timing = {r[0]: r[1:] for r in cur.execute(
        "SELECT server_label, notices, delay_notices, failure_notices, time_to_first_notice_s,"
        " time_to_final_notice_s, tls_mentioned FROM notification_timing").fetchall()}
    assert set(timing) == {"b", "d"}
    assert timing["b"] == (2, 1, 1, 71, 311, True)


BOUNCED_RCPT, BOUNCED_QID = f"{UUID['b']}@b.lab.example", "3A1B2C3D1E"
BOUNCED_RELAY = "mx-b.lab.example[127.0.0.12]:25"


def bounced_sender_log(tmp_path: Path, *, deferred_first: bool) -> Path:
    """A sending Postfix whose message to server B is bounced, with its non-delivery notice
    logged (fixture); ``deferred_first`` adds an earlier attempt with another reason."""
    qid = BOUNCED_QID
    smtp = (f"snd postfix/smtp[401]: {qid}: to=<{BOUNCED_RCPT}>, relay={BOUNCED_RELAY},"
            " delay=1, delays=0/0/1/0")
    lines = [f"Mar  3 10:00:00 snd postfix/qmgr[312]: {qid}: from=<bob@sender.example>, size=612, nrcpt=1 (queue active)"]
    if deferred_first:
        lines.append(f"Mar  3 10:00:10 {smtp}, dsn=4.4.2, status=deferred (lost connection with mx-b.lab.example)")
    lines += [f"Mar  3 10:02:10 {smtp}, dsn=5.7.4, status=bounced (TLS is required, but was not offered)",
              f"Mar  3 10:02:10 snd postfix/bounce[411]: {qid}: sender non-delivery notification: 8D1E8D1E8"]
    log = tmp_path / "sender.log"
    log.write_text("\n".join(lines) + "\n")
    return log


def test_a_notice_counts_once_however_many_attempts_preceded_it(store, tmp_path: Path) -> None:
    log = bounced_sender_log(tmp_path, deferred_first=True)
    s = ingest(store, [log], IngestOptions(year=2024, lab_domains=("lab.example",)))
    assert s.quarantined == 0, s.as_dict()
    row = store.con.cursor().execute(
        "SELECT notices, failure_notices, time_to_final_notice_s, tls_mentioned FROM notification_timing").fetchall()
    assert row == [(1, 1, 130, True)]


def test_lazy_policy_caching_is_a_partial_verdict(store, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.csv"
    u1, u2 = "11111111-1f0e-4c1a-9b7e-000000000001", "22222222-1f0e-4c1a-9b7e-000000000002"
    ledger.write_text("provider,sent_at,from,to,message_id\n"
                      f"lazy,2024-03-03T10:00:00Z,x@lazy.example,{u1}@b.lab.example,\n"
                      f"lazy,2024-03-03T11:00:00Z,x@lazy.example,{u2}@b.lab.example,\n")
    recv = tmp_path / "recorder.jsonl"
    recv.write_text('{"format":"mtasts-recorder/1","received_at":"2024-03-03T10:00:05Z","server_label":"b",'
                    f'"recipient":"{u1}@b.lab.example","original_recipient":"{u1}@b.lab.example",'
                    '"sender":"x@lazy.example","client_address":"192.0.2.9","client_helo":"mx.lazy.example",'
                    '"client_hostname":"mx.lazy.example","client_protocol":"ESMTP","envid":null,"message_id":null,'
                    '"queue_id":"4AB","received_with":"ESMTP","tls_protocol":null,"tls_cipher":null,"tls_bits":null}\n')
    s = ingest(store, [ledger, recv], IngestOptions(lab_domains=("lab.example",)))
    assert s.quarantined == 0, s.as_dict()
    (verdict,) = store.con.cursor().execute("SELECT verdict FROM provider_behaviour").fetchone()
    assert verdict.startswith("partial: only later messages refused")


# -- the command line --------------------------------------------------------------------------

def test_cli_mixed_files_in_one_call(tmp_path: Path, capsys) -> None:
    db = tmp_path / "lab.duckdb"
    paths = [str(p) for p in evidence(tmp_path)] + [str(MAILLOG)]
    assert cli_main(["ingest", "--db", str(db), "--year", "2024", "--lab-domain", "lab.example", *paths]) == 0
    out = capsys.readouterr().out
    for word in ("per source:", "postfix", "http", "ledger", "per table:", "quarantined: 0"):
        assert word in out
    assert cli_main(["ingest", "--db", str(db), "--year", "2024", *paths]) == 0
    assert "skipped" in capsys.readouterr().out


def test_cli_missing_file_is_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "collectors.cli", "ingest", "--db", str(tmp_path / "x.duckdb"),
                           str(tmp_path / "nope.log")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_notice_in_the_log_and_in_the_mailbox_counts_once(store, tmp_path: Path) -> None:
    """The sending Postfix logs the bounce it sends and the user's mailbox holds it: one notice."""
    rcpt, relay = BOUNCED_RCPT, BOUNCED_RELAY
    log = bounced_sender_log(tmp_path, deferred_first=False)
    mbox = tmp_path / "bob.mbox"
    mbox.write_text(  # an RFC 3464 report as Postfix's bounce(8) writes it (hand-written fixture)
        "From MAILER-DAEMON Sun Mar  3 10:02:11 2024\n"
        "Date: Sun, 3 Mar 2024 10:02:11 +0000\n"
        "From: MAILER-DAEMON@snd.example (Mail Delivery System)\n"
        "To: bob@sender.example\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\n"
        f"<{rcpt}>: TLS is required, but was not offered by host {relay}\n\n"
        "--B\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; snd.example\n\n"
        f"Final-Recipient: rfc822; {rcpt}\nAction: failed\nStatus: 5.7.4\n"
        "Diagnostic-Code: X-Postfix; TLS is required, but was not offered\n\n"
        "--B--\n")
    s = ingest(store, [log, mbox], IngestOptions(year=2024, lab_domains=("lab.example",)))
    assert s.quarantined == 0, s.as_dict()
    rows = store.con.cursor().execute(
        "SELECT notices, failure_notices, notice_sources FROM notification_timing").fetchall()
    assert rows == [(1, 1, ["mailbox"])]
