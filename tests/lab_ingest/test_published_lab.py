"""The published lab's log_lines exports (CSV, COPY text, /poll JSON).

The inputs below are HAND-WRITTEN FORMAT EXAMPLES: written by us in the exact format
the published lab stored (its Go code's ``Message Received:`` / ``HTTP connection:``
templates, gorm's columns, PostgreSQL's CSV and COPY text rules), not real exports.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

from hypothesis import given, settings, strategies as st

from collectors.lab_ingest.published_lab import (
    PublishedBodyLine, PublishedPolicyFetch, PublishedReceived, PublishedTlsRpt, detect_format,
    escape_copy_field, parse, parse_copy, parse_csv, parse_poll, sniff, split_csv_record,
    unescape_copy_field,
)
from collectors.lab_ingest.records import Quarantined
from support import EXTERNAL_DIR

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
RECEIVED_LINE = (
    "Message Received:\n"
    "\t\tENVID: \n"
    "\t\tSENDER: Alice@Gmail.com\n"
    f"\t\tORIGINAL_RECIPIENT: {UUID}@b.audit.example.com\n"
    "\t\tCLIENT_ADDRESS: 209.85.221.44\n"
    "\t\tCLIENT_HELO: mail-wr1-f44.google.com\n"
    "\t\tCLIENT_HOSTNAME: mail-wr1-f44.google.com\n"
    "\t\tCLIENT_PROTOCOL: ESMTP"
)
FETCH_LINE = (
    "HTTP connection:\n"
    "\t\t\tX-Forwarded-For: 66.249.80.1, 172.18.0.1\n"
    "\t\t\tHost: mta-sts.b.audit.example.com\n"
    "\t\t\tUser Agent: Google-SMTP-STS"
)
REPORT = (EXTERNAL_DIR / "tlsrpt" / "parsedmarc" / "rfc8460.json").read_text()
BODY_LINE = 'MSG: Subject: "secret" body, with a comma'

# (id, created_at, uuid, service, line, public, deleted_at)
ROWS = [
    (1, "2024-09-01 11:59:00.123456+00", "", "HTTPS", FETCH_LINE, "t", None),
    (2, "2024-09-01 12:00:00.5+00", UUID, "postfix", RECEIVED_LINE, "t", None),
    (3, "2024-09-01 12:00:00.6+00", UUID, "postfix", BODY_LINE, "f", None),
    (4, "2024-09-02 00:10:00+00", "", "TLSRPT", REPORT, "t", None),
    (5, "2024-09-02 00:11:00+00", "", "TLSRPT", '{"not": "a report"}', "t", None),
    (6, "2024-09-02 00:12:00+00", "", "SMTP", "something else", "t", None),
    (7, "2024-09-02 00:13:00+00", UUID, "postfix", RECEIVED_LINE, "t", "2024-09-03 00:00:00+00"),
    (8, "2024-09-02 00:14:00+00", UUID, "postfix", "Message Received:\n\t\tSENDER: x@y.z", "t", None),
]


def csv_quote(value: str | None) -> str:
    if value is None:
        return ""  # PostgreSQL CSV: NULL is an unquoted empty field
    if value and not any(c in value for c in ',"\n\r'):
        return value
    return '"' + value.replace('"', '""') + '"'


def csv_export(rows=ROWS) -> bytes:
    lines = ["id,created_at,updated_at,deleted_at,uuid,service,line,public"]
    for row_id, created, uuid, service, line, public, deleted in rows:
        fields = [str(row_id), created, created, deleted, uuid, service, line, public]
        lines.append(",".join(csv_quote(f) for f in fields))
    return ("\n".join(lines) + "\n").encode()


def copy_export(rows=ROWS) -> bytes:
    out = []
    for row_id, created, uuid, service, line, public, deleted in rows:
        fields = [str(row_id), created, created, deleted, uuid, service, line, public]
        out.append(b"\t".join(escape_copy_field(None if f is None else f.encode()) for f in fields))
    return b"\n".join(out) + b"\n"


def by_type(results):
    grouped: dict[type, list] = {}
    for item in results:
        grouped.setdefault(type(item), []).append(item)
    return grouped


def check_rows(results) -> None:
    grouped = by_type(results)
    [fetch] = grouped[PublishedPolicyFetch]
    assert fetch.client_address == "66.249.80.1"
    assert fetch.forwarded_for == "66.249.80.1, 172.18.0.1"
    assert fetch.host == "mta-sts.b.audit.example.com"
    assert fetch.label == "b"
    assert fetch.user_agent == "Google-SMTP-STS"
    assert fetch.uuid is None
    assert fetch.fetched_at == datetime(2024, 9, 1, 11, 59, 0, 123456, tzinfo=timezone.utc)

    [received] = grouped[PublishedReceived]
    assert received.uuid == UUID
    assert received.label == "b"
    assert received.envid is None
    assert received.sender == "alice@gmail.com"
    assert received.original_recipient == f"{UUID}@b.audit.example.com"
    assert received.client_address == "209.85.221.44"
    assert received.client_helo == "mail-wr1-f44.google.com"
    assert received.client_hostname == "mail-wr1-f44.google.com"
    assert received.client_protocol == "ESMTP"
    assert received.received_at == datetime(2024, 9, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)
    assert received.row_id == 2

    [body] = grouped[PublishedBodyLine]
    assert body.uuid == UUID and body.row_id == 3
    assert "secret" not in repr(body)  # the body text is never kept

    [report] = grouped[PublishedTlsRpt]
    assert report.report.ok
    assert report.report.report_id == "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
    assert report.raw == REPORT.encode()

    reasons = sorted(q.reason for q in grouped[Quarantined])
    assert len(reasons) == 4
    assert any(r.startswith("not a TLS-RPT report") for r in reasons)
    assert any("unknown service 'SMTP'" in r for r in reasons)
    assert any("soft-deleted" in r for r in reasons)
    assert any("lacks ENVID" in r for r in reasons)
    for q in grouped[Quarantined]:
        assert q.raw  # the input is kept


def test_csv_export_hand_written_format_example():
    data = csv_export()
    assert detect_format(data) == "csv" and sniff(data)
    check_rows(list(parse_csv(io.BytesIO(data))))


def test_copy_text_export_hand_written_format_example():
    data = copy_export()
    assert b"\\n\\t\\tENVID" in data  # newlines and tabs are escaped, one row per line
    assert detect_format(data) == "copy"
    check_rows(list(parse_copy(io.BytesIO(data))))


def test_pg_dump_block_sets_column_order():
    reordered = ("uuid", "service", "line", "created_at", "id", "updated_at", "deleted_at", "public")
    rows = []
    for row_id, created, uuid, service, line, public, deleted in ROWS:
        values = {"id": str(row_id), "created_at": created, "updated_at": created, "deleted_at": deleted,
                  "uuid": uuid, "service": service, "line": line, "public": public}
        rows.append(b"\t".join(escape_copy_field(None if values[c] is None else values[c].encode())
                               for c in reordered))
    dump = (b"--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n\n"
            b"COPY public.log_lines (" + ", ".join(reordered).encode() + b") FROM stdin;\n"
            + b"\n".join(rows) + b"\n\\.\n\n-- done\nSELECT 1;\n")
    assert detect_format(dump) == "copy"
    check_rows(list(parse(io.BytesIO(dump))))


def test_poll_json_hand_written_format_example():
    poll = {UUID: [
        {"service": "postfix", "when": "2024-09-01T12:00:00Z", "line": RECEIVED_LINE},
        {"service": "postfix", "when": "nonsense", "line": RECEIVED_LINE},
    ], "": [
        {"service": "HTTPS", "when": "2024-09-01T11:59:00+00:00", "line": FETCH_LINE},
        {"service": "TLSRPT", "when": "2024-09-02T00:10:00Z", "line": REPORT},
        "not an entry",
    ]}
    # two saved responses, one after another
    data = (json.dumps(poll, indent=1) + "\n" + json.dumps({UUID: []}) + "\n").encode()
    assert detect_format(data) == "poll"
    grouped = by_type(parse(io.BytesIO(data)))
    [received] = grouped[PublishedReceived]
    assert received.received_at == datetime(2024, 9, 1, 12, 0, tzinfo=timezone.utc)
    assert received.uuid == UUID and received.label == "b"
    assert grouped[PublishedPolicyFetch][0].label == "b"
    assert grouped[PublishedTlsRpt][0].report.ok
    reasons = [q.reason for q in grouped[Quarantined]]
    assert len(reasons) == 2
    assert any("RFC 3339" in r for r in reasons) and any("lacks the string fields" in r for r in reasons)


def test_poll_garbage_is_quarantined():
    results = list(parse_poll(io.BytesIO(b'{"a": [1, 2')))
    assert len(results) == 1 and isinstance(results[0], Quarantined)
    assert results[0].reason.startswith("not JSON")


def test_half_written_csv_record_is_quarantined():
    data = csv_export(ROWS[:2]) + b'9,2024-09-01 12:00:00+00,,,x,postfix,"Message Received:\n\t\tENVID: '
    results = list(parse_csv(io.BytesIO(data)))
    assert isinstance(results[-1], Quarantined)
    assert "ends inside a quoted field" in results[-1].reason
    assert sum(isinstance(r, PublishedReceived) for r in results) == 1


def test_csv_bad_records_do_not_stop_the_stream():
    data = csv_export(ROWS[:1]) + b'x,"a"b,c\n\xff\xfe,1\n' + csv_export(ROWS[1:2]).split(b"\n", 1)[1]
    results = list(parse_csv(io.BytesIO(data)))
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["PublishedPolicyFetch", "Quarantined", "Quarantined", "PublishedReceived"]


def test_copy_escapes_per_postgresql_docs():
    assert unescape_copy_field(b"\\N") is None
    assert unescape_copy_field(b"a\\tb\\nc\\\\d\\r") == b"a\tb\nc\\d\r"
    assert unescape_copy_field(b"\\101\\x41\\x4a\\q") == b"AAJq"  # octal, hex, any other char
    assert unescape_copy_field(b"\\b\\f\\v") == b"\b\f\v"


@given(st.binary(max_size=200))
def test_copy_escape_round_trips(value):
    assert unescape_copy_field(escape_copy_field(value)) == value
    assert b"\t" not in escape_copy_field(value) and b"\n" not in escape_copy_field(value)


@given(st.lists(st.one_of(st.none(), st.text(max_size=30)), min_size=1, max_size=8))
def test_csv_record_split_round_trips(fields):
    def quote(value):
        if value is None:
            return ""
        return '"' + value.replace('"', '""') + '"'
    assert split_csv_record(",".join(quote(f) for f in fields)) == fields


@settings(max_examples=150)
@given(st.binary(max_size=600), st.sampled_from(["csv", "copy", "poll"]))
def test_garbage_never_raises(data, fmt):
    prefix = {"csv": b"id,created_at,updated_at,deleted_at,uuid,service,line,public\n", "copy": b"",
              "poll": b""}[fmt]
    for item in parse(io.BytesIO(prefix + data), fmt):
        assert isinstance(item, (PublishedReceived, PublishedPolicyFetch, PublishedTlsRpt,
                                 PublishedBodyLine, Quarantined))


def test_sniff_rejects_other_formats():
    assert not sniff(b"Sep 30 12:00:00 mx postfix/smtpd[1]: connect from x[1.2.3.4]\n")
    assert not sniff(b"provider,sent_at,from,to,message_id\n")
    assert not sniff(b'{"organization-name": "x", "policies": []}')


def test_parse_path_reads_gzip_exports(tmp_path):
    import gzip

    from collectors.lab_ingest.published_lab import parse_path

    path = tmp_path / "log_lines.csv.gz"
    path.write_bytes(gzip.compress(csv_export()))
    check_rows(list(parse_path(path)))
