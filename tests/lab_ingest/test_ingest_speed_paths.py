"""The fast paths of the Postfix ingest give what the slow paths give.

The classic-syslog envelope has a regex-free fast path, and the high-volume tables are
deduplicated by an anti join within each batch's time window instead of a primary-key
index; these tests hold them to the reference behaviour (the regex, and "re-ingesting
adds nothing twice"). The logs are hand-written UNIT-TEST FIXTURES."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.lab_ingest import IngestOptions, ingest
from collectors.lab_ingest.postfix_envelope import _CLASSIC_TAIL, EnvelopeParser, LogLine, _fraction

PIECES = ["mx", "a:b", "a]b", "x[1]", "h\tt", "", "\u0663", "postfix/smtpd", "[12]", "[]", "[\u0661\u0662]",
          "[1a]", "[\u00b2]", "]", "[", ":", ": ", " ", "  ", "\t", ".5", "msg"]


def _reference(parser: EnvelopeParser, line: str) -> LogLine | None:
    """The envelope as the regex reads it (what the fast path must reproduce)."""
    ts = parser._stamp(line[:15])
    if ts is not None:
        m = _CLASSIC_TAIL.match(line, 15)
        if m is not None:
            frac, host, prog, pid = m.groups()
            if frac:
                ts = ts.replace(microsecond=_fraction(frac))
            return LogLine(ts, host, prog, int(pid) if pid else None, line[m.end():])
    return parser._classic_slow(line)


@settings(max_examples=400)
@given(st.lists(st.sampled_from(PIECES), max_size=10), st.text(max_size=20))
def test_classic_fast_path_equals_the_regex(pieces: list[str], tail: str) -> None:
    line = "Mar  3 10:00:01" + "".join(pieces) + tail
    fast, slow = EnvelopeParser(2024), EnvelopeParser(2024)
    assert fast._classic(line) == _reference(slow, line)
    assert fast._classic(line) == _reference(slow, line)   # again, with the name caches warm


def test_fast_path_reads_the_usual_line() -> None:
    got = EnvelopeParser(2024)._classic("Mar  3 10:00:01 lab-a postfix-a/smtpd[2101]: connect from x[1.2.3.4]")
    assert got is not None and (got.host, got.program, got.pid, got.message) == (
        "lab-a", "postfix-a/smtpd", 2101, "connect from x[1.2.3.4]")


def _session(i: int, second: int) -> str:
    qid = f"4Q2xYz1bcd{i:04d}"
    at = f"Mar  3 10:{second // 60:02d}:{second % 60:02d}"
    return (f"{at} lab-a postfix-a/smtpd[{2100 + i}]: connect from snd.example[127.0.0.2]\n"
            f"{at} lab-a postfix-a/smtpd[{2100 + i}]: {qid}: client=snd.example[127.0.0.2]\n"
            f"{at} lab-a postfix-a/qmgr[1990]: {qid}: from=<bob@sender.example>, size=1234, nrcpt=1 (queue active)\n"
            f"{at} lab-a postfix-a/local[2105]: {qid}: to=<u{i}@a.lab.example>, relay=local, delay=0.1, "
            f"delays=0.05/0.01/0/0.04, dsn=2.0.0, status=sent (delivered to command: /usr/bin/true)\n"
            f"{at} lab-a postfix-a/qmgr[1990]: {qid}: removed\n"
            f"{at} lab-a postfix-a/anvil[7]: statistics: max connection rate 1/60s for (smtp:127.0.0.2)\n"
            f"{at} lab-a postfix-a/smtpd[{2100 + i}]: disconnect from snd.example[127.0.0.2] commands=5\n")


def _counts(store) -> dict[str, tuple[int, int]]:
    cur = store.con.cursor()
    out = {}
    for table, key in (("postfix_smtpd_sessions", "session_key"), ("postfix_messages", "message_key"),
                       ("postfix_deliveries", "delivery_key"), ("postfix_other_lines", "line_key")):
        out[table] = cur.execute(f"SELECT count(*), count(DISTINCT {key}) FROM {table}").fetchone()
    return out


def test_an_overlapping_log_that_is_not_a_copy_adds_nothing_twice(store, tmp_path: Path) -> None:
    first = "".join(_session(i, i) for i in range(30))
    a = tmp_path / "a.log"
    a.write_text(first)
    ingest(store, [a], IngestOptions(year=2024))
    once = _counts(store)
    assert once["postfix_deliveries"] == (30, 30) and once["postfix_smtpd_sessions"] == (30, 30)
    # Another file: new sessions before and after the same lines, so its head differs
    # (neither skipped nor resumed: read whole); and a byte-identical line twice inside it.
    b = tmp_path / "b.log"
    b.write_text("".join(_session(100 + i, i) for i in range(5)) + first + first.splitlines(True)[5]
                 + "".join(_session(200 + i, 40 + i) for i in range(5)))
    s = ingest(store, [b], IngestOptions(year=2024))
    assert s.files[0].status == "complete"
    twice = _counts(store)
    assert twice["postfix_deliveries"] == (40, 40)
    assert twice["postfix_smtpd_sessions"] == (40, 40)
    assert twice["postfix_messages"] == (40, 40)
    assert twice["postfix_other_lines"][0] == twice["postfix_other_lines"][1]


def test_a_session_completed_by_a_later_run_replaces_the_incomplete_row(store, tmp_path: Path) -> None:
    text = _session(1, 5)
    head, tail = text.splitlines(True)[:3], text.splitlines(True)[3:]
    log = tmp_path / "mail.log"
    log.write_text("".join(head))
    ingest(store, [log], IngestOptions(year=2024))
    cur = store.con.cursor()
    assert cur.execute("SELECT complete FROM postfix_smtpd_sessions").fetchall() == [(False,)]
    log.write_text("".join(head + tail))
    assert ingest(store, [log], IngestOptions(year=2024)).files[0].status in ("complete", "resumed")
    assert cur.execute("SELECT complete, commands FROM postfix_smtpd_sessions").fetchall() == [(True, "commands=5")]
    assert cur.execute("SELECT complete FROM postfix_messages").fetchall() == [(True,)]
