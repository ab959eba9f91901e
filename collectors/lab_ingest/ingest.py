"""The ingest driver: files in, rows out, once.

For each input (file, or a folder that is one source such as a Maildir) it detects the
format by content, streams it through the right parser and bulk-inserts the rows
(pyarrow batches). It records per file a content fingerprint and the byte offset
reached (table ``ingested_files``): the same file again adds nothing, and a grown log
is resumed where the last run stopped when its beginning still hashes the same. Every
table's primary key is computed from the observation, so even an overlapping copy
(a rotated log, the same report in two mailboxes) adds nothing twice. Whatever cannot
be parsed goes to the quarantine table with its raw bytes and the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import re
import queue
import secrets
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collectors.lab_ingest import http_log, postfix_fast
from collectors.lab_ingest.detect import FORMATS, detect_path
from collectors.lab_ingest.postfix_envelope import _CLASSIC_STAMP, _MONTHS
from collectors.lab_ingest.postfix_log import (
    DeliveryRow, MessageRow, NoticeRow, OtherCountRow, OtherRow, PostfixLogReader, ResolverRow, SessionRow, row_key)
from collectors.lab_ingest.records import Quarantined
from collectors.store import Run, Store, file_fingerprint, transaction

UTC = dt.timezone.utc
BATCH_ROWS = 10_000
# The compiled reader hands over this many rows at a time: a DuckDB row group, so that each
# insert writes whole row groups (measured: about twice as fast as 10,000-row inserts).
ARROW_BATCH_ROWS = 122_880
# Quarantined lines are handed on (and buffered by the sink) at most this many raw bytes at a
# time, however few good rows come with them: a log of junk stays within memory (issue 14).
QUARANTINE_BATCH_BYTES = 16 << 20
CHUNK_BYTES = 1 << 20
HEAD_HASH_BYTES = 4096
HEAD_SCAN_BYTES = 64 * 1024     # what is read to hash the head or find the first line's year
MAX_LINE_BYTES = 1 << 20        # a longer "line" is cut and quarantined
INCOMPLETE_LAST_LINE = "incomplete last line (no newline); read again when the file grows"
PROVENANCE = ("run_id", "observed_at", "input_list", "tool_version", "source_name")


# --------------------------------------------------------------------------- options and results
@dataclass(frozen=True, slots=True)
class IngestOptions:
    """What the user asked for: ``--year``, ``--format``, ``--lab-domain``, ``--pseudonymise``,
    ``--reader`` (Postfix logs: ``compiled``, ``python`` (the reference), or ``auto``: the
    compiled reader where it is built and nothing is pseudonymised), ``--keep-other-lines``
    (other daemons' and programs' lines raw, not counted)."""

    year: int | None = None
    format: str | None = None
    lab_domains: tuple[str, ...] = ()
    pseudonymise: bool = False
    reader: str = "auto"
    keep_other_lines: bool = False


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What one input gave, per table: rows the table gained (``added``), stored rows replaced
    by a different reading of the same key (``updated``: a session or queue file completed by
    a re-read), and rows not added because their key was already stored or came earlier in
    the input (``duplicates``); the quarantined count; how it was read; and the file's
    SHA-256 and size (of the bytes as stored, gzip included; for a skipped file, those stored
    when it was read)."""

    source_name: str
    format: str | None
    status: str                       # complete | resumed | skipped | truncated | failed
    lines: int
    added: dict[str, int]
    quarantined: int
    note: str | None = None
    updated: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    sha256: str | None = None
    bytes: int | None = None


@dataclass(frozen=True, slots=True)
class IngestSummary:
    run_id: str
    files: tuple[FileOutcome, ...]

    def by_table(self) -> dict[str, dict[str, int]]:
        """Per table: ``added``, ``updated`` and ``duplicates`` over all files."""
        out: dict[str, dict[str, int]] = {}
        for f in self.files:
            for what in ("added", "updated", "duplicates"):
                for table, n in getattr(f, what).items():
                    c = out.setdefault(table, {"added": 0, "updated": 0, "duplicates": 0})
                    c[what] += n
        return dict(sorted(out.items()))

    def rows_by_table(self) -> dict[str, int]:
        """Rows each table gained (``added``), over all files."""
        return {t: c["added"] for t, c in self.by_table().items()}

    def by_format(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for f in self.files:
            c = out.setdefault(f.format or "unknown", Counter())
            c["files"] += 1
            c["lines"] += f.lines
            c["added"] += sum(f.added.values())
            c["updated"] += sum(f.updated.values())
            c["duplicates"] += sum(f.duplicates.values())
            c["quarantined"] += f.quarantined
        return {k: dict(v) for k, v in sorted(out.items())}

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "by_format": self.by_format(), "tables": self.by_table(),
                "quarantined": self.quarantined,
                "files": [dataclasses.asdict(f) for f in self.files]}


# --------------------------------------------------------------------------- pseudonymisation
_FROM_KV = re.compile(r"(from=<)([^@<>\s]+)(@[^<>\s]*>)")


class Pseudonymiser:
    """HMAC-SHA256 of sender local parts with a per-database salt (kept in ``lab_settings``)."""

    def __init__(self, salt: bytes | None) -> None:
        self.salt = salt

    @property
    def active(self) -> bool:
        return self.salt is not None

    def local(self, local: str) -> str:
        assert self.salt is not None
        return "h-" + hmac.new(self.salt, local.lower().encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:20]

    def address(self, addr: str | None) -> str | None:
        if not self.active or not addr or "@" not in addr:
            return addr
        local, _, domain = addr.rpartition("@")
        return f"{self.local(local)}@{domain}" if local else addr

    def text(self, text: str) -> str:
        if not self.active or "from=<" not in text:
            return text
        return _FROM_KV.sub(lambda m: m.group(1) + self.local(m.group(2)) + m.group(3), text)


def pseudonymiser_for(store_con: Any, enabled: bool) -> Pseudonymiser:
    if not enabled:
        return Pseudonymiser(None)
    row = store_con.execute("SELECT value FROM lab_settings WHERE key = 'pseudonymise_salt'").fetchone()
    if row is None:
        salt = secrets.token_hex(32)
        store_con.execute("INSERT INTO lab_settings VALUES ('pseudonymise_salt', ?, ?)",
                          [salt, dt.datetime.now(UTC)])
    else:
        salt = row[0]
    return Pseudonymiser(bytes.fromhex(salt))


# --------------------------------------------------------------------------- the sink
_POSTFIX_TABLES: dict[type, tuple[str, str, str]] = {
    SessionRow: ("postfix_smtpd_sessions", "session_key", "replace"),
    MessageRow: ("postfix_messages", "message_key", "replace"),
    DeliveryRow: ("postfix_deliveries", "delivery_key", "ignore"),
    NoticeRow: ("postfix_notices", "notice_key", "ignore"),
    ResolverRow: ("mta_sts_resolver_events", "event_key", "ignore"),
    OtherRow: ("postfix_other_lines", "line_key", "ignore"),
    OtherCountRow: ("postfix_other_line_counts", "count_key", "replace"),
}

# The high-volume tables have no index (003_lab.sql): they are deduplicated by an anti join
# on the key within the batch's time window, on this column. Every key covers that time,
# so a duplicate has the same time, and DuckDB's row-group min/max statistics skip the rest
# of the table: the cost and the memory of a batch do not grow with the table.
WINDOWED_DEDUP: dict[str, str] = {
    "postfix_smtpd_sessions": "first_seen_at",
    "postfix_messages": "first_seen_at",
    "postfix_deliveries": "logged_at",
    "postfix_notices": "logged_at",
    "mta_sts_resolver_events": "logged_at",
    "postfix_other_lines": "logged_at",
    "postfix_other_line_counts": "hour",
    "policy_fetches_http": "fetched_at",
}

_ARROW_TYPES: dict[str, pa.DataType] = {
    "BIGINT": pa.int64(), "INTEGER": pa.int32(), "VARCHAR": pa.string(), "BOOLEAN": pa.bool_(),
    "DOUBLE": pa.float64(), "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    "VARCHAR[]": pa.list_(pa.string()), "BLOB": pa.binary(), "JSON": pa.string(),
}


@dataclass(frozen=True, slots=True)
class _Batch:
    """One transaction for the writer: the statements, the arrow batch they read (as
    ``view``), and how to count what they did. ``offered`` is the rows the parser gave
    (before the batch's own de-duplication). ``counting``: ``none`` (quarantine, counted by
    the sink), ``insert`` (the last statement's affected rows are the rows added) or
    ``replace`` (the first statement's affected rows are stored rows replaced, the last's the
    rows inserted: the replaced ones and the new ones)."""

    table: str
    statements: list[tuple[str, list]]
    view: str
    batch: pa.Table
    offered: int
    counting: str


@dataclass(frozen=True, slots=True)
class _Counted:
    """What one batch did to its table."""

    table: str
    added: int
    updated: int
    duplicates: int


class _Writer:
    """Runs the inserts on a second thread (DuckDB releases the GIL), so that parsing and
    storing overlap; a bounded queue keeps memory flat. Each item is one transaction. What
    each transaction did (DuckDB returns the affected rows of an INSERT or DELETE) is kept
    and handed back by :meth:`wait`, so counting costs the parser nothing."""

    def __init__(self, con: Any) -> None:
        self.con = con.cursor()
        self.queue: queue.Queue = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self.done: list[_Counted] = []      # appended by the writer thread, drained by wait()
        self.thread = threading.Thread(target=self._loop, name="ingest-writer", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                if self.error is None:
                    self._write(item)
            except BaseException as exc:  # surfaced to the caller by wait()
                self.error = exc
            finally:
                self.queue.task_done()

    def _write(self, item: _Batch) -> None:
        self.con.register(item.view, item.batch)
        try:
            with transaction(self.con):
                affected = []
                for sql, params in item.statements:
                    row = self.con.execute(sql, params).fetchone()
                    affected.append(int(row[0]) if row and row[0] is not None else 0)
        finally:
            self.con.unregister(item.view)
        if item.counting == "none":
            return
        inserted = affected[-1]
        replaced = min(affected[0], inserted) if item.counting == "replace" else 0
        self.done.append(_Counted(item.table, inserted - replaced, replaced, item.offered - inserted))

    def submit(self, item: _Batch) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def wait(self) -> list[_Counted]:
        """Block until everything submitted is stored; what it did since the last wait."""
        self.queue.join()
        if self.error is not None:
            error, self.error = self.error, None
            self.done = []
            raise error
        done, self.done = self.done, []
        return done

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


class Sink:
    """Buffers rows per table and bulk-inserts them, each key once: the first row of a key
    is kept (``ignore``), or a later reading that differs replaces it (``replace``: sessions
    and queue files, which a re-read completes; an identical reading keeps the stored row and
    its provenance). Counts per table, for the current file, what was really stored:
    ``added`` (new keys), ``updated`` (replaced by a different reading) and ``duplicates``
    (key already stored, or repeated in the input: not added)."""

    def __init__(self, con: Any, run: Run) -> None:
        self.con = con
        self.writer = _Writer(con)
        self.run = run
        self.observed_at = dt.datetime.now(UTC)
        self.source_name = ""
        self._buffers: dict[str, tuple[tuple[str, ...], str, str, list[tuple]]] = {}
        self._types: dict[str, dict[str, pa.DataType]] = {}
        self.added: Counter[str] = Counter()
        self.updated: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()
        self.quarantined = 0
        self._quarantine_bytes = 0

    def begin(self, source_name: str) -> None:
        """Start counting for another input (the previous one was flushed)."""
        self.source_name = source_name
        self.added.clear()
        self.updated.clear()
        self.duplicates.clear()
        self.quarantined = 0

    def add(self, table: str, columns: tuple[str, ...], key: str, mode: str, row: tuple) -> None:
        buf = self._buffers.get(table)
        if buf is None:
            buf = self._buffers[table] = (columns, key, mode, [])
        buf[3].append(row)
        if len(buf[3]) >= BATCH_ROWS:
            self._flush_table(table)

    def quarantine(self, source: str, item: Quarantined) -> None:
        raw = item.raw if isinstance(item.raw, (bytes, bytearray)) else str(item.raw).encode("utf-8", "replace")
        self.add("quarantine", ("source", "position", "raw", "reason"), "", "append",
                 (source, str(item.position), bytes(raw), item.reason))
        self.quarantined += 1
        self._quarantine_bytes += len(raw)
        if self._quarantine_bytes >= QUARANTINE_BATCH_BYTES:     # long lines: fewer rows at a time
            self._quarantine_bytes = 0
            self._flush_table("quarantine")

    def flush(self) -> None:
        """Insert everything buffered, wait until it is stored, and count what it did."""
        for table in list(self._buffers):
            self._flush_table(table)
        for c in self.writer.wait():
            for counter, n in ((self.added, c.added), (self.updated, c.updated),
                               (self.duplicates, c.duplicates)):
                if n:
                    counter[c.table] += n

    def close(self) -> None:
        self.writer.close()

    def _column_types(self, table: str) -> dict[str, pa.DataType]:
        types = self._types.get(table)
        if types is None:
            types = self._types[table] = {
                name: _ARROW_TYPES[kind] for name, kind, *_ in
                self.con.execute(f"DESCRIBE {table}").fetchall() if kind in _ARROW_TYPES}
        return types

    def add_arrow(self, table: str, key: str, mode: str, batch: pa.Table) -> None:
        """Store an Arrow batch of rows (columns named as the table's), as :meth:`add` would
        store them row by row: the compiled reader's way in."""
        if batch.num_rows:
            self._submit(table, key, mode, batch)

    def _flush_table(self, table: str) -> None:
        columns, key, mode, rows = self._buffers[table]
        if not rows:
            return
        types = self._column_types(table)
        cols = list(zip(*rows))
        batch = pa.table({name: _array(values, types.get(name)) for name, values in zip(columns, cols)})
        self._buffers[table][3].clear()
        self._submit(table, key, mode, batch)

    def _submit(self, table: str, key: str, mode: str, batch: pa.Table) -> None:
        offered = batch.num_rows
        columns = batch.column_names
        if mode != "append":
            batch = _unique_rows(batch, key, keep_last=mode == "replace")
        types = self._column_types(table)
        if any(batch.schema.field(c).type != types[c] for c in columns if c in types):
            batch = batch.cast(pa.schema([pa.field(c, types.get(c, batch.schema.field(c).type)) for c in columns]))
        view = f"_ingest_batch_{table}"
        provenance = [self.run.run_id, self.observed_at, self.run.input_list, self.run.tool_version,
                      self.source_name]
        select = (f"SELECT ?::VARCHAR AS run_id, ?::TIMESTAMPTZ AS observed_at, ?::VARCHAR AS input_list,"
                  f" ?::VARCHAR AS tool_version, ?::VARCHAR AS source_name, b.* FROM {view} b")
        time_col = WINDOWED_DEDUP.get(table)
        counting = "replace" if mode == "replace" else "insert"
        if mode == "append":
            statements = [(f"INSERT INTO {table} BY NAME {select}", provenance)]
            counting = "none"
        elif time_col is not None:
            low, high = pc.min_max(batch[time_col]).values()
            window = f"o.{time_col} BETWEEN {_sql_time(low.as_py())} AND {_sql_time(high.as_py())}"
            insert = (f"INSERT INTO {table} BY NAME {select} WHERE NOT EXISTS "
                      f"(SELECT 1 FROM {table} o WHERE o.{key} = b.{key} AND {window})", provenance)
            if mode == "replace":
                # Delete only the stored rows this batch reads differently (the position in
                # the file is not a difference), then insert every key not stored (those and
                # the new ones): an identical re-read is a duplicate, not an update.
                content = [c for c in columns if c != key and c not in _POSITION_COLUMNS]
                differs = (f"({', '.join('o.' + c for c in content)}) IS DISTINCT FROM "
                           f"({', '.join('b.' + c for c in content)})")
                # ... but never a complete stored reading by an incomplete one (a copy of
                # the log that stops in the middle of a session, read after the whole log)
                keep_complete = " AND (b.complete OR NOT o.complete)" if "complete" in columns else ""
                statements = [(f"DELETE FROM {table} o USING {view} b WHERE o.{key} = b.{key}"
                               f" AND {window} AND {differs}{keep_complete}", []), insert]
            else:
                statements = [insert]
        else:   # a table with a PRIMARY KEY (the record tables)
            if mode == "replace":
                # (no record table replaces today) every stored key counts as updated
                statements = [(f"SELECT count(*) FROM {table} WHERE {key} IN (SELECT {key} FROM {view})", []),
                              (f"INSERT OR REPLACE INTO {table} BY NAME {select}", provenance)]
            else:
                statements = [(f"INSERT OR IGNORE INTO {table} BY NAME {select}", provenance)]
        self.writer.submit(_Batch(table, statements, view, batch, offered, counting))


# Where a row was read (not what it says): two readings of one key that differ only here are
# the same observation.
_POSITION_COLUMNS = frozenset({"source_line", "source_position"})


def _unique_rows(batch: pa.Table, key: str, keep_last: bool) -> pa.Table:
    """One row per key, in order: the first of each key, or the last (``keep_last``)."""
    keys = batch[key]
    if pc.count_distinct(keys).as_py() == batch.num_rows:
        return batch
    values = keys.to_numpy()
    if keep_last:
        _, last = np.unique(values[::-1], return_index=True)
        chosen = np.sort(len(values) - 1 - last)
    else:
        _, first = np.unique(values, return_index=True)
        chosen = np.sort(first)
    return batch.take(pa.array(chosen))


def _sql_time(value: dt.datetime) -> str:
    """A literal (not a parameter, so that DuckDB prunes row groups by it)."""
    return f"TIMESTAMPTZ '{value.astimezone(UTC).isoformat()}'"


def _array(values: Sequence[Any], kind: pa.DataType | None = None) -> pa.Array:
    """An arrow column of the table's type; all-None columns become nulls."""
    if kind is not None:
        if pa.types.is_list(kind):
            values = [None if x is None else list(x) for x in values]
        return pa.array(values, kind)
    for v in values:
        if v is None:
            continue
        if isinstance(v, dt.datetime):
            return pa.array(values, pa.timestamp("us", tz="UTC"))
        if isinstance(v, bool):
            return pa.array(values, pa.bool_())
        if isinstance(v, int):
            return pa.array(values, pa.int64())
        if isinstance(v, (list, tuple)):
            return pa.array([None if x is None else list(x) for x in values], pa.list_(pa.string()))
        break
    return pa.array(values)


# --------------------------------------------------------------------------- reading lines
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
                try:
                    # at most a chunk out per call: a bomb (1 MiB of gzip can hold 1 GB) comes
                    # out a chunk at a time, not all at once (issue 14)
                    out = d.decompress(block, CHUNK_BYTES)
                    while d.unconsumed_tail or (len(out) == CHUNK_BYTES and not d.eof):
                        yield out
                        fed = True
                        out = d.decompress(d.unconsumed_tail, CHUNK_BYTES)
                except zlib.error as exc:
                    self.problem = f"gzip data is corrupt after decoded byte {self.offset}: {exc}"
                    return
                fed = True
                if out:
                    yield out
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


class _Rereading:
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


def decoded_prefix_hashers(path: Path, lengths: Sequence[int]) -> list[Any]:
    """SHA-256 hashers of the first ``length`` decoded bytes, one per length, all from one
    read of the file (None for a length beyond its end)."""
    return _scan_prefix(path, lengths)[0]


def _scan_prefix(path: Path, lengths: Sequence[int], count_to: int = 0) -> tuple[list[Any], int, bool]:
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
            m = _CLASSIC_STAMP.match(first[:15])
            if m and _MONTHS.get(m.group(1), 0) > mtime.month:
                return mtime.year - 1
            break
    except OSError:
        pass
    return mtime.year


# --------------------------------------------------------------------------- the driver
class Ingester:
    """One ``mtasts ingest`` run over many inputs."""

    def __init__(self, store: Store, options: IngestOptions) -> None:
        self.store = store
        self.con = store.con.cursor()
        self.options = options

    def expand(self, paths: Sequence[Path]) -> list[tuple[Path, str | None]]:
        """Inputs as (path, format): files, and folders that are one source; plain folders walked."""
        out: list[tuple[Path, str | None]] = []
        for path in paths:
            fmt = self.options.format or detect_path(path)
            if path.is_dir() and fmt == "folder" or (path.is_dir() and self.options.format in ("postfix", "http")):
                for child in sorted(path.iterdir()):
                    if child.name.startswith("."):
                        continue
                    out.extend(self.expand([child]))
                continue
            out.append((path, fmt))
        return out

    def run(self, paths: Sequence[Path], on_file: Callable[[FileOutcome], None] | None = None) -> IngestSummary:
        units = self.expand(paths)
        # Each file is read once, by its parse, which also hashes it: the run starts with the
        # inputs' names and sizes, and their SHA-256 is filled in as each file is read.
        inputs: list[dict[str, Any]] = [
            {"name": str(path), "sha256": None, "bytes": path.stat().st_size if path.is_file() else None}
            for path, _fmt in units]
        input_list = ", ".join(str(p) for p in paths)
        if len(input_list) > 500:
            input_list = input_list[:497] + "..."
        run = self.store.start_run("ingest", input_list, inputs, parameters={
            "year": self.options.year, "format": self.options.format,
            "lab_domains": list(self.options.lab_domains), "pseudonymise": self.options.pseudonymise,
            "keep_other_lines": self.options.keep_other_lines})
        sink = Sink(self.con, run)
        pseudo = pseudonymiser_for(self.con, self.options.pseudonymise)
        for domain in self.options.lab_domains:
            self.con.execute("INSERT OR IGNORE INTO lab_domains VALUES (?, ?, ?)",
                             [domain.lower().rstrip("."), run.run_id, dt.datetime.now(UTC)])
        outcomes = []
        status = "finished"
        try:
            for i, (path, fmt) in enumerate(units):
                outcome = self._one(sink, pseudo, path, fmt)
                outcomes.append(outcome)
                inputs[i] = _input_entry(path, outcome)
                if on_file is not None:
                    on_file(outcome)
        except BaseException:
            status = "failed"
            raise
        finally:
            sink.close()
            summary = IngestSummary(run.run_id, tuple(outcomes))
            # start_run stored the inputs before they were read: now their hashes are known.
            self.con.execute("UPDATE runs SET inputs = ? WHERE run_id = ?",
                             [json.dumps(inputs), run.run_id])
            self.store.finish_run(run.run_id, status, summary.as_dict())
        return summary

    # -- one input ----------------------------------------------------------
    def _one(self, sink: Sink, pseudo: Pseudonymiser, path: Path, fmt: str | None) -> FileOutcome:
        sink.begin(str(path))
        if fmt is None or fmt not in FORMATS:
            sink.quarantine("unknown", Quarantined(str(path), _head_bytes(path), "format not recognised "
                                                   "(use --format to say what it is)"))
            sink.flush()
            sha, size = file_fingerprint(path) if path.is_file() else (None, None)
            return FileOutcome(str(path), None, "failed", 0, {}, 1, "format not recognised",
                               sha256=sha, bytes=size)
        lines = fmt in ("postfix", "http")
        head = None
        if lines:
            [hasher] = decoded_prefix_hashers(path, [HEAD_HASH_BYTES])
            head = hasher.hexdigest() if hasher is not None else None
        if path.is_file():
            done = self._already_ingested(path, fmt, head)
            if done is not None:
                run_id, sha, size = done
                note = f"already ingested by run {run_id}"
                self._record_file(sink, path, fmt, (sha, size), None, None, 0, 0, 0, None, "skipped", 0, 0,
                                  note)
                return FileOutcome(str(path), fmt, "skipped", 0, {}, 0, note, sha256=sha, bytes=size)
        if lines:
            return self._lines(sink, pseudo, path, fmt, head)
        return self._records(sink, pseudo, path, fmt)

    def _already_ingested(self, path: Path, fmt: str, head: str | None) -> tuple[str, str, int] | None:
        """(run, SHA-256, size) of an earlier complete reading of this very content, or None.

        Without reading more than its first 4 KiB: the same name, the same size, the same
        first 4 KiB, and not modified since that reading. Under another name (a rotated log:
        the same first 4 KiB and size), touched since, or too short to have a 4 KiB head: its
        SHA-256 must equal the stored one (one read, no parse). In doubt it is parsed (every
        row is keyed: a re-read adds nothing twice)."""
        st = path.stat()
        mtime = dt.datetime.fromtimestamp(st.st_mtime, UTC)
        rows = self.con.execute(
            "SELECT run_id, file_sha256, source_name = ? AND observed_at > ? AND head_sha256 = ?"
            " AS unchanged FROM ingested_files"
            " WHERE format = ? AND status IN ('complete', 'resumed', 'truncated')"
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

    def _lines(self, sink: Sink, pseudo: Pseudonymiser, path: Path, fmt: str, head: str | None) -> FileOutcome:
        found = self._resume_point(path, fmt, head)
        start, read_before, year, note = 0, 0, None, None
        if found is not None:
            start, read_before, year, note = found.start, found.read_before, found.year, found.note
            src = LineSource(path, start, found.hasher, raw_hasher=found.raw_hasher, raw_from=read_before,
                             start_line=found.start_line)
        else:
            src = LineSource(path)
        lines = 0
        if fmt == "postfix" and self._compiled(pseudo):
            lines, resume, resume_year = self._postfix_compiled(
                sink, src, year if year is not None else first_year(path, self.options.year), path, read_before)
        elif fmt == "postfix":
            reader = PostfixLogReader(year if year is not None else first_year(path, self.options.year),
                                      str(path), self.options.keep_other_lines, read_before)
            if read_before > start:
                # Re-read lines an earlier run read (for the state still open then): their rows
                # are de-duplicated by key, their quarantined lines were stored once already.
                reread = _Rereading(src.lines(), read_before)
                rows: Iterable = (r for r in reader.feed(reread)
                                  if not (r.__class__ is Quarantined and reread.already_read()))
            else:
                rows = reader.feed(src.lines())
            self._store_postfix(sink, pseudo, rows)
            last = src.take_unterminated()
            if last is not None:
                got = list(reader.feed([last]))
                if any(isinstance(r, Quarantined) for r in got):
                    sink.quarantine("postfix_log", Quarantined(
                        f"line {last[1]} (byte {last[0]})", last[2].encode("utf-8", "replace"),
                        INCOMPLETE_LAST_LINE))
                else:
                    src.accept_unterminated()
                    self._store_postfix(sink, pseudo, got)
            resume, resume_at = reader.resume_point(src.offset)
            self._store_postfix(sink, pseudo, reader.finish())
            lines = reader.lines
            resume_year = resume_at.year if resume_at is not None else reader.envelopes.years.year
        else:
            self._store_http(sink, http_log.parse_lines(src.lines()))
            last = src.take_unterminated()
            if last is not None:
                got = http_log.parse_line(last[2], f"line {last[1]}")
                if got is None:
                    sink.quarantine("http_log", Quarantined(
                        f"line {last[1]}", last[2].encode("utf-8", "replace"),
                        INCOMPLETE_LAST_LINE))
                else:
                    src.accept_unterminated()
                    self._store_http(sink, [got])
            resume, resume_year = src.offset, None
        for pos, lineno, raw in src.overlong:
            if pos < read_before:
                continue
            sink.quarantine(f"{fmt}_log", Quarantined(f"line {lineno} (byte {pos})", raw,
                                                      f"line longer than {MAX_LINE_BYTES} bytes"))
        if src.problem:
            sink.quarantine(f"{fmt}_log", Quarantined(f"byte {src.offset}", b"", src.problem))
        sink.flush()
        status = "truncated" if src.problem else ("resumed" if start else "complete")
        note = "; ".join(n for n in (note, src.problem) if n) or None
        fingerprint = src.fingerprint()
        stored_head = src.head_hasher.hexdigest() if src.base == 0 else head
        self._record_file(sink, path, fmt, fingerprint, stored_head, src.hasher.hexdigest(), start, src.offset,
                          resume, resume_year, status, lines, sum(sink.added.values()), note,
                          compressed=src.compressed)
        return self._outcome(sink, path, fmt, status, lines, note, fingerprint)

    @staticmethod
    def _outcome(sink: Sink, path: Path, fmt: str, status: str, lines: int, note: str | None,
                 fingerprint: tuple[str, int] | tuple[None, None]) -> FileOutcome:
        return FileOutcome(str(path), fmt, status, lines, dict(sorted(sink.added.items())), sink.quarantined,
                           note, updated=dict(sorted(sink.updated.items())),
                           duplicates=dict(sorted(sink.duplicates.items())),
                           sha256=fingerprint[0], bytes=fingerprint[1])

    def _resume_point(self, path: Path, fmt: str, head: str | None) -> _ResumeFrom | None:
        """Where to resume a log an earlier run read the beginning of (the same name, or the
        same first 4 KiB, whose first ``end_offset`` decoded bytes still hash the same), or
        None to read it whole."""
        candidates = self.con.execute(
            "SELECT end_offset, prefix_sha256, resume_offset, resume_year, run_id FROM ingested_files"
            " WHERE format = ? AND status IN ('complete', 'resumed', 'truncated')"
            " AND (source_name = ? OR (head_sha256 = ? AND head_sha256 IS NOT NULL))"
            " ORDER BY end_offset DESC LIMIT 3", [fmt, str(path), head]).fetchall()
        for end, prefix, resume, year, run_id in candidates:
            if not prefix or end <= 0:
                continue
            # One read of the first ``end`` bytes gives the check of what was read, the hash
            # to resume from and the line number there; a plain file's raw bytes are those
            # decoded bytes, so its parse need not read them again (it starts at ``resume``).
            (at_end, at_resume), lines_before, compressed = _scan_prefix(path, [end, resume], resume)
            if at_end is not None and at_end.hexdigest() == prefix:
                return _ResumeFrom(resume, end, year, at_resume,
                                   None if compressed else at_end.copy(),
                                   None if compressed else lines_before,
                                   f"resumed at byte {resume} after run {run_id}")
        return None

    def _record_file(self, sink: Sink, path: Path, fmt: str, fingerprint: tuple[str | None, int | None] | None,
                     head: str | None, prefix: str | None, start: int, end: int, resume: int,
                     resume_year: int | None, status: str, lines: int, records: int, note: str | None,
                     compressed: bool | None = None) -> None:
        """One ``ingested_files`` row; ``records`` is the rows the tables gained from it."""
        sha, size = fingerprint or ("", 0)
        if compressed is None:
            compressed = path.is_file() and _head_bytes(path)[:2] == b"\x1f\x8b"
        self.con.execute(
            "INSERT INTO ingested_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [sink.run.run_id, dt.datetime.now(UTC), sink.run.input_list, sink.run.tool_version, str(path),
             fmt, compressed, sha or "", size or 0, head, prefix, start, end, resume, resume_year, status,
             lines, records, sink.quarantined, note])

    # -- Postfix and HTTP rows --------------------------------------------------
    def _compiled(self, pseudo: Pseudonymiser) -> bool:
        """Whether Postfix logs go through the compiled reader (same rows, faster)."""
        choice = self.options.reader
        if choice == "python":
            return False
        if choice == "compiled":
            if not postfix_fast.AVAILABLE:
                raise RuntimeError("the compiled Postfix reader is not built (pip install -e . with a C compiler)")
            if pseudo.active:
                raise RuntimeError("--pseudonymise reads Postfix logs with the Python reader (--reader python)")
            return True
        return postfix_fast.AVAILABLE and not pseudo.active

    def _postfix_compiled(self, sink: Sink, src: LineSource, year: int, path: Path,
                          read_before: int) -> tuple[int, int, int]:
        """A Postfix log through the compiled reader: lines read, and where and in which year
        a later run resumes. Rows reach the sink as Arrow batches."""
        reader = postfix_fast.FastPostfixReader(year, str(path), self.options.keep_other_lines, read_before)
        pending: dict[type, list[pa.Table]] = {}

        def store(final: bool = False) -> None:
            # Per table, exactly a row group at a time: DuckDB writes a full row group
            # straight to the database file instead of through its write-ahead log and a
            # checkpoint (measured: 40 % less time than batches of 125,000 rows).
            for cls, batch in reader.take().items():
                pending.setdefault(cls, []).append(batch)
            for cls, batches in pending.items():
                rows = sum(b.num_rows for b in batches)
                if not batches or not (final or rows >= ARROW_BATCH_ROWS):
                    continue
                table, key, mode = _POSTFIX_TABLES[cls]
                whole = pa.concat_tables(batches)
                full = rows if final else rows - rows % ARROW_BATCH_ROWS
                for at in range(0, full, ARROW_BATCH_ROWS):
                    sink.add_arrow(table, key, mode, whole.slice(at, min(ARROW_BATCH_ROWS, full - at)))
                batches[:] = [whole.slice(full)] if full < rows else []
            for offset, item in reader.take_quarantined():
                if offset >= read_before:     # else stored by the run that read it first
                    sink.quarantine("postfix_log", item)

        blocks = src.blocks()
        item = next(blocks, None)
        while item is not None:
            base, lineno, block = item
            last_line = reader.feed_block(block, base, lineno)
            if reader.pending_rows >= ARROW_BATCH_ROWS or reader.pending_quarantined_bytes >= QUARANTINE_BATCH_BYTES:
                store()
            try:
                item = blocks.send(last_line)
            except StopIteration:
                item = None
        store()
        last = src.unterminated_block()
        if last is not None:
            reader.feed_block(last[2], last[0], last[1])
            refused = [q for _, q in reader.take_quarantined()]
            if refused:
                sink.quarantine("postfix_log", Quarantined(
                    refused[0].position, refused[0].raw,
                    INCOMPLETE_LAST_LINE))
            else:
                src.accept_unterminated()
        resume, resume_at = reader.resume_point(src.offset)
        reader.finish()
        store(final=True)
        resume_year = resume_at.year if resume_at is not None else reader.envelopes.years.year
        return reader.lines, resume, resume_year

    def _store_postfix(self, sink: Sink, pseudo: Pseudonymiser, rows: Iterable) -> None:
        tables = _POSTFIX_TABLES
        active = pseudo.active
        for row in rows:
            t = type(row)
            spec = tables.get(t)
            if spec is None:
                if active:
                    row = Quarantined(row.position, pseudo.text(row.raw.decode("utf-8", "replace")).encode(),
                                      row.reason)
                sink.quarantine("postfix_log", row)
                continue
            if active:
                if t is DeliveryRow or t is MessageRow:
                    row = row._replace(sender=pseudo.address(row.sender))
                elif t is OtherRow:
                    row = row._replace(message=pseudo.text(row.message))
            sink.add(spec[0], t._fields, spec[1], spec[2], row)

    def _store_http(self, sink: Sink, rows: Iterable) -> None:
        for r in rows:
            if isinstance(r, Quarantined):
                sink.quarantine("http_log", r)
                continue
            key = row_key("http", r.fetched_at, r.client_addr, r.host, r.method, r.path, r.status,
                          r.user_agent, r.bytes_sent, sink.source_name.rsplit("/", 1)[-1], r.position)
            sink.add("policy_fetches_http", _HTTP_COLUMNS, "fetch_key", "ignore",
                     (key, r.position, "http_log", r.log_format, r.fetched_at, r.client_addr, r.host,
                      r.policy_domain, r.server_label, r.method, r.path, r.protocol, r.status,
                      r.bytes_sent, r.referer, r.user_agent, r.forwarded_for, r.is_policy_fetch))

    # -- colleagues' record parsers ---------------------------------------------
    def _records(self, sink: Sink, pseudo: Pseudonymiser, path: Path, fmt: str) -> FileOutcome:
        from collectors.lab_ingest import record_tables

        n = 0
        note = None
        try:
            for rec in record_tables.parse_path(path, fmt):
                n += 1
                if isinstance(rec, Quarantined):
                    if pseudo.active:
                        rec = Quarantined(rec.position, pseudo.text(bytes(rec.raw).decode("utf-8", "replace"))
                                          .encode(), rec.reason)
                    sink.quarantine(fmt, rec)
                    continue
                for table, columns, key, row in record_tables.rows_for(rec, pseudo):
                    if table == "quarantine":
                        sink.quarantine(fmt, row)
                    else:
                        sink.add(table, columns, key, "ignore", row)
        except ImportError as exc:
            note = f"parser for {fmt} is not available: {exc}"
            sink.quarantine(fmt, Quarantined(str(path), _head_bytes(path), note))
        sink.flush()
        status = "failed" if note else "complete"
        # The record parsers open the file themselves: it is hashed after them (small files,
        # still in the page cache). A folder (Maildir, POST spool) has no single hash.
        fingerprint = file_fingerprint(path) if path.is_file() else (None, None)
        self._record_file(sink, path, fmt, fingerprint, None, None, 0, 0, 0, None, status, 0,
                          sum(sink.added.values()), note)
        return self._outcome(sink, path, fmt, status, n, note, fingerprint)


_HTTP_COLUMNS = ("fetch_key", "source_position", "source", "log_format", "fetched_at", "client_addr",
                 "host", "policy_domain", "server_label", "method", "path", "protocol", "status",
                 "bytes_sent", "referer", "user_agent", "forwarded_for", "is_policy_fetch")


@dataclass(frozen=True, slots=True)
class _ResumeFrom:
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


def _input_entry(path: Path, outcome: FileOutcome) -> dict[str, Any]:
    """The run's record of one input: name, SHA-256 and size as read (a skipped file: as
    stored by the run that read it, named)."""
    entry: dict[str, Any] = {"name": str(path), "sha256": outcome.sha256, "bytes": outcome.bytes}
    if outcome.status == "skipped" and outcome.note:
        entry["skipped"] = outcome.note
    return entry


def _head_bytes(path: Path, size: int = 4096) -> bytes:
    try:
        if path.is_dir():
            return b""
        with path.open("rb") as fh:
            return fh.read(size)
    except OSError:
        return b""


def ingest(store: Store, paths: Sequence[Path | str], options: IngestOptions | None = None,
           on_file: Callable[[FileOutcome], None] | None = None) -> IngestSummary:
    """Ingest files and folders into ``store`` as one run; see the module docstring."""
    return Ingester(store, options or IngestOptions()).run([Path(p) for p in paths], on_file)
