"""TLS-RPT reports from files, e-mail, mbox, Maildir and https POST captures, against
every real report under ../shared/external/tlsrpt/. The mbox, Maildir, POST log and
spool are built here from those reports (the e-mail wrappers are hand-written in the
RFC 8460 section 5.3 shape)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import mailbox
from datetime import datetime, timezone
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from collectors.lab_ingest.records import Quarantined
from collectors.lab_ingest.tlsrpt_sources import (
    MAX_REPORT_BYTES, POST_FORMAT, TlsRptEvidence, parse, parse_path, parse_post_log, post_record,
    sidecar_record, sniff, sniff_path,
)
from collectors.rfc import parse_tlsrpt_report
from support import EXTERNAL_DIR

REPORT_FILES = sorted(p for p in (EXTERNAL_DIR / "tlsrpt").rglob("*") if p.suffix in (".json", ".eml"))
JSON_FILES = [p for p in REPORT_FILES if p.suffix == ".json"]
GOOGLE_EML = EXTERNAL_DIR / "tlsrpt" / "parsedmarc" / "google.com_smtp_tls_report.eml"
WHEN = datetime(2024, 9, 30, 12, 0, tzinfo=timezone.utc)


def expected_id(path: Path) -> str:
    report = parse_tlsrpt_report(path.read_bytes())
    assert report.ok, path
    return report.report_id


def report_mail(path: Path, number: int) -> bytes:
    """An RFC 8460 section 5.3 report e-mail carrying ``path`` as application/tlsrpt+gzip."""
    message = MIMEMultipart("report", report_type="tlsrpt")
    message["From"] = "noreply-smtp-tls-reporting@reporter.example"
    message["To"] = "tlsrpt@lab.example.org"
    message["Subject"] = f"Report Domain: lab.example.org Submitter: reporter.example Report-ID: <{number}>"
    message["Date"] = "Tue, 1 Oct 2024 00:30:00 +0000"
    message["Message-ID"] = f"<report-{number}@reporter.example>"
    message["TLS-Report-Domain"] = "lab.example.org"
    message["TLS-Report-Submitter"] = "reporter.example"
    message.attach(MIMEText("This is an aggregate TLS report from reporter.example"))
    attachment = MIMEApplication(gzip.compress(path.read_bytes()), "tlsrpt+gzip")
    attachment.add_header("Content-Disposition", "attachment", filename=f"{path.stem}.json.gz")
    message.attach(attachment)
    return message.as_bytes()


def only_evidence(results) -> list[TlsRptEvidence]:
    assert all(isinstance(r, TlsRptEvidence) for r in results), [getattr(r, "reason", r) for r in results]
    return results


def test_external_samples_are_present():
    assert len(JSON_FILES) == 9 and GOOGLE_EML in REPORT_FILES


@pytest.mark.parametrize("path", REPORT_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_external_report_as_a_file(path: Path):
    assert sniff_path(path)
    [evidence] = only_evidence(list(parse_path(path)))
    assert evidence.report_id == expected_id(path)
    assert evidence.report.ok
    assert evidence.organization_name == evidence.report.organization_name
    assert json.loads(evidence.raw)["report-id"] == evidence.report_id  # raw is the report JSON
    if path.suffix == ".eml":
        assert evidence.source_kind == "email"
        assert evidence.received_at is not None and evidence.received_at.tzinfo is not None
        assert evidence.content_type is not None
    else:
        assert evidence.source_kind == "file" and evidence.received_at is None
        assert evidence.raw == path.read_bytes()


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_gzip_report_files(path: Path, tmp_path: Path):
    for name in (f"{path.stem}.json.gz", f"{path.stem}.gz"):
        packed = tmp_path / name
        packed.write_bytes(gzip.compress(path.read_bytes()))
        assert sniff(packed.read_bytes()[:4096])
        [evidence] = only_evidence(list(parse_path(packed)))
        assert evidence.raw == path.read_bytes()  # kept decompressed
        assert evidence.report_id == expected_id(path)


def test_mbox_built_from_every_report(tmp_path: Path):
    path = tmp_path / "tlsrpt.mbox"
    box = mailbox.mbox(path)
    box.add(mailbox.mboxMessage(GOOGLE_EML.read_bytes()))
    for number, report in enumerate(JSON_FILES):
        box.add(mailbox.mboxMessage(report_mail(report, number)))
    box.add(mailbox.mboxMessage(b"From: someone@example.org\nSubject: hello\n\nnot a report\n"))
    box.flush()
    box.close()
    assert sniff_path(path)
    results = list(parse_path(path))
    evidence, rejected = results[:-1], results[-1]
    only_evidence(evidence)
    assert [e.report_id for e in evidence] == [expected_id(GOOGLE_EML)] + [expected_id(p) for p in JSON_FILES]
    assert all(e.source_kind == "mbox" for e in evidence)
    built = evidence[1]
    assert built.received_at == datetime(2024, 10, 1, 0, 30, tzinfo=timezone.utc)
    assert built.report_domain == "lab.example.org" and built.report_submitter == "reporter.example"
    assert built.email_from == "noreply-smtp-tls-reporting@reporter.example"
    assert built.email_message_id == "report-0@reporter.example"
    assert built.content_type == "application/tlsrpt+gzip"
    assert isinstance(rejected, Quarantined) and rejected.reason.startswith("not a TLS-RPT report")
    with path.open("rb") as stream:
        assert len(list(parse(stream))) == len(results)


def test_maildir(tmp_path: Path):
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for number, report in enumerate(JSON_FILES[:3]):
        box.add(mailbox.MaildirMessage(report_mail(report, number)))
    box.close()
    assert sniff_path(tmp_path / "Maildir")
    results = only_evidence(list(parse_path(tmp_path / "Maildir")))
    assert sorted(e.report_id for e in results) == sorted(expected_id(p) for p in JSON_FILES[:3])
    assert all(e.source_kind == "maildir" and e.position.startswith("new/") for e in results)


def test_post_capture_log(tmp_path: Path):
    lines = []
    for number, report in enumerate(JSON_FILES):
        body = gzip.compress(report.read_bytes()) if number % 2 else report.read_bytes()
        ctype = "application/tlsrpt+gzip" if number % 2 else "application/tlsrpt+json"
        lines.append(post_record(WHEN, body, "203.0.113.5", ctype, host="tlsrpt.lab.example.org"))
    bad = [
        post_record(WHEN, b"definitely not a report", "203.0.113.6", "application/tlsrpt+json"),
        json.dumps({"format": POST_FORMAT, "received_at": "2024-09-30T12:00:00", "body_base64": ""}).encode() + b"\n",
        json.dumps({"received_at": "2024-09-30T12:00:00Z", "body_base64": "!!!"}).encode() + b"\n",
        json.dumps({"format": "other", "received_at": "2024-09-30T12:00:00Z", "body_base64": ""}).encode() + b"\n",
        post_record(WHEN, gzip.compress(JSON_FILES[0].read_bytes())[:-20]),  # truncated gzip body
        post_record(WHEN, b"x")[:30],  # half-written last line
    ]
    path = tmp_path / "posts.jsonl"
    path.write_bytes(b"".join(lines + bad))
    assert sniff_path(path)
    results = list(parse_path(path))
    good = only_evidence(results[: len(lines)])
    assert [e.report_id for e in good] == [expected_id(p) for p in JSON_FILES]
    assert all(e.source_kind == "https-post" and e.received_at == WHEN for e in good)
    assert good[0].remote_addr == "203.0.113.5" and good[1].content_type == "application/tlsrpt+gzip"
    assert good[1].raw == JSON_FILES[1].read_bytes()
    reasons = [r.reason for r in results[len(lines):]]
    assert all(isinstance(r, Quarantined) for r in results[len(lines):])
    assert reasons[0].startswith("not a TLS-RPT report: tlsrpt_report.not_json")
    assert "received_at" in reasons[1]
    assert "not base64" in reasons[2]
    assert "format" in reasons[3]
    assert "truncated" in reasons[4]
    assert reasons[5] == "half-written last line"


def test_post_spool_with_sidecars(tmp_path: Path):
    spool = tmp_path / "spool"
    spool.mkdir()
    for number, report in enumerate(JSON_FILES[:2]):
        (spool / f"post-{number}.bin").write_bytes(gzip.compress(report.read_bytes()))
        (spool / f"post-{number}.bin.meta.json").write_bytes(
            sidecar_record(WHEN, "198.51.100.7", "application/tlsrpt+gzip"))
    (spool / "orphan.bin.meta.json").write_bytes(sidecar_record(WHEN))
    (spool / "no-sidecar.json").write_bytes(JSON_FILES[2].read_bytes())
    assert sniff_path(spool)
    results = list(parse_path(spool))
    evidence = [r for r in results if isinstance(r, TlsRptEvidence)]
    quarantined = [r for r in results if isinstance(r, Quarantined)]
    assert sorted(e.report_id for e in evidence) == sorted(expected_id(p) for p in JSON_FILES[:3])
    posted = [e for e in evidence if e.source_kind == "https-post"]
    assert len(posted) == 2 and all(e.remote_addr == "198.51.100.7" and e.received_at == WHEN for e in posted)
    assert [q.reason for q in quarantined] == ["sidecar without its body file 'orphan.bin'"]


def test_gzip_bomb_and_garbage_are_quarantined(tmp_path: Path):
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b"{" + b" " * (MAX_REPORT_BYTES + 10) + b"}"))
    [result] = parse_path(bomb)
    assert isinstance(result, Quarantined) and "more than" in result.reason
    junk = tmp_path / "junk.json"
    junk.write_bytes(b'{"hello": "world"}')
    [result] = parse_path(junk)
    assert isinstance(result, Quarantined) and result.raw == b'{"hello": "world"}'
    assert result.reason.startswith("not a TLS-RPT report: ")


def test_sniff_rejects_other_formats():
    assert not sniff(b"id,created_at,updated_at,deleted_at,uuid,service,line,public\n")
    assert not sniff(b"From: MAILER-DAEMON\nSubject: Undelivered Mail Returned to Sender\n\nx")
    assert not sniff(b'{"format":"mtasts-recorder/1"}\n')
    assert sniff(base64.b64decode(base64.b64encode(GOOGLE_EML.read_bytes()))[:8192])


@settings(max_examples=150)
@given(st.binary(max_size=600))
def test_garbage_never_raises(data):
    for stream in (io.BufferedReader(io.BytesIO(data)),
                   io.BufferedReader(io.BytesIO(b"From x Mon Sep 30 12:00:00 2024\n" + data))):
        for item in parse(stream):
            assert isinstance(item, (TlsRptEvidence, Quarantined))
    for item in parse_post_log(io.BytesIO(b'{"body_base64": ' + data)):
        assert isinstance(item, Quarantined)
