"""Messages out of the three containers a mailbox comes in, one at a time: a single
message file (``.eml``, RFC 5322), an mbox (RFC 4155 ``From_``-separated, mboxrd
unescaping of ``>From ``) and a Maildir folder (``cur/`` and ``new/``; ``tmp/`` holds
deliveries still in progress and is skipped). Plain or gzip-compressed files.

Memory is bounded by one message (capped at ``max_bytes``; a longer one comes back
with ``truncated=True`` and its first ``max_bytes``), never by the size of the mailbox.
Shared by :mod:`notifications` and :mod:`tlsrpt_sources`; no parsing of the messages.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from collectors.lab_ingest.streams import gunzip_head, open_maybe_gzip, read_lines

DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024

# RFC 4155 appendix A: "From " addr-spec SP timestamp (asctime, optionally with a zone).
_FROM_LINE = re.compile(
    rb"^From (?P<sender>\S*)\s+(?P<date>[A-Z][a-z]{2}\s+[A-Z][a-z]{2}\s+\d{1,2}\s+\d{1,2}:\d{2}(?::\d{2})?"
    rb"(?:\s+[+-]\d{4}|\s+[A-Z]{2,5})?\s+\d{4})\s*$"
)
_ESCAPED_FROM = re.compile(rb"^>+From ")
_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,76}:")
_MAILDIR_TIME = re.compile(r"^(\d{9,11})[.]")


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message's bytes and where it came from."""

    position: str                   # "message 3 at line 120", "new/1727697600.M1P2.host", a file name
    raw: bytes                      # the message (RFC 5322), without the mbox From_ line
    envelope_date: datetime | None  # mbox From_ time or Maildir delivery time (UTC), a fallback for Date:
    truncated: bool                 # longer than the cap; ``raw`` holds only its start


def from_line_date(line: bytes) -> datetime | None:
    """The time on an mbox ``From_`` line (asctime; taken as UTC when it names no zone)."""
    match = _FROM_LINE.match(line.rstrip(b"\r\n"))
    if not match:
        return None
    words = match.group("date").decode("ascii", "replace").split()
    zone = None
    if len(words) == 6:
        zone = words.pop(4)
    try:
        moment = datetime.strptime(" ".join(words), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        try:
            moment = datetime.strptime(" ".join(words), "%a %b %d %H:%M %Y")
        except ValueError:
            return None
    if zone and zone[0] in "+-":
        offset = datetime.strptime(zone, "%z").tzinfo
        return moment.replace(tzinfo=offset).astimezone(timezone.utc)
    return moment.replace(tzinfo=timezone.utc)


def is_from_line(line: bytes) -> bool:
    """True for an mbox message separator line (RFC 4155)."""
    return _FROM_LINE.match(line.rstrip(b"\r\n")) is not None


def looks_like_mbox(head: bytes) -> bool:
    """The first bytes start an mbox: a ``From_`` line."""
    first = head.split(b"\n", 1)[0]
    return is_from_line(first)


def looks_like_email(head: bytes) -> bool:
    """The first bytes start an RFC 5322 message: header fields, at least a few of them."""
    lines = head.replace(b"\r\n", b"\n").split(b"\n")[:40]
    fields = 0
    for line in lines:
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            continue
        if not _HEADER_LINE.match(line):
            return False
        fields += 1
    return fields >= 2


def is_maildir(path: Path) -> bool:
    """A directory with ``cur/`` or ``new/`` (Maildir)."""
    return path.is_dir() and ((path / "cur").is_dir() or (path / "new").is_dir())


def peek(path: Path, size: int = 8192) -> bytes:
    """The first ``size`` bytes of a file, decompressed when it is gzip; for a Maildir
    the head of its first message. Empty when unreadable."""
    try:
        if path.is_dir():
            first = next(_maildir_files(path), None)
            return peek(first, size) if first is not None else b""
        with path.open("rb") as handle:
            head = handle.read(size)
    except OSError:
        return b""
    if head[:2] == b"\x1f\x8b":
        return gunzip_head(head)[:size]
    return head


def iter_single(stream: BinaryIO, position: str,
                max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Iterator[RawMessage]:
    """One message file. A stream that fails mid-read (a truncated gzip) yields what was
    read, marked truncated."""
    try:
        data = stream.read(max_bytes + 1)
        failed = False
    except (OSError, EOFError, zlib.error):
        data, failed = b"", True
    yield RawMessage(position, data[:max_bytes], None, failed or len(data) > max_bytes)


def iter_mbox(stream: BinaryIO,
              max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Iterator[RawMessage]:
    """Messages of an mbox, line by line. A message starts at a ``From_`` line that opens
    the file or follows an empty line (RFC 4155 section 2); ``>From `` lines lose one
    ``>`` (mboxrd). Text before the first ``From_`` line comes out as a message of its own
    so that nothing is dropped silently (the caller finds it is not a message). A stream
    that breaks off (truncated gzip) ends its last message with ``truncated=True``."""
    parts: list[bytes] = []
    size = 0
    truncated = False
    index = 0
    start_line = 1
    envelope: datetime | None = None
    previous_blank = True

    def current() -> RawMessage | None:
        if index == 0 and size == 0:
            return None
        raw = b"".join(parts)
        # The empty line before the next From_ belongs to the mbox, not the message.
        if raw.endswith(b"\r\n\r\n"):
            raw = raw[:-2]
        elif raw.endswith(b"\n\n"):
            raw = raw[:-1]
        where = (f"message {index} at line {start_line}" if index
                 else "text before the first From_ line")
        return RawMessage(where, raw, envelope, truncated)

    for line in read_lines(stream, max_bytes):
        if line.broken:
            truncated = True
            break
        data = line.data
        if previous_blank and data.startswith(b"From ") and is_from_line(data):
            message = current()
            if message is not None:
                yield message
            index += 1
            parts, size, truncated = [], 0, False
            envelope = from_line_date(data)
            start_line = line.number
            previous_blank = False
            continue
        previous_blank = data in (b"\n", b"\r\n")
        if _ESCAPED_FROM.match(data):
            data = data[1:]
        if line.overlong or size + len(data) > max_bytes:
            if not truncated:
                parts.append(data[: max_bytes - size])
                size = max_bytes
            truncated = True
            continue
        parts.append(data)
        size += len(data)
    message = current()
    if message is not None:
        yield message


def _maildir_files(path: Path) -> Iterator[Path]:
    for sub in ("cur", "new"):
        folder = path / sub
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if entry.is_file() and not entry.name.startswith("."):
                yield entry


def maildir_delivery_time(name: str) -> datetime | None:
    """A Maildir file name starts with the delivery time in seconds (maildir(5))."""
    match = _MAILDIR_TIME.match(name)
    if not match:
        return None
    try:
        return datetime.fromtimestamp(int(match.group(1)), tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def iter_maildir(path: Path, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Iterator[RawMessage]:
    """Messages of a Maildir: ``cur/`` then ``new/``, each in file-name (delivery) order.
    An unreadable file comes back empty and truncated, so the caller quarantines it."""
    for entry in _maildir_files(path):
        position = f"{entry.parent.name}/{entry.name}"
        delivered = maildir_delivery_time(entry.name)
        try:
            with entry.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        except OSError:
            yield RawMessage(position, b"", delivered, True)
            continue
        yield RawMessage(position, data[:max_bytes], delivered, len(data) > max_bytes)


def iter_path(path: Path, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Iterator[RawMessage]:
    """Every message at ``path``: a Maildir, an mbox (plain or gzip) or one message file."""
    if path.is_dir():
        yield from iter_maildir(path, max_bytes)
        return
    with open_maybe_gzip(path) as stream:
        head = stream.peek(256) if hasattr(stream, "peek") else b""
        if looks_like_mbox(head[:256]):
            yield from iter_mbox(stream, max_bytes)
        else:
            yield from iter_single(stream, path.name, max_bytes)
