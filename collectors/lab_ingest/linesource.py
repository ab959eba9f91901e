"""The line source: a log file's lines, plain or gzip, from where an earlier run stopped.

It reads a file once, in 1 MiB chunks, decompressing gzip members as it goes, and hashes as it
reads: the decoded bytes (what a later run checks before resuming), the first 4 KiB of them
(what finds a grown or rotated copy) and the raw bytes (the file's SHA-256). It also answers,
from ``ingested_files``, whether an earlier run read this very content (skip it) or the
beginning of it (resume where that run stopped), and the year of a classic-syslog file's
first line. It never raises on bad content: a truncated gzip stream is a ``problem``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generator, Iterator, Sequence

from collectors.lab_ingest.postfix_envelope import classic_month
from collectors.store import file_fingerprint

UTC = dt.timezone.utc
CHUNK_BYTES = 1 << 20
HEAD_HASH_BYTES = 4096
HEAD_SCAN_BYTES = 64 * 1024     # what is read to hash the head or find the first line's year
MAX_LINE_BYTES = 1 << 20        # a longer "line" is cut and quarantined
# Statuses of an ingested_files row whose reading a later run may skip or resume from.
_READ = "('complete', 'resumed', 'truncated')"


class LineSource:
    """Lines of a plain or gzip file from a decoded byte offset, never raising.

    Tracks what a resume needs: the decoded offset after the last complete line, a SHA-256
    of the decoded bytes up to there, and what went wrong (a truncated gzip stream). In the
    same pass it hashes the raw bytes as they are read (gzip included): once the lines are
    exhausted, :meth:`fingerprint` is the whole file's SHA-256 and size, with no second read.

    A resumed plain file is not read before ``start`` when the caller gives what that part
    contributes: ``raw_hasher`` (SHA-256 of the raw bytes up to ``raw_from``, which for a
    plain file are the decoded bytes an earlier check read) and ``start_line`` (the number
    of lines before ``start``). A gzip stream is always decompressed from its beginning."""

    def __init__(self, path: Path, start: int = 0, hasher: Any = None, *, raw_hasher: Any = None,
                 raw_from: int = 0, start_line: int | None = None, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = path
        self.start = start
        self.offset = start               # decoded offset after the last complete line handed out
        self.hasher = hasher or hashlib.sha256()
        self.head_hasher = hashlib.sha256()
        self.head_bytes = 0
        self.problem: str | None = None
        self.unterminated: bytes | None = None  # a last line without newline
        self.compressed = False
        self.overlong: list[tuple[int, int, bytes]] = []
        self._unterminated_at = (0, 0)
        self.raw_hasher = raw_hasher if raw_hasher is not None else hashlib.sha256()
        self.raw_from = raw_from if raw_hasher is not None else 0
        self.raw_bytes = 0                # raw bytes of the file passed (read, or accounted for)
        self.start_line = start_line
        self.chunk_bytes = chunk_bytes
        self.base = 0                     # decoded offset of the first chunk handed out
        # A plain file read whole: its raw bytes are the decoded ones, so the raw hash is the
        # decoded hash plus the unread tail (one SHA-256 pass, not two), unless a line over
        # MAX_LINE_BYTES was cut out of the decoded hash (then the file is hashed again).
        self._raw_from_decoded = hasher is None and raw_hasher is None and start == 0
        self._cut_out = False

    def fingerprint(self) -> tuple[str, int]:
        """SHA-256 and size of the file's raw bytes, once :meth:`chunks` has run to its end."""
        if self._raw_from_decoded:
            if self._cut_out:
                return file_fingerprint(self.path)
            whole = self.hasher.copy()
            if self.unterminated is not None:
                whole.update(self.unterminated)
            return whole.hexdigest(), self.raw_bytes
        return self.raw_hasher.hexdigest(), self.raw_bytes

    def _raw_blocks(self, fh: Any, at: int) -> Iterator[bytes]:
        """The file's raw blocks from offset ``at``, each hashed (from ``raw_from``) as read."""
        size = self.chunk_bytes
        pos = at
        while block := fh.read(size):
            if self._raw_from_decoded:
                pass
            elif pos >= self.raw_from:
                self.raw_hasher.update(block)
            elif pos + len(block) > self.raw_from:
                self.raw_hasher.update(memoryview(block)[self.raw_from - pos:])
            pos += len(block)
            self.raw_bytes = pos
            yield block

    def chunks(self) -> Iterator[bytes]:
        """Decoded chunks (gzip: every member; a truncated stream ends early), from offset 0,
        or from ``start`` for a plain file given ``raw_hasher`` and ``start_line``. The raw
        bytes are hashed to the end of the file even where decoding stops early."""
        with self.path.open("rb") as fh:
            magic = fh.read(2)
            if magic == b"\x1f\x8b":
                self._raw_from_decoded = False      # decoded bytes are not the file's
            at = 0
            if magic != b"\x1f\x8b" and self.start_line is not None and self.raw_from >= self.start > 0:
                at = self.start
            fh.seek(at)
            self.base = at
            raw = self._raw_blocks(fh, at)
            if magic != b"\x1f\x8b":
                yield from raw
                return
            self.compressed = True
            yield from self._gunzip(raw)
            for _ in raw:       # decoding stopped early (corrupt, trailing bytes): hash the rest
                pass

    def _gunzip(self, raw: Iterator[bytes]) -> Iterator[bytes]:
        d = zlib.decompressobj(wbits=31)
        fed = False
        for block in raw:
            while block:
                data = block
                while True:
                    saved = d.copy()
                    try:
                        # at most a chunk out per call: a bomb (1 MiB of gzip can hold 1 GB)
                        # comes out a chunk at a time, not all at once (issue 14)
                        out = d.decompress(data, CHUNK_BYTES)
                    except zlib.error as exc:
                        # Everything decoded before the fault is kept: this input again, a
                        # byte at a time, from the decoder's state before it.
                        yield from _salvage(saved, data)
                        self.problem = f"gzip data is corrupt after decoded byte {self.offset}: {exc}"
                        return
                    fed = True
                    if out:
                        yield out
                    if d.eof or not (d.unconsumed_tail or len(out) == CHUNK_BYTES):
                        break
                    data = d.unconsumed_tail
                if not d.eof:
                    break
                block = d.unused_data           # another gzip member may follow
                d, fed = zlib.decompressobj(wbits=31), False
                if block and block[:2] != b"\x1f\x8b":
                    if block.strip(b"\x00"):
                        self.problem = "trailing bytes after the gzip stream were ignored"
                    return
        tail = d.flush()
        if tail:
            yield tail
        if fed and not d.eof:
            self.problem = "gzip stream is truncated (what was read is kept)"

    def _hash_head(self, data: bytes) -> None:
        if self.head_bytes < HEAD_HASH_BYTES:
            piece = data[:HEAD_HASH_BYTES - self.head_bytes]
            self.head_hasher.update(piece)
            self.head_bytes += len(piece)

    def blocks(self) -> Generator[tuple[int, int, bytes], int | None, None]:
        """Complete lines from ``start`` in blocks: (decoded offset of the block, number of the
        line before it, the bytes, each line ending in a newline). What the compiled reader eats;
        it sends back the number of the block's last line (else they are counted here)."""
        pos = -1          # decoded offset of the start of ``carry`` (set by the first chunk)
        carry = b""
        lineno = 0
        start = self.start
        for chunk in self.chunks():
            if pos < 0:
                pos = self.base
                if pos:                     # a plain file read from ``start`` (seek)
                    lineno = self.start_line or 0
            if self.base == 0 and self.head_bytes < HEAD_HASH_BYTES:
                self._hash_head(chunk)
            if pos + len(carry) + len(chunk) <= start:
                # Before the resume point: already read (and hashed) by the earlier run.
                lineno += chunk.count(b"\n")
                pos += len(carry) + len(chunk)
                carry = b""
                continue
            data = carry + chunk if carry else chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                if len(carry) > MAX_LINE_BYTES:
                    self._cut_out = True
                    self.overlong.append((pos, lineno + 1, carry[:4096]))
                    pos += len(carry)
                    carry = b""
                continue
            complete, carry = data[:cut + 1], data[cut + 1:]
            if pos < start:
                skip = start - pos
                lineno += complete.count(b"\n", 0, skip)
                body = complete[skip:]
                base = start
            else:
                body, base = complete, pos
            if body:
                self.hasher.update(body)
                counted = yield base, lineno, body
                # a consumer that counted the block's lines sends the last line's number
                lineno = counted if counted is not None else lineno + body.count(b"\n")
            pos += len(complete)
            self.offset = pos
        if pos < 0:
            return
        if carry and pos + len(carry) > start:
            if pos < start:
                carry, pos = carry[start - pos:], start
            self.unterminated = carry
            self._unterminated_at = (pos, lineno + 1)

    def lines(self) -> Iterator[tuple[int, int, str]]:
        """(decoded byte offset, line number, text) of complete lines from ``start``; a line
        that is not UTF-8 is decoded with replacement characters (its offset stays the byte's)."""
        for base, lineno, body in self.blocks():
            off = base
            if body.isascii():
                for line in body.decode("ascii").split("\n")[:-1]:
                    lineno += 1
                    yield off, lineno, line.rstrip("\r")
                    off += len(line) + 1
            else:
                for raw in body.split(b"\n")[:-1]:
                    lineno += 1
                    yield off, lineno, raw.decode("utf-8", "replace").rstrip("\r")
                    off += len(raw) + 1

    def unterminated_block(self) -> tuple[int, int, bytes] | None:
        """The half-written last line as a block for the compiled reader: (offset, number of
        the line before it, its bytes with a newline added)."""
        if self.unterminated is None:
            return None
        pos, lineno = self._unterminated_at
        return pos, lineno - 1, self.unterminated + b"\n"

    def take_unterminated(self) -> tuple[int, int, str] | None:
        """The half-written last line (no newline), if any, to try as a line."""
        if self.unterminated is None:
            return None
        pos, lineno = self._unterminated_at
        return pos, lineno, self.unterminated.decode("utf-8", "replace").rstrip("\r")

    def accept_unterminated(self) -> None:
        """The last line parsed as a valid line: count it as read."""
        if self.unterminated is not None:
            self.hasher.update(self.unterminated)
            self.offset += len(self.unterminated)
            self.unterminated = None


class Rereading:
    """Lines passed through, remembering the offset of the latest one: whether it lies before
    ``read_before`` (read by an earlier run already)."""

    def __init__(self, lines: Iterator[tuple[int, int, str]], read_before: int) -> None:
        self.lines, self.read_before, self.offset = lines, read_before, -1

    def __iter__(self) -> Iterator[tuple[int, int, str]]:
        for line in self.lines:
            self.offset = line[0]
            yield line

    def already_read(self) -> bool:
        return self.offset < self.read_before


def _salvage(decompressor: Any, block: bytes) -> Iterator[bytes]:
    """What ``block`` decodes up to its first corrupt byte (zlib gives nothing of a call that
    fails, so the block is fed one byte at a time; this runs once, at the fault)."""
    for i in range(len(block)):
        try:
            out = decompressor.decompress(block[i:i + 1])
        except zlib.error:
            return
        if out:
            yield out
        if decompressor.eof:
            return


def decoded_prefix_hashers(path: Path, lengths: Sequence[int]) -> list[Any]:
    """SHA-256 hashers of the first ``length`` decoded bytes, one per length, all from one
    read of the file (None for a length beyond its end)."""
    return scan_prefix(path, lengths)[0]


def scan_prefix(path: Path, lengths: Sequence[int], count_to: int = 0) -> tuple[list[Any], int, bool]:
    """One read of the file's start, as far as the longest length: the decoded prefix hashers
    (see :func:`decoded_prefix_hashers`), the number of lines in the decoded bytes before
    ``count_to``, and whether the file is gzip."""
    pending = sorted(set(lengths))
    found: dict[int, Any] = {}
    h = hashlib.sha256()
    got = 0
    newlines = 0
    while pending and pending[0] <= 0:
        found[pending.pop(0)] = h.copy()
    # a short prefix (the head) needs no 1 MiB read
    src = LineSource(path, chunk_bytes=CHUNK_BYTES if max(lengths, default=0) > HEAD_SCAN_BYTES
                     else HEAD_SCAN_BYTES)
    for chunk in src.chunks():
        if not pending:
            break
        if got < count_to:
            newlines += chunk.count(b"\n", 0, count_to - got)
        used = 0
        while pending and got + len(chunk) - used >= pending[0]:
            cut = used + pending[0] - got
            h.update(chunk[used:cut])
            got, used = pending[0], cut
            found[pending.pop(0)] = h.copy()
        h.update(chunk[used:])
        got += len(chunk) - used
    return [found.get(length) for length in lengths], newlines, src.compressed


def first_year(path: Path, explicit: int | None) -> int:
    """The year of a classic-syslog file's first line: ``--year``, else the file's mtime year
    (one less when the first line's month is after the mtime's month: the log spans New Year)."""
    if explicit is not None:
        return explicit
    mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, UTC)
    try:
        for chunk in LineSource(path, chunk_bytes=HEAD_SCAN_BYTES).chunks():
            first = chunk.split(b"\n", 1)[0].decode("utf-8", "replace")
            if (classic_month(first) or 0) > mtime.month:
                return mtime.year - 1
            break
    except OSError:
        pass
    return mtime.year


@dataclass(frozen=True, slots=True)
class ResumeFrom:
    """Where a grown log is read from: ``start`` (the oldest state still open then),
    ``read_before`` (where the earlier run stopped), the year there, the decoded-prefix hasher
    at ``start``; for a plain file also the raw hasher at ``read_before`` and the number of
    lines before ``start`` (so that its parse starts there); and a note."""

    start: int
    read_before: int
    year: int | None
    hasher: Any
    raw_hasher: Any
    start_line: int | None
    note: str


def head_hash(path: Path) -> str | None:
    """SHA-256 of the first 4 KiB of the decoded stream (None for an empty file): what finds
    a grown or rotated copy of a log an earlier run read."""
    [hasher] = decoded_prefix_hashers(path, [HEAD_HASH_BYTES])
    return hasher.hexdigest() if hasher is not None else None


def already_ingested(con: Any, path: Path, fmt: str, head: str | None) -> tuple[str, str, int] | None:
    """(run, SHA-256, size) of an earlier complete reading of this very content, or None.

    Without reading more than its first 4 KiB: the same name, the same size, the same
    first 4 KiB, and not modified since that reading, unless that reading broke off (a corrupt
    or cut gzip: a repaired copy may keep name, size, time and head). Under another name (a rotated log:
    the same first 4 KiB and size), touched since, or too short to have a 4 KiB head: its
    SHA-256 must equal the stored one (one read, no parse). In doubt it is parsed (every
    row is keyed: a re-read adds nothing twice)."""
    st = path.stat()
    mtime = dt.datetime.fromtimestamp(st.st_mtime, UTC)
    rows = con.execute(
        "SELECT run_id, file_sha256, source_name = ? AND observed_at > ? AND head_sha256 = ?"
        " AND status <> 'truncated' AS unchanged FROM ingested_files"
        f" WHERE format = ? AND status IN {_READ}"
        " AND file_bytes = ? AND file_sha256 <> ''"
        " AND (source_name = ? OR (head_sha256 = ? AND head_sha256 IS NOT NULL))"
        " ORDER BY unchanged DESC NULLS LAST, observed_at DESC LIMIT 20",
        [str(path), mtime, head, fmt, st.st_size, str(path), head]).fetchall()
    if not rows:
        return None
    if rows[0][2]:
        return rows[0][0], rows[0][1], st.st_size
    sha, size = file_fingerprint(path)
    return next(((run_id, sha, size) for run_id, stored, _ in rows if stored == sha), None)


def resume_point(con: Any, path: Path, fmt: str, head: str | None) -> ResumeFrom | None:
    """Where to resume a log an earlier run read the beginning of (the same name, or the
    same first 4 KiB, whose first ``end_offset`` decoded bytes still hash the same), or
    None to read it whole."""
    candidates = con.execute(
        "SELECT end_offset, prefix_sha256, resume_offset, resume_year, run_id FROM ingested_files"
        f" WHERE format = ? AND status IN {_READ}"
        " AND (source_name = ? OR (head_sha256 = ? AND head_sha256 IS NOT NULL))"
        " ORDER BY end_offset DESC LIMIT 3", [fmt, str(path), head]).fetchall()
    for end, prefix, resume, year, run_id in candidates:
        if not prefix or end <= 0:
            continue
        # One read of the first ``end`` bytes gives the check of what was read, the hash
        # to resume from and the line number there; a plain file's raw bytes are those
        # decoded bytes, so its parse need not read them again (it starts at ``resume``).
        (at_end, at_resume), lines_before, compressed = scan_prefix(path, [end, resume], resume)
        if at_end is not None and at_end.hexdigest() == prefix:
            return ResumeFrom(resume, end, year, at_resume,
                              None if compressed else at_end.copy(),
                              None if compressed else lines_before,
                              f"resumed at byte {resume} after run {run_id}")
    return None


@dataclass(frozen=True, slots=True)
class AlreadyRead:
    """An earlier run read this very content whole: the run, and the file's SHA-256 and size."""

    run_id: str
    sha256: str
    bytes: int

    @property
    def note(self) -> str:
        return f"already ingested by run {self.run_id}"


@dataclass(frozen=True, slots=True)
class SourceEnd:
    """A log read to its end: the file's SHA-256 and size (as stored), whether it is gzip, the
    hashes of its decoded first 4 KiB and of the decoded bytes read, the decoded offsets read
    from and to, and what went wrong (a truncated gzip stream), if anything."""

    sha256: str
    bytes: int
    compressed: bool
    head_sha256: str | None
    prefix_sha256: str
    start: int
    end: int
    problem: str | None


@dataclass(frozen=True, slots=True)
class LogOpening:
    """A log to read: its lines (whole, or from where ``resume`` says), and the hash of its
    first 4 KiB as it was found."""

    source: LineSource
    head: str | None
    resume: ResumeFrom | None

    @property
    def read_before(self) -> int:
        """Where the earlier run stopped (0: no earlier run): lines before it were stored."""
        return self.resume.read_before if self.resume is not None else 0

    @property
    def note(self) -> str | None:
        """Where it resumed, and after which run (None: read whole)."""
        return self.resume.note if self.resume is not None else None

    def ended(self) -> SourceEnd:
        """What reading the lines to their end found (call once they are exhausted)."""
        src = self.source
        sha, size = src.fingerprint()
        return SourceEnd(sha, size, src.compressed, src.head_hasher.hexdigest() if src.base == 0 else self.head,
                         src.hasher.hexdigest(), src.start, src.offset, src.problem)

    def year(self, explicit: int | None) -> int:
        """The classic-syslog year at the first line read: the earlier run's at the resume
        point, else :func:`first_year`."""
        if self.resume is not None and self.resume.year is not None:
            return self.resume.year
        return first_year(self.source.path, explicit)


def open_input(con: Any, path: Path, fmt: str, reads_lines: bool) -> AlreadyRead | LogOpening | None:
    """What an earlier run left for this input: :class:`AlreadyRead` (skip it), a
    :class:`LogOpening` for a log (read whole, or resumed), or None for a record file or a
    folder to be parsed whole."""
    head = head_hash(path) if reads_lines else None
    if path.is_file():
        done = already_ingested(con, path, fmt, head)
        if done is not None:
            return AlreadyRead(*done)
    if not reads_lines:
        return None
    found = resume_point(con, path, fmt, head)
    if found is None:
        return LogOpening(LineSource(path), head, None)
    return LogOpening(LineSource(path, found.start, found.hasher, raw_hasher=found.raw_hasher,
                                 raw_from=found.read_before, start_line=found.start_line), head, found)


def head_bytes(path: Path, size: int = 4096) -> bytes:
    """The first bytes of a file as stored (b'' for a folder or an unreadable file): what a
    quarantined unrecognised input keeps, and what tells gzip."""
    try:
        if path.is_dir():
            return b""
        with path.open("rb") as fh:
            return fh.read(size)
    except OSError:
        return b""
