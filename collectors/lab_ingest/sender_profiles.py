"""The lab's sender profiles as provenance: ``evidence/senders.json`` (format
``mtasts-lab-senders/1``), written by ``mtasts lab up``: for each profile the MTA and its
version, its TLS policy (MTA-STS with a lazy or primed policy cache, DANE) and its own
notice timers, so that every timing comparison can print the timers beside it.

One JSON object: ``format``, ``lab_started_at`` (RFC 3339), ``base``, ``tlsa_labels``
(lab servers whose MX host publishes TLSA records) and ``profiles`` ({name: {...}}). A
file that is not such an object, or a profile without the fields below, is quarantined.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from collectors.lab_ingest.normalize import parse_timestamp
from collectors.lab_ingest.records import Quarantined
from collectors.lab_ingest.streams import open_maybe_gzip

FORMAT = "mtasts-lab-senders/1"
MAX_BYTES = 1024 * 1024
MTAS = ("postfix", "exim")
DANE = ("none", "opportunistic", "required")


@dataclass(frozen=True, slots=True)
class SenderProfileRecord:
    """One sender profile of one lab run."""

    lab_started_at: datetime
    provider: str                 # the profile name: the ledger's provider
    description: str | None
    mta: str                      # postfix | exim
    mta_version: str | None
    mta_sts: bool
    policy_cache: str | None      # lazy | primed (MTA-STS profiles)
    dane: str                     # none | opportunistic | required
    notices: str                  # delay+failure | failure-only | quick+updates
    timers: dict[str, str]        # the MTA's own parameter names -> values
    addresses: tuple[str, ...]    # the addresses it sends from
    tlsa_labels: tuple[str, ...]
    position: str = ""


def sniff(head: bytes) -> bool:
    """True for a senders.json (its format marker near the start)."""
    text = head.lstrip()
    return text.startswith(b"{") and FORMAT.encode() in text[:512]


def parse(stream: BinaryIO) -> Iterator[SenderProfileRecord | Quarantined]:
    raw = stream.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        yield Quarantined("file", raw[:4096], f"larger than {MAX_BYTES} bytes")
        return
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        yield Quarantined("file", raw[:4096], f"not JSON: {exc}")
        return
    started = parse_timestamp(doc.get("lab_started_at")) if isinstance(doc, dict) else None
    profiles = doc.get("profiles") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or started is None or not isinstance(profiles, dict):
        yield Quarantined("file", raw[:4096], f"not a {FORMAT} document with lab_started_at and profiles")
        return
    labels = tuple(str(x) for x in doc.get("tlsa_labels") or () if isinstance(x, str))
    for name, entry in profiles.items():
        record = _profile(str(name), entry, started, labels)
        if record is None:
            yield Quarantined(f"profile {name}", json.dumps(entry)[:4096].encode(),
                              "profile without mta, dane, notices or timers")
        else:
            yield record


def _profile(name: str, entry: Any, started: datetime, labels: tuple[str, ...]) -> SenderProfileRecord | None:
    if not isinstance(entry, dict):
        return None
    timers = entry.get("timers")
    if entry.get("mta") not in MTAS or entry.get("dane") not in DANE or not isinstance(entry.get("notices"), str) \
            or not isinstance(timers, dict):
        return None
    addresses = tuple(str(entry[k]) for k in ("address", "address6") if entry.get(k))
    return SenderProfileRecord(
        lab_started_at=started, provider=name, description=entry.get("description"), mta=entry["mta"],
        mta_version=entry.get("version"), mta_sts=bool(entry.get("mta_sts")),
        policy_cache=entry.get("policy_cache"), dane=entry["dane"], notices=entry["notices"],
        timers={str(k): str(v) for k, v in timers.items()}, addresses=addresses, tlsa_labels=labels,
        position=f"profile {name}")


def parse_path(path: Path) -> Iterator[SenderProfileRecord | Quarantined]:
    """Every profile record of a ``senders.json`` file (plain or gzip)."""
    with open_maybe_gzip(path) as stream:
        yield from parse(stream)
