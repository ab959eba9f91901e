"""Values that are valid JSON or valid log syntax but that no column can hold (a lone
surrogate escape, a count of 2**63 or 10**400, 1e999) are quarantined with the reason;
the good evidence beside them is stored, the ingest exits 0, and a rerun adds nothing
(issue 14). Run through the CLI, as `mtasts monthly` does."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import duckdb
import pytest

from collectors.lab_ingest.tlsrpt_sources import post_record
from support import EXTERNAL_DIR, recorder_line

GOOGLE = EXTERNAL_DIR / "tlsrpt" / "dmarc-report-viewer" / "google.json"
MICROSOFT = EXTERNAL_DIR / "tlsrpt" / "dmarc-report-viewer" / "microsoft.json"
WHEN = datetime(2024, 10, 1, 0, 30, tzinfo=timezone.utc)


def with_count(value: object) -> bytes:
    document = json.loads(GOOGLE.read_bytes())
    document["report-id"] = f"hostile-{value!r:.20}"
    document["policies"][0]["summary"]["total-successful-session-count"] = value
    return json.dumps(document).encode()


SURROGATE = GOOGLE.read_bytes().replace(b'"organization-name": "', b'"organization-name": "\\udcff', 1)
HUGE_LITERAL = GOOGLE.read_bytes().replace(b'"total-successful-session-count": ',
                                           b'"total-successful-session-count": 1' + b"0" * 400 + b', "x": ', 1)
INFINITE = GOOGLE.read_bytes().replace(b'"total-successful-session-count": ',
                                       b'"total-successful-session-count": 1e999, "x": ', 1)
HOSTILE_REPORTS = [SURROGATE, with_count(2**63), HUGE_LITERAL, INFINITE]


def access_log() -> bytes:
    good = ('mta-sts.a.lab.example 127.0.0.2 - - [03/Mar/2024:09:59:5{i} +0000] '
            '"GET /.well-known/mta-sts.txt HTTP/1.1" 200 87 "-" "postfix-mta-sts-resolver"\n')
    return "".join([
        good.format(i=0),
        good.format(i=1),
        good.format(i=2).replace(" 200 87 ", " 200 99999999999999999999999 "),
        '{"time":"2024-03-03T09:59:53+00:00","remote_addr":"127.0.0.2","host":"mta-sts.b.lab.example",'
        '"request":"GET /.well-known/mta-sts.txt HTTP/1.1","status":1e999,"body_bytes_sent":87}\n',
        '{"time":"2024-03-03T09:59:54+00:00","remote_addr":"127.0.0.2","host":"mta-sts.b.lab.example",'
        '"request":"GET /.well-known/mta-sts.txt HTTP/1.1","status":200,"http_user_agent":"\\udcff"}\n',
        good.format(i=5),
        good.format(i=6),
    ]).encode()


def report_mail(body: bytes, content_type: str) -> bytes:
    message = MIMEMultipart("report", report_type="tlsrpt")
    message["From"] = "tls-reports@reporter.example"
    message["Date"] = "Tue, 1 Oct 2024 00:30:00 +0000"
    message["Message-ID"] = "<labelled-tlsrpt@reporter.example>"
    message.attach(MIMEText("An aggregate TLS report"))
    maintype, subtype = content_type.split("/")
    part = MIMEApplication(body, subtype)
    part.add_header("Content-Disposition", "attachment", filename="report.json")
    message.attach(part)
    return message.as_bytes()


def evidence(folder: Path) -> Path:
    folder.mkdir()
    (folder / "good.json").write_bytes(MICROSOFT.read_bytes())
    for number, raw in enumerate(HOSTILE_REPORTS):
        (folder / f"hostile-{number}.json").write_bytes(raw)
    (folder / "posts.jsonl").write_bytes(b"".join(post_record(WHEN, raw, "192.0.2.7", "application/tlsrpt+json")
                                                  for raw in [GOOGLE.read_bytes(), *HOSTILE_REPORTS]))
    (folder / "received.jsonl").write_bytes(b"\n".join([
        recorder_line(), recorder_line(tls_cipher="\udcff"), recorder_line(tls_bits=2**70),
        recorder_line(message_id="<m2@x>"), b""]))
    (folder / "policy-access.log").write_bytes(access_log())
    (folder / "labelled.eml").write_bytes(report_mail(GOOGLE.read_bytes(), "application/tlsrpt"))
    return folder


def ingest(db: Path, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collectors.cli", "ingest", "--db", str(db), str(folder)],
                          capture_output=True, text=True, timeout=300)


def counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("tlsrpt_reports", "received_messages", "policy_fetches_http", "quarantine")}


def test_unstorable_values_are_quarantined_and_the_rest_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "lab.duckdb"
    folder = evidence(tmp_path / "evidence")
    done = ingest(db, folder)
    assert done.returncode == 0, done.stderr[-3000:]
    got = counts(db)
    # Reports: Microsoft's file, Google's POST and Google's mail (same report id as its POST,
    # so one row per distinct report); every hostile one quarantined, in files and in POSTs.
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = [r for (r,) in con.execute("SELECT reason FROM quarantine ORDER BY source_name, position").fetchall()]
        agents = {a for (a,) in con.execute("SELECT user_agent FROM policy_fetches_http").fetchall()}
    assert got["tlsrpt_reports"] >= 2
    assert sum("not I-JSON" in r for r in reasons) == 2 * len(HOSTILE_REPORTS) + 2 + 2, reasons
    assert any("body size" in r for r in reasons), reasons
    assert got["received_messages"] == 2
    assert got["policy_fetches_http"] == 4 and agents == {"postfix-mta-sts-resolver"}
    assert "policy-access.log: http complete, 7 lines," in done.stdout  # the lines read, not 0
    for reason in reasons:
        reason.encode("utf-8")

    again = ingest(db, folder)
    assert again.returncode == 0, again.stderr[-3000:]
    assert counts(db) == got


def test_a_report_part_labelled_application_tlsrpt_is_read_with_a_warning(tmp_path: Path) -> None:
    from collectors.rfc import parse_tlsrpt_report

    mail = report_mail(GOOGLE.read_bytes(), "application/tlsrpt")
    report = parse_tlsrpt_report(mail)
    assert report.ok
    assert "tlsrpt_report.email_part_type" in [f.code for f in report.findings if f.severity == "warning"]
    db = tmp_path / "lab.duckdb"
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "labelled.eml").write_bytes(mail)
    done = ingest(db, folder)
    assert done.returncode == 0, done.stderr[-3000:]
    assert counts(db)["tlsrpt_reports"] == 1 and counts(db)["quarantine"] == 0


def test_a_fifo_in_a_folder_is_reported_not_waited_for(tmp_path: Path) -> None:
    """open() of a FIFO blocks until a writer comes: the ingest never opens one."""
    import os

    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "good.json").write_bytes(MICROSOFT.read_bytes())
    os.mkfifo(folder / "pipe")
    db = tmp_path / "lab.duckdb"
    done = ingest(db, folder)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "not a regular file" in done.stdout
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM tlsrpt_reports").fetchone()[0] == 1
        (reason,) = con.execute("SELECT reason FROM quarantine").fetchone()
    assert reason.startswith("not a regular file")


def _postfix_lines(count: int) -> bytes:
    return b"".join(f"Mar  3 10:{i // 60 % 60:02d}:{i % 60:02d} lab-a postfix-a/smtpd[{2000 + i}]: "
                    f"connect from snd{i}.example[127.0.0.{i % 250 + 1}]\n".encode() for i in range(count))


def test_a_gzip_corrupt_in_the_middle_keeps_every_line_before_the_fault_and_is_retried(tmp_path: Path) -> None:
    import gzip
    import os
    import random

    plain = _postfix_lines(3000)
    packed = bytearray(gzip.compress(plain, compresslevel=9))
    fault = len(packed) // 2
    packed[fault:fault + 64] = bytes(random.Random(7).randrange(256) for _ in range(64))
    log = tmp_path / "mail.log.gz"
    log.write_bytes(bytes(packed))
    db = tmp_path / "lab.duckdb"
    done = subprocess.run([sys.executable, "-m", "collectors.cli", "ingest", "--db", str(db), "--year", "2024",
                           str(log)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        (status, lines) = con.execute("SELECT status, lines FROM ingested_files").fetchone()
    assert status == "truncated"
    # zlib decodes a byte stream strictly in order: what precedes the fault decodes as it
    # would have; every complete line of it is read (the deflate block's leftovers aside).
    decoder = __import__("zlib").decompressobj(wbits=31)
    reachable = b""
    for i in range(len(packed)):
        try:
            reachable += decoder.decompress(bytes(packed[i:i + 1]))
        except Exception:  # noqa: BLE001
            break
    # every line ended before the fault, and the cut one after it (kept in quarantine)
    assert lines in (reachable.count(b"\n"), reachable.count(b"\n") + 1) and lines > 1000

    # The same broken file again: nothing new. A repaired copy with the same name, size,
    # time and first 4 KiB is read again, completely.
    stat = log.stat()
    again = subprocess.run([sys.executable, "-m", "collectors.cli", "ingest", "--db", str(db), "--year", "2024",
                            str(log)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    good = gzip.compress(plain, compresslevel=9)
    assert len(good) == len(packed)
    log.write_bytes(good)
    os.utime(log, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    repaired = subprocess.run([sys.executable, "-m", "collectors.cli", "ingest", "--db", str(db), "--year", "2024",
                               str(log)], capture_output=True, text=True, timeout=300)
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        statuses = [s for (s,) in con.execute("SELECT status FROM ingested_files ORDER BY observed_at").fetchall()]
        sessions = con.execute("SELECT count(*) FROM postfix_smtpd_sessions").fetchone()[0]
    assert statuses[-1] in ("complete", "resumed") and sessions == 3000


KILL_AFTER_FIRST_FLUSH = """
import os, signal, sys
from collectors.lab_ingest import sink
from collectors.cli import main
flushed = sink.Sink.flush
def flush_then_die(self):
    flushed(self)
    if self.quarantined:
        os.kill(os.getpid(), signal.SIGKILL)   # kill -9, right after rows were committed
sink.Sink.flush = flush_then_die
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_then_reingest_adds_no_quarantine_twice_and_the_run_is_interrupted(tmp_path: Path) -> None:
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "a-received.jsonl").write_bytes(b"\n".join([recorder_line(), b"not json", b"{}", b""]))
    (folder / "b-received.jsonl").write_bytes(b"\n".join([recorder_line(message_id="<m9@x>"), b"garbage", b""]))
    db = tmp_path / "lab.duckdb"
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST_FLUSH, "ingest", "--db", str(db), str(folder)],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 2   # a-received's
        assert con.execute("SELECT status FROM runs").fetchall() == [("running",)]
    again = ingest(db, folder)
    assert again.returncode == 0, again.stderr[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = con.execute("SELECT source_name, position FROM quarantine ORDER BY 1, 2").fetchall()
        statuses = [s for (s,) in con.execute("SELECT status FROM runs ORDER BY started_at").fetchall()]
    assert [(Path(name).name, position) for name, position in reasons] == [
        ("a-received.jsonl", "line 2"), ("a-received.jsonl", "line 3"), ("b-received.jsonl", "line 2")]
    assert statuses == ["interrupted", "finished"]
    info = subprocess.run([sys.executable, "-m", "collectors.cli", "db", "info", "--db", str(db)],
                          capture_output=True, text=True, timeout=120)
    assert "interrupted" in info.stdout


@pytest.mark.slow
def test_thirty_quarantined_8_mib_bodies_in_one_capture_are_all_kept(tmp_path: Path) -> None:
    body = bytes(range(256)) * (8 * 1024 * 1024 // 256)   # neither JSON nor gzip: quarantined whole
    capture = tmp_path / "posts.jsonl"
    with capture.open("wb") as out:
        out.write(post_record(WHEN, GOOGLE.read_bytes(), "192.0.2.7", "application/tlsrpt+json"))
        for number in range(30):
            out.write(post_record(WHEN, body[:-number - 1], "192.0.2.8", "application/tlsrpt+gzip"))
    db = tmp_path / "lab.duckdb"
    done = subprocess.run([sys.executable, "-m", "collectors.cli", "ingest", "--db", str(db), str(capture)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM tlsrpt_reports").fetchone()[0] == 1
        kept = con.execute("SELECT count(*), sum(octet_length(raw)) FROM quarantine").fetchone()
    assert kept[0] == 30 and kept[1] == sum(len(body) - n - 1 for n in range(30))
