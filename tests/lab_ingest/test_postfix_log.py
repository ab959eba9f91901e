"""Postfix log envelopes and session reconstruction (pure parsers; no servers).

The short logs below are hand-written UNIT-TEST FIXTURES in Postfix 3.x's documented
formats, not evidence; real lab logs come from the lab (issue 6)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.lab_ingest import postfix_messages as pm
from collectors.lab_ingest.postfix_envelope import EnvelopeParser, YearTracker, split_program
from collectors.lab_ingest.postfix_log import (
    DeliveryRow, MessageRow, NoticeRow, OtherCountRow, OtherRow, PostfixLogReader, ResolverRow, SessionRow,
    row_key)
from collectors.lab_ingest.records import Quarantined

UTC = dt.timezone.utc
MAILLOGGER = Path(__file__).resolve().parents[2].parent / "shared" / "external" / "postfix" / "maillogger"

CIPHER = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256"


def read(text: str, year: int = 2024, **options) -> list:
    reader = PostfixLogReader(year, **options)
    lines = [(0, i, line) for i, line in enumerate(text.splitlines(), 1)]
    return list(reader.feed(lines)) + list(reader.finish())


def of(rows: list, kind: type) -> list:
    return [r for r in rows if isinstance(r, kind)]


# -- envelopes -----------------------------------------------------------------------

def test_envelopes_of_every_form_a_lab_produces() -> None:
    p = EnvelopeParser(2024)
    cases = {
        "Mar  3 10:00:01 mx postfix/smtpd[12]: connect from a[192.0.2.1]":
            (dt.datetime(2024, 3, 3, 10, 0, 1, tzinfo=UTC), "mx", "postfix/smtpd", 12),
        "Mar  3 10:00:01.123456 mx postfix-a/smtpd[12]: connect from a[192.0.2.1]":  # maillog_file, journal
            (dt.datetime(2024, 3, 3, 10, 0, 1, 123456, tzinfo=UTC), "mx", "postfix-a/smtpd", 12),
        "<22>Mar  3 10:00:01 mx postfix/submission/smtpd[12]: connect from a[192.0.2.1]":
            (dt.datetime(2024, 3, 3, 10, 0, 1, tzinfo=UTC), "mx", "postfix/submission/smtpd", 12),
        "2024-03-03T11:00:01.5+01:00 mx postfix/smtp[7]: x":  # rsyslog RSYSLOG_FileFormat
            (dt.datetime(2024, 3, 3, 10, 0, 1, 500000, tzinfo=UTC), "mx", "postfix/smtp", 7),
        "2024-03-03T10:00:01+0000 mx postfix/smtp[7]: x":  # journalctl -o short-iso
            (dt.datetime(2024, 3, 3, 10, 0, 1, tzinfo=UTC), "mx", "postfix/smtp", 7),
        "<22>1 2024-03-03T10:00:01.000Z mx postfix/smtpd 12 - - connect from a[192.0.2.1]":  # RFC 5424
            (dt.datetime(2024, 3, 3, 10, 0, 1, tzinfo=UTC), "mx", "postfix/smtpd", 12),
        '<22>1 2024-03-03T10:00:01Z mx postfix/smtpd 12 - [meta x="a]b"] connect from a[192.0.2.1]':
            (dt.datetime(2024, 3, 3, 10, 0, 1, tzinfo=UTC), "mx", "postfix/smtpd", 12),
        "2024-03-03T10:00:05.123456789Z Mar  3 10:00:01 mx postfix/qmgr[9]: x":  # docker --timestamps
            (dt.datetime(2024, 3, 3, 10, 0, 1, tzinfo=UTC), "mx", "postfix/qmgr", 9),
        "lab-a-1  | Mar  3 10:00:01 mx postfix/qmgr[9]: x":  # docker compose logs
            (dt.datetime(2024, 3, 3, 10, 0, 1, tzinfo=UTC), "mx", "postfix/qmgr", 9),
        json.dumps({"log": "Mar  3 10:00:01 mx postfix/qmgr[9]: x\n", "stream": "stdout",
                    "time": "2024-03-03T10:00:01.1Z"}):  # docker json-file
            (dt.datetime(2024, 3, 3, 10, 0, 1, tzinfo=UTC), "mx", "postfix/qmgr", 9),
        "2024-03-03 10:00:01 DEBUG    STS: Lookup PERFORMED: domain = a.lab.example":  # resolver's own file
            (dt.datetime(2024, 3, 3, 10, 0, 1, tzinfo=UTC), None, "mta-sts-daemon", None),
    }
    for line, (ts, host, program, pid) in cases.items():
        got = p.parse(line)
        assert got is not None, line
        assert (got.timestamp, got.host, got.program, got.pid) == (ts, host, program, pid), line
    for garbage in ("", "hello world", "\x00\x01\x02", "{not json", "Foo 99 99:99:99 x y: z", "{}",
                    # a lone surrogate escape in the log string: not I-JSON (RFC 7493 2.1)
                    '{"log": "Mar  3 10:00:01 mx postfix/qmgr[9]: x\\ud800\\n"}'):
        assert p.parse(garbage) is None
    # a surrogate pair is one character
    assert p.parse('{"log": "Mar  3 10:00:01 mx postfix/qmgr[9]: x\\ud83d\\ude00\\n"}').message == "x\U0001f600"


def test_program_names_split_into_instance_and_daemon() -> None:
    assert split_program("postfix/smtpd") == ("postfix", "smtpd")
    assert split_program("postfix-a/smtpd") == ("postfix-a", "smtpd")
    assert split_program("postfix/submission/smtpd") == ("postfix", "smtpd")
    assert split_program("sshd") is None
    assert split_program("dovecot/imap") is None


def test_year_rolls_over_when_months_go_backwards() -> None:
    years = YearTracker(2023)
    assert [years.year_for(m) for m in (11, 12, 12, 1, 1, 12, 2)] == [2023, 2023, 2023, 2024, 2024, 2023, 2024]
    rows = read("Dec 31 23:59:59 mx postfix/qmgr[1]: 1A2B3C4D5E: removed\n"
                "Jan  1 00:00:01 mx postfix/qmgr[1]: 2A2B3C4D5E: removed\n", year=2023)
    assert [r.logged_at.year for r in of(rows, OtherRow)] == [2023, 2024]


# -- reconstruction ----------------------------------------------------------------

RECEIVING = f"""\
Mar  3 10:00:01 lab-a postfix-a/smtpd[2101]: connect from mail.sender.example[192.0.2.10]
Mar  3 10:00:01 lab-a postfix-a/smtpd[2101]: Anonymous TLS connection established from mail.sender.example[192.0.2.10]: {CIPHER}
Mar  3 10:00:02 lab-a postfix-a/smtpd[2101]: 4Q2xYz1bcdz9sQ: client=mail.sender.example[192.0.2.10]
Mar  3 10:00:02 lab-a postfix-a/cleanup[2104]: 4Q2xYz1bcdz9sQ: message-id=<m1@sender.example>
Mar  3 10:00:02 lab-a postfix-a/qmgr[1990]: 4Q2xYz1bcdz9sQ: from=<alice@sender.example>, size=1234, nrcpt=1 (queue active)
Mar  3 10:00:02 lab-a postfix-a/local[2105]: 4Q2xYz1bcdz9sQ: to=<0f8fad5b-d9cb-469f-a165-70867728950e@a.lab.example>, relay=local, delay=0.1, delays=0.05/0.01/0/0.04, dsn=2.0.0, status=sent (delivered to command: /usr/local/bin/mtasts-recorder)
Mar  3 10:00:02 lab-a postfix-a/qmgr[1990]: 4Q2xYz1bcdz9sQ: removed
Mar  3 10:00:03 lab-a postfix-a/smtpd[2101]: disconnect from mail.sender.example[192.0.2.10] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7
"""


def test_receiving_session_with_tls_queue_id_sender_and_delivery() -> None:
    rows = read(RECEIVING)
    assert not of(rows, Quarantined) and not of(rows, OtherRow)
    (s,) = of(rows, SessionRow)
    assert (s.instance, s.client_name, s.client_addr) == ("postfix-a", "mail.sender.example", "192.0.2.10")
    assert (s.tls_trust, s.tls_protocol, s.tls_cipher, s.tls_cipher_bits) == (
        "Anonymous", "TLSv1.3", "TLS_AES_256_GCM_SHA384", "256/256")
    assert s.queue_ids == ["4Q2xYz1bcdz9sQ"] and s.complete and s.commands.endswith("commands=7")
    (m,) = of(rows, MessageRow)
    assert (m.origin, m.client_addr, m.tls_protocol, m.message_id, m.sender, m.size, m.nrcpt) == (
        "smtpd", "192.0.2.10", "TLSv1.3", "m1@sender.example", "alice@sender.example", 1234, 1)
    assert m.session_key == s.session_key and m.complete
    (d,) = of(rows, DeliveryRow)
    assert (d.daemon, d.status, d.message_key, d.sender) == ("local", "sent", m.message_key, "alice@sender.example")


SENDING = f"""\
Mar  3 10:00:00 snd postfix/qmgr[312]: 3A1B2C3D4E: from=<bob@sender.example>, size=612, nrcpt=3 (queue active)
Mar  3 10:00:01 snd postfix/smtp[400]: Verified TLS connection established to mx-a.lab.example[127.0.0.11]:25: {CIPHER}
Mar  3 10:00:01 snd postfix/smtp[400]: 3A1B2C3D4E: to=<u1@a.lab.example>, relay=mx-a.lab.example[127.0.0.11]:25, delay=0.4, delays=0.02/0.01/0.3/0.08, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4Q2)
Mar  3 10:00:01 snd postfix/smtp[401]: 3A1B2C3D4E: to=<u2@b.lab.example>, relay=mx-b.lab.example[127.0.0.12]:25, delay=0.2, delays=0.02/0/0.17/0, dsn=4.7.4, status=deferred (TLS is required, but was not offered by host mx-b.lab.example[127.0.0.12])
Mar  3 10:00:01 snd postfix/smtp[402]: Untrusted TLS connection established to mx-d.lab.example[127.0.0.14]:25: {CIPHER}
Mar  3 10:00:01 snd postfix/smtp[402]: certificate verification failed for mx-d.lab.example[127.0.0.14]:25: untrusted issuer /CN=Lab CA
Mar  3 10:00:01 snd postfix/smtp[402]: 3A1B2C3D4E: to=<u4@d.lab.example>, relay=mx-d.lab.example[127.0.0.14]:25, delay=0.5, delays=0.02/0/0.5/0, dsn=4.7.5, status=deferred (Server certificate not trusted)
Mar  3 10:05:01 snd postfix/smtp[400]: 3A1B2C3D4E: to=<u2@b.lab.example>, relay=mx-b.lab.example[127.0.0.12]:25, conn_use=2, delay=300, delays=300/0/0.1/0, dsn=5.7.4, status=bounced (TLS is required, but was not offered by host mx-b.lab.example[127.0.0.12])
Mar  3 10:05:01 snd postfix/bounce[410]: 3A1B2C3D4E: sender non-delivery notification: 5F6A7B8C9D
Mar  3 10:05:02 snd postfix/qmgr[312]: 5F6A7B8C9D: from=<>, size=2400, nrcpt=1 (queue active)
Mar  3 10:05:02 snd mta-sts-daemon[90]: 2024-03-03 10:05:02 DEBUG    STS: Lookup skipped: domain = b.lab.example
"""


def test_sending_attempts_carry_the_tls_of_their_connection() -> None:
    rows = read(SENDING)
    assert not of(rows, Quarantined)
    d = {(r.recipient, r.status): r for r in of(rows, DeliveryRow)}
    a = d[("u1@a.lab.example", "sent")]
    assert (a.tls_trust, a.tls_protocol, a.relay_host, a.relay_addr, a.relay_port, a.dsn) == (
        "Verified", "TLSv1.3", "mx-a.lab.example", "127.0.0.11", 25, "2.0.0")
    assert a.sender == "bob@sender.example"
    b = d[("u2@b.lab.example", "deferred")]
    assert b.tls_trust is None and b.reason.startswith("TLS is required, but was not offered")
    # the same pid 400 later delivered over a *different* connection: no stale TLS attached
    assert d[("u2@b.lab.example", "bounced")].tls_trust is None
    dd = d[("u4@d.lab.example", "deferred")]
    assert dd.tls_trust == "Untrusted" and dd.tls_problem.startswith("certificate verification failed")
    (n,) = of(rows, NoticeRow)
    assert (n.notice_kind, n.notice_recipient, n.notice_queue_id) == ("non-delivery", "sender", "5F6A7B8C9D")
    notice_msg = [m for m in of(rows, MessageRow) if m.queue_id == "5F6A7B8C9D"][0]
    assert (notice_msg.origin, notice_msg.notice_for_queue_id, notice_msg.sender) == ("bounce", "3A1B2C3D4E", "")
    (r,) = of(rows, ResolverRow)
    assert (r.event, r.domain, r.level) == ("cached", "b.lab.example", "DEBUG")


def test_unknown_postfix_lines_are_kept_raw_and_garbage_is_quarantined() -> None:
    text = ("Mar  3 10:00:00 mx postfix/postscreen[1]: CONNECT from [192.0.2.1]:4711 to [192.0.2.2]:25\n"
            "Mar  3 10:00:00 mx sshd[5]: Accepted publickey for root\n"
            "\x00\x01garbage\n"
            "random words here\n")
    rows = read(text, keep_other_lines=True)
    other = of(rows, OtherRow)
    assert [o.kind for o in other] == ["uninterpreted", "not postfix"]
    assert [q.reason for q in of(rows, Quarantined)] == ["not a syslog / Postfix log line"] * 2
    # by default they are counted, not kept; the garbage is quarantined all the same
    rows = read(text)
    assert not of(rows, OtherRow)
    assert [(c.program, c.kind, c.lines) for c in of(rows, OtherCountRow)] == [
        ("postfix/postscreen", "uninterpreted", 1), ("sshd", "not postfix", 1)]
    assert len(of(rows, Quarantined)) == 2


def test_other_lines_are_counted_per_group_and_hour_and_evidence_is_kept_raw() -> None:
    rows = read("Mar  3 10:00:00 mx postfix/postscreen[1]: CONNECT from [192.0.2.1]:4711 to [192.0.2.2]:25\n"
                "Mar  3 10:59:59 mx postfix/postscreen[1]: PASS OLD [192.0.2.1]:4711\n"
                "Mar  3 10:30:00 mx postfix/dnsblog[2]: addr 192.0.2.1 listed by domain zen.example as 127.0.0.2\n"
                "Mar  3 10:40:00 mx postfix/postscreen[1]: warning: getpeername: Transport endpoint is not connected\n"
                "Mar  3 10:41:00 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 5.7.1 <a@b>: "
                "Relay access denied; from=<c@d> to=<a@b> proto=ESMTP helo=<x>\n"
                "Mar  3 11:00:00 mx postfix/postscreen[1]: DISCONNECT [192.0.2.1]:4711\n")
    counts = of(rows, OtherCountRow)
    assert [(c.program, c.hour.hour, c.lines, c.complete, c.source_line) for c in counts] == [
        ("postfix/postscreen", 10, 2, True, 1), ("postfix/dnsblog", 10, 1, True, 3),
        ("postfix/postscreen", 11, 1, False, 6)]
    assert counts[0].first_logged_at.minute == 0 and counts[0].last_logged_at.minute == 59
    assert [o.kind for o in of(rows, OtherRow)] == ["warning", "reject"]     # evidence: raw
    # the same lines read again give the same keys; a resume counts only what it had not read
    again = read("Mar  3 10:00:00 mx postfix/postscreen[1]: CONNECT from [192.0.2.1]:4711 to [192.0.2.2]:25\n")
    assert of(again, OtherCountRow)[0].count_key == counts[0].count_key
    reader = PostfixLogReader(2024, count_from=100)
    lines = [(0, 1, "Mar  3 10:00:00 mx postfix/anvil[1]: statistics: max cache size 1 at Mar  3 10:00:00"),
             (200, 2, "Mar  3 10:00:01 mx postfix/anvil[1]: statistics: max cache size 2 at Mar  3 10:00:01")]
    (count,) = of(list(reader.feed(lines)) + list(reader.finish()), OtherCountRow)
    assert (count.lines, count.source_line) == (1, 2)


def test_one_smtpd_process_serving_two_clients_in_one_second_gives_two_sessions() -> None:
    """Issue 14: host, program, pid and connect time do not tell them apart; a per-process
    sequence does, and the first session keeps the key it always had."""
    rows = read("Mar  3 10:00:00 mx postfix/smtpd[7]: connect from a.example[192.0.2.1]\n"
                "Mar  3 10:00:00 mx postfix/smtpd[7]: 1A2B3C4D5E: client=a.example[192.0.2.1]\n"
                "Mar  3 10:00:00 mx postfix/smtpd[7]: disconnect from a.example[192.0.2.1] commands=5\n"
                "Mar  3 10:00:00 mx postfix/smtpd[7]: connect from localhost[127.0.0.1]\n"
                "Mar  3 10:00:00 mx postfix/smtpd[7]: 2A2B3C4D5E: client=localhost[127.0.0.1]\n"
                "Mar  3 10:00:00 mx postfix/smtpd[7]: disconnect from localhost[127.0.0.1] commands=5\n"
                "Mar  3 10:00:01 mx postfix/smtpd[7]: connect from b.example[192.0.2.2]\n")
    sessions = of(rows, SessionRow)
    assert [(s.client_addr, s.session_seq, s.queue_ids) for s in sessions] == [
        ("192.0.2.1", 0, ["1A2B3C4D5E"]), ("127.0.0.1", 1, ["2A2B3C4D5E"]), ("192.0.2.2", 0, [])]
    assert len({s.session_key for s in sessions}) == 3
    assert sessions[0].session_key == row_key("smtpd", "mx", "postfix/smtpd", 7, sessions[0].connect_at, False)
    by_qid = {m.queue_id: m.session_key for m in of(rows, MessageRow)}
    assert by_qid == {"1A2B3C4D5E": sessions[0].session_key, "2A2B3C4D5E": sessions[1].session_key}


def test_a_delivery_line_cut_by_the_syslog_line_limit_keeps_its_delivery() -> None:
    """Issue 14: no closing ")" in the reason (the line was cut at 1024 bytes)."""
    line = ("Mar  3 10:00:00 mx postfix/smtp[9]: 1A2B3C4D5E: to=<a@b.example>, relay=mx.b.example[192.0.2.9]:25, "
            "delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4Q" + "x" * 1200)[:1024]
    rows = read(line + "\n")
    (d,) = of(rows, DeliveryRow)
    assert (d.status, d.reason_truncated, d.relay_addr) == ("sent", True, "192.0.2.9")
    assert d.reason.startswith("250 2.0.0 Ok: queued as 4Qxx") and not of(rows, OtherRow)
    whole = read(line[:line.index("(") + 1] + "250 2.0.0 Ok (x)" + ")\n")
    assert [(d.reason, d.reason_truncated) for d in of(whole, DeliveryRow)] == [("250 2.0.0 Ok (x)", False)]


def test_maillogger_maillog_matches_their_records_where_they_are_right() -> None:
    """Their parser gives null for the last two lines (qmgr, connect timeout); we keep both."""
    text = (MAILLOGGER / "maillog").read_text("utf-8")
    expected = json.loads((MAILLOGGER / "parsed_maillog.json").read_text("utf-8"))
    rows = read(text, year=2020)
    assert not of(rows, Quarantined)
    deliveries = of(rows, DeliveryRow)
    for want, got in zip([e for e in expected if e], deliveries):
        assert got.queue_id == want["mail_id"] and got.recipient == want["to_address"]
        assert got.relay == want["relay"] and got.dsn == want["dsn"] and got.status == want["status"]
        assert got.reason == want["description"]
        assert got.delay == float(want["delay"])
        assert "/".join(f"{x:g}" for x in (got.delay_before_qmgr, got.delay_in_qmgr, got.delay_conn_setup,
                                            got.delay_transmission)) == want["delays"]
        assert got.logged_at.strftime("%Y%m%d%H%M%S") == want["datetime"]
    assert len(deliveries) == len([e for e in expected if e]) == 6
    # the lines they could not parse are interpreted or kept, never dropped
    (msg,) = of(rows, MessageRow)
    assert (msg.queue_id, msg.sender, msg.size, msg.nrcpt) == ("76DEF40E80", "", 2351, 1)
    (other,) = of(rows, OtherRow)
    assert other.kind == "remote problem" and "Connection timed out" in other.message


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(pm.PARSERS) + ["anvil"]), st.text(max_size=300))
def test_message_parsers_never_raise(daemon: str, text: str) -> None:
    pm.parse_message(daemon, text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=20))
def test_reader_never_raises_and_accounts_for_every_line(lines: list[str]) -> None:
    clean = [ln.replace("\n", " ").replace("\r", " ") for ln in lines]
    reader = PostfixLogReader(2024)
    rows = list(reader.feed([(0, i, ln) for i, ln in enumerate(clean, 1)])) + list(reader.finish())
    assert reader.lines == len(clean)
    assert len(of(rows, Quarantined)) + reader.blank <= len(clean)


def test_numbers_no_bigint_holds_are_none_not_a_crash() -> None:
    """A pid, port or size of more than 18 digits, or a pid in non-ASCII digits, is None: the
    line still parses (and keeps its text), and nothing reaches the store that a BIGINT
    cannot hold."""
    env = EnvelopeParser(2024)
    assert env.parse("<13>1 2024-03-01T10:00:00Z host app \u00b2 - - text").pid is None
    assert env.parse("Mar  1 10:00:00 host postfix/smtpd[1234567890123456789]: text").pid is None
    assert env.parse("Mar  1 10:00:00 host postfix/smtpd[123456789012345678]: text").pid == 123456789012345678
    connect = pm.parse_smtpd("connect from mx[192.0.2.1]:99999999999999999999")
    assert connect is not None and connect.client_port is None
    active = pm.parse_qmgr("4ABCDE12345: from=<a@b>, size=99999999999999999999, nrcpt=1 (queue active)")
    assert active is not None and active.size is None and active.nrcpt == 1
