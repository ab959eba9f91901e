"""Bounded reading of evidence files: lines with a length cap, transparent gzip, and
capped whole-object reads. What keeps every parser's memory flat on hostile input."""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from collectors.lab_ingest.records import Quarantined
from collectors.rfc import ijson_violation

DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Line:
    """One physical line: its number (1-based), its bytes (terminator kept, cut at the
    cap) and whether it was cut (``overlong``) or the stream broke off in it (``broken``)."""

    number: int
    data: bytes
    overlong: bool = False
    broken: bool = False


def read_lines(stream: BinaryIO, max_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[Line]:
    """Lines of a binary stream. An overlong line yields its first ``max_bytes`` and the
    rest is skipped; a stream that fails (truncated gzip) ends with a ``broken`` line
    holding what arrived, never an exception."""
    number = 0
    while True:
        try:
            data = stream.readline(max_bytes + 1)
        except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
            yield Line(number + 1, f"[stream broken: {error}]".encode(), broken=True)
            return
        if not data:
            return
        number += 1
        if len(data) <= max_bytes:
            yield Line(number, data)
            continue
        # Overlong: keep the start, drain to the end of the line.
        head = data[:max_bytes]
        last = data
        try:
            while last and not last.endswith(b"\n"):
                last = stream.readline(max_bytes)
        except (OSError, EOFError, zlib.error):
            yield Line(number, head, overlong=True, broken=True)
            return
        yield Line(number, head, overlong=True)


def read_json_lines(stream: BinaryIO, max_bytes: int, *, half_written_reason: str,
                    overlong_keep: int | None = None) -> Iterator[tuple[str, bytes, Any] | Quarantined]:
    """Each non-blank line of a JSON-lines stream as (position, line bytes, decoded value);
    a line that is not I-JSON (RFC 7493: no lone surrogates, no numbers beyond doubles), too long (its first ``overlong_keep`` bytes kept) or where the
    stream broke off is quarantined instead, and a broken stream ends the lines."""
    for line in read_lines(stream, max_bytes):
        position = f"line {line.number}"
        if line.broken:
            yield Quarantined(position, line.data, "stream broke off (truncated gzip?)")
            return
        if line.overlong:
            yield Quarantined(position, line.data[:overlong_keep], f"line longer than {max_bytes} bytes")
            continue
        if not line.data.strip():
            continue
        try:
            value = json.loads(line.data)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            half = not line.data.endswith(b"\n")
            yield Quarantined(position, line.data, half_written_reason if half else f"not JSON: {error}")
            continue
        except RecursionError:
            yield Quarantined(position, line.data, "not JSON: nested too deeply")
            continue
        violation = ijson_violation(value)
        if violation is not None:  # a value no column can hold: the line as a whole is kept raw
            yield Quarantined(position, line.data, f"not I-JSON: {violation}")
            continue
        yield position, line.data, value


def read_capped(stream: BinaryIO, max_bytes: int) -> tuple[bytes, bool, str | None]:
    """Up to ``max_bytes`` of a stream: (data, longer_than_cap, error text or None)."""
    try:
        data = stream.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as error:
        return b"", False, str(error) or type(error).__name__
    return data[:max_bytes], len(data) > max_bytes, None


def gunzip_capped(data: bytes, max_bytes: int) -> tuple[bytes | None, str | None]:
    """Decompress gzip (or zlib) ``data`` to at most ``max_bytes``: (bytes, None), or
    (None, why) for a corrupt, truncated or oversized (bomb) stream."""
    decompressor = zlib.decompressobj(wbits=47)
    try:
        out = decompressor.decompress(data, max_bytes + 1)
    except zlib.error as error:
        return None, f"not valid gzip: {error}"
    if len(out) > max_bytes or decompressor.unconsumed_tail:
        return None, f"decompresses to more than {max_bytes} bytes"
    if not decompressor.eof:
        return None, "gzip stream is truncated"
    return out, None


def gunzip_head(head: bytes, size: int = 64 * 1024) -> bytes:
    """The start of a gzip stream's content, for format sniffing ('' when not gzip)."""
    try:
        return zlib.decompressobj(wbits=47).decompress(head, size)
    except zlib.error:
        return b""


def open_maybe_gzip(path: Path) -> BinaryIO:
    """A binary stream of the file's content, gunzipped when it starts with gzip's magic."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")
