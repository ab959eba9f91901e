"""The format registry: every kind of lab evidence, one entry each.

An entry says how the kind is recognised by its content (never its name: ``sniff`` on the
decompressed first 64 KiB, ``sniff_folder`` for a folder that is one source), how it is
read (``parse``: a record parser over the path; none for a log read line by line from the
line source) and which tables it fills. :data:`REGISTRY` is in detection order: the formats
with a marker (published-lab exports, recorder records, the ledger header, TLS-RPT) before
the generic ones (mailboxes of notices, then syslog-style logs, then access logs). Every
parser is imported here statically: a broken parser module fails the import, loudly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from collectors.lab_ingest import (
    http_log, ledger, mailsource, notifications, published_lab, recorder, sender_profiles, tlsrpt_sources,
)
from collectors.lab_ingest.postfix_envelope import EnvelopeParser
from collectors.lab_ingest.postfix_log import (
    DeliveryRow, MessageRow, NoticeRow, OtherCountRow, OtherRow, ResolverRow, SessionRow,
)
from collectors.lab_ingest.streams import gunzip_head

HEAD_BYTES = 64 * 1024
# A plain folder (neither a Maildir nor a POST spool): its files are detected one by one.
FOLDER = "folder"


@dataclass(frozen=True, slots=True)
class TableSpec:
    """Where rows of one kind go: the table, its key column, and what a second row of a
    stored key does (``ignore``: the first is kept; ``replace``: a different reading, e.g. a
    session a re-read completed, replaces it)."""

    table: str
    key: str
    mode: Literal["ignore", "replace"]


@dataclass(frozen=True, slots=True)
class EvidenceFormat:
    """One kind of lab evidence: how it is recognised, read, and where it is stored."""

    name: str
    sniff: Callable[[bytes], bool]
    tables: tuple[str, ...]
    parse: Callable[[Path], Iterator[Any]] | None = None   # None: a log, read line by line
    sniff_folder: Callable[[Path], bool] | None = None

    @property
    def reads_lines(self) -> bool:
        """Whether the input is a log read by the line source (resumable), not by a parser."""
        return self.parse is None


def sniff_postfix(head: bytes) -> bool:
    """Most of the first lines are syslog / container / resolver log lines."""
    lines = [ln for ln in head.decode("utf-8", "replace").splitlines()[:40] if ln.strip()]
    if len(lines) > 1 and not head.endswith(b"\n"):
        lines = lines[:-1]          # the head may end in the middle of a line
    if not lines:
        return False
    parser = EnvelopeParser(2000)
    ok = sum(1 for ln in lines if parser.parse(ln) is not None)
    return ok * 2 > len(lines)


# The Postfix reader's row kinds, and the table each goes to.
POSTFIX_TABLES: dict[type, TableSpec] = {
    SessionRow: TableSpec("postfix_smtpd_sessions", "session_key", "replace"),
    MessageRow: TableSpec("postfix_messages", "message_key", "replace"),
    DeliveryRow: TableSpec("postfix_deliveries", "delivery_key", "ignore"),
    NoticeRow: TableSpec("postfix_notices", "notice_key", "ignore"),
    ResolverRow: TableSpec("mta_sts_resolver_events", "event_key", "ignore"),
    OtherRow: TableSpec("postfix_other_lines", "line_key", "ignore"),
    OtherCountRow: TableSpec("postfix_other_line_counts", "count_key", "replace"),
}
HTTP_TABLE = TableSpec("policy_fetches_http", "fetch_key", "ignore")
_RECEIVED = ("received_messages",)
_TLSRPT = ("tlsrpt_reports", "tlsrpt_policies", "tlsrpt_failures")

REGISTRY: dict[str, EvidenceFormat] = {f.name: f for f in (
    EvidenceFormat("published_lab", published_lab.sniff,
                   _RECEIVED + (HTTP_TABLE.table,) + _TLSRPT, parse=published_lab.parse_path),
    EvidenceFormat("recorder", recorder.sniff, _RECEIVED, parse=recorder.parse_path),
    EvidenceFormat("ledger", ledger.sniff, ("ledger",), parse=ledger.parse_path),
    EvidenceFormat("lab_senders", sender_profiles.sniff, ("lab_sender_profiles",), parse=sender_profiles.parse_path),
    # A Maildir of reports, or a POST spool, is TLS-RPT; any other Maildir holds notices.
    EvidenceFormat("tlsrpt", tlsrpt_sources.sniff, _TLSRPT, parse=tlsrpt_sources.parse_path,
                   sniff_folder=tlsrpt_sources.sniff_path),
    EvidenceFormat("notifications", notifications.sniff, ("notifications",),
                   parse=notifications.parse_path, sniff_folder=mailsource.is_maildir),
    EvidenceFormat("postfix", sniff_postfix, tuple(s.table for s in POSTFIX_TABLES.values())),
    EvidenceFormat("http", http_log.sniff, (HTTP_TABLE.table,)),
)}

# Every format's name, in the order ``--format`` offers them (the same set as REGISTRY's: tested).
FORMATS = ("postfix", "http", "recorder", "published_lab", "ledger", "notifications", "tlsrpt", "lab_senders")


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return b""
    if head[:2] == b"\x1f\x8b":
        head = gunzip_head(head, HEAD_BYTES)
    return head


def detect_head(head: bytes) -> str | None:
    """The format of content starting with ``head`` (decompressed), or None."""
    return next((f.name for f in REGISTRY.values() if f.sniff(head)), None)


def detect_path(path: Path) -> str | None:
    """The format of a file, or of a folder that is one source (Maildir, TLS-RPT POST spool).

    A plain folder gives :data:`FOLDER`: its files are detected one by one."""
    if path.is_dir():
        return next((f.name for f in REGISTRY.values() if f.sniff_folder is not None and f.sniff_folder(path)),
                    FOLDER)
    return detect_head(_head(path))
