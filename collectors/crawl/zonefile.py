"""Read a DNS zone file (RFC 1035 5.1 master file; the form ICANN's CZDS distributes) as a
stream of the registered domains it delegates, each once, as :class:`InputEntry` values.

A top-level zone lists each delegation as NS records (``example.com. 172800 in ns
ns1.example.net.``), several a domain, plus glue and DNSSEC records. The registered domains
are the owners of NS records strictly below the zone's apex, reduced to their registrable
domain (public suffix + 1 label, ICANN section of the Public Suffix List). Delegations of
public suffixes themselves (``fhv.se.`` in ``se.``) are skipped, not crawled.

Memory stays bounded for any zone size: the domains are spread by hash over spill files
on disk while the zone streams (plain or gzip), then each spill file is deduplicated on
its own, so at most one bucket's worth of names (about ``total / buckets``) is held in
Python at a time. Output order: by bucket, first occurrence first within a bucket.

Nothing here raises on bad input: an unparseable line, an owner name that is not a host
name, or a name outside the zone is yielded as an entry with ``reason`` set (the caller
quarantines it). Only an unreadable file raises :class:`~collectors.crawl.inputs.InputError`.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import re
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from publicsuffixlist import PublicSuffixList

from collectors.crawl.inputs import (LINE_TOO_LONG, MAX_LINE_CHARS, InputEntry, InputError, bounded_lines,
                                     normalise_domain, overlong_detail, read_entries)

GZIP_MAGIC = b"\x1f\x8b"
# RFC 1035 3.2.4 classes (plus RFC 3597 CLASSnn); a token that is one of these is the class.
_CLASSES = frozenset({"IN", "CH", "HS", "CS", "NONE", "ANY"})
_CLASS_GENERIC = re.compile(r"^CLASS\d+$", re.IGNORECASE)
# RFC 2308 4 TTLs are decimal seconds; BIND also accepts unit forms like 1h30m (accepted).
_TTL = re.compile(r"^(?:\d+|(?:\d+[smhdwSMHDW])+)$")
_SPECIAL = re.compile(r'["();\\]')
_SNIFF_TYPES = frozenset({"SOA", "NS", "A", "AAAA", "DS", "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM",
                          "DNSKEY", "TXT", "MX", "CNAME", "PTR", "SRV", "CAA", "TLSA"})
# A name already in the form normalise_domain returns (lower-case LDH labels of at most 63,
# at least two labels, a non-numeric TLD, no A-label to check): taken as it is, which
# saves most of the per-domain cost on a CZDS zone. Anything else goes through
# normalise_domain (inputs.py), the one definition of a usable domain.
CANONICAL_NAME = re.compile(r"^(?!.*(?:^|\.)xn--)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                            r"(?=[a-z0-9-]*[a-z-])[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_DIRECTIVES = ("$ORIGIN", "$TTL", "$INCLUDE", "$GENERATE")
_SPILL_BATCH = 200_000           # names buffered in memory before they go to the spill files
_BYTES_PER_BUCKET = 64 << 20     # about one bucket per 64 MiB of zone text (~0.5M NS lines)
_GZIP_RATIO = 5                  # a CZDS .txt.gz inflates about five times


@dataclass(slots=True)
class ZoneStats:
    """Counts of one read: lines and records seen, what became a domain, what was skipped."""

    lines: int = 0
    records: int = 0
    delegations: int = 0          # NS records below the apex (before deduplication)
    domains: int = 0              # distinct registered domains yielded
    skipped: dict[str, int] = field(default_factory=dict)   # valid records that are no domain
    bad: dict[str, int] = field(default_factory=dict)       # reasons of yielded bad entries
    apex: str | None = None
    buckets: int = 0

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


@dataclass(frozen=True, slots=True)
class _Record:
    """One logical record (RFC 1035 5.1: parentheses joined): first line, tokens, owner form."""

    lineno: int
    text: str                # the raw text (joined lines for a parenthesised record)
    tokens: tuple[str, ...]
    blank_owner: bool        # the line began with white space: the previous owner continues


# -- detection and opening ----------------------------------------------------------------

def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def _open_binary(path: Path) -> io.BufferedIOBase:
    """The file's bytes, inflated when it is gzip (by its magic number, not its name)."""
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")  # type: ignore[return-value]


def _open_text(path: Path) -> io.TextIOWrapper:
    # surrogateescape: undecodable bytes reach the quarantine instead of crashing the read.
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8", errors="surrogateescape", newline=None)


def looks_like_zone(path: str | os.PathLike[str], sample_lines: int = 200) -> bool:
    """Whether a file (plain or gzip, by content) reads as a master file rather than a
    domain list: a ``$ORIGIN``/``$TTL`` directive, or records with a class/TTL and a type."""
    try:
        with _open_text(Path(path)) as fh:
            seen = 0
            for line, _ in bounded_lines(fh):  # a 300 MB line is never held whole
                text = line.strip()
                if not text or text.startswith((";", "#")):
                    continue
                seen += 1
                if text.upper().startswith(_DIRECTIVES):
                    return True
                tokens = text.split(";", 1)[0].split()
                if "," not in text and len(tokens) >= 3:
                    head = [t.upper() for t in tokens[1:5]]
                    has_type = any(t in _SNIFF_TYPES for t in head)
                    has_class_or_ttl = any(t in _CLASSES or _TTL.match(t) for t in head)
                    if has_type and has_class_or_ttl:
                        return True
                if seen >= sample_lines:
                    return False
    except (OSError, EOFError, gzip.BadGzipFile):
        return False
    return False


_LDH_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")


def origin_from_filename(path: str | os.PathLike[str]) -> str | None:
    """The zone a CZDS-style file name suggests: ``com.txt.gz`` / ``se.zone`` -> ``com.`` / ``se.``."""
    name = Path(path).name.lower()
    for suffix in (".gz", ".txt", ".zone", ".db"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name + "." if _LDH_NAME.match(name) else None


# -- tokenising (RFC 1035 5.1) -----------------------------------------------------------

def _split_line(line: str) -> tuple[list[str], int, bool]:
    """Tokens of one physical line, the change of parenthesis depth, and whether a quoted
    string is left open. Quotes keep spaces and ';' (RFC 1035 5.1); ``\\X`` escapes a char."""
    tokens: list[str] = []
    depth = 0
    buf: list[str] = []
    quoted = False
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if quoted:
            if c == "\\" and i + 1 < n:
                buf.append(line[i:i + 2])
                i += 2
                continue
            buf.append(c)
            if c == '"':
                quoted = False
                tokens.append("".join(buf))
                buf = []
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            buf.append(line[i:i + 2])
            i += 2
            continue
        if c == ";":
            break
        if c == '"':
            if buf:
                tokens.append("".join(buf))
                buf = []
            buf.append(c)
            quoted = True
        elif c in "()":
            if buf:
                tokens.append("".join(buf))
                buf = []
            depth += 1 if c == "(" else -1
        elif c in " \t\r\n":
            if buf:
                tokens.append("".join(buf))
                buf = []
        else:
            buf.append(c)
        i += 1
    if buf:
        tokens.append("".join(buf))
    return tokens, depth, quoted


def _records(lines: Iterable[tuple[str, int | None]], stats: ZoneStats
             ) -> Iterator[_Record | tuple[int, str, str] | tuple[int, str, str, str]]:
    """Logical records of :func:`bounded_lines`; a malformed one as ``(lineno, raw, reason)``
    (and a detail for an overlong line or record, cut at ``MAX_LINE_CHARS``)."""
    pending: _Record | None = None
    depth = 0
    for lineno, (line, overlong) in enumerate(lines, 1):
        stats.lines = lineno
        if overlong is not None:
            yield (lineno, line, LINE_TOO_LONG, overlong_detail(overlong, line))
            continue
        if pending is not None and len(pending.text) > MAX_LINE_CHARS:
            yield (pending.lineno, pending.text[:MAX_LINE_CHARS], "record_too_long",
                   f"a parenthesised record over {MAX_LINE_CHARS:,} characters, cut there")
            pending, depth = None, 0
        if pending is None:
            if _SPECIAL.search(line) is None:  # the fast path: most CZDS lines
                tokens = line.split()
                if tokens:
                    yield _Record(lineno, line, tuple(tokens), line[0] in " \t")
                continue
            tokens, delta, quoted = _split_line(line)
            if quoted:
                yield (lineno, line, "unterminated_quote")
                continue
            if delta < 0:
                yield (lineno, line, "unbalanced_parentheses")
                continue
            if not tokens and delta == 0:
                continue
            record = _Record(lineno, line, tuple(tokens), bool(line) and line[0] in " \t")
            if delta == 0:
                yield record
            else:
                pending, depth = record, delta
            continue
        tokens, delta, quoted = _split_line(line)
        depth += delta
        pending = _Record(pending.lineno, pending.text + "\n" + line, pending.tokens + tuple(tokens),
                          pending.blank_owner)
        if quoted or depth < 0:
            yield (pending.lineno, pending.text, "unterminated_quote" if quoted else "unbalanced_parentheses")
            pending, depth = None, 0
        elif depth == 0:
            yield pending
            pending = None
    if pending is not None:
        yield (pending.lineno, pending.text, "unbalanced_parentheses")


def _record_type(tokens: tuple[str, ...]) -> str | None:
    """The type among ``[TTL] [class] type`` or ``[class] [TTL] type`` (RFC 1035 5.1)."""
    for token in tokens[:3]:
        if token.isdigit():
            continue
        upper = token.upper()
        if upper in _CLASSES or _TTL.match(token) or _CLASS_GENERIC.match(upper):
            continue
        return upper
    return None


def _labels(name: str) -> list[str] | None:
    """Presentation-format name (no trailing dot) to labels, ``\\X``/``\\DDD`` decoded
    (RFC 1035 5.1); None when an escape is malformed."""
    if "\\" not in name:
        return name.split(".") if name else []
    labels: list[str] = []
    buf: list[str] = []
    i, n = 0, len(name)
    while i < n:
        c = name[i]
        if c == "\\":
            if i + 4 <= n and name[i + 1:i + 4].isdigit():
                value = int(name[i + 1:i + 4])
                if value > 255:
                    return None
                buf.append(chr(value))
                i += 4
                continue
            if i + 1 >= n:
                return None
            buf.append(name[i + 1])
            i += 2
            continue
        if c == ".":
            labels.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    labels.append("".join(buf))
    return labels


def absolute_name(token: str, origin: str | None) -> tuple[str | None, str | None]:
    """An owner token made absolute (lower case, with the trailing dot): ``@`` is the
    origin, a name without a final dot is relative to it (RFC 1035 5.1). Returns
    ``(name, None)`` or ``(None, reason)``; escaped dots inside a label are refused."""
    if token == "@":
        return (origin, None) if origin else (None, "no_origin")
    if token.endswith(".") and not token.endswith("\\."):
        relative, base = token[:-1], ""
    else:
        if not origin:
            return None, "no_origin"
        relative, base = token, origin
    if not relative:  # "." is the root
        return (base or "."), None
    labels = _labels(relative)
    if labels is None:
        return None, "invalid_escape"
    if any("." in label for label in labels):
        return None, "invalid_characters"
    if any(not label for label in labels):
        return None, "empty_label"
    text = ".".join(labels).lower()
    if not base or base == ".":
        return text + ".", None
    return f"{text}.{base}".lower(), None


# -- registered domains ------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _icann_psl() -> PublicSuffixList:
    """The ICANN section of the Public Suffix List (parsed once: about 40 ms)."""
    return PublicSuffixList(only_icann=True)


class _Registrable:
    """The registrable domain below the apex (ICANN section of the PSL); cheap for the
    common depth-1 owner, whose public-suffix check is deferred to after deduplication."""

    def __init__(self, apex: str) -> None:
        self.apex = apex.rstrip(".")
        self._suffix = "." + self.apex if self.apex else ""
        self._psl = _icann_psl()

    def candidate(self, name: str) -> tuple[str | None, str]:
        """``(domain, "")`` for a name below the apex, else ``(None, why)``; ``why`` is
        ``apex``, ``out_of_zone`` (a bad entry) or ``public_suffix`` (a skip)."""
        bare = name.rstrip(".")
        if bare == self.apex:
            return None, "apex"
        if self.apex and not bare.endswith(self._suffix):
            return None, "out_of_zone"
        relative = bare[: -len(self._suffix)] if self._suffix else bare
        if "." not in relative:
            return bare, ""
        private = self._psl.privatesuffix(bare)
        if private is None:
            return None, "public_suffix"
        if not private.endswith(self._suffix) or private == self.apex:
            return None, "not_below_apex"
        return private, ""

    def keep(self, domain: str) -> bool:
        """False for a depth-1 delegation that is itself a public suffix (``fhv.se``);
        deeper candidates came through ``privatesuffix`` and are registrable already."""
        relative = domain[: -len(self._suffix)] if self._suffix else domain
        return "." in relative or not self._psl.is_public(domain)


# -- the reader --------------------------------------------------------------------------

def _bucket_count(path: Path, requested: int | None) -> int:
    if requested:
        return max(1, requested)
    try:
        size = path.stat().st_size * (_GZIP_RATIO if _is_gzip(path) else 1)
    except OSError:
        size = 0
    return max(1, min(4096, size // _BYTES_PER_BUCKET + 1))


def read_zone_entries(
    path: str | os.PathLike[str],
    *,
    origin: str | None = None,
    top: int | None = None,
    buckets: int | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    spill_batch: int = _SPILL_BATCH,
    stats: ZoneStats | None = None,
) -> Iterator[InputEntry]:
    """Stream the distinct registered domains a zone file delegates (see the module doc).

    ``origin`` is the zone's name when the file does not say (no ``$ORIGIN``/SOA before
    the first relative name); by default the first SOA owner, else the first ``$ORIGIN``,
    else the name the file name suggests (``com.txt.gz``), else the TLD of the first NS
    owner. ``top`` keeps the first N domains yielded. ``buckets`` (default: one per ~64 MiB
    of zone text) and ``spill_batch`` (names buffered before a write to the spill files)
    bound the memory: about ``spill_batch + distinct domains / buckets`` names. Entries have ``rank`` None and
    ``position`` the line of the domain's first NS record."""
    path = Path(path)
    stats = stats if stats is not None else ZoneStats()
    try:
        fh = _open_text(path)
    except OSError as exc:
        raise InputError(f"cannot read zone file {path}: {exc.strerror or exc}") from exc
    n_buckets = _bucket_count(path, buckets)
    stats.buckets = n_buckets
    with fh, tempfile.TemporaryDirectory(prefix="mtasts-zone-", dir=spill_dir) as spill:
        spill_paths = [Path(spill) / f"bucket-{i:04d}.tsv" for i in range(n_buckets)]
        try:
            yield from _spill(fh, path, origin, stats, spill_paths, max(1, spill_batch))
        except (OSError, EOFError) as exc:  # a truncated gzip, an unreadable block
            raise InputError(f"cannot read zone file {path}: {exc}") from exc
        registrable = _Registrable(stats.apex or "")
        yielded = 0
        for bucket in spill_paths:
            if not bucket.exists():
                continue
            for position, domain in _dedup_bucket(bucket):
                if top is not None and yielded >= top:
                    return
                if registrable.keep(domain):
                    stats.domains += 1
                    yielded += 1
                    yield InputEntry(position, None, domain, domain, None)
                else:
                    stats.skip("public_suffix")
            bucket.unlink()


def _dedup_bucket(bucket: Path) -> list[tuple[int, str]]:
    """The first occurrence of each name of one spill file, in order of first occurrence."""
    first: dict[str, int] = {}
    with open(bucket, "r", encoding="ascii") as fh:
        for line in fh:
            domain, _, position = line.rstrip("\n").partition("\t")
            if domain not in first:
                first[domain] = int(position)
    return sorted(((p, d) for d, p in first.items()))


def _spill(fh: io.TextIOWrapper, path: Path, origin: str | None, stats: ZoneStats,
           spill_paths: list[Path], spill_batch: int) -> Iterator[InputEntry]:
    """Parse the zone; write each NS owner's registrable domain to its hash bucket; yield
    the bad entries as they come."""
    walk = _ZoneWalk(origin, origin_from_filename(path), stats)
    buckets = _Buckets(spill_paths, spill_batch)
    for item in _records(bounded_lines(fh), stats):
        if isinstance(item, tuple):
            yield _bad(stats, *item)
            continue
        domain, reason = walk.read(item)
        if reason is not None:
            yield _bad(stats, item.lineno, item.text, reason)
        elif domain is not None:
            stats.delegations += 1
            buckets.add(domain, item.lineno)
    buckets.flush()


def _bad(stats: ZoneStats, lineno: int, raw: str, reason: str, detail: str | None = None) -> InputEntry:
    """A bad entry (the caller quarantines it), counted by reason."""
    stats.bad[reason] = stats.bad.get(reason, 0) + 1
    return InputEntry(lineno, None, raw, None, reason, detail)


class _ZoneWalk:
    """One pass over a zone's records: the origin (``$ORIGIN``), the current owner, the
    apex with its registrable-domain rule, and the previous NS owner's outcome (CZDS lists
    each domain's NS records one after another, so it is worked out once per domain)."""

    def __init__(self, origin: str | None, fallback: str | None, stats: ZoneStats) -> None:
        current = origin.lower() if origin else None
        if current and not current.endswith("."):
            current += "."
        self.origin = current
        self.fallback = fallback                 # the zone the file name suggests
        self.stats = stats
        stats.apex = current.rstrip(".") if current else None
        self.registrable: _Registrable | None = _Registrable(stats.apex) if stats.apex is not None else None
        self.owner: str | None = None
        self.owner_token: str | None = None
        self.last_owner: str | None = None
        # (domain, None, None) | (None, bad reason, None) | (None, None, skip reason)
        self.last_outcome: tuple[str | None, str | None, str | None] = (None, None, None)

    def read(self, item: _Record) -> tuple[str | None, str | None]:
        """``(domain, None)`` for a delegation to spill, ``(None, reason)`` for a bad entry,
        ``(None, None)`` for a record that is no delegation (counted as skipped)."""
        if not item.blank_owner and item.tokens[0].startswith("$"):
            return None, self._directive(item.tokens)
        rest, reason = self._owner_of(item)
        if rest is None:
            return None, reason
        self.stats.records += 1
        rtype = _record_type(rest)
        if rtype is None:
            return None, "no_type"
        assert self.owner is not None
        if rtype == "SOA" and self.registrable is None:
            self._set_apex(self.owner.rstrip("."))
        if rtype != "NS":
            self.stats.skip("not_ns")
            return None, None
        if self.registrable is None:  # no SOA first (RFC 1035 5.2): the origin, else a TLD zone
            use_origin = self.origin and self.origin != "."
            self._set_apex(self.origin.rstrip(".") if use_origin else self.owner.rstrip(".").rsplit(".", 1)[-1])
        return self._delegation(self.owner)

    def _set_apex(self, apex: str) -> None:
        self.stats.apex = apex
        self.registrable = _Registrable(apex)

    def _directive(self, tokens: tuple[str, ...]) -> str | None:
        """Follow ``$ORIGIN``, ignore ``$TTL``; the bad reason of anything else."""
        directive = tokens[0].upper()
        if directive == "$ORIGIN" and len(tokens) >= 2:
            name, reason = absolute_name(tokens[1], self.origin)
            if name is None:
                return reason or "bad_origin"
            self.origin = name
            self.owner_token = None  # a relative owner now means another name
            return None
        if directive == "$TTL" and len(tokens) >= 2:
            return None  # RFC 2308 4: the default TTL; TTLs do not matter here
        return "unsupported_directive"  # $INCLUDE would read another file: refused, like any unknown one

    def _owner_of(self, item: _Record) -> tuple[tuple[str, ...] | None, str | None]:
        """The record's tokens after its owner (a blank owner continues the previous one),
        or ``(None, reason)``."""
        if item.blank_owner:
            return (item.tokens, None) if self.owner is not None else (None, "no_owner")
        first = item.tokens[0]
        if first != self.owner_token or self.owner is None:
            if self.origin is None and not first.endswith(".") and self.fallback:
                self.origin = self.fallback
            name, reason = absolute_name(first, self.origin)
            if name is None:
                self.owner = self.owner_token = None
                return None, reason or "bad_owner"
            self.owner, self.owner_token = name, first
        return item.tokens[1:], None

    def _delegation(self, owner: str) -> tuple[str | None, str | None]:
        """The registrable domain an NS owner delegates, worked out once per owner."""
        if owner != self.last_owner:
            self.last_owner = owner
            assert self.registrable is not None
            candidate, why = self.registrable.candidate(owner)
            if candidate is None:
                self.last_outcome = (None, why, None) if why == "out_of_zone" else (None, None, why)
            else:
                if len(candidate) <= 253 and CANONICAL_NAME.match(candidate):
                    domain, reason = candidate, None
                else:
                    domain, reason = normalise_domain(candidate)
                self.last_outcome = (domain, None, None) if domain else (None, reason or "invalid", None)
        domain, bad_reason, skip_reason = self.last_outcome
        if domain is None and not bad_reason:
            self.stats.skip(skip_reason or "skipped")
        return domain, bad_reason


class _Buckets:
    """The spill files: names spread by hash, buffered, appended ``batch`` names at a time."""

    def __init__(self, paths: list[Path], batch: int) -> None:
        self.paths = paths
        self.batch = batch
        self.buffers: list[list[str]] = [[] for _ in paths]
        self.buffered = 0

    def add(self, domain: str, lineno: int) -> None:
        # crc32, not hash(): str hashes differ per process, and so would the bucket order
        # and with it which domains ``top`` keeps (the same command must give the same list).
        self.buffers[zlib.crc32(domain.encode("ascii")) % len(self.paths)].append(f"{domain}\t{lineno}\n")
        self.buffered += 1
        if self.buffered >= self.batch:
            self.flush()

    def flush(self) -> None:
        for buf, target in zip(self.buffers, self.paths):
            if buf:
                with open(target, "a", encoding="ascii") as out:
                    out.writelines(buf)
                buf.clear()
        self.buffered = 0


def read_list_or_zone(path: str | os.PathLike[str], top: int | None = None,
                      stats: ZoneStats | None = None) -> Iterator[InputEntry]:
    """A zone file through :func:`read_zone_entries` when it looks like one, else the
    list formats of :func:`collectors.crawl.inputs.read_entries`."""
    if looks_like_zone(path):
        return read_zone_entries(path, top=top, stats=stats)
    return read_entries(path, top=top)


__all__ = ["ZoneStats", "absolute_name", "looks_like_zone", "origin_from_filename",
           "read_list_or_zone", "read_zone_entries"]
