"""Our lab's received-message records: the JSON lines that ``lab/recorder/mtasts-recorder``
appends, one per delivered message (format ``mtasts-recorder/1``, no message bodies).

Each line is one JSON object with ``format``, ``received_at`` (RFC 3339, UTC),
``server_label``, the envelope from Postfix's local(8) command environment
(``recipient``, ``original_recipient``, ``sender``, ``client_address``,
``client_helo``, ``client_hostname``, ``client_protocol``, ``envid``), ``message_id``
(the Message-ID header) and, from the topmost Received header that smtpd(8) writes
with ``smtpd_tls_received_header = yes``: ``received_with`` (ESMTPS, ...),
``queue_id``, ``tls_protocol``, ``tls_cipher`` and ``tls_bits`` (null without TLS).
A half-written last line (a writer killed mid-write) or any bad line is quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from collectors.lab_ingest.normalize import address_uuid, normalize_address, normalize_message_id, parse_timestamp
from collectors.lab_ingest.records import Quarantined
from collectors.lab_ingest.streams import open_maybe_gzip, read_json_lines

FORMAT = "mtasts-recorder/1"
MAX_LINE_BYTES = 256 * 1024

_STRING_FIELDS = ("recipient", "original_recipient", "sender", "client_address", "client_helo",
                  "client_hostname", "client_protocol", "envid", "message_id", "queue_id",
                  "received_with", "tls_protocol", "tls_cipher")


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    """One message a lab server received, as the recorder saw it."""

    received_at: datetime             # when the recorder ran (delivery time), UTC
    server_label: str                 # lab server label (a-f)
    recipient: str | None             # final envelope recipient, lower-cased
    original_recipient: str | None    # recipient before rewriting, lower-cased
    address_uuid: str | None          # UUID local part of the (original) recipient: joins the ledger
    sender: str | None                # envelope sender, lower-cased ("" / null sender -> None)
    client_address: str | None
    client_helo: str | None
    client_hostname: str | None
    client_protocol: str | None       # Postfix's protocol name, e.g. ESMTP
    envid: str | None
    message_id: str | None            # normalized: no angle brackets
    queue_id: str | None              # the receiving Postfix's queue id
    received_with: str | None         # ESMTPS, ESMTPSA, ESMTP, SMTP, UTF8SMTPS ...
    tls_protocol: str | None          # TLSv1.3 ... ; None: no TLS
    tls_cipher: str | None
    tls_bits: int | None              # the cipher's effective key bits
    position: str = ""                # "line 12"


def sniff(head: bytes) -> bool:
    """True when the first line is a recorder record."""
    first = head.lstrip().split(b"\n", 1)[0]
    return first.startswith(b"{") and b'"format"' in first and FORMAT.encode() in first


def _record(position: str, value: Any) -> RecordedMessage | str:
    """A record from one decoded line, or the reason it is not one."""
    if not isinstance(value, dict):
        return "line is not a JSON object"
    if value.get("format") != FORMAT:
        return f"format is {value.get('format')!r}, expected {FORMAT!r}"
    received_at = parse_timestamp(value.get("received_at") if isinstance(value.get("received_at"), str) else None)
    if received_at is None:
        return f"received_at is not an RFC 3339 time with an offset: {value.get('received_at')!r}"
    label = value.get("server_label")
    if not isinstance(label, str) or not label:
        return "server_label is missing"
    for key in _STRING_FIELDS:
        if value.get(key) is not None and not isinstance(value[key], str):
            return f"{key} is not a string"
    bits = value.get("tls_bits")
    if bits is not None and (not isinstance(bits, int) or isinstance(bits, bool)):
        return "tls_bits is not an integer"
    recipient = normalize_address(value.get("recipient"))
    original = normalize_address(value.get("original_recipient"))
    if recipient is None and original is None:
        return "neither recipient nor original_recipient is an address"

    def text(key: str) -> str | None:
        return value.get(key) or None

    return RecordedMessage(
        received_at=received_at,
        server_label=label.lower(),
        recipient=recipient,
        original_recipient=original,
        address_uuid=address_uuid(original) or address_uuid(recipient),
        sender=normalize_address(value.get("sender")),
        client_address=text("client_address"),
        client_helo=text("client_helo"),
        client_hostname=text("client_hostname"),
        client_protocol=text("client_protocol"),
        envid=text("envid"),
        message_id=normalize_message_id(value.get("message_id")),
        queue_id=text("queue_id"),
        received_with=text("received_with"),
        tls_protocol=text("tls_protocol"),
        tls_cipher=text("tls_cipher"),
        tls_bits=bits,
        position=position,
    )


def parse(stream: BinaryIO) -> Iterator[RecordedMessage | Quarantined]:
    """Every record of a recorder file, line by line."""
    for item in read_json_lines(stream, MAX_LINE_BYTES, half_written_reason=(
            "half-written last line (no newline, not complete JSON)")):
        if isinstance(item, Quarantined):
            yield item
            continue
        position, data, value = item
        result = _record(position, value)
        yield Quarantined(position, data, result) if isinstance(result, str) else result


def parse_path(path: Path) -> Iterator[RecordedMessage | Quarantined]:
    """Every record of a recorder file (plain or gzip)."""
    with open_maybe_gzip(path) as stream:
        yield from parse(stream)
