"""Delay and failure notices that the sending accounts received: what the sending user
was told when a test message was not (yet) delivered.

Reads a single message (``.eml``), an mbox or a Maildir (see :mod:`mailsource`) and
understands two kinds of notice:

* RFC 3464 delivery status notifications: ``multipart/report;
  report-type=delivery-status`` (RFC 6522) whose ``message/delivery-status`` part has
  per-message fields (``Reporting-MTA``, ``Arrival-Date``; section 2.2) and per-recipient
  fields (``Final-Recipient``, ``Original-Recipient``, ``Action``, ``Status``,
  ``Remote-MTA``, ``Diagnostic-Code``, ``Will-Retry-Until``; section 2.3), followed by
  the original message (``message/rfc822``) or its headers (``text/rfc822-headers``).
  RFC 6533's ``message/global-delivery-status`` is read the same way.
* plain-text notices as providers word them (Gmail "Delivery incomplete" / "Message
  blocked", Outlook "Delivery has failed to these recipients or groups", Postfix's
  "Delayed Mail (still being retried)" / "Undelivered Mail Returned to Sender"):
  the recipient addresses and Message-IDs they quote are taken from the text.

Only the notice's own human-readable text is kept (decoded, capped); of the original
message only identifiers (its Message-ID) are read, never its body. Matching a notice
to its test message happens later in SQL, by recipient address or Message-ID.
"""

from __future__ import annotations

import email
import email.header
import email.utils
import html as html_module
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from email.policy import compat32
from pathlib import Path
from typing import BinaryIO, Iterator, Literal

from collectors.lab_ingest.mailsource import (
    DEFAULT_MAX_MESSAGE_BYTES, RawMessage, iter_mbox, iter_path, iter_single, looks_like_email,
    looks_like_mbox, peek,
)
from collectors.lab_ingest.normalize import normalize_address, normalize_message_id
from collectors.lab_ingest.records import Quarantined

MAX_TEXT_CHARS = 64 * 1024
MAX_DIAGNOSTIC_CHARS = 4096

Kind = Literal["delay", "failure", "success", "unknown"]


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    """The per-recipient fields of one RFC 3464 report (section 2.3)."""

    final_recipient: str | None        # address, lower-cased, "rfc822;" removed
    original_recipient: str | None
    action: str | None                 # failed | delayed | delivered | relayed | expanded
    status: str | None                 # RFC 3463 code, e.g. "4.7.5"
    remote_mta: str | None             # e.g. "dns; mx.example.org"
    diagnostic_code: str | None        # e.g. "smtp; 550 5.7.1 ..." (capped)
    last_attempt_date: str | None
    will_retry_until: str | None


@dataclass(frozen=True, slots=True)
class Notification:
    """One notice in a sending account's mailbox."""

    received_at: datetime | None               # Date header; else the mbox From_ line / Maildir time
    notice_from: str | None                    # From address (or bare "mailer-daemon"), lower-cased
    subject: str | None                        # decoded (RFC 2047)
    kind: Kind                                 # delay | failure | success | unknown
    recipients: tuple[str, ...]                # test addresses it is about, lower-cased
    original_message_ids: tuple[str, ...]      # normalized Message-IDs of the original message
    status_codes: tuple[str, ...]              # RFC 3463 codes found ("5.7.1", ...)
    diagnostics: tuple[str, ...]               # Diagnostic-Code values / quoted server replies
    mentions_tls: bool                         # TLS, STARTTLS, certificate, ... (case-insensitive)
    mentions_mta_sts: bool                     # MTA-STS, STS policy, ...
    text: str                                  # the human-readable part, decoded, capped
    position: str                              # where in the mailbox ("message 3 at line 120")
    structure: Literal["dsn", "plain"] = "plain"   # RFC 3464 report, or text only
    notice_message_id: str | None = None       # the notice's own Message-ID (dedup)
    notice_to: str | None = None               # the account that received it
    reporting_mta: str | None = None           # RFC 3464 Reporting-MTA
    arrival_date: datetime | None = None       # RFC 3464 Arrival-Date (when the MTA got the original)
    dsn_recipients: tuple[DsnRecipient, ...] = ()
    received_at_source: Literal["date", "envelope"] | None = None


# --- what a notice looks like ---------------------------------------------------------

_NOTICE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery (?:sub)?system|microsoftexchange", re.I)
_DELAY = re.compile(
    r"delayed mail|still being retried|delivery incomplete|\(delay\)|delivery delayed|"
    r"warning: (?:message|delay)|will (?:be )?retr(?:y|ied)|has not yet been delivered|"
    r"not been delivered yet|is a warning only|temporary (?:problem|failure|error)", re.I)
_FAILURE = re.compile(
    r"undelivered mail|returned to sender|delivery has failed|message blocked|undeliverable|"
    r"\(failure\)|mail delivery failed|could not be delivered|couldn't be delivered|"
    r"permanent(?:ly)? (?:error|failure|fatal)|failure notice|returned mail|delivery failure|"
    r"message not delivered|address not found|non-delivery", re.I)
_SUCCESS = re.compile(
    r"\(success\)|successful mail delivery|delivery report|was delivered|relayed to", re.I)
_TLS = re.compile(r"(?<![a-z])(?:start)?tls|(?<![a-z])ssl(?![a-z])|certificate|x\.?509|encrypt", re.I)
_MTA_STS = re.compile(r"mta[-_ ]?sts|(?<![a-z])sts(?![a-z])|_mta-sts|mta-sts\.txt", re.I)

# Bounded repetitions: a long run of letters must not make the search quadratic.
_ADDRESS = re.compile(r"(?<![A-Za-z0-9!#$%&'*+/=?^_`{|}~.-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}"
                      r"@[A-Za-z0-9][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9][A-Za-z0-9-]{0,62}){1,8}")
_MESSAGE_ID_LINE = re.compile(r"^\s*(?:message-id|original-message-id)\s*:\s*(<[^<>\s]+>)", re.I | re.M)
_ANGLE_ID = re.compile(r"<[^<>\s@]+@[^<>\s]+>")
_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_REPLY = re.compile(r"(?:said|response was|remote server returned|the error that the other server returned was)"
                    r"\s*:?\s*['\"]?([^\n]{3,400})", re.I)
# Postfix's bounce(8) text: "<rcpt>: reason" with indented continuation lines.
_RECIPIENT_REASON = re.compile(r"^<[^<>\s]+@[^<>\s]+>:[ \t]*([^\n]{3,400}(?:\n[ \t]+[^\n]{1,400}){0,5})", re.M)
_ORIGINAL_MARKER = re.compile(
    r"^[ \t]*-*[ \t]*(?:this is a copy of the message|original message(?: headers)?|"
    r"below this line is a copy of the message|start of returned message|"
    r"undelivered message|returned message)\b", re.I | re.M)
_SYSTEM_LOCALS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "bounce", "bounces")


def sniff(head: bytes) -> bool:
    """True when the first few KiB look like a mailbox of delivery notices (and not a
    TLS-RPT report mail)."""
    if not (looks_like_mbox(head) or looks_like_email(head)):
        return False
    lowered = head.lower()
    if b"report-type=tlsrpt" in lowered or b"tls-report-domain" in lowered or b"report-type=\"tlsrpt\"" in lowered:
        return False
    markers = (b"delivery-status", b"mailer-daemon", b"postmaster", b"mail delivery",
               b"undelivered mail", b"delayed mail", b"delivery has failed", b"undeliverable",
               b"delivery status notification", b"delivery incomplete", b"returned to sender")
    return any(marker in lowered for marker in markers)


def sniff_path(path: Path) -> bool:
    """:func:`sniff` for a file or a Maildir folder (looks at its first message)."""
    return sniff(peek(path))


# --- helpers ------------------------------------------------------------------------

def _decode_header(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    try:
        decoded = str(email.header.make_header(email.header.decode_header(text)))
    except Exception:  # noqa: BLE001 - malformed RFC 2047 words: keep the raw text
        decoded = text
    decoded = " ".join(decoded.split())
    return decoded.encode("utf-8", "replace").decode("utf-8") or None


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


_TAG = re.compile(r"<(?:script|style)\b.*?</(?:script|style)>|<[^>]+>", re.I | re.S)


def _html_to_text(html: str) -> str:
    text = re.sub(r"<br\s*/?>|</p>|</div>|</tr>|</h\d>", "\n", html, flags=re.I)
    text = _TAG.sub(" ", text)
    text = html_module.unescape(text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers")
_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")


def _human_text(message: Message) -> str:
    """The notice's human-readable text: for a report its first part (RFC 6522 section
    3), otherwise every text part outside the returned original."""
    ctype = message.get_content_type()
    if ctype == "multipart/report":
        parts = message.get_payload()
        return _human_text(parts[0]) if isinstance(parts, list) and parts else ""
    if ctype in _ORIGINAL_TYPES or ctype in _STATUS_TYPES:
        return ""
    if message.is_multipart():
        parts = message.get_payload()
        if not isinstance(parts, list):
            return ""
        if ctype == "multipart/alternative":
            plain = [p for p in parts if p.get_content_type() == "text/plain"]
            chosen = plain[:1] or [p for p in parts if p.get_content_maintype() in ("text", "multipart")][:1]
            return _human_text(chosen[0]) if chosen else ""
        texts = [_human_text(p) for p in parts]
        return "\n".join(t for t in texts if t)
    if ctype == "text/plain":
        return _part_text(message)
    if ctype == "text/html":
        return _html_to_text(_part_text(message))
    return ""


def _status_blocks(part: Message) -> list[list[tuple[str, str]]]:
    """The header blocks of a delivery-status part (RFC 3464 section 2.1)."""
    payload = part.get_payload()
    blocks: list[list[tuple[str, str]]] = []
    if isinstance(payload, list):
        for block in payload:
            if isinstance(block, Message):
                blocks.append([(k, _decode_header(v) or "") for k, v in block.items()])
        if any(blocks):
            return blocks
    text = _part_text(part)
    current: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        if line[:1] in (" ", "\t") and current:
            name, value = current[-1]
            current[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if sep:
            current.append((name.strip(), value.strip()))
    if current:
        blocks.append(current)
    return blocks


def _field(block: list[tuple[str, str]], name: str) -> str | None:
    for key, value in block:
        if key.lower() == name:
            return value.strip() or None
    return None


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # RFC 5322 "-0000": UTC, zone unknown
    return moment.astimezone(timezone.utc)


def _ids_from_headers(headers: Message) -> list[str]:
    found = []
    for name in ("Message-ID", "Original-Message-ID"):
        value = headers.get(name)
        if value:
            normalized = normalize_message_id(str(value))
            if normalized:
                found.append(normalized)
    return found


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _cut_original(text: str) -> str:
    """The text up to where a plain notice starts quoting the original message; the
    quoted header lines right after the marker are kept, the original's body never."""
    marker = _ORIGINAL_MARKER.search(text)
    if not marker:
        return text
    line_end = text.find("\n", marker.end())
    if line_end < 0:
        return text
    kept = [text[:line_end]]
    seen_header = False
    for line in text[line_end + 1:].split("\n"):
        if not line.strip():
            if seen_header:
                break
            continue
        if _HEADER_FIELD.match(line) or (seen_header and line[:1] in (" ", "\t")):
            kept.append(line)
            seen_header = True
            continue
        break
    return "\n".join(kept)


_HEADER_FIELD = re.compile(r"^[!-9;-~]+:")
_QUOTED_TO = re.compile(r"^(?:to|cc)\s*:\s*(.+)$", re.I | re.M)


# --- one message ----------------------------------------------------------------------

def parse_message(item: RawMessage) -> Notification | Quarantined:
    """One message to a :class:`Notification`, or quarantined with the reason."""
    if item.truncated:
        return Quarantined(item.position, item.raw[:1024 * 1024],
                           "message truncated (larger than the cap, or the file broke off)")
    try:
        return _parse(item)
    except Exception as error:  # noqa: BLE001 - the email package raises on odd structures
        return Quarantined(item.position, item.raw, f"unparseable message: {type(error).__name__}: {error}")


def _parse(item: RawMessage) -> Notification | Quarantined:
    if not item.raw.strip():
        return Quarantined(item.position, item.raw, "empty message")
    message = email.message_from_bytes(item.raw, policy=compat32)
    if not message.keys():
        return Quarantined(item.position, item.raw, "no header fields: not an e-mail message")
    subject = _decode_header(message.get("Subject"))
    from_header = _decode_header(message.get("From")) or ""
    from_name, from_address = email.utils.parseaddr(from_header)
    notice_from = normalize_address(from_address) or (from_address.lower() or None)
    notice_to = normalize_address(email.utils.parseaddr(_decode_header(message.get("To")) or "")[1])

    status_parts: list[Message] = []
    original_parts: list[Message] = []
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype in _STATUS_TYPES:
            status_parts.append(part)
        elif ctype in _ORIGINAL_TYPES:
            original_parts.append(part)
    report_type = (message.get_param("report-type") or "") if message.get_content_type() == "multipart/report" else ""
    is_dsn = bool(status_parts)

    full_text = _human_text(message)[: 4 * MAX_TEXT_CHARS]
    if not is_dsn and not (
        _NOTICE_SENDER.search(from_header) or _NOTICE_SENDER.search(from_name)
        or (subject and (_DELAY.search(subject) or _FAILURE.search(subject)))
        or str(report_type).lower() == "delivery-status"
    ):
        return Quarantined(item.position, item.raw,
                           "not a delivery notice (no delivery-status part, not from a mailer daemon, "
                           "no notice subject)")

    reporting_mta, arrival, dsn_recipients = _status_fields(status_parts)
    message_ids, original_to = _original_ids(message, original_parts, full_text)
    recipients = _recipients(dsn_recipients, full_text, {notice_from, notice_to}, original_to)
    text = _cut_original(full_text).strip()
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
    diagnostics, codes = _diagnostics(dsn_recipients, text)

    kind = _kind(dsn_recipients, subject or "", text, codes)
    haystack = "\n".join([subject or "", text, *diagnostics])
    received_at = _date(_decode_header(message.get("Date")))
    source: Literal["date", "envelope"] | None = "date" if received_at else None
    if received_at is None and item.envelope_date is not None:
        received_at, source = item.envelope_date, "envelope"

    return Notification(
        received_at=received_at,
        notice_from=notice_from,
        subject=subject,
        kind=kind,
        recipients=_unique(recipients),
        original_message_ids=_unique(message_ids),
        status_codes=_unique(codes),
        diagnostics=_unique(diagnostics),
        mentions_tls=bool(_TLS.search(haystack)),
        mentions_mta_sts=bool(_MTA_STS.search(haystack)),
        text=text,
        position=item.position,
        structure="dsn" if is_dsn else "plain",
        notice_message_id=normalize_message_id(str(message.get("Message-ID") or "")),
        notice_to=notice_to,
        reporting_mta=reporting_mta,
        arrival_date=arrival,
        dsn_recipients=tuple(dsn_recipients),
        received_at_source=source,
    )


def _status_fields(status_parts: list[Message]) -> tuple[str | None, datetime | None, list[DsnRecipient]]:
    """RFC 3464 per-message fields (Reporting-MTA, Arrival-Date) and per-recipient fields."""
    reporting_mta = None
    arrival = None
    dsn_recipients: list[DsnRecipient] = []
    for part in status_parts:
        for block in _status_blocks(part):
            if _field(block, "final-recipient") or _field(block, "action"):
                diagnostic = _field(block, "diagnostic-code")
                dsn_recipients.append(DsnRecipient(
                    final_recipient=normalize_address(_field(block, "final-recipient")),
                    original_recipient=normalize_address(_field(block, "original-recipient")),
                    action=(_field(block, "action") or "").lower() or None,
                    status=(_field(block, "status") or "").split(" ", 1)[0] or None,
                    remote_mta=_field(block, "remote-mta"),
                    diagnostic_code=diagnostic[:MAX_DIAGNOSTIC_CHARS] if diagnostic else None,
                    last_attempt_date=_field(block, "last-attempt-date"),
                    will_retry_until=_field(block, "will-retry-until"),
                ))
            else:
                reporting_mta = reporting_mta or _field(block, "reporting-mta")
                arrival = arrival or _date(_field(block, "arrival-date"))
    return reporting_mta, arrival, dsn_recipients


def _original_ids(message: Message, original_parts: list[Message], full_text: str) -> tuple[list[str], list[str]]:
    """Identifiers of the original message (its headers, never its body) and the addresses
    its To/Cc headers name."""
    message_ids: list[str] = []
    original_to: list[str] = []
    for part in original_parts:
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            headers = payload[0]
        else:
            headers = email.message_from_string(_part_text(part), policy=compat32)
        message_ids.extend(_ids_from_headers(headers))
        original_to.extend(normalize_address(a) or "" for _, a in email.utils.getaddresses(
            [str(v) for v in headers.get_all("To", []) + headers.get_all("Cc", [])]))
    message_ids.extend(normalize_message_id(m) or "" for m in _MESSAGE_ID_LINE.findall(full_text))
    for name in ("In-Reply-To", "References"):  # Gmail's notices reference the original
        for found in _ANGLE_ID.findall(str(message.get(name) or "")):
            message_ids.append(normalize_message_id(found) or "")
    return message_ids, original_to


def _recipients(dsn_recipients: list[DsnRecipient], full_text: str, own: set[str | None],
                original_to: list[str]) -> list[str]:
    """Recipients: the DSN's, else the addresses the text quotes (``own``: the notice's own
    From and To, never a recipient)."""
    recipients = [r.final_recipient or r.original_recipient or "" for r in dsn_recipients]
    recipients += [r.original_recipient or "" for r in dsn_recipients]
    if any(recipients):
        return recipients
    # The notice's own words name the recipients; the quoted original's headers
    # (after the marker) name its sender too, so they only serve as a fallback.
    marker = _ORIGINAL_MARKER.search(full_text)
    words = full_text[: marker.start()] if marker else full_text
    quoted = full_text[marker.start():] if marker else ""
    for candidate in _ADDRESS.findall(_MESSAGE_ID_LINE.sub(" ", words)):
        address = normalize_address(candidate.strip(".-"))
        if address and address not in own and address.split("@")[0] not in _SYSTEM_LOCALS:
            recipients.append(address)
    if not any(recipients):
        quoted_to = list(original_to)
        for line in _QUOTED_TO.findall(quoted):
            quoted_to.extend(normalize_address(a) or "" for _, a in email.utils.getaddresses([line]))
        recipients = [a for a in quoted_to if a and a not in own]
    return recipients


def _diagnostics(dsn_recipients: list[DsnRecipient], text: str) -> tuple[list[str], list[str]]:
    """The diagnostics (the DSN's, else the replies the text quotes) and the RFC 3463 status
    codes (the DSN's, else those in the diagnostics, else in the text)."""
    diagnostics = [r.diagnostic_code for r in dsn_recipients if r.diagnostic_code]
    if not diagnostics:
        found = _RECIPIENT_REASON.findall(text) + _REPLY.findall(text)
        diagnostics = [" ".join(m.split()).strip("'\"")[:MAX_DIAGNOSTIC_CHARS] for m in found]
    codes = [r.status for r in dsn_recipients if r.status]
    codes += _STATUS.findall("\n".join(diagnostics))
    if not codes:
        codes += _STATUS.findall(text)
    return diagnostics, codes


def _kind(recipients: list[DsnRecipient], subject: str, text: str, codes: list[str]) -> Kind:
    """RFC 3464 Action decides (failed > delayed > delivered/relayed/expanded); without
    one the Status class (RFC 3463: 5 permanent, 4 transient, 2 success), then the
    wording of the subject, then of the text."""
    actions = {r.action for r in recipients if r.action}
    if "failed" in actions:
        return "failure"
    if "delayed" in actions:
        return "delay"
    if actions & {"delivered", "relayed", "expanded"}:
        return "success"
    reported = {r.status[0] for r in recipients if r.status}
    for status_class, kind in (("5", "failure"), ("4", "delay"), ("2", "success")):
        if status_class in reported:
            return kind  # type: ignore[return-value]
    classes = {code[0] for code in codes}
    for words in (subject, text):
        if _DELAY.search(words):
            return "delay"
        if _FAILURE.search(words):
            return "failure"
        if _SUCCESS.search(words):
            return "success"
    if "5" in classes:
        return "failure"
    if "4" in classes:
        return "delay"
    return "unknown"


# --- containers -----------------------------------------------------------------------

def parse(stream: BinaryIO, name: str = "message",
          max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Iterator[Notification | Quarantined]:
    """Notices in a stream: an mbox when it starts with a From_ line, else one message.
    ``stream`` must support ``peek`` (a buffered or gzip file)."""
    head = stream.peek(1024)[:1024] if hasattr(stream, "peek") else b""
    messages = iter_mbox(stream, max_bytes) if looks_like_mbox(head) else iter_single(stream, name, max_bytes)
    for item in messages:
        yield parse_message(item)


def parse_path(path: Path, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Iterator[Notification | Quarantined]:
    """Notices in a ``.eml`` file, an mbox (plain or gzip) or a Maildir folder."""
    for item in iter_path(path, max_bytes):
        yield parse_message(item)
