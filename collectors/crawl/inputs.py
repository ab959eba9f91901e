"""Read a top list (Tranco, Cloudflare Radar, Majestic CSV or a plain list) as a stream of
normalised entries; an entry that is not a usable domain name carries the reason instead.

Nothing here raises on a bad entry: bad entries are yielded with ``reason`` set so the
caller can count and quarantine them. Only an unreadable *source* (missing file, no
network for a Tranco download) raises :class:`InputError`.
"""

from __future__ import annotations

import csv
import gzip
import io
import ipaddress
import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import idna

from collectors.store import DomainReason

# RFC 1035 2.3.4: 63 octets a label, 255 a wire name (253 in text without the root dot).
MAX_LABEL = 63
MAX_NAME = 253
# A list line longer than this is no entry of any list format (a Majestic row is ~200
# characters): it is quarantined with its first MAX_LINE_CHARS kept, never held whole.
# Below the csv module's field limit (131,072), which would otherwise raise.
MAX_LINE_CHARS = 65536
LINE_TOO_LONG = "line_too_long"

_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_RANK_HEADERS = ("rank", "globalrank", "global_rank", "position")
_DOMAIN_HEADERS = ("domain", "host", "hostname", "origin", "name")


class InputError(Exception):
    """The list as a whole cannot be read (missing file, no network, unknown list)."""


@dataclass(frozen=True, slots=True)
class InputEntry:
    """One entry of the list: where it was, its rank, and the domain or why it is unusable."""

    position: int          # 1-based line number in the source (the order of the list)
    rank: int | None       # the list's rank, or the entry's ordinal in a plain list
    raw: str               # the entry as read (the domain field of a CSV row)
    domain: str | None     # the normalised A-label domain, None when invalid
    reason: str | None     # why the entry is unusable (a stable code), None when valid
    detail: str | None = None  # what the code alone does not say (what an overlong line lost)


def normalise_domain(value: str) -> tuple[str | None, DomainReason | None]:
    """Lower-case, strip one trailing dot, IDN to A-label (UTS 46); ``(domain, None)`` or
    ``(None, reason)`` (the store's ``DomainReason``)."""
    s = value.strip().strip('"').strip()
    if not s:
        return None, "empty"
    if _SCHEME.match(s) or "/" in s or "?" in s or "@" in s:
        return None, "url"
    candidate = s[1:-1] if s.startswith("[") and s.endswith("]") else s
    try:
        ipaddress.ip_address(candidate)
        return None, "ip_address"
    except ValueError:
        pass
    if ":" in s:  # host:port or garbage; neither is a domain
        return None, "url" if re.match(r"^[^:]+:\d+$", s) else "invalid_characters"
    if s.endswith("."):
        s = s[:-1]
    if not s.isascii():
        try:
            s = idna.encode(s, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None, "invalid_idn"
    s = s.lower()
    if len(s) > MAX_NAME:
        return None, "name_too_long"
    labels = s.split(".")
    for label in labels:
        if not label:
            return None, "empty_label"
        if len(label) > MAX_LABEL:
            return None, "label_too_long"
        if not _LDH_LABEL.match(label):
            return None, "invalid_characters"
    if len(labels) < 2:
        return None, "single_label"
    if labels[-1].isdigit():
        return None, "numeric_tld"
    if any(label.startswith("xn--") for label in labels):
        try:  # an A-label must decode to a valid U-label (RFC 5891 5.4)
            idna.decode(s)
        except (idna.IDNAError, UnicodeError, ValueError):
            return None, "invalid_idn"
    return s, None


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    # surrogateescape: undecodable bytes survive to the quarantine instead of crashing.
    return io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")


def _is_int(text: str) -> bool:
    return text.strip().isdigit()


def read_entries(path: str | os.PathLike[str], top: int | None = None) -> Iterator[InputEntry]:
    """Stream the entries of a local list file (optionally gzip), format detected from the
    first data line: ``rank,domain`` (Tranco), a CSV with a header naming the domain column
    (Cloudflare Radar ``domain``, Majestic ``GlobalRank,...,Domain,...``), or one domain a
    line (``#`` comments allowed). ``top`` keeps the first N entries of the list."""
    path = Path(path)
    try:
        fh = _open_text(path)
    except OSError as exc:
        raise InputError(f"cannot read list {path}: {exc.strerror or exc}") from exc
    with fh:
        try:
            yield from _entries(fh, top)
        except OSError as exc:  # e.g. a truncated gzip
            raise InputError(f"cannot read list {path}: {exc}") from exc


def bounded_lines(fh: io.TextIOBase, cap: int = MAX_LINE_CHARS) -> Iterator[tuple[str, int | None]]:
    """Each line without its terminator, at most ``cap`` characters of it: (text, None), or
    for a longer line (its first ``cap`` characters, its whole length in bytes). The rest
    of an overlong line is read in ``cap``-sized pieces and dropped: memory stays flat."""
    while True:
        line = fh.readline(cap + 2)  # room for a CRLF after exactly ``cap`` characters
        if not line:
            return
        text = line.rstrip("\r\n")
        if len(text) <= cap:
            yield text, None
            continue
        size = len(line.encode("utf-8", "surrogateescape"))
        piece = line
        while piece and not piece.endswith(("\n", "\r")):
            piece = fh.readline(cap)
            size += len(piece.encode("utf-8", "surrogateescape"))
        yield text[:cap], size - (len(piece) - len(piece.rstrip("\r\n")))


def overlong_detail(size: int, kept: str) -> str:
    """What an overlong line lost, for its quarantine reason."""
    return f"line of {size:,} bytes; its first {len(kept):,} characters kept"


def _entries(fh: io.TextIOBase, top: int | None) -> Iterator[InputEntry]:
    domain_col: int | None = None
    rank_col: int | None = None
    mode: str | None = None  # "csv" or "plain"
    count = 0  # entries so far: also the rank of a plain-list entry
    lineno = 0
    for text, overlong in bounded_lines(fh):
        lineno += 1
        if top is not None and count >= top:
            return
        if overlong is not None:
            count += 1
            yield InputEntry(lineno, count, text, None, LINE_TOO_LONG, overlong_detail(overlong, text))
            continue
        if lineno == 1 and text.startswith("\ufeff"):
            text = text[1:]
        if mode is None:
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            if "," in text or "\t" in text:
                mode = "csv"
                delimiter = "," if "," in text else "\t"
                fields = next(csv.reader([text], delimiter=delimiter))
                lowered = [f.strip().lower() for f in fields]
                header_domain = next((i for i, f in enumerate(lowered) if f in _DOMAIN_HEADERS), None)
                if header_domain is not None and not any(_is_int(f) for f in fields):
                    domain_col = header_domain
                    rank_col = next((i for i, f in enumerate(lowered) if f in _RANK_HEADERS), None)
                    continue  # the header is not an entry
                if len(fields) >= 2 and _is_int(fields[0]):
                    rank_col, domain_col = 0, 1
                else:
                    rank_col, domain_col = None, 0
            else:
                mode = "plain"
        if mode == "plain" and text.lstrip().startswith("#"):
            continue
        count += 1
        rank = count
        if mode == "plain":
            value = text.strip()
        else:
            fields = next(csv.reader([text], delimiter=delimiter)) if text else []
            value = fields[domain_col] if domain_col is not None and domain_col < len(fields) else ""
            if rank_col is not None and rank_col < len(fields) and _is_int(fields[rank_col]):
                rank = int(fields[rank_col])
        domain, reason = normalise_domain(value)
        yield InputEntry(lineno, rank, value if value else text, domain, reason)


# -- Tranco lists by id or date ---------------------------------------------------------

_TRANCO_SPEC = re.compile(r"^tranco:(?P<what>latest|\d{4}-\d{2}-\d{2}|[A-Z0-9]{4,6})$")


def is_tranco_spec(value: str) -> bool:
    """``tranco:latest``, ``tranco:YYYY-MM-DD`` or ``tranco:LISTID`` (e.g. ``tranco:X5Y7N``)."""
    return bool(_TRANCO_SPEC.match(value))


def default_tranco_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("MTASTS_TRANCO_CACHE", os.path.join(base, "tranco")))


def resolve_tranco(spec: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cached CSV (``rank,domain``) of a Tranco list, downloaded through the ``tranco``
    package's cache when missing (needs the internet). Raises :class:`InputError`."""
    m = _TRANCO_SPEC.match(spec)
    if not m:
        raise InputError(f"not a Tranco list spec: {spec!r} (use tranco:latest|tranco:DATE|tranco:ID)")
    cache = Path(cache_dir) if cache_dir else default_tranco_cache()
    what = m.group("what")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        from tranco import Tranco

        client = Tranco(cache_dir=str(cache))
        if not re.match(r"^\d{4}-\d{2}-\d{2}$|^latest$", what):
            cached = cache / f"{what}.csv"
            if cached.is_file() and client.cache_metadata.get(what):
                return cached  # offline: already in the package's cache
            client.list(list_id=what)
            return cached
        lst = client.list(date=what)
        return cache / f"{lst.list_id}.csv"
    except InputError:
        raise
    except Exception as exc:  # requests' ConnectionError, AttributeError for no list, OSError
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot get Tranco list {spec} (not in the cache at {cache} and the download "
            f"failed: {textwrap.shorten(detail, 200, placeholder=' ...')}); pass a local CSV instead"
        ) from exc
