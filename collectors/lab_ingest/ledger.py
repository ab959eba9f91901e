"""The send ledger: which provider and account sent which test message to which lab
address, and when. Evidence from the lab servers joins it on the address UUID.

Two sources: :func:`make_addresses` (fresh ``<uuid4>@<label>.<lab domain>`` test
addresses, one per lab server, as the published lab made them) and
:func:`parse_ledger_csv`, a CSV (RFC 4180) with the header
``provider,sent_at,from,to,message_id`` (``sent_at`` ISO 8601 with a UTC offset;
``message_id`` may be empty; an optional ``account`` column names the sending
account, else it is ``from``; extra columns are ignored).
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from collectors.lab_ingest.normalize import (
    address_uuid, lab_label, normalize_address, normalize_message_id, parse_timestamp,
)
from collectors.lab_ingest.records import Quarantined
from collectors.lab_ingest.streams import open_maybe_gzip

LEDGER_COLUMNS = ("provider", "sent_at", "from", "to", "message_id")
DEFAULT_LABELS = "abcdef"
MAX_ROW_CHARS = 64 * 1024


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One test message: sent (or, from make_addresses, about to be sent) by an account."""

    provider: str                  # e.g. "gmail", "postfix-mta-sts"
    account: str | None            # the sending account
    sent_at: datetime              # UTC-aware; for make_addresses the time the address was made
    from_addr: str | None          # lower-cased
    to_addr: str                   # lower-cased test address
    message_id: str | None         # normalized (no angle brackets); None until known
    server_label: str | None       # lab server label: first label of the to-domain
    address_uuid: str | None       # the UUID local part (None for a hand-made address)
    source: str                    # "addresses" (make_addresses), "csv", "manual"
    position: str = ""             # "line 3" for a CSV row


def make_addresses(provider: str, account: str | None, lab_domain: str,
                   labels: str | list[str] | tuple[str, ...] = DEFAULT_LABELS,
                   now: datetime | None = None, source: str = "addresses") -> list[LedgerEntry]:
    """One fresh test address per lab server label: ``<uuid4>@<label>.<lab_domain>``.

    A random (version 4) UUID makes each address unguessable and unique, so anything
    arriving for it belongs to this send and nothing else."""
    domain = lab_domain.strip().strip(".").lower()
    return ledger_entries(provider, account, [f"{uuid.uuid4()}@{label.lower()}.{domain}" for label in labels],
                          now, source)


def ledger_entries(provider: str, account: str | None, addresses: list[str], now: datetime | None = None,
                   source: str = "addresses") -> list[LedgerEntry]:
    """The ledger's entries for test addresses made elsewhere (or by :func:`make_addresses`),
    sent or about to be sent by ``account`` of ``provider`` at ``now``."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    sender = normalize_address(account) if account else None
    entries = []
    for address in addresses:
        to_addr = address.strip().lower()
        entries.append(LedgerEntry(
            provider=provider, account=account, sent_at=moment, from_addr=sender, to_addr=to_addr,
            message_id=None, server_label=lab_label(to_addr), address_uuid=address_uuid(to_addr), source=source,
        ))
    return entries


def sniff(head: bytes) -> bool:
    """True when the first line is the ledger CSV header (any column order)."""
    first = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].strip()
    names = {name.strip().strip(b'"').lower() for name in first.split(b",")}
    return {n.encode() for n in LEDGER_COLUMNS} <= names


def _row_entry(row: dict[str, str], position: str) -> LedgerEntry | str:
    provider = (row.get("provider") or "").strip()
    if not provider:
        return "provider is empty"
    sent_text = (row.get("sent_at") or "").strip()
    sent_at = parse_timestamp(sent_text)
    if sent_at is None:
        if parse_timestamp(sent_text, assume_utc=True) is not None:
            return f"sent_at has no UTC offset: {sent_text!r} (write e.g. 2024-09-30T12:00:00Z)"
        return f"sent_at is not an ISO 8601 time: {sent_text!r}"
    to_addr = normalize_address(row.get("to"))
    if to_addr is None:
        return f"to is not an address: {row.get('to')!r}"
    from_text = (row.get("from") or "").strip()
    from_addr = normalize_address(from_text)
    if from_text and from_addr is None:
        return f"from is not an address: {from_text!r}"
    message_text = (row.get("message_id") or "").strip()
    message_id = normalize_message_id(message_text)
    if message_text and message_id is None:
        return f"message_id is not a Message-ID: {message_text!r}"
    account = (row.get("account") or "").strip() or from_addr
    return LedgerEntry(
        provider=provider, account=account, sent_at=sent_at.astimezone(timezone.utc),
        from_addr=from_addr, to_addr=to_addr, message_id=message_id,
        server_label=lab_label(to_addr), address_uuid=address_uuid(to_addr), source="csv",
        position=position,
    )


def _raw(values: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue().encode("utf-8", "surrogateescape")


def parse_ledger_csv(stream: BinaryIO) -> Iterator[LedgerEntry | Quarantined]:
    """Entries of a ledger CSV, row by row; a bad row is quarantined with the reason."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        reader = csv.reader(text)
        header: list[str] | None = None
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                yield Quarantined(f"line {reader.line_num}", b"", f"bad CSV: {error}")
                continue
            position = f"line {reader.line_num}"
            if header is None:
                header = [v.strip().lower() for v in values]
                missing = [c for c in LEDGER_COLUMNS if c not in header]
                if missing:
                    yield Quarantined(position, _raw(values),
                                      f"not a ledger header: lacks {', '.join(missing)} "
                                      f"(expected {','.join(LEDGER_COLUMNS)})")
                    return
                continue
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield Quarantined(position, _raw(values),
                                  f"{len(values)} fields where the header has {len(header)}")
                continue
            if sum(len(v) for v in values) > MAX_ROW_CHARS:
                yield Quarantined(position, _raw(values)[:MAX_ROW_CHARS], "row too long")
                continue
            result = _row_entry(dict(zip(header, values)), position)
            if isinstance(result, str):
                yield Quarantined(position, _raw(values), result)
            else:
                yield result
    except UnicodeError as error:  # surrogateescape makes this unreachable; kept as a guard
        yield Quarantined("input", b"", f"not text: {error}")
    finally:
        text.detach()  # leave the caller's stream open


parse = parse_ledger_csv


def parse_path(path: Path) -> Iterator[LedgerEntry | Quarantined]:
    """Every entry of a ledger CSV file (plain or gzip)."""
    with open_maybe_gzip(path) as stream:
        yield from parse_ledger_csv(stream)  # type: ignore[arg-type]


def append_ledger_csv(path: Path, entries: list[LedgerEntry]) -> None:
    """Append entries to a ledger CSV (writing the header first when the file is new).

    The file is the raw evidence: rows are only ever appended, so ``mtasts ingest`` of the
    grown file adds just the new rows. The account is written as ``from``."""
    new = not path.exists() or path.stat().st_size == 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if new:
            writer.writerow(LEDGER_COLUMNS)
        for e in entries:
            writer.writerow([
                e.provider,
                e.sent_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
                e.from_addr or e.account or "",
                e.to_addr,
                f"<{e.message_id}>" if e.message_id else "",
            ])
