"""TLS-RPT reports (RFC 8460) from everywhere a lab receives them, each parsed by the
RFC core (:func:`collectors.rfc.parse_tlsrpt_report`).

Sources:

* a single report file: JSON (``application/tlsrpt+json``) or gzip
  (``application/tlsrpt+gzip``, ``.json.gz``/``.gz``), RFC 8460 section 5.3;
* e-mail (section 5.3: ``multipart/report; report-type=tlsrpt`` with the report
  attached): a single ``.eml``, an mbox or a Maildir (see :mod:`mailsource`);
* bodies POSTed to an https ``rua`` (section 5.4), as the lab's endpoint stores them,
  in either of the two formats defined here (``mtasts-tlsrpt-post/1``):

  - JSON lines, one object per POST::

      {"format": "mtasts-tlsrpt-post/1", "received_at": "2024-09-30T12:00:00Z",
       "remote_addr": "203.0.113.5", "content_type": "application/tlsrpt+gzip",
       "body_base64": "H4sI...", "host": "tlsrpt.lab.example.org", "path": "/tlsrpt",
       "user_agent": "..."}

    ``received_at`` (RFC 3339 with offset) and ``body_base64`` (the body exactly as
    received, RFC 4648 base64) are required; the rest may be null or absent.
  - a spool directory: each body in a file ``NAME`` with a sidecar ``NAME.meta.json``
    holding the same object without ``body_base64``.

A report's raw bytes are kept decompressed (the JSON), capped at
``MAX_REPORT_BYTES``. Input the core parser refuses (``ok`` false) is quarantined with
its bytes and the parser's error findings as the reason.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.utils
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from email.policy import compat32
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Literal

from collectors.lab_ingest.mailsource import (
    DEFAULT_MAX_MESSAGE_BYTES, RawMessage, is_maildir, iter_maildir, iter_mbox,
    looks_like_email, looks_like_mbox, peek,
)
from collectors.lab_ingest.normalize import normalize_address, normalize_message_id, parse_timestamp, utc_iso
from collectors.lab_ingest.records import Quarantined
from collectors.lab_ingest.streams import (
    gunzip_capped, gunzip_head, open_maybe_gzip, read_capped, read_json_lines,
)
from collectors.rfc import parse_tlsrpt_report, report_part_rank

POST_FORMAT = "mtasts-tlsrpt-post/1"
SIDECAR_SUFFIX = ".meta.json"
MAX_REPORT_BYTES = 8 * 1024 * 1024          # decompressed JSON
MAX_BODY_BYTES = 8 * 1024 * 1024            # as received (compressed)
MAX_POST_LINE_BYTES = MAX_BODY_BYTES * 4 // 3 + 64 * 1024

SourceKind = Literal["file", "email", "mbox", "maildir", "https-post"]



@dataclass(frozen=True, slots=True)
class TlsRptEvidence:
    """One TLS-RPT report as received, with the core parser's reading of it."""

    received_at: datetime | None     # POST time, e-mail Date (else From_/Maildir time); None for a bare file
    source_kind: SourceKind          # file | email | mbox | maildir | https-post
    position: str                    # file name, "message 2 at line 40", "line 7", "spool/NAME"
    raw: bytes                       # the report JSON, decompressed (<= MAX_REPORT_BYTES)
    report: Any                      # collectors.rfc.TlsRptReport with ok=True (warnings in .findings)
    report_id: str | None
    organization_name: str | None
    remote_addr: str | None = None   # https-post: the client that POSTed
    content_type: str | None = None  # POST Content-Type or the attachment's media type
    email_from: str | None = None    # e-mail: From address
    email_message_id: str | None = None
    report_domain: str | None = None     # e-mail: TLS-Report-Domain header (RFC 8460 section 5.3)
    report_submitter: str | None = None  # e-mail: TLS-Report-Submitter header


# --- the POST capture format (written by the lab's endpoint) ---------------------------

def post_record(received_at: datetime, body: bytes, remote_addr: str | None = None,
                content_type: str | None = None, **extra: str | None) -> bytes:
    """One JSON line of the ``mtasts-tlsrpt-post/1`` format for a received POST body."""
    record: dict[str, Any] = {"format": POST_FORMAT, "received_at": utc_iso(received_at),
                              "remote_addr": remote_addr, "content_type": content_type}
    record.update(extra)
    record["body_base64"] = base64.b64encode(body).decode("ascii")
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def sidecar_record(received_at: datetime, remote_addr: str | None = None,
                   content_type: str | None = None, **extra: str | None) -> bytes:
    """The ``NAME.meta.json`` sidecar for a POST body stored as ``NAME``."""
    record: dict[str, Any] = {"format": POST_FORMAT, "received_at": utc_iso(received_at),
                              "remote_addr": remote_addr, "content_type": content_type}
    record.update(extra)
    return json.dumps(record, indent=1).encode() + b"\n"


# --- sniffing ----------------------------------------------------------------------------

def _report_json_head(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"{") and b'"policies"' in head and (
        b'"organization-name"' in head or b'"date-range"' in head or b'"report-id"' in head)


def _post_log_head(head: bytes) -> bool:
    return head.lstrip().startswith(b"{") and b'"body_base64"' in head.split(b"\n", 1)[0] + head[:65536]


def _tlsrpt_mail_head(head: bytes) -> bool:
    lowered = head.lower()
    return (looks_like_mbox(head) or looks_like_email(head)) and (
        b"report-type=tlsrpt" in lowered or b'report-type="tlsrpt"' in lowered
        or b"tls-report-domain:" in lowered or b"application/tlsrpt+" in lowered)


def sniff(head: bytes) -> bool:
    """True when the first few KiB are a TLS-RPT report (JSON or gzip), a report e-mail
    or mbox, or a POST capture log."""
    if head[:2] == b"\x1f\x8b":
        head = gunzip_head(head)
    return _report_json_head(head) or _post_log_head(head) or _tlsrpt_mail_head(head)


def sniff_path(path: Path) -> bool:
    """:func:`sniff` for a file, a Maildir folder or a POST spool folder."""
    if path.is_dir() and not is_maildir(path):
        return any(path.glob("*" + SIDECAR_SUFFIX))
    return sniff(peek(path))


# --- one report body ---------------------------------------------------------------------

def _findings_reason(report: Any) -> str:
    errors = [f"{f.code}: {f.message}" for f in report.findings if f.severity == "error"]
    return "not a TLS-RPT report: " + ("; ".join(errors) if errors else "rejected by the parser")


def _evidence(body: bytes, *, position: str, source_kind: SourceKind, received_at: datetime | None,
              **context: Any) -> TlsRptEvidence | Quarantined:
    """A report body as received (JSON or gzip) to evidence, or quarantined with why."""
    if body[:2] == b"\x1f\x8b":
        raw, problem = gunzip_capped(body, MAX_REPORT_BYTES)
        if raw is None:
            return Quarantined(position, body, f"not a TLS-RPT report: {problem}")
    else:
        raw = body
        if len(raw) > MAX_REPORT_BYTES:
            return Quarantined(position, raw[:MAX_REPORT_BYTES], f"report larger than {MAX_REPORT_BYTES} bytes")
    report = parse_tlsrpt_report(raw)
    if not report.ok:
        return Quarantined(position, raw, _findings_reason(report))
    return TlsRptEvidence(received_at, source_kind, position, raw, report, report.report_id,
                          report.organization_name, **context)


# --- e-mail --------------------------------------------------------------------------------

def _report_parts(message: Message) -> list[Message]:
    """The attachments that carry a report (RFC 8460 section 5.3), in order."""
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        if report_part_rank(part.get_content_type(), str(part.get_filename() or "")) is not None:
            found.append(part)
    return found


def _email_date(message: Message, fallback: datetime | None) -> datetime | None:
    value = message.get("Date")
    if value:
        try:
            moment = email.utils.parsedate_to_datetime(str(value))
        except (TypeError, ValueError, IndexError):
            moment = None
        if moment is not None:
            return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    return fallback


def parse_email(item: RawMessage, source_kind: SourceKind = "email") -> Iterator[TlsRptEvidence | Quarantined]:
    """Every report attached to one e-mail; a mail without one is quarantined with the
    core parser's reading of the whole message as the reason."""
    if item.truncated:
        yield Quarantined(item.position, item.raw[:1024 * 1024],
                          "message truncated (larger than the cap, or the file broke off)")
        return
    try:
        message = email.message_from_bytes(item.raw, policy=compat32)
        parts = _report_parts(message)
        bodies = [part.get_payload(decode=True) for part in parts]
    except Exception as error:  # noqa: BLE001 - the email package raises on odd structures
        yield Quarantined(item.position, item.raw, f"unparseable message: {type(error).__name__}: {error}")
        return
    if not parts:
        report = parse_tlsrpt_report(item.raw)
        yield Quarantined(item.position, item.raw, _findings_reason(report) if not report.ok
                          else "not a TLS-RPT report: no report attachment")
        return
    context = {
        "email_from": normalize_address(email.utils.parseaddr(str(message.get("From") or ""))[1]),
        "email_message_id": normalize_message_id(str(message.get("Message-ID") or "")),
        "report_domain": (str(message.get("TLS-Report-Domain") or "").strip() or None),
        "report_submitter": (str(message.get("TLS-Report-Submitter") or "").strip() or None),
    }
    received_at = _email_date(message, item.envelope_date)
    for number, (part, body) in enumerate(zip(parts, bodies), start=1):
        position = item.position if len(parts) == 1 else f"{item.position} attachment {number}"
        if not isinstance(body, bytes) or not body:
            yield Quarantined(position, item.raw, "report attachment is empty")
            continue
        yield _evidence(body, position=position, source_kind=source_kind, received_at=received_at,
                        content_type=part.get_content_type(), **context)


# --- POST captures ---------------------------------------------------------------------

def _post_evidence(position: str, meta: Any, body: bytes | None,
                   source: bytes) -> TlsRptEvidence | Quarantined:
    if not isinstance(meta, dict):
        return Quarantined(position, source, "POST record is not a JSON object")
    fmt = meta.get("format")
    if fmt is not None and fmt != POST_FORMAT:
        return Quarantined(position, source, f"format is {fmt!r}, expected {POST_FORMAT!r}")
    when = meta.get("received_at")
    received_at = parse_timestamp(when) if isinstance(when, str) else None
    if received_at is None:
        return Quarantined(position, source, f"received_at is not an RFC 3339 time with an offset: {when!r}")
    if body is None:
        encoded = meta.get("body_base64")
        if not isinstance(encoded, str):
            return Quarantined(position, source, "body_base64 is missing")
        try:
            body = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            return Quarantined(position, source, f"body_base64 is not base64: {error}")
    if len(body) > MAX_BODY_BYTES:
        return Quarantined(position, body[:MAX_BODY_BYTES], f"POST body larger than {MAX_BODY_BYTES} bytes")
    remote = meta.get("remote_addr")
    ctype = meta.get("content_type")
    return _evidence(body, position=position, source_kind="https-post", received_at=received_at,
                     remote_addr=remote if isinstance(remote, str) else None,
                     content_type=ctype if isinstance(ctype, str) else None)


def parse_post_log(stream: BinaryIO) -> Iterator[TlsRptEvidence | Quarantined]:
    """Reports in a JSON-lines POST capture log, line by line."""
    for item in read_json_lines(stream, MAX_POST_LINE_BYTES, half_written_reason="half-written last line",
                                overlong_keep=65536):
        if isinstance(item, Quarantined):
            yield item
            continue
        position, data, meta = item
        yield _post_evidence(position, meta, None, data)


def parse_post_spool(folder: Path) -> Iterator[TlsRptEvidence | Quarantined]:
    """Reports in a spool folder of ``NAME`` + ``NAME.meta.json`` pairs; a body with no
    sidecar is read as a bare report file (no receive time)."""
    entries = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    sidecars = {p.name[: -len(SIDECAR_SUFFIX)]: p for p in entries if p.name.endswith(SIDECAR_SUFFIX)}
    for entry in entries:
        if entry.name.endswith(SIDECAR_SUFFIX):
            continue
        position = f"{folder.name}/{entry.name}"
        try:
            with entry.open("rb") as handle:
                body, too_long, error = read_capped(handle, MAX_BODY_BYTES)
        except OSError as os_error:
            yield Quarantined(position, b"", f"unreadable: {os_error}")
            continue
        if error or too_long:
            yield Quarantined(position, body, error or f"POST body larger than {MAX_BODY_BYTES} bytes")
            continue
        sidecar = sidecars.pop(entry.name, None)
        if sidecar is None:
            yield _evidence(body, position=position, source_kind="file", received_at=None)
            continue
        source = b""
        try:
            source = sidecar.read_bytes()[:65536]
            meta = json.loads(source)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as meta_error:
            yield Quarantined(f"{folder.name}/{sidecar.name}", source, f"sidecar unreadable: {meta_error}")
            continue
        yield _post_evidence(position, meta, body, source)
    for name, sidecar in sidecars.items():
        yield Quarantined(f"{folder.name}/{sidecar.name}", sidecar.read_bytes()[:65536],
                          f"sidecar without its body file {name!r}")


# --- entry points --------------------------------------------------------------------------

def parse(stream: BinaryIO, name: str = "report") -> Iterator[TlsRptEvidence | Quarantined]:
    """Reports in one (already gunzipped, if it was gzip) stream: a POST capture log, an
    mbox, an e-mail or a bare report. ``stream`` must support ``peek``."""
    head = stream.peek(65536)[:65536] if hasattr(stream, "peek") else b""
    if looks_like_mbox(head):
        for item in iter_mbox(stream, DEFAULT_MAX_MESSAGE_BYTES):
            yield from parse_email(item, "mbox")
        return
    if _post_log_head(head):
        yield from parse_post_log(stream)
        return
    body, too_long, error = read_capped(stream, MAX_BODY_BYTES)
    if error:
        yield Quarantined(name, body, f"unreadable: {error}")
        return
    if too_long:
        yield Quarantined(name, body[:65536], f"larger than {MAX_BODY_BYTES} bytes")
        return
    if looks_like_email(body[:8192]):
        yield from parse_email(RawMessage(name, body, None, False), "email")
        return
    yield _evidence(body, position=name, source_kind="file", received_at=None)


def parse_path(path: Path) -> Iterator[TlsRptEvidence | Quarantined]:
    """Reports at ``path``: a Maildir, a POST spool folder, or a file of any kind above
    (a ``.gz`` file is read through gzip unless it is itself a gzip report body)."""
    if path.is_dir():
        if is_maildir(path):
            for item in iter_maildir(path):
                yield from parse_email(item, "maildir")
        else:
            yield from parse_post_spool(path)
        return
    with path.open("rb") as handle:
        start = handle.read(65536)
    if start[:2] == b"\x1f\x8b":
        inner = gunzip_head(start)
        if _report_json_head(inner) or not (looks_like_mbox(inner) or _post_log_head(inner)
                                            or looks_like_email(inner)):
            # A gzip report (RFC 8460 section 5.3): the body as received is the gzip.
            with path.open("rb") as handle:
                body, too_long, error = read_capped(handle, MAX_BODY_BYTES)
            if error or too_long:
                yield Quarantined(path.name, body[:65536], error or f"larger than {MAX_BODY_BYTES} bytes")
                return
            yield _evidence(body, position=path.name, source_kind="file", received_at=None)
            return
    with open_maybe_gzip(path) as stream:
        yield from parse(stream, path.name)
