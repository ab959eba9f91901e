"""The compiled Postfix reader gives exactly the rows of the Python reader (its definition).

Differential tests: the same bytes through ``PostfixLogReader`` (reference) and
``FastPostfixReader`` (``_postfix_fast.c``), compared row for row per table, on every real
log we have (the maillogger maillog, each grok-pattern message under every daemon), on the
benchmark's generated log, and on hypothesis-generated logs built from the shapes the
compiled parsers accept, mutated where their edge cases are (brackets, ports, commas,
odd whitespace, long numbers, non-ASCII text and bytes that are not UTF-8), in every envelope
(RFC 5424 with any structured data, docker json-file objects). The open-state caps are
lowered in one test so that eviction is compared too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.lab_ingest import postfix_fast
from collectors.lab_ingest import postfix_log as pl
from collectors.lab_ingest.records import Quarantined
from support import EXTERNAL_DIR, require

POSTFIX = EXTERNAL_DIR / "postfix"


@pytest.fixture(autouse=True)
def _built() -> None:
    require(postfix_fast.AVAILABLE, "the compiled reader is not built (pip install -e . with a C compiler)")


def _python_rows(data: bytes, year: int = 2024, **options):
    reader = pl.PostfixLogReader(year, **options)
    lines, off = [], 0
    for n, raw in enumerate(data.split(b"\n")[:-1], 1):
        lines.append((off, n, raw.decode("utf-8", "replace").rstrip("\r")))
        off += len(raw) + 1
    rows: dict[type, list] = defaultdict(list)
    quarantined = []
    for row in reader.feed(lines):
        (quarantined.append(row) if isinstance(row, Quarantined) else rows[type(row)].append(row))
    resume = reader.resume_point(off)
    for row in reader.finish():
        rows[type(row)].append(row)
    return dict(rows), quarantined, (reader.lines, reader.blank, reader.interpreted), resume


def _fast_rows(data: bytes, year: int = 2024, block: int = 1 << 16, **options):
    reader = postfix_fast.FastPostfixReader(year, **options)
    lineno = pos = 0
    while pos < len(data):
        cut = data.rfind(b"\n", pos, pos + block)
        if cut < 0:
            cut = data.find(b"\n", pos + block)
        lineno = reader.feed_block(data[pos:cut + 1], pos, lineno)
        pos = cut + 1
    resume = reader.resume_point(pos)
    reader.finish()
    rows: dict[type, list] = defaultdict(list)
    for cls, table in reader.take().items():
        rows[cls].extend(cls(**d) for d in table.to_pylist())
    quarantined = [q for _, q in reader.take_quarantined()]
    return dict(rows), quarantined, (reader.lines, reader.blank, reader.interpreted), resume, reader.counters()


def _assert_same(data: bytes, year: int = 2024, block: int = 1 << 16, **options) -> dict[str, int]:
    py_rows, py_q, py_counts, py_resume = _python_rows(data, year, **options)
    fast_rows, fast_q, fast_counts, fast_resume, counters = _fast_rows(data, year, block, **options)
    assert set(fast_rows) == set(py_rows)
    for cls, rows in py_rows.items():
        for a, b in zip(rows, fast_rows[cls]):
            assert a == b, f"{cls.__name__} differs:\n python {a}\n fast   {b}"
        assert len(rows) == len(fast_rows[cls]), cls.__name__
    assert fast_q == py_q
    assert fast_counts == py_counts
    assert fast_resume == py_resume
    return counters


# The envelopes the compiled reader reads itself (and some it must leave to Python): classic
# syslog, Postfix's maillog_file / journalctl -o short-precise (a fraction), rsyslog's
# high-precision and journalctl -o short-iso (ISO 8601 with fractions and offsets), with a PRI.
_STAMPS = ("Mar  1 10:00:{s:02d}", "Mar  1 10:00:{s:02d}.123456", "Mar 11 10:00:{s:02d}.5",
           "2024-03-01T10:00:{s:02d}.123456+01:00", "2024-03-01T10:00:{s:02d}Z", "2024-03-01 10:00:{s:02d}",
           "2024-03-01T10:00:{s:02d},123-0530", "<22>2024-03-01T10:00:{s:02d}.123456789+00:00")
_AWKWARD_STAMPS = ("2024-02-30T10:00:00Z", "2024-03-01T24:00:00Z", "2024-03-01T10:60:00Z", "2024-03-01T10:00:60Z",
                   "2024-03-01T10:00:00+24:00", "2024-03-01T10:00:00+23:99", "2024-03-01T10:00:00+2359",
                   "2024-03-01T10:00:00.1234567890Z", "2024-03-01T10:00:00.Z", "2024-03-01T10:00:00+1",
                   "2024-3-01T10:00:00Z", "2024-03-01t10:00:00Z", "0001-01-01T00:00:00+01:00",
                   "9999-12-31T23:59:59-01:00", "2024-03-01T10:00:00 ", "2024-03-01T10:00:00\t",
                   "<1234>2024-03-01T10:00:00Z", "<>2024-03-01T10:00:00Z", "<13>Mar  1 10:00:00",
                   "Mar  1 10:00:00.", "Mar  1 10:00:00.1234567890", "Mar  1 10:00:00,5", "Feb 30 10:00:00",
                   "2024-03-01 10:00:00 INFO", "2024-03-01 10:00:00,123 WARNING")
# Daemons with a parser, daemons without one (their lines are kept as they are), other programs.
_DAEMONS = ("smtpd", "smtp", "qmgr", "cleanup", "bounce", "pickup", "local", "lmtp", "pipe", "error", "anvil",
            "postscreen", "dnsblog", "tlsproxy", "verify")


def _grok_messages() -> list[str]:
    out = []
    for path in sorted((POSTFIX / "grok-patterns").glob("*.yaml")):
        data = yaml.safe_load(path.read_text()).get("data")
        if isinstance(data, str):
            out.append(data)
    return out


def _grok_lines() -> list[str]:
    lines = []
    for i, data in enumerate(_grok_messages()):
        for k, daemon in enumerate(_DAEMONS):
            stamp = _STAMPS[(i + k) % len(_STAMPS)].format(s=i % 60)
            lines.append(f"{stamp} mail postfix/{daemon}[{100 + i % 5}]: {data}")
        lines.append(f"{_STAMPS[i % len(_STAMPS)].format(s=i % 60)} mail amavis[{i}]: {data}")
    return lines


def test_row_keys_and_times_are_the_references() -> None:
    for text in (b"", b"abc", b"x" * 127, b"x" * 128, b"x" * 129, "smtpd\x1fé".encode()):
        ref = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big", signed=True)
        assert postfix_fast._postfix_fast.key_of_text(text) == ref
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    for us in (0, 1, 1_700_000_000_123_456, -1, -86_400_000_001, 253_402_300_799_999_999):
        assert postfix_fast._postfix_fast.format_time(us) == str(epoch + dt.timedelta(microseconds=us))


def test_maillogger_log_gives_the_same_rows() -> None:
    data = (POSTFIX / "maillogger" / "maillog").read_bytes()
    counters = _assert_same(data[:data.rfind(b"\n") + 1], year=2015)
    assert counters["fast"] > 0


@pytest.mark.parametrize("options", [{}, {"keep_other_lines": True}, {"count_from": 40_000}])
def test_every_grok_message_under_every_daemon_gives_the_same_rows(options: dict) -> None:
    _assert_same(("\n".join(_grok_lines()) + "\n").encode(), **options)


def test_issue_14_lines_give_the_same_rows() -> None:
    """Two sessions of one smtpd process in one second (the second keyed by its sequence), a
    delivery line cut by syslog's line limit, other lines counted across an hour's end."""
    cut = ("Mar  3 10:00:00 mx postfix/smtp[9]: 1A2B3C4D5E: to=<a@b.example>, relay=mx[192.0.2.9]:25, delay=1, "
           "delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as " + "x" * 1200)[:1024]
    lines = [f"Mar  3 10:00:00 mx postfix/smtpd[7]: {m}" for m in (
        "connect from a.example[192.0.2.1]", "1A2B3C4D5E: client=a.example[192.0.2.1]",
        "disconnect from a.example[192.0.2.1] commands=5", "connect from localhost[127.0.0.1]",
        "2A2B3C4D5E: client=localhost[127.0.0.1]", "disconnect from localhost[127.0.0.1] commands=5",
        "connect from b.example[192.0.2.2]", "lost connection after DATA (0 bytes) from b.example[192.0.2.2]",
        "warning: hostname b.example does not resolve to address 192.0.2.2",
        "disconnect from b.example[192.0.2.2] commands=5", "3A2B3C4D5E: client=c.example[192.0.2.3]")]
    lines += [cut, cut[:-300], "Mar  3 10:00:00 mx postfix/smtp[9]: 1A2B3C4D5E: to=<a@b.example>, relay=none, "
              "delay=1, delays=0.1/0/0.5/0.4, dsn=4.0.0, status=deferred ("]
    lines += [f"Mar  3 1{h}:59:59 mx postfix/postscreen[1]: PASS OLD [192.0.2.1]:25" for h in (0, 0, 1, 0, 2)]
    lines += [f"Mar  3 13:00:00 mx postfix/anvil[{i}]: statistics: max cache size {i}" for i in range(5)]
    data = ("\n".join(lines) + "\n").encode()
    _assert_same(data)
    rows = _fast_rows(data)[0]
    assert [s.session_seq for s in rows[pl.SessionRow]][:3] == [0, 1, 2]
    assert [d.reason_truncated for d in rows[pl.DeliveryRow]] == [True, True, True]
    assert [c.lines for c in rows[pl.OtherCountRow]] == [2, 1, 1, 1, 5]


def test_counted_groups_past_the_cap_give_the_same_rows(monkeypatch) -> None:
    monkeypatch.setattr(pl, "MAX_OPEN_COUNTS", 3)
    lines = [f"Mar  3 10:00:{i % 60:02d} mx{i % 5} postfix/postscreen[1]: PASS OLD [192.0.2.1]:25" for i in range(50)]
    _assert_same(("\n".join(lines) + "\n").encode())


def test_every_envelope_with_awkward_stamps_gives_the_same_rows() -> None:
    messages = ["connect from mx.example[192.0.2.1]", "4ABCDE12345: removed", "CONNECT from [192.0.2.1]:25 to [x]:25",
                "warning: hostname x does not resolve", "STS: Lookup PERFORMED: domain = a.example"]
    lines = []
    for i, stamp in enumerate((*_STAMPS, *_AWKWARD_STAMPS)):
        stamp = stamp.format(s=i % 60)
        for k, (program, text) in enumerate(zip(("postfix/smtpd[1]", "postfix/qmgr[2]", "postfix/postscreen[3]",
                                                 "postfix/smtpd[4]", "INFO"), messages)):
            lines.append(f"{stamp} mail {program}: {text}")
        lines.append(f"{stamp} mail{i}  postfix/smtpd[1]: double space")
        lines.append(f"{stamp} DEBUG    STS: resolver's own format")
    counters = _assert_same(("\n".join(lines) + "\n").encode())
    assert counters["fast"] > len(_STAMPS) * 4


# RFC 5424 (section 6) lines: the compiled reader takes those with no structured data ("-")
_RFC5424 = ("<22>1 2024-03-01T10:00:00.123456+01:00 mail postfix/smtpd 7 - - connect from a[192.0.2.1]",
            "<22>1 2024-03-01T10:00:01Z mail postfix/qmgr 8 - - 4ABCDE12345: removed",
            "<22>1 2024-03-01T10:00:02Z - postfix/postscreen - - - PASS OLD [192.0.2.1]:25",
            "<2>1 2024-03-01T10:00:03Z mail amavis 99999999999999999999 ID47 - (1-01) Passed CLEAN",
            "<222>1 2024-03-01T10:00:04Z mail postfix/smtpd 7 - -",
            "<22>1 2024-03-01T10:00:05Z mail postfix/smtpd 7 - -x",
            "<22>1 2024-03-01T10:00:06Z mail postfix/smtpd 7 - [a b=\"c\"] with data",
            "<22>1 2024-03-01T10:00:07Z mail - 7 - - no app", "<22>1 - mail postfix/smtpd 7 - - no time",
            "<22>1 2024-03-01 mail postfix/smtpd 7 - - short time", "<22>1 0001-01-01T00:00:00Z m p 1 - - year 1",
            "<22>1 2024-03-01T10:00:08+01 mail p 7 - - bad zone", "<22>1 2024-03-01T10:00:09Z  mail p 7 - - two spaces",
            "<1234>1 2024-03-01T10:00:10Z mail p 7 - - long PRI", "<22>2 2024-03-01T10:00:11Z mail p 7 - - version 2")
# RFC 5424 section 6.3 structured data (rsyslog's RFC 5424 template): escaped ``"``, ``]`` and
# ``\`` in PARAM-VALUEs (6.3.3), several elements, and the malformed ones the reference refuses
# or reads with an empty message
_RFC5424_SD = tuple(f"<22>1 2024-03-01T10:00:{i:02d}.5+01:00 mail postfix/{d} 7 ID1 {sd}{m}" for i, (d, sd, m) in enumerate((
    ("smtpd", '[timeQuality tzKnown="1" isSynced="1"]', " connect from a[192.0.2.1]"),
    ("qmgr", '[meta@32473 note="a \\"quoted\\" \\] value \\\\"][origin ip="192.0.2.1"]', " 4ABCDE12345: removed"),
    ("postscreen", '[a]', " PASS OLD [192.0.2.1]:25"), ("qmgr", '[a b="c d] e"]', " 4ABCDE12345: removed"),
    ("qmgr", '[a \\]]', " 4ABCDE12345: removed"), ("qmgr", '[a][b c="]"]', ""), ("qmgr", '[a]', ""),
    ("qmgr", '[a]', " "), ("qmgr", '[a]x', " y"), ("qmgr", '[a][b', " c"), ("qmgr", '[a b="c]', " d"),
    ("qmgr", '[a b="c\\"]', " d"), ("qmgr", '[a \\', ""), ("qmgr", '[]', " 4ABCDE12345: removed"),
    ("qmgr", '[a]]', " x"), ("qmgr", '[a "x]" ]', " 4ABCDE12345: removed"), ("qmgr", '[a\tb="\x1c"]', " z"),
    ("qmgr", '[a] ', "4ABCDE12345: removed"), ("smtpd", '[a b="c"] [d]', " connect from a[192.0.2.1]"),
    ("qmgr", '[a b=""]', "\r x"), ("qmgr", "[", ""), ("qmgr", '["]', " x"), ("qmgr", '[a b="c"d"]', " x"))))
# container stdout (left to Python), and ISO lines that such a reading could take too
_CONTAINER = ("2024-03-01T10:00:00.123456789Z Mar  1 10:00:00 mail postfix/smtpd[7]: connect from a[192.0.2.1]",
              "2024-03-01T10:00:00Z <22>1 2024-03-01T10:00:00Z mail postfix/qmgr 8 - - 4ABCDE12345: removed",
              "2024-03-01T10:00:00+00:00 2024-03-01T10:00:00Z mail postfix/qmgr[8]: 4ABCDE12345: removed",
              "2024-03-01T10:00:00Z mta  | Mar  1 10:00:00 mail postfix/qmgr[8]: 4ABCDE12345: removed",
              "mta  | 2024-03-01T10:00:00Z mail postfix/qmgr[8]: 4ABCDE12345: removed",
              "2024-03-01T10:00:00Z Mail postfix/qmgr[8]: 4ABCDE12345: removed",
              "2024-03-01T10:00:00Z 9mail postfix/qmgr[8]: 4ABCDE12345: removed",
              '{"log": "Mar  1 10:00:00 mail postfix/qmgr[8]: 4ABCDE12345: removed\\n", "time": "2024-03-01T10:00:00Z"}',
              "2024-03-01T10:00:00Z svc| 2024-03-01T10:00:00Z h postfix/qmgr[8]: 4ABCDE12345: removed",
              "2024-03-01T10:00:00Z 2024-03-01T10:00:00Z h[1]: postfix/qmgr[8]: 4ABCDE12345: removed",
              "2024-03-01T10:00:00.5+01:00 mta_1 \t| Mar 11 10:00:00 mail postfix/smtpd[7]: connect from a[192.0.2.1]",
              "mta.1-x  | <22>1 2024-03-01T10:00:00Z mail postfix/smtpd 7 - - connect from a[192.0.2.1]",
              "Mta | Mar  1 10:00:00 mail postfix/qmgr[8]: 4ABCDE12345: removed",
              "2024 | Mar  1 10:00:00 mail postfix/qmgr[8]: 4ABCDE12345: removed",
              "2024-13-01T10:00:00Z Mar  1 10:00:00 mail postfix/qmgr[8]: 4ABCDE12345: removed",
              "2024-03-01T10:00:00+0100 Mar  1 10:00:00 mail postfix/qmgr[8]: 4ABCDE12345: removed",
              "x|  Mar  1 10:00:00 mail postfix/qmgr[8]: 4ABCDE12345: removed", "svc | ",
              "2024-03-01T10:00:00Z ")


@pytest.mark.parametrize("order", [1, -1])
def test_rfc5424_and_container_lines_give_the_same_rows(order: int) -> None:
    """In both orders: the Python envelope parser tries first the envelope that worked last."""
    lines = [*_RFC5424, *_RFC5424_SD, *_CONTAINER, *_RFC5424[:3], *_CONTAINER[:1]][::order]
    counters = _assert_same(("\n".join(lines) + "\n").encode())
    assert counters["fast"] >= 8 + 8
    # well-formed structured data is read by the compiled parsers
    good = [_RFC5424_SD[i] for i in (0, 1, 2, 3, 4, 13, 15, 17)]
    assert _fast_rows(("\n".join(good) + "\n").encode())[4]["slow"] == 0


@pytest.mark.parametrize("label", ["real-iso", "real-classic", "real-rfc5424-sd", "real-docker-json", "real-utf8"])
def test_real_server_log_is_read_by_the_compiled_parsers_alone(tmp_path, label: str) -> None:
    """The benchmark's internet-facing server (postscreen, dnsblog, tlsproxy, anvil, amavis, pipe),
    with ISO 8601 and with classic time stamps, and re-enveloped as the benchmark does (RFC 5424
    with structured data, docker json-file; with UTF-8 text and invalid bytes): every line parsed
    in C, the same rows."""
    from benchmarks.ingest_bench import REAL_LOGS, generate_log

    shape, stamps, envelope = REAL_LOGS[label]
    log = tmp_path / "maillog"
    generate_log(log, 1 << 20, shape=shape, stamps=stamps, envelope=envelope)
    data = log.read_bytes()
    counters = _assert_same(data)
    assert counters["slow"] == 0 and counters["fast"] == counters["lines"]


def test_benchmark_log_is_read_by_the_compiled_parsers_alone(tmp_path) -> None:
    from benchmarks.ingest_bench import generate_log

    log = tmp_path / "maillog"
    generate_log(log, 2 << 20)
    data = log.read_bytes()
    counters = _assert_same(data)
    assert counters["slow"] == 0 and counters["fast"] == counters["lines"]
    # the block boundaries do not matter
    assert _fast_rows(data, block=977)[0] == _fast_rows(data, block=1 << 20)[0]


def test_eviction_at_the_caps_gives_the_same_rows(monkeypatch) -> None:
    from benchmarks.ingest_bench import generate_log
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "maillog"
        generate_log(log, 300_000)
        data = log.read_bytes()
    # interleave sessions so that many are open at once, then squeeze the caps
    lines = data.split(b"\n")[:-1]
    lines = lines[0::3] + lines[1::3] + lines[2::3]
    for name, cap in (("MAX_OPEN_SESSIONS", 7), ("MAX_OPEN_MESSAGES", 11), ("MAX_SMTP_PROCESSES", 3),
                      ("MAX_NOTICE_PARENTS", 2), ("MAX_RESUME_REWIND", 5000)):
        monkeypatch.setattr(pl, name, cap)
    _assert_same(b"\n".join(lines) + b"\n")


# -- every field of every shape the compiled parsers take, replaced by each awkward value -----
_TEMPLATES = [
    ("smtpd", "connect from {name}[{addr}]{port}{tail}"),
    ("smtpd", "disconnect from {name}[{addr}]{port}{tail}"),
    ("smtpd", "{trust} TLS connection established {dir} {name}[{addr}]{port}: {proto} with cipher {cipher} "
              "({bits} bits){tls_tail}"),
    ("smtp", "{trust} TLS connection established {dir} {name}[{addr}]{port}: {proto} with cipher {cipher} "
             "({bits} bits){tls_tail}"),
    ("smtpd", "{qid}: client={name}[{addr}]{port}{tail}"),
    ("cleanup", "{qid}: message-id={msgid}"),
    ("qmgr", "{qid}: from=<{addr}>, size={num}, nrcpt={num2}{tail}"),
    ("qmgr", "{qid}: removed{tail}"),
    ("pickup", "{qid}: uid={num} from=<{addr}>{tail}"),
    ("bounce", "{qid}: {who} {kind} notification: {qid2}{tail}"),
    ("smtp", "{qid}: to=<{rcpt}>, {orig}relay={relay}, {conn}delay={delay}, delays={delays}, {tls}dsn={dsn}, "
             "status={status} ({reason}){tail}"),
    ("local", "{qid}: to=<{rcpt}>, relay=local, delay={delay}, delays={delays}, dsn={dsn}, status={status} ({reason})"),
    ("smtpd", "lost connection after {stage}{paren} from {name}[{addr}]{port}{tail}"),
    ("smtpd", "timeout after {stage} {word}{paren} from {name}[{addr}]{port}{tail}"),
    ("smtpd", "SSL_accept error from {name}[{addr}]{port}: {reason}"),
    ("smtpd", "{level}: {name}[{addr}]: {reason}"),
    ("smtpd", "{level}: {qid}: {name}[{addr}]{port}: {reason}"),
    ("qmgr", "{level}: {reason}"),
    ("postscreen", "{qid}: reject: RCPT from [{addr}]{port}: {reason}"),
    ("dnsblog", "{level}: addr {addr} listed by domain {name} as 127.0.0.2"),
    ("anvil", "statistics: max connection rate 1/60s for (smtpd:{addr}) at {reason}"),
    ("smtpd", "{qid}: {action}: {stage} from {name}[{addr}]{port}: {code} {dsn} <{rcpt}>: {reason}; "
              "from=<{rcpt}> to=<{rcpt}> proto=ESMTP helo=<{name}>{tail}"),
    ("smtpd", "{qid}: {action}: {stage} from {name}[{addr}]{port}: {code} {dsn} Service unavailable; "
              "Client host [{addr}] blocked using zen.example; {reason}; from=<{rcpt}>, to=<{rcpt}>, proto=SMTP{tail}"),
    ("smtp", "{qid}: host {name}[{addr}]{port} said: {code} {dsn} {reason} (in reply to RCPT TO command){tail}"),
    ("smtp", "{qid}: lost connection with {name}[{addr}]{port} while {reason}"),
    ("smtp", "{qid}: conversation with {name}[{addr}]{port} timed out while {reason}"),
    ("lmtp", "connect to {name}[{addr}]{port}: {reason}"),
    ("cleanup", "{qid}: {action}: END-OF-MESSAGE from {name}[{addr}]{port}: {code} {dsn} {reason}; from=<{rcpt}> "
                "to=<{rcpt}> proto=ESMTP helo=<{name}>"),
    ("cleanup", "{qid}: {level}: header Subject: {reason} from {name}[{addr}]; from=<{rcpt}> to=<{rcpt}>"),
    ("qmgr", "{qid}: {reason}"),
    ("pipe", "{qid}: {level}: {reason}"),
]
_GOOD = {"name": "mx.example", "addr": "192.0.2.1", "port": ":25", "tail": "", "trust": "Verified", "dir": "to",
         "proto": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "bits": "256/256",
         "tls_tail": " key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256",
         "qid": "4ABCDE12345", "qid2": "3F2A1B9C", "msgid": "<id@x>", "num": "612", "num2": "1", "who": "sender",
         "kind": "non-delivery", "rcpt": "u@a.example", "orig": "", "relay": "mx[127.0.0.1]:25", "conn": "",
         "delay": "0.41", "delays": "0.02/0.01/0.3/0.08", "tls": "", "dsn": "2.0.0", "status": "sent",
         "reason": "250 2.0.0 Ok: queued as 4XYZ", "stage": "DATA", "paren": " (0 bytes)", "word": "TO",
         "level": "warning", "action": "reject", "code": "554"}
# Non-ASCII text as logs hold it: letters (SMTPUTF8 addresses, RFC 6531), symbols, what Python's
# re sees as space (U+00A0, U+2028, U+0085) or digit (U+0663, U+FF17: \\d, int()), digits that are
# \\w but not \\d (U+00B2), a BOM, and bytes that are not UTF-8 (surrogateescape: raw 0xE9, a cut
# sequence, an overlong form, an encoded surrogate), read by the reference as U+FFFD.
_NON_ASCII = ["é", "用户@例子.广告", "Ünïcödé", "€", "–", "\ufffd", "\u00a0", "\u2028", "\u0085", "٣", "\uff17",
              "²", "é€", "ǅ", "\ufeff", "😀", "\udce9", "caf\udce9", "\udce2\udc82", "\udcc0\udcaf",
              "\udced\udca0\udc80", "\udcf4\udc90\udc80\udc80", "é\udce9"]
_AWKWARD = ["", " ", "  ", "x", "[", "]", "[]", "<", ">", "<>", ",", ", ", ":", ": ", ":x", ":25x", "(", ")", " (",
            "()", "0", "007", "5.7.1000", "22.0.0", "2.0", "1.", ".5", ".", "..", "1.2.3", "/", "1/2/3", "1/2/3/4/5",
            " bits", "bits)", "\t", "\x1c", "\r", "é", "99999999999999999999", "NOQUEUE", "ABCDE", "4bcdfghjklm",
            "orig_to=<o@b>, ", "orig_to=o@b, ", "conn_use=2, ", "conn_use=x, ", "tls=dane, ", " key-exchange",
            " server-signature X (2048", " server-signature X (P-256)", " server-digest", "delay", "to=<a@b>",
            "from", " from ", "from x[1.2.3.4]", "info", "warning:", "Warning", "unknown", "::1", "g.1",
            "fe80::1%eth0", " (x) (y)", "(x", "; from=<a>", "; to=<b> proto=SMTP", ";", "; ", "milter-reject",
            "RCPT TO", "END-OF-MESSAGE", "<x>: ", "Service unavailable; x [1.2.3.4] ", "5541", "5.7.1000",
            "; from=<a> proto=SMTP helo=<h> x", "; from=<a>to=<b>", "; from=<a> ", *_NON_ASCII]


def _single_mutations() -> list[str]:
    lines = []
    for i, (daemon, template) in enumerate(_TEMPLATES):
        fields = [f for f in _GOOD if "{" + f + "}" in template]
        for field in fields:
            for value in _AWKWARD:
                text = template.format(**{**_GOOD, field: value})
                lines.append(f"Mar  1 10:00:{i:02d} lab-a postfix/{daemon}[{i % 3}]: {text}")
    return lines


def test_each_field_replaced_by_each_awkward_value_gives_the_same_rows() -> None:
    lines = _single_mutations()
    counters = _assert_same(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
    assert counters["fast"] > len(lines) // 3    # the compiled parsers took the plain ones


# -- generated logs ---------------------------------------------------------------------
_NOISE = st.sampled_from(["", " ", "a", "[", "]", "<", ">", ",", ", ", ":", ": ", "(", ")", " (", "25", "x y",
                          "\t", "\x1c", "é", ".", "/", "1.", ".5", "..", "bits", " bits", "=", "\r",
                          "99999999999999999999", "NOQUEUE", "4ABCDE12345", *_NON_ASCII])
_FUZZ = st.lists(_NOISE, max_size=3).map("".join)


def _or_fuzz(value: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(value, value, value, value, value, value, _FUZZ)


_QID = _or_fuzz(st.sampled_from(["4ABCDE12345", "3F2A1B9C", "4Xyzbcdfghk", "ABCDE", "NOQUEUE"]))
_PEER = st.builds(lambda n, a, p: f"{n}[{a}]{p}", _or_fuzz(st.sampled_from(["mx.example", "unknown", ""])),
                  _or_fuzz(st.sampled_from(["192.0.2.1", "::1", "127.0.0.11"])),
                  _or_fuzz(st.sampled_from(["", ":25", ":2525", ":", ":x"])))
_FLOAT = _or_fuzz(st.sampled_from(["0.12", "0", "301", ".5", "1."]))


@st.composite
def _delivery(draw) -> str:
    parts = [f"to=<{draw(_or_fuzz(st.just('u@a.example')))}>"]
    if draw(st.booleans()):
        parts.append(f"orig_to=<{draw(_or_fuzz(st.just('o@b.example')))}>")
    parts.append("relay=" + draw(_or_fuzz(st.sampled_from(["local", "mx[127.0.0.1]:25", "none", "mx[::1]",
                                                            "mx[1.2.3.4]:25x"]))))
    if draw(st.booleans()):
        parts.append("conn_use=" + draw(_or_fuzz(st.sampled_from(["2", "0"]))))
    parts.append("delay=" + draw(_FLOAT))
    parts.append("delays=" + "/".join(draw(_FLOAT) for _ in range(draw(st.integers(3, 5)))))
    if draw(st.booleans()):
        parts.append("tls=" + draw(_or_fuzz(st.just("dane"))))
    parts.append("dsn=" + draw(_or_fuzz(st.sampled_from(["2.0.0", "4.7.4", "5.7.5", "2.10.100", "5.7.1000", "22.0.0"]))))
    parts.append("status=" + draw(_or_fuzz(st.sampled_from(["sent", "deferred", "bounced"])))
                 + f" ({draw(_or_fuzz(st.just('250 2.0.0 Ok (queued as X)')))})" + draw(st.sampled_from(["", "", "x"])))
    return ", ".join(parts)


@st.composite
def _tls(draw, direction: str) -> str:
    tail = draw(st.sampled_from([
        "", " key-exchange X25519", " key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256",
        " server-signature ECDSA (P-256)", " key-exchange  server-signature x", " server-signature X (2048",
        " server-signature X (2048 bits ) y", " server-signature (2048 bits)"]))
    return (f"{draw(_or_fuzz(st.sampled_from(['Anonymous', 'Untrusted', 'Trusted', 'Verified'])))} TLS connection "
            f"established {draw(_or_fuzz(st.just(direction)))} {draw(_PEER)}: {draw(_or_fuzz(st.just('TLSv1.3')))} "
            f"with cipher {draw(_or_fuzz(st.just('TLS_AES_256_GCM_SHA384')))} "
            f"({draw(_or_fuzz(st.sampled_from(['256/256', '128/128'])))} bits){tail}")


@st.composite
def _message(draw, daemon: str) -> str:
    q = draw(_QID)
    if daemon == "smtpd":
        return draw(st.one_of(
            st.builds(lambda p, x: f"connect from {p}{x}", _PEER, st.sampled_from(["", " ", "x"])),
            st.builds(lambda p, x: f"disconnect from {p}{x}", _PEER,
                      st.sampled_from(["", " ", " ehlo=1 quit=1 commands=2", "x"])),
            _tls("from"),
            st.builds(lambda p, x: f"{q}: client={p}{x}", _PEER, st.sampled_from(["", ", sasl_method=PLAIN, sasl_username=u"])),
            st.builds(lambda p: f"lost connection after DATA from {p}", _PEER),
            st.builds(lambda p: f"NOQUEUE: reject: RCPT from {p}: 554 5.7.1 <x@y>: Relay access denied; "
                                f"from=<a@b> to=<x@y> proto=ESMTP helo=<h>", _PEER),
            st.just("warning: hostname does not resolve"),
            st.builds(lambda s, p, d: f"{s} from {p}{d}", _or_fuzz(st.sampled_from([
                "lost connection after DATA (0 bytes)", "timeout after END-OF-MESSAGE", "lost connection after RCPT TO",
                "SSL_accept error", "too many errors after AUTH", "improper command pipelining after EHLO"])),
                _PEER, st.sampled_from(["", ": -1", ":", ": x\r\ny"])),
            st.builds(lambda lv, p, x: f"{lv}: {p}: {x}", _or_fuzz(st.sampled_from(["warning", "info", "error"])),
                      _PEER, st.sampled_from(["SASL LOGIN authentication failed", "x; from=<a@b> to=<c@d>"]))))
    if daemon in ("postscreen", "dnsblog", "tlsproxy", "anvil"):
        return draw(st.one_of(
            st.builds(lambda p: f"CONNECT from {p} to [192.0.2.25]:25", _PEER),
            st.builds(lambda p: f"PASS OLD {p}", _PEER),
            st.builds(lambda q2, p: f"{q2}: reject: RCPT from {p}: 550 5.7.1 Service unavailable", _QID, _PEER),
            st.builds(lambda lv, x: f"{lv}: {x}", _or_fuzz(st.sampled_from(["warning", "fatal"])), _FUZZ),
            st.just("statistics: max connection rate 1/60s for (smtpd:192.0.2.1) at Mar  1 10:00:00")))
    if daemon in ("smtp", "lmtp", "relay"):
        return draw(st.one_of(_delivery().map(lambda d: f"{q}: {d}"), _tls("to"),
                              st.builds(lambda p: f"certificate verification failed for {p}: untrusted issuer", _PEER),
                              st.builds(lambda p: f"{q}: lost connection with {p} while receiving the initial server greeting", _PEER)))
    if daemon in ("local", "pipe", "error"):
        return draw(_delivery().map(lambda d: f"{q}: {d}"))
    if daemon == "qmgr":
        return draw(st.one_of(
            st.sampled_from([f"{q}: removed", f"{q}: removed ", f"{q}: from=<a@b>, status=expired, returned to sender"]),
            st.builds(lambda s, n, r, x: f"{q}: from=<{s}>, size={n}, nrcpt={r}{x}", _or_fuzz(st.just("a@b")),
                      _or_fuzz(st.just("612")), _or_fuzz(st.just("1")), st.sampled_from([" (queue active)", ""])),
            _delivery().map(lambda d: f"{q}: {d}")))
    if daemon == "cleanup":
        return f"{q}: message-id=" + draw(_or_fuzz(st.sampled_from(["<id@x>", "<", "id@x", "<>", "<a><b>"])))
    if daemon == "bounce":
        return (f"{q}: {draw(_or_fuzz(st.sampled_from(['sender', 'postmaster'])))} "
                f"{draw(_or_fuzz(st.sampled_from(['non-delivery', 'delay', 'delivery status', 'success'])))} "
                f"notification: {draw(_QID)}")
    if daemon == "pickup":
        return f"{q}: uid={draw(_or_fuzz(st.just('0')))} from=<{draw(_or_fuzz(st.just('bob')))}>"
    return draw(_FUZZ)


@st.composite
def _line(draw) -> str:
    daemon = draw(_or_fuzz(st.sampled_from(["smtpd", "smtp", "qmgr", "cleanup", "bounce", "pickup", "local", "lmtp",
                                            "postscreen", "dnsblog", "tlsproxy", "anvil"])))
    program = draw(st.one_of(st.sampled_from([f"postfix/{daemon}", f"postfix-a/{daemon}", f"postfix/submission/{daemon}"]),
                             st.sampled_from(["mta-sts-daemon", "postfix", "dovecot", "amavis", "x/mta-sts-resolver"]), _FUZZ))
    pid = draw(_or_fuzz(st.sampled_from(["[1]", "[2]", "[3]", "", "[x]", "[]"])))
    host = draw(_or_fuzz(st.sampled_from(["lab-a", "sender", "b"])))
    stamp = draw(_or_fuzz(st.sampled_from(["Mar  1 10:00:00", "Mar  1 10:00:01", "Dec 31 23:59:59", "Jan  1 00:00:00",
                                           "Mar  1 10:00:00.250000", "2024-03-01T10:00:00Z",
                                           "2024-03-01T10:00:00.123456+01:00", "2024-03-01T11:00:00.5-01:00",
                                           "2024-03-01 10:00:00,123"])))
    return f"{stamp} {host} {program}{pid}: {draw(_message(daemon))}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line(), min_size=1, max_size=40), st.booleans())
def test_generated_logs_give_the_same_rows(lines: list[str], keep_other_lines: bool) -> None:
    _assert_same(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"), keep_other_lines=keep_other_lines)


def test_a_block_keeps_its_partial_last_line_out() -> None:
    """A block that does not end in a newline: its last partial line is not read (the caller,
    LineSource, hands it over once it is complete or the file has ended)."""
    reader = postfix_fast.FastPostfixReader(2024)
    data = b"Mar  1 10:00:00 h postfix/qmgr[1]: 4ABCDE12345: removed\npartial"
    assert reader.feed_block(data, 0, 0) == 1
    assert reader.lines == 1


_CONTAINER_PREFIX = st.sampled_from(["", "2024-03-01T10:00:00Z ", "svc  | ", "2024-03-01T10:00:00.5+01:00 mta | ", "x| ",
                                     "sérvice | ", "服务 | ", "€x | ", "x\u00a0| ", "x² | ",
                                     "2024-03-01T10:00:00+0100 "])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_CONTAINER_PREFIX, _line()), min_size=1, max_size=30))
def test_generated_container_logs_give_the_same_rows(lines: list[tuple[str, str]]) -> None:
    """docker --timestamps and compose prefixes before generated lines, mixed with bare ones."""
    _assert_same(("\n".join(prefix + line for prefix, line in lines) + "\n").encode("utf-8", "surrogateescape"))


_SD_PIECE = st.sampled_from(['[', ']', '"', '\\', ' ', '=', 'a', 'b="c"', '\\"', '\\]', '\\\\', "x@32473", "é", "\t"])
_SD = st.one_of(st.just("-"), st.lists(st.lists(_SD_PIECE, max_size=6).map(lambda x: "[" + "".join(x) + "]"),
                                       min_size=1, max_size=3).map("".join), st.lists(_SD_PIECE, max_size=8).map("".join))


@st.composite
def _rfc5424_line(draw) -> str:
    """An RFC 5424 line (section 6) around a generated Postfix message: any structured data."""
    daemon = draw(st.sampled_from(["smtpd", "smtp", "qmgr", "cleanup", "bounce", "local", "postscreen"]))
    stamp = draw(st.sampled_from(["2024-03-01T10:00:00Z", "2024-03-01T10:00:00.123456+01:00", "-", "2024-03-01"]))
    head = (f"<{draw(st.sampled_from(['22', '2', '191']))}>1 {stamp} {draw(st.sampled_from(['mail', '-']))} "
            f"{draw(st.sampled_from([f'postfix/{daemon}', 'amavis', '-']))} {draw(st.sampled_from(['7', '-', 'x']))} "
            f"{draw(st.sampled_from(['-', 'ID47']))} {draw(_SD)}")
    return head + draw(st.sampled_from(["", " ", "x", " \ufeff"])) + draw(_message(daemon))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_rfc5424_line(), min_size=1, max_size=30))
def test_generated_rfc5424_logs_with_structured_data_give_the_same_rows(lines: list[str]) -> None:
    _assert_same(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))



# docker's json-file driver: one JSON object per line (RFC 8259), the container's line in "log"
_INNER = "2024-03-01T10:00:00.5+01:00 mail postfix/qmgr[8]: 4ABCDE12345: from=<a@b.example>, size=612, nrcpt=1 (queue active)"
_DOCKER = (
    json.dumps({"log": _INNER + "\n", "stream": "stderr", "time": "2024-03-01T09:00:00.5Z"}),
    '{"log":"Mar  1 10:00:01 mail postfix/smtpd[7]: connect from a[192.0.2.1]\\n","stream":"stdout","time":"x"}',
    '{"log":"Mar  1 10:00:02 mail postfix/qmgr[8]: 4ABCDE12345: from=\\u003ca@b\\u003e, size=1, nrcpt=1\\r\\n"}',
    '{"stream":"stdout","log":"<22>1 2024-03-01T10:00:03Z mail postfix/qmgr 8 - [a b=\\"\\\\]\\"] 4ABCDE12345: removed"}',
    '{ "log" : "Mar  1 10:00:04 mail postfix/qmgr[8]: 4ABCDE12345: removed\\n" , "attrs": {"tag": ["a", 1, -2.5e3, true, null, {}]}, "n": 0 }  ',
    '{"\\u006cog":"Mar  1 10:00:05 mail postfix/qmgr[8]: 4ABCDE12345: removed\\n"}',
    '{"log":"Mar  1 10:00:06 mail postfix/qmgr[8]: 4ABCDE12345: removed\\n","log":"Mar  1 10:00:06 mail postfix/qmgr[9]: x"}',
    '{"log":"Mar  1 10:00:07 mail postfix/qmgr[8]: 4ABCDE12345: removed\\ud800"}',
    '{"log":"Mar  1 10:00:08 mail postfix/qmgr[8]: 4ABCDE12345: removed\\ud83d\\ude00"}',
    '{"log":"Mar  1 10:00:09 mail postfix/qmgr[8]: 4ABCDE12345: from=<caf\\u00e9@b>, size=1, nrcpt=1"}',
    '{"log":"Mar  1 10:00:10 mail postfix/qmgr[8]: 4ABCDE12345: removed\\nMar  1 10:00:10 mail postfix/qmgr[8]: x\\n"}',
    '{"log":"Mar  1 10:00:11 mail postfix/qmgr[8]: 4ABCDE12345: removed", "n": NaN}',
    '{"log":"Mar  1 10:00:12 mail postfix/qmgr[8]: 4ABCDE12345: removed"} x', '{"log":1}', '{}', '{"log":"\\n"}',
    '{"log":"Mar  1 10:00:13 mail postfix/qmgr[8]: 4ABCDE12345: removed', '{"log":"a\tb"}', '[1]', '{"log":"x\\q"}',
    '{"log":"Mar  1 10:00:14 mail postfix/qmgr[8]: \\u0000\\t\\u001c\\/\\b\\f"}', '{"log":"x", "n": 01}',
    '{"log":"Mar  1 10:00:15 mail postfix/qmgr[8]: 4ABCDE12345: removed", "n": -}', '{"log":"2024-03-01 10:00:16 INFO STS: x"}',
    '{"log":"2024-03-01T10:00:17Z mta | Mar  1 10:00:17 mail postfix/qmgr[8]: 4ABCDE12345: removed"}',
    '{"log":"Mar  1 10:00:18 mail postfix/qmgr[8]: 4ABCDE12345: removed" , "n": {"a": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}}')


def _docker_partials(line: str, stream: str = "stdout") -> list[str]:
    """A line docker's json-file driver split at its 16 KiB message limit: several objects, the
    last one ending in the newline."""
    data = (line + "\n").encode()
    pieces = [data[k:k + 16384] for k in range(0, len(data), 16384)]
    return [json.dumps({"log": piece.decode("utf-8", "replace"), "stream": stream, "time": "2024-03-01T09:00:00Z"})
            for piece in pieces]


def test_docker_json_file_lines_give_the_same_rows() -> None:
    long_reason = "x" * 40_000
    split = _docker_partials(f"Mar  1 10:00:20 mail postfix/smtp[9]: 4ABCDE12345: to=<u@a.example>, relay=mx[192.0.2.9]:25, "
                             f"delay=1, delays=0.1/0/0.5/0.4, dsn=5.0.0, status=bounced (host said: {long_reason})")
    assert len(split) == 3
    lines = [*_DOCKER, *split]
    counters = _assert_same(("\n".join(lines) + "\n").encode())
    # the well-formed ones are read by the compiled parsers
    good = [_DOCKER[i] for i in (0, 1, 2, 3, 4, 5)] + split[:1]
    assert _fast_rows(("\n".join(good) + "\n").encode())[4]["slow"] == 0
    assert counters["fast"] >= len(good)
    # a split line: its first piece is a (cut) delivery, the others are quarantined, not lost
    py_rows, py_q, _, _ = _python_rows(("\n".join(split) + "\n").encode())
    assert len(py_rows[pl.DeliveryRow]) == 1 and len(py_q) == 2


def _go_json(obj: dict, ascii_only: bool) -> str:
    """JSON as docker writes it (Go: <, >, & as \\u escapes) or as Python's json.dumps does."""
    text = json.dumps(obj, ensure_ascii=ascii_only, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") if not ascii_only else text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_line(), st.booleans(), st.sampled_from(["\n", "", "\r\n", "\n\n"]),
                          st.sampled_from(["log-first", "log-last", "attrs"])), min_size=1, max_size=30))
def test_generated_docker_json_logs_give_the_same_rows(lines: list[tuple[str, bool, str, str]]) -> None:
    """Generated Postfix lines inside docker json-file objects: Go's and Python's escapes, keys
    in any order, extra values."""
    out = []
    for line, ascii_only, end, order in lines:
        obj = {"log": line + end, "stream": "stderr", "time": "2024-03-01T09:00:00.123456789Z"}
        if order == "log-last":
            obj = {"stream": "stderr", "time": obj["time"], "log": obj["log"]}
        elif order == "attrs":
            obj["attrs"] = {"tag": "postfix", "n": [1, -0.5, 2e10, None, False]}
        out.append(_go_json(obj, ascii_only))
    _assert_same(("\n".join(out) + "\n").encode("utf-8", "surrogateescape"))



_NON_ASCII_TEMPLATES = (
    "Mar  1 10:00:00 mx postfix/qmgr[1]: 4ABCDE12345: from=<a{v}@b>, size=1, nrcpt=1 (queue active)",
    "Mar  1 10:00:01 mx postfix/smtpd[2]: NOQUEUE: r{v}ject: RCPT from a[192.0.2.1]: 550 5.7.1 Service unavailable; "
    "Client host [192.0.2.1] blocked using x{v}; r; from=<a> to=<b> proto=ESMTP helo=<h>",
    "Mar  1 10:00:02 mx postfix/smtpd[2]: 4ABCDE12345: reject: RCPT from a[192.0.2.1]: 550 5.7.1 Service unavailable; "
    "{v} [192.0.2.1] x; from=<a> to=<b>",
    "Mar  1 10:00:03 mx postfix/smtpd[2]: lost connection after DATA {v} from a[192.0.2.1]",
    "Mar  1 10:00:04 mx postfix/smtpd[2]: timeout after RCPT {v}x (0 bytes) from a{v}[192.0.2.1]: x",
    "{v}svc | Mar  1 10:00:05 mx postfix/qmgr[1]: 4ABCDE12345: removed",
    "Mar  1 10:00:06 m{v} postfix{v}/smtp[3]: 4ABCDE12345: to=<u{v}@a>, relay=mx{v}[192.0.2.1]:25, delay=1, "
    "delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 {v})",
    "<22>1 2024-03-01T10:00:07Z mx postfix/cleanup 4 - [a b=\"{v}\"] \ufeff4ABCDE12345: message-id=<{v}@x>",
    "Mar  1 10:00:08 mx {v}[5]: not postfix {v}",
)


@pytest.mark.parametrize("value", _NON_ASCII)
def test_non_ascii_lines_are_read_in_c_as_the_reference_reads_them(value: str) -> None:
    r"""UTF-8 text (SMTPUTF8 addresses, subjects, host names) and bytes that are not UTF-8 take
    the compiled path with the reference's text (invalid bytes as U+FFFD), including where
    Python's \w decides (reject actions, session-problem words, compose prefixes); a line
    whose text holds what Python's \s or \d reads (U+00A0, U+0663) is left to the reference."""
    def log(v: str) -> bytes:
        lines = [t.format(v=v) for t in _NON_ASCII_TEMPLATES]
        # json-file lines hold the text (Go's encoder writes invalid bytes as U+FFFD); inside
        # them a compose prefix is not an envelope: not a log line, for both readers
        texts = [line.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for line in lines]
        docker = [_go_json({"log": text + "\n"}, ascii_only) for text in texts if "svc | " not in text
                  for ascii_only in (True, False)]
        return ("\n".join(lines + docker) + "\n").encode("utf-8", "surrogateescape")

    counters = _assert_same(log(value))
    text = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if any(c.isspace() or c.isdecimal() for c in text):
        assert counters["slow"] > 0
    else:
        # the same lines with an ASCII stand-in of each character (a word character for a word
        # character, else '#') take the same paths: the non-ASCII text sends none to Python
        stand_in = "".join(c if c.isascii() else "x" if c.isalnum() else "#" for c in text)
        assert counters["slow"] == _fast_rows(log(stand_in))[4]["slow"]
        assert counters["fast"] >= 10


_BYTES_AROUND = (
    (b"Mar  1 10:00:00 mx postfix/qmgr[1]: 4ABCDE12345: from=<a", b"@b>, size=1, nrcpt=1 (queue active)"),
    (b"Mar  1 10:00:01 mx postfix/smtpd[2]: NOQUEUE: r", b"ject: RCPT from a[192.0.2.1]: 550 5.7.1 <x@y>: no; "
                                                         b"from=<a> to=<b> proto=ESMTP helo=<h>"),
    (b"Mar  1 10:00:02 mx postfix/smtpd[2]: lost connection after DATA ", b" from a[192.0.2.1]"),
    (b'{"log":"Mar  1 10:00:03 mx postfix/qmgr[1]: 4ABCDE12345: from=<', b'>, size=1, nrcpt=1\\n","stream":"stderr"}'),
    (b'<22>1 2024-03-01T10:00:04Z mx postfix/qmgr 1 - [a b="', b'"] 4ABCDE12345: removed'),
    (b"", b" | Mar  1 10:00:05 mx postfix/qmgr[1]: 4ABCDE12345: removed"),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_BYTES_AROUND), st.binary(min_size=1, max_size=8)), min_size=1, max_size=20))
def test_arbitrary_bytes_inside_lines_give_the_same_rows(lines: list[tuple[tuple[bytes, bytes], bytes]]) -> None:
    """Any bytes (invalid UTF-8: cut, overlong, surrogate and out-of-range sequences; spaces and
    digits of other scripts) inside the fields: the compiled reader reads the text the
    reference decodes, or leaves the line to it."""
    data = b"".join(head + junk.replace(b"\n", b" ") + tail + b"\n" for (head, tail), junk in lines)
    _assert_same(data)
