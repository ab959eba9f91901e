"""One spelling for addresses, Message-IDs, lab labels and times, so that evidence from
every source (ledger, recorder, published lab, notices) joins in SQL on equal strings.

Pure functions; none raises on bad input (they return ``None`` instead).
"""

from __future__ import annotations

import re
import uuid as uuid_module
from datetime import datetime, timezone

_ADDRESS = re.compile(r"^[^\s@<>]+@[^\s@<>]+$")
_MESSAGE_ID = re.compile(r"<?\s*([^<>\s]+@[^<>\s]+?)\s*>?$")


def normalize_address(value: str | None) -> str | None:
    """``Local@Example.ORG`` -> ``local@example.org``; angle brackets and an ``rfc822;``
    address-type prefix (RFC 3464 section 2.3.2) are removed. ``None`` when no address.

    The whole address is lower-cased: SMTP local parts are case-sensitive in theory
    (RFC 5321 section 2.4), but the lab's local parts are UUIDs, which providers may
    re-case, and matching must survive that.
    """
    if not value:
        return None
    text = value.strip()
    if ";" in text:
        kind, _, rest = text.partition(";")
        if kind.strip().lower() in ("rfc822", "utf-8", "x-unknown"):
            text = rest.strip()
    text = text.strip().strip("<>").strip()
    if not _ADDRESS.match(text):
        return None
    return text.lower()


def normalize_message_id(value: str | None) -> str | None:
    """``<ABC@host>`` -> ``ABC@host``: no brackets, no whitespace, case kept (RFC 5322
    section 3.6.4 makes msg-id an opaque token). ``None`` when it is not an id."""
    if not value:
        return None
    match = _MESSAGE_ID.match(value.strip())
    return match.group(1) if match else None


def lab_label(address: str | None) -> str | None:
    """The lab server label of a test address: the first label of its domain
    (``<uuid>@b.audit.example.org`` -> ``b``)."""
    normalized = normalize_address(address)
    if normalized is None:
        return None
    domain = normalized.rsplit("@", 1)[1]
    first = domain.split(".", 1)[0]
    return first or None


def address_uuid(address: str | None) -> str | None:
    """The UUID local part of a test address in canonical lower-case form, or ``None``
    when the local part is not a UUID (a hand-made address, ``postmaster``)."""
    normalized = normalize_address(address)
    if normalized is None:
        return None
    local = normalized.rsplit("@", 1)[0]
    try:
        return str(uuid_module.UUID(local))
    except ValueError:
        return None


def parse_timestamp(value: str | None, *, assume_utc: bool = False) -> datetime | None:
    """An ISO 8601 / RFC 3339 time (``T`` or space, ``Z`` or an offset, PostgreSQL's
    ``+00``) as an aware datetime. A time with no offset is ``None`` unless
    ``assume_utc`` (for sources documented to write UTC)."""
    if not value:
        return None
    text = value.strip()
    if len(text) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        if not assume_utc:
            return None
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def utc_iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``: the one way this package writes a time."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
