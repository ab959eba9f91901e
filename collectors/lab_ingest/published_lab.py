"""The published audit lab's records (github.com/ralexander-phi/mta-sts-sender-audit).

That lab kept everything in one PostgreSQL table ``log_lines`` with the columns
``id, created_at, updated_at, deleted_at, uuid, service, line, public`` (a gorm
model; times are ``timestamptz`` written in UTC). Three exports of it are read:

* CSV (RFC 4180, as ``\\copy log_lines TO 'f.csv' CSV HEADER`` writes it): header
  ``id,created_at,updated_at,deleted_at,uuid,service,line,public``; a quoted field may
  span lines; an unquoted empty field is NULL.
* PostgreSQL ``COPY log_lines TO STDOUT`` text: one row per line, tab-separated,
  ``\\N`` for NULL, backslash escapes (``\\b \\f \\n \\r \\t \\v \\\\``, ``\\ooo`` octal,
  ``\\xhh`` hex; any other escaped character is itself), as in the PostgreSQL COPY
  documentation, "Text Format". A ``pg_dump`` file works too: its ``COPY
  ...log_lines (columns) FROM stdin;`` header sets the column order and ``\\.`` ends it.
* The ``/poll`` API's JSON: ``{uuid: [{"service", "when" (RFC 3339), "line"}, ...]}``;
  one document, or several (one per line, as repeated polls are saved).

The ``line`` column holds one of:

* service ``postfix``: a received message, ``Message Received:`` then indented
  ``ENVID:``, ``SENDER:``, ``ORIGINAL_RECIPIENT:``, ``CLIENT_ADDRESS:``,
  ``CLIENT_HELO:``, ``CLIENT_HOSTNAME:``, ``CLIENT_PROTOCOL:`` lines (Postfix's
  local(8) command environment); or one body line ``MSG: ...`` (non-public). Body
  rows yield :class:`PublishedBodyLine`, which carries no text: bodies are never kept.
* service ``HTTPS``: a policy fetch, ``HTTP connection:`` then ``X-Forwarded-For:``,
  ``Host:``, ``User Agent:``.
* service ``TLSRPT``: the raw (decompressed) TLS-RPT report JSON POSTed to the lab.

Rows are streamed; only a ``/poll`` document is read whole (capped, it holds at most
six addresses' rows). Soft-deleted rows (``deleted_at`` set) are quarantined, not used.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Literal

from collectors.lab_ingest.normalize import address_uuid, lab_label, normalize_address, parse_timestamp
from collectors.lab_ingest.records import Quarantined
from collectors.lab_ingest.streams import open_maybe_gzip, read_capped, read_lines
from collectors.rfc import parse_tlsrpt_report

COLUMNS = ("id", "created_at", "updated_at", "deleted_at", "uuid", "service", "line", "public")
CSV_HEADER = ",".join(COLUMNS).encode()
MAX_RECORD_BYTES = 4 * 1024 * 1024  # the lab capped a TLS-RPT body at 1 MiB
MAX_POLL_BYTES = 64 * 1024 * 1024
SERVICES = ("postfix", "HTTPS", "TLSRPT")

Format = Literal["csv", "copy", "poll"]

_RECEIVED_KEYS = ("ENVID", "SENDER", "ORIGINAL_RECIPIENT", "CLIENT_ADDRESS", "CLIENT_HELO",
                  "CLIENT_HOSTNAME", "CLIENT_PROTOCOL")
_FETCH_KEYS = ("X-Forwarded-For", "Host", "User Agent")


@dataclass(frozen=True, slots=True)
class PublishedReceived:
    """A message one of the published lab's servers received (from its Postfix
    ``mailbox_command``, so TLS is not visible here: it was only in Postfix's log)."""

    uuid: str | None                 # the test address's UUID (row's uuid, else the recipient's local part)
    received_at: datetime | None     # the row's created_at / the poll's "when"
    label: str | None                # lab server label: first label of ORIGINAL_RECIPIENT's domain
    envid: str | None                # RFC 3461 ENVID (empty in practice)
    sender: str | None               # envelope sender, lower-cased
    original_recipient: str | None   # recipient before rewriting, lower-cased
    client_address: str | None
    client_helo: str | None
    client_hostname: str | None
    client_protocol: str | None      # SMTP / ESMTP (TLS is not visible here)
    position: str = ""               # "line 12" / "row 3 (id 57)" / "poll[<uuid>][2]"
    row_id: int | None = None        # log_lines.id when exported


@dataclass(frozen=True, slots=True)
class PublishedPolicyFetch:
    """One GET of ``/.well-known/mta-sts.txt`` at the published lab."""

    uuid: str | None                 # always empty in that lab: fetches are not tied to an address
    fetched_at: datetime | None
    client_address: str | None       # first X-Forwarded-For entry (the proxy put the client there)
    host: str | None                 # Host header, lower-cased, port removed
    user_agent: str | None
    label: str | None = None         # lab label from the host (mta-sts.<label>.<lab domain>)
    forwarded_for: str | None = None # the whole X-Forwarded-For value
    position: str = ""
    row_id: int | None = None


@dataclass(frozen=True, slots=True)
class PublishedTlsRpt:
    """A TLS-RPT report POSTed to the published lab, parsed by the core parser."""

    received_at: datetime | None
    raw: bytes                       # the report JSON as stored
    report: Any                      # collectors.rfc.TlsRptReport (ok)
    position: str = ""
    row_id: int | None = None


@dataclass(frozen=True, slots=True)
class PublishedBodyLine:
    """A ``MSG:`` body row: counted per address, its text deliberately not kept."""

    uuid: str | None
    received_at: datetime | None
    position: str = ""
    row_id: int | None = None


PublishedRecord = PublishedReceived | PublishedPolicyFetch | PublishedTlsRpt | PublishedBodyLine


# --- format detection ---------------------------------------------------------------

def detect_format(head: bytes) -> Format | None:
    """Which export the first bytes are: "csv", "copy", "poll", or None."""
    text = head.removeprefix(b"\xef\xbb\xbf")
    first = text.split(b"\n", 1)[0].rstrip(b"\r")
    if first.replace(b'"', b"").replace(b" ", b"") == CSV_HEADER:
        return "csv"
    if first.startswith(b"COPY ") and b"log_lines" in first:
        return "copy"
    if text.startswith(b"--") and b"COPY " in text and b"log_lines" in text:
        return "copy"
    fields = first.split(b"\t")
    if len(fields) == len(COLUMNS) and fields[0].isdigit() and fields[5].decode("latin-1") in SERVICES:
        return "copy"
    stripped = text.lstrip()
    if stripped.startswith(b"{") and b'"service"' in text and b'"when"' in text and b'"line"' in text:
        return "poll"
    if stripped.startswith(b"{}"):
        return "poll"
    return None


def sniff(head: bytes) -> bool:
    """True when the first few KiB look like a published-lab export (any of the three)."""
    return detect_format(head) is not None


# --- the line column -------------------------------------------------------------------

def _block_fields(text: str) -> dict[str, str | None]:
    """``KEY: value`` lines after a block's first line; empty values are None."""
    fields: dict[str, str | None] = {}
    for raw_line in text.splitlines()[1:]:
        line = raw_line.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        fields[key.strip()] = value.strip() or None
    return fields


def _canonical_uuid(value: str | None, recipient: str | None) -> str | None:
    if value:
        return address_uuid(f"{value}@x") or value.strip().lower()
    return address_uuid(recipient)


def _host_label(host: str | None) -> str | None:
    if not host or not host.startswith("mta-sts."):
        return None
    name = host.removeprefix("mta-sts.")
    first = name.split(".", 1)[0]
    return first if first and "." in name else None


def _host(value: str | None) -> str | None:
    if not value:
        return None
    host = value.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".") or None


def _row_record(position: str, row: dict[str, str | None], source: bytes) -> PublishedRecord | Quarantined:
    """One log_lines row (as text fields) to a record, or why it is not usable; ``source``
    is the row's bytes as read, kept when the row is quarantined."""
    def quarantine(reason: str) -> Quarantined:
        return Quarantined(position, source, reason)

    row_id: int | None = None
    if row.get("id"):
        try:
            row_id = int(str(row["id"]))
        except ValueError:
            return quarantine(f"id is not an integer: {row['id']!r}")
    if row.get("deleted_at"):
        return quarantine("row was soft-deleted in the published lab (deleted_at is set)")
    created = row.get("created_at")
    at = parse_timestamp(created, assume_utc=True)
    if created and at is None:
        return quarantine(f"created_at is not a timestamp: {created!r}")
    service = (row.get("service") or "").strip()
    line = row.get("line")
    if line is None:
        return quarantine("line is NULL")
    uuid_value = (row.get("uuid") or "").strip() or None

    if service == "postfix":
        if line.startswith("MSG:"):
            return PublishedBodyLine(_canonical_uuid(uuid_value, None), at, position, row_id)
        if line.strip().splitlines()[:1] != ["Message Received:"]:
            return quarantine("postfix row is neither a 'Message Received:' block nor a 'MSG:' body line")
        fields = _block_fields(line)
        missing = [key for key in _RECEIVED_KEYS if key not in fields]
        if missing:
            return quarantine(f"received block lacks {', '.join(missing)}")
        recipient = normalize_address(fields["ORIGINAL_RECIPIENT"])
        if recipient is None:
            return quarantine(f"ORIGINAL_RECIPIENT is not an address: {fields['ORIGINAL_RECIPIENT']!r}")
        return PublishedReceived(
            uuid=_canonical_uuid(uuid_value, recipient),
            received_at=at,
            label=lab_label(recipient),
            envid=fields["ENVID"],
            sender=normalize_address(fields["SENDER"]) or fields["SENDER"],
            original_recipient=recipient,
            client_address=fields["CLIENT_ADDRESS"],
            client_helo=fields["CLIENT_HELO"],
            client_hostname=fields["CLIENT_HOSTNAME"],
            client_protocol=fields["CLIENT_PROTOCOL"],
            position=position,
            row_id=row_id,
        )
    if service == "HTTPS":
        if line.strip().splitlines()[:1] != ["HTTP connection:"]:
            return quarantine("HTTPS row is not an 'HTTP connection:' block")
        fields = _block_fields(line)
        missing = [key for key in _FETCH_KEYS if key not in fields]
        if missing:
            return quarantine(f"policy-fetch block lacks {', '.join(missing)}")
        forwarded = fields["X-Forwarded-For"]
        client = forwarded.split(",", 1)[0].strip() or None if forwarded else None
        host = _host(fields["Host"])
        return PublishedPolicyFetch(
            uuid=_canonical_uuid(uuid_value, None),
            fetched_at=at,
            client_address=client,
            host=host,
            user_agent=fields["User Agent"],
            label=_host_label(host),
            forwarded_for=forwarded,
            position=position,
            row_id=row_id,
        )
    if service == "TLSRPT":
        raw = line.encode("utf-8", "surrogateescape")
        report = parse_tlsrpt_report(raw)
        if not report.ok:
            errors = "; ".join(f"{f.code}: {f.message}" for f in report.findings if f.severity == "error")
            return Quarantined(position, raw, f"not a TLS-RPT report: {errors or 'rejected by the parser'}")
        return PublishedTlsRpt(at, raw, report, position, row_id)
    return quarantine(f"unknown service {service!r} (expected one of {', '.join(SERVICES)})")


# --- CSV ---------------------------------------------------------------------------------

class _CsvError(ValueError):
    pass


def split_csv_record(record: str) -> list[str | None]:
    """The fields of one complete RFC 4180 record (terminator removed). An unquoted empty
    field is None (PostgreSQL's CSV NULL); a quoted one is ''. Raises _CsvError."""
    fields: list[str | None] = []
    i, n = 0, len(record)
    while True:
        if i < n and record[i] == '"':
            i += 1
            pieces: list[str] = []
            while True:
                j = record.find('"', i)
                if j < 0:
                    raise _CsvError("unterminated quoted field")
                pieces.append(record[i:j])
                if j + 1 < n and record[j + 1] == '"':
                    pieces.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            if i < n and record[i] != ",":
                raise _CsvError(f"text after a closing quote at character {i}")
            fields.append("".join(pieces))
        else:
            j = record.find(",", i)
            if j < 0:
                j = n
            value = record[i:j]
            if '"' in value:
                raise _CsvError(f"quote inside an unquoted field at character {i}")
            fields.append(value if value else None)
            i = j
        if i >= n:
            return fields
        i += 1  # the comma
        if i == n:
            fields.append(None)
            return fields


def _strip_terminator(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return data[:-2]
    if data.endswith(b"\n"):
        return data[:-1]
    return data


def parse_csv(stream: BinaryIO) -> Iterator[PublishedRecord | Quarantined]:
    """Rows of a ``log_lines`` CSV export. The header names the column order; without a
    header the table's own order is assumed. A record stays in memory only until its
    quotes balance (capped at ``MAX_RECORD_BYTES``)."""
    columns: tuple[str, ...] | None = None
    pending: list[bytes] = []
    pending_size = 0
    quotes = 0
    start = 0
    for line in read_lines(stream, MAX_RECORD_BYTES):
        if line.broken:
            if pending:
                yield Quarantined(f"line {start}", b"".join(pending), "input ends inside a quoted field")
                pending = []
            yield Quarantined(f"line {line.number}", line.data, "stream broke off (truncated gzip?)")
            return
        if not pending:
            start = line.number
        pending.append(line.data)
        pending_size += len(line.data)
        quotes += line.data.count(b'"')
        if line.overlong or pending_size > MAX_RECORD_BYTES:
            yield Quarantined(f"line {start}", b"".join(pending)[:MAX_RECORD_BYTES],
                              f"record longer than {MAX_RECORD_BYTES} bytes")
            pending, pending_size, quotes = [], 0, 0
            continue
        if quotes % 2:
            continue  # a quoted field continues on the next line
        raw = b"".join(pending)
        pending, pending_size, quotes = [], 0, 0
        body = _strip_terminator(raw)
        if start == 1:
            body = body.removeprefix(b"\xef\xbb\xbf")
        if not body.strip():
            continue  # blank line between records carries nothing
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            yield Quarantined(f"line {start}", raw, f"not UTF-8: {error}")
            continue
        try:
            fields = split_csv_record(text)
        except _CsvError as error:
            yield Quarantined(f"line {start}", raw, f"bad CSV: {error}")
            continue
        if columns is None:
            names = tuple((f or "").strip().lower() for f in fields)
            if {"created_at", "service", "line"} <= set(names):
                columns = names
                continue
            columns = COLUMNS
        if len(fields) != len(columns):
            yield Quarantined(f"line {start}", raw,
                              f"{len(fields)} fields where the header has {len(columns)}")
            continue
        row = dict(zip(columns, fields))
        yield _row_record(f"line {start}", row, raw)
    if pending:
        yield Quarantined(f"line {start}", b"".join(pending), "input ends inside a quoted field (half-written last record?)")


# --- COPY text -------------------------------------------------------------------------

_ESCAPES = {ord("b"): 8, ord("f"): 12, ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("v"): 11}
_OCTAL = b"01234567"
_HEX = b"0123456789abcdefABCDEF"


def unescape_copy_field(field: bytes) -> bytes | None:
    """One COPY text-format field: ``\\N`` is NULL (None), backslash sequences decoded
    per the PostgreSQL COPY documentation ("Text Format")."""
    if field == b"\\N":
        return None
    if b"\\" not in field:
        return field
    out = bytearray()
    i, n = 0, len(field)
    while i < n:
        byte = field[i]
        if byte != 0x5C or i + 1 >= n:
            out.append(byte)
            i += 1
            continue
        nxt = field[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in _OCTAL:
            j = i + 1
            while j < n and j < i + 4 and field[j] in _OCTAL:
                j += 1
            out.append(int(field[i + 1:j], 8) & 0xFF)
            i = j
        elif nxt == ord("x") and i + 2 < n and field[i + 2] in _HEX:
            j = i + 2
            while j < n and j < i + 4 and field[j] in _HEX:
                j += 1
            out.append(int(field[i + 2:j], 16))
            i = j
        else:
            out.append(nxt)  # \\ and any other escaped character: the character itself
            i += 2
    return bytes(out)


def escape_copy_field(value: bytes | None) -> bytes:
    """The inverse of :func:`unescape_copy_field`, as PostgreSQL's COPY TO writes it."""
    if value is None:
        return b"\\N"
    out = bytearray()
    reverse = {v: k for k, v in _ESCAPES.items()}
    for byte in value:
        if byte == 0x5C:
            out += b"\\\\"
        elif byte in reverse:
            out += bytes((0x5C, reverse[byte]))
        else:
            out.append(byte)
    return bytes(out)


_COPY_HEADER = re.compile(rb"^COPY\s+(?P<table>\S+)\s*(?:\((?P<columns>[^)]*)\))?\s+FROM\s+stdin", re.I)


def parse_copy(stream: BinaryIO) -> Iterator[PublishedRecord | Quarantined]:
    """Rows of ``COPY log_lines TO STDOUT`` text, or of the log_lines block of a pg_dump."""
    columns: tuple[str, ...] = COLUMNS
    in_data = True          # plain COPY output: every line is a row
    dump = False
    for line in read_lines(stream, MAX_RECORD_BYTES):
        position = f"line {line.number}"
        if line.broken:
            yield Quarantined(position, line.data, "stream broke off (truncated gzip?)")
            return
        body = _strip_terminator(line.data)
        if line.number == 1 and (body.startswith(b"--") or body.startswith(b"SET ") or _COPY_HEADER.match(body)):
            dump, in_data = True, False
        if dump and not in_data:
            header = _COPY_HEADER.match(body)
            if header and header.group("table").split(b".")[-1].strip(b'"') == b"log_lines":
                if header.group("columns"):
                    columns = tuple(c.strip().strip('"').lower()
                                    for c in header.group("columns").decode("utf-8", "replace").split(","))
                in_data = True
            continue  # SQL around the data block is not evidence
        if body == b"\\.":
            in_data = not dump
            continue
        if not body:
            continue
        if line.overlong:
            yield Quarantined(position, line.data, f"row longer than {MAX_RECORD_BYTES} bytes")
            continue
        raw_fields = body.split(b"\t")
        if len(raw_fields) != len(columns):
            yield Quarantined(position, line.data,
                              f"{len(raw_fields)} tab-separated fields where {len(columns)} columns are expected")
            continue
        row: dict[str, str | None] = {}
        try:
            for name, raw in zip(columns, raw_fields):
                value = unescape_copy_field(raw)
                row[name] = None if value is None else value.decode("utf-8")
        except UnicodeDecodeError as error:
            yield Quarantined(position, line.data, f"not UTF-8: {error}")
            continue
        yield _row_record(position, row, line.data)


# --- /poll JSON --------------------------------------------------------------------------

def parse_poll(stream: BinaryIO) -> Iterator[PublishedRecord | Quarantined]:
    """Entries of ``/poll`` responses: one JSON document, or several one after another."""
    data, too_long, error = read_capped(stream, MAX_POLL_BYTES)
    if error:
        yield Quarantined("document 1", data, f"unreadable: {error}")
        return
    if too_long:
        yield Quarantined("document 1", data[:65536], f"poll JSON larger than {MAX_POLL_BYTES} bytes")
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as decode_error:
        yield Quarantined("document 1", data, f"not UTF-8: {decode_error}")
        return
    decoder = json.JSONDecoder()
    index, document = 0, 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return
        document += 1
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError as json_error:
            yield Quarantined(f"document {document}", text[index:].encode("utf-8", "surrogateescape"),
                              f"not JSON: {json_error}")
            return
        yield from _poll_document(document, value)
        index = end


def _poll_document(document: int, value: Any) -> Iterator[PublishedRecord | Quarantined]:
    if not isinstance(value, dict):
        yield Quarantined(f"document {document}", json.dumps(value).encode(),
                          "a /poll response is a JSON object mapping UUIDs to lists")
        return
    for uuid_key, entries in value.items():
        where = f"document {document} poll[{uuid_key}]"
        if not isinstance(entries, list):
            yield Quarantined(where, json.dumps(entries).encode(), "value is not a list of entries")
            continue
        for number, entry in enumerate(entries):
            position = f"{where}[{number}]"
            if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str)
                                                      for k in ("service", "when", "line")):
                yield Quarantined(position, json.dumps(entry).encode(),
                                  "entry lacks the string fields service, when, line")
                continue
            when = entry["when"]
            if parse_timestamp(when) is None:
                yield Quarantined(position, json.dumps(entry).encode(),
                                  f"'when' is not an RFC 3339 time: {when!r}")
                continue
            row = {"uuid": str(uuid_key), "service": entry["service"], "created_at": when,
                   "line": entry["line"]}
            source = json.dumps({uuid_key: [entry]}, ensure_ascii=False).encode("utf-8", "surrogateescape")
            yield _row_record(position, row, source)


# --- entry point -------------------------------------------------------------------------

def parse(stream: BinaryIO, format: Format | None = None) -> Iterator[PublishedRecord | Quarantined]:
    """Every record of a published-lab export; the format is detected unless given.
    ``stream`` must be seekable when ``format`` is None (the head is read and rewound)."""
    if format is None:
        head = stream.read(8192)
        stream.seek(0)
        format = detect_format(head)
        if format is None:
            yield Quarantined("line 1", head[:4096], "not a published-lab export (CSV, COPY text or /poll JSON)")
            return
    if format == "csv":
        yield from parse_csv(stream)
    elif format == "copy":
        yield from parse_copy(stream)
    else:
        yield from parse_poll(stream)


def parse_path(path: Path, format: Format | None = None) -> Iterator[PublishedRecord | Quarantined]:
    """Every record of an export file (plain or gzip)."""
    with open_maybe_gzip(path) as stream:
        yield from parse(stream, format)
