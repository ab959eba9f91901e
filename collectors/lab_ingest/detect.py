"""Which kind of lab evidence a file or folder is, by its content (never by its name).

Order matters: the specific formats with a marker (published-lab exports, recorder
records, the ledger header, TLS-RPT) are tried before the generic ones (mailboxes of
notices, then syslog-style logs, then access logs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from collectors.lab_ingest import http_log
from collectors.lab_ingest.postfix_envelope import EnvelopeParser

FORMATS = ("postfix", "http", "recorder", "published_lab", "ledger", "notifications", "tlsrpt", "lab_senders")
HEAD_BYTES = 64 * 1024


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


def _optional(module: str, attribute: str) -> Callable | None:
    """A colleague's sniffer, or None while that module is not there."""
    try:
        mod = __import__(f"collectors.lab_ingest.{module}", fromlist=[attribute])
    except ImportError:
        return None
    return getattr(mod, attribute, None)


def _head(path: Path) -> bytes:
    from collectors.lab_ingest.streams import gunzip_head

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
    for fmt, module in (("published_lab", "published_lab"), ("recorder", "recorder"),
                        ("ledger", "ledger"), ("lab_senders", "sender_profiles"), ("tlsrpt", "tlsrpt_sources"),
                        ("notifications", "notifications")):
        sniff = _optional(module, "sniff")
        if sniff is not None and sniff(head):
            return fmt
    if sniff_postfix(head):
        return "postfix"
    if http_log.sniff(head):
        return "http"
    return None


def detect_path(path: Path) -> str | None:
    """The format of a file, or of a folder that is one source (Maildir, TLS-RPT POST spool).

    A plain folder gives ``"folder"``: its files are detected one by one."""
    if path.is_dir():
        is_maildir = _optional("mailsource", "is_maildir")
        tlsrpt_path = _optional("tlsrpt_sources", "sniff_path")
        notices_path = _optional("notifications", "sniff_path")
        if is_maildir is not None and is_maildir(path):
            if tlsrpt_path is not None and tlsrpt_path(path):
                return "tlsrpt"
            if notices_path is not None and notices_path(path):
                return "notifications"
            return "notifications"
        if tlsrpt_path is not None and tlsrpt_path(path):
            return "tlsrpt"
        return "folder"
    return detect_head(_head(path))
