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
import os
import re
import queue
import secrets
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import pyarrow as pa

from collectors.lab_ingest import http_log
from collectors.lab_ingest.detect import FORMATS, detect_path
from collectors.lab_ingest.postfix_envelope import _CLASSIC_STAMP, _MONTHS
from collectors.lab_ingest.postfix_log import (
    DeliveryRow, MessageRow, NoticeRow, OtherRow, PostfixLogReader, ResolverRow, SessionRow, row_key)
from collectors.lab_ingest.records import Quarantined
from collectors.store import Run, Store, file_fingerprint

UTC = dt.timezone.utc
BATCH_ROWS = 10_000
CHUNK_BYTES = 1 << 20
HEAD_HASH_BYTES = 4096
MAX_LINE_BYTES = 1 << 20        # a longer "line" is cut and quarantined
PROVENANCE = ("run_id", "observed_at", "input_list", "tool_version", "source_name")


# --------------------------------------------------------------------------- options and results
@dataclass(frozen=True, slots=True)
class IngestOptions:
    """What the user asked for: ``--year``, ``--format``, ``--lab-domain``, ``--pseudonymise``."""

    year: int | None = None
    format: str | None = None
    lab_domains: tuple[str, ...] = ()
    pseudonymise: bool = False


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What one input gave: rows per table, quarantined count, and how it was read."""

    source_name: str
    format: str | None
    status: str                       # complete | resumed | skipped | truncated | failed
    lines: int
    rows: dict[str, int]
    quarantined: int
    note: str | None = None


@dataclass(frozen=True, slots=True)
class IngestSummary:
    run_id: str
    files: tuple[FileOutcome, ...]

    def rows_by_table(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.rows)
        return dict(sorted(total.items()))

    def by_format(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for f in self.files:
            c = out.setdefault(f.format or "unknown", Counter())
            c["files"] += 1
            c["rows"] += sum(f.rows.values())
            c["quarantined"] += f.quarantined
            c["lines"] += f.lines
        return {k: dict(v) for k, v in sorted(out.items())}

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "by_format": self.by_format(), "rows": self.rows_by_table(),
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
    "policy_fetches_http": "fetched_at",
}

_ARROW_TYPES: dict[str, pa.DataType] = {
    "BIGINT": pa.int64(), "INTEGER": pa.int32(), "VARCHAR": pa.string(), "BOOLEAN": pa.bool_(),
    "DOUBLE": pa.float64(), "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    "VARCHAR[]": pa.list_(pa.string()), "BLOB": pa.binary(), "JSON": pa.string(),
}


class _Writer:
    """Runs the inserts on a second thread (DuckDB releases the GIL), so that parsing and
    storing overlap; a bounded queue keeps memory flat. Each item is one transaction."""

    def __init__(self, con: Any) -> None:
        self.con = con.cursor()
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="ingest-writer", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                if self.error is None:
                    statements, view, batch = item
                    self.con.register(view, batch)
                    try:
                        self.con.execute("BEGIN")
                        try:
                            for sql, params in statements:
                                self.con.execute(sql, params)
                            self.con.execute("COMMIT")
                        except BaseException:
                            self.con.execute("ROLLBACK")
                            raise
                    finally:
                        self.con.unregister(view)
            except BaseException as exc:  # surfaced to the caller by wait()
                self.error = exc
            finally:
                self.queue.task_done()

    def submit(self, statements: list[tuple[str, list]], view: str, batch: pa.Table) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((statements, view, batch))

    def wait(self) -> None:
        self.queue.join()
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


class Sink:
    """Buffers rows per table and bulk-inserts them, each key once: the first row of a key
    is kept (``ignore``) or the last one replaces it (``replace``: sessions and queue files,
    which a re-read completes)."""

    def __init__(self, con: Any, run: Run) -> None:
        self.con = con
        self.writer = _Writer(con)
        self.run = run
        self.observed_at = dt.datetime.now(UTC)
        self.source_name = ""
        self._buffers: dict[str, tuple[tuple[str, ...], str, str, list[tuple]]] = {}
        self._types: dict[str, dict[str, pa.DataType]] = {}
        self.counts: Counter[str] = Counter()
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

    def flush(self) -> None:
        """Insert everything buffered and wait until it is stored."""
        for table in list(self._buffers):
            self._flush_table(table)
        self.writer.wait()

    def close(self) -> None:
        self.writer.close()

    def _column_types(self, table: str) -> dict[str, pa.DataType]:
        types = self._types.get(table)
        if types is None:
            types = self._types[table] = {
                name: _ARROW_TYPES[kind] for name, kind, *_ in
                self.con.execute(f"DESCRIBE {table}").fetchall() if kind in _ARROW_TYPES}
        return types

    def _flush_table(self, table: str) -> None:
        columns, key, mode, rows = self._buffers[table]
        if not rows:
            return
        if mode != "append":
            rows = _unique(rows, columns.index(key), keep_last=mode == "replace")
        types = self._column_types(table)
        cols = list(zip(*rows))
        batch = pa.table({name: _array(values, types.get(name)) for name, values in zip(columns, cols)})
        view = f"_ingest_batch_{table}"
        provenance = [self.run.run_id, self.observed_at, self.run.input_list, self.run.tool_version,
                      self.source_name]
        select = (f"SELECT ?::VARCHAR AS run_id, ?::TIMESTAMPTZ AS observed_at, ?::VARCHAR AS input_list,"
                  f" ?::VARCHAR AS tool_version, ?::VARCHAR AS source_name, b.* FROM {view} b")
        time_col = WINDOWED_DEDUP.get(table)
        if mode == "append":
            statements = [(f"INSERT INTO {table} BY NAME {select}", provenance)]
        elif time_col is not None:
            times = cols[columns.index(time_col)]
            window = f"o.{time_col} BETWEEN {_sql_time(min(times))} AND {_sql_time(max(times))}"
            if mode == "replace":
                statements = [
                    (f"DELETE FROM {table} o WHERE {window} AND o.{key} IN (SELECT {key} FROM {view})", []),
                    (f"INSERT INTO {table} BY NAME {select}", provenance)]
            else:
                statements = [(f"INSERT INTO {table} BY NAME {select} WHERE NOT EXISTS "
                               f"(SELECT 1 FROM {table} o WHERE o.{key} = b.{key} AND {window})", provenance)]
        else:   # a table with a PRIMARY KEY (the record tables)
            verb = "INSERT OR REPLACE" if mode == "replace" else "INSERT OR IGNORE"
            statements = [(f"{verb} INTO {table} BY NAME {select}", provenance)]
        self.writer.submit(statements, view, batch)
        if table != "quarantine":
            self.counts[table] += len(rows)
        self._buffers[table][3].clear()


def _unique(rows: list[tuple], key_index: int, keep_last: bool) -> list[tuple]:
    """One row per key, in order: the first of each key, or the last (``keep_last``)."""
    keys = [r[key_index] for r in rows]
    if len(set(keys)) == len(keys):
        return rows
    chosen: dict[Any, tuple] = {}
    for k, r in zip(keys, rows):
        if keep_last or k not in chosen:
            chosen[k] = r
    return list(chosen.values())


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
    of the decoded bytes up to there, and what went wrong (a truncated gzip stream)."""

    def __init__(self, path: Path, start: int = 0, hasher: Any = None) -> None:
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

    def chunks(self) -> Iterator[bytes]:
        """Decoded chunks from offset 0 (gzip: every member; a truncated stream ends early)."""
        with self.path.open("rb") as fh:
            magic = fh.read(2)
            fh.seek(0)
            if magic != b"\x1f\x8b":
                while block := fh.read(CHUNK_BYTES):
                    yield block
                return
            self.compressed = True
            d = zlib.decompressobj(wbits=31)
            fed = False
            while block := fh.read(CHUNK_BYTES):
                while block:
                    try:
                        out = d.decompress(block)
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

    def lines(self) -> Iterator[tuple[int, int, str]]:
        """(decoded offset, line number, text) of complete lines from ``start``."""
        pos = 0           # decoded offset of the start of ``carry``
        carry = b""
        lineno = 0
        start = self.start
        for chunk in self.chunks():
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
                text = body.decode("utf-8", "replace")
                off = base
                ascii_only = body.isascii()
                for line in text.split("\n")[:-1]:
                    lineno += 1
                    yield off, lineno, line.rstrip("\r")
                    off += (len(line) if ascii_only else len(line.encode("utf-8", "replace"))) + 1
            pos += len(complete)
            self.offset = pos
        if carry and pos + len(carry) > start:
            if pos < start:
                carry, pos = carry[start - pos:], start
            self.unterminated = carry
            self._unterminated_at = (pos, lineno + 1)

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
    pending = sorted(set(lengths))
    found: dict[int, Any] = {}
    h = hashlib.sha256()
    got = 0
    while pending and pending[0] <= 0:
        found[pending.pop(0)] = h.copy()
    for chunk in LineSource(path).chunks():
        if not pending:
            break
        used = 0
        while pending and got + len(chunk) - used >= pending[0]:
            cut = used + pending[0] - got
            h.update(chunk[used:cut])
            got, used = pending[0], cut
            found[pending.pop(0)] = h.copy()
        h.update(chunk[used:])
        got += len(chunk) - used
    return [found.get(length) for length in lengths]


def first_year(path: Path, explicit: int | None) -> int:
    """The year of a classic-syslog file's first line: ``--year``, else the file's mtime year
    (one less when the first line's month is after the mtime's month: the log spans New Year)."""
    if explicit is not None:
        return explicit
    mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, UTC)
    try:
        for chunk in LineSource(path).chunks():
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
        inputs = []
        fingerprints: dict[Path, tuple[str, int]] = {}
        for path, _fmt in units:
            if path.is_file():
                fingerprints[path] = file_fingerprint(path)
                inputs.append({"name": str(path), "sha256": fingerprints[path][0],
                               "bytes": fingerprints[path][1]})
            else:
                inputs.append({"name": str(path), "sha256": None, "bytes": None})
        input_list = ", ".join(str(p) for p in paths)
        if len(input_list) > 500:
            input_list = input_list[:497] + "..."
        run = self.store.start_run("ingest", input_list, inputs, parameters={
            "year": self.options.year, "format": self.options.format,
            "lab_domains": list(self.options.lab_domains), "pseudonymise": self.options.pseudonymise})
        sink = Sink(self.con, run)
        pseudo = pseudonymiser_for(self.con, self.options.pseudonymise)
        for domain in self.options.lab_domains:
            self.con.execute("INSERT OR IGNORE INTO lab_domains VALUES (?, ?, ?)",
                             [domain.lower().rstrip("."), run.run_id, dt.datetime.now(UTC)])
        outcomes = []
        status = "finished"
        try:
            for path, fmt in units:
                outcome = self._one(sink, pseudo, path, fmt, fingerprints.get(path))
                outcomes.append(outcome)
                if on_file is not None:
                    on_file(outcome)
        except BaseException:
            status = "failed"
            raise
        finally:
            sink.close()
            summary = IngestSummary(run.run_id, tuple(outcomes))
            self.store.finish_run(run.run_id, status, summary.as_dict())
        return summary

    # -- one input ----------------------------------------------------------
    def _one(self, sink: Sink, pseudo: Pseudonymiser, path: Path, fmt: str | None,
             fingerprint: tuple[str, int] | None) -> FileOutcome:
        sink.source_name = str(path)
        sink.counts.clear()
        sink.quarantined = 0
        if fmt is None or fmt not in FORMATS:
            sink.quarantine("unknown", Quarantined(str(path), _head_bytes(path), "format not recognised "
                                                   "(use --format to say what it is)"))
            sink.flush()
            return FileOutcome(str(path), None, "failed", 0, {}, 1, "format not recognised")
        sha, size = fingerprint or ("", 0)
        if fingerprint is not None:
            done = self.con.execute(
                "SELECT run_id FROM ingested_files WHERE file_sha256 = ? AND format = ?"
                " AND status IN ('complete', 'resumed', 'truncated') LIMIT 1", [sha, fmt]).fetchone()
            if done is not None:
                self._record_file(sink, path, fmt, fingerprint, None, None, 0, 0, 0, None, "skipped", 0, 0,
                                  f"already ingested by run {done[0]}")
                return FileOutcome(str(path), fmt, "skipped", 0, {}, 0, f"already ingested by run {done[0]}")
        if fmt in ("postfix", "http"):
            return self._lines(sink, pseudo, path, fmt, fingerprint)
        return self._records(sink, pseudo, path, fmt, fingerprint)

    def _lines(self, sink: Sink, pseudo: Pseudonymiser, path: Path, fmt: str,
               fingerprint: tuple[str, int]) -> FileOutcome:
        start, read_before, year, hasher, note = self._resume_point(path, fmt)
        src = LineSource(path, start, hasher)
        lines = 0
        if fmt == "postfix":
            reader = PostfixLogReader(year if year is not None else first_year(path, self.options.year),
                                      str(path))
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
                        "incomplete last line (no newline); read again when the file grows"))
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
                        "incomplete last line (no newline); read again when the file grows"))
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
        self._record_file(sink, path, fmt, fingerprint, src.head_hasher.hexdigest(),
                          src.hasher.hexdigest(), start, src.offset, resume, resume_year, status,
                          lines, sum(sink.counts.values()), note, compressed=src.compressed)
        return FileOutcome(str(path), fmt, status, lines, dict(sink.counts), sink.quarantined, note)

    def _resume_point(self, path: Path, fmt: str) -> tuple[int, int, int | None, Any, str | None]:
        """Where to start (after what an earlier run read of this same content, by prefix hash,
        less what its open state needs), where that earlier run had read to, the year there,
        the prefix hasher at the start, and a note."""
        [head] = decoded_prefix_hashers(path, [HEAD_HASH_BYTES])
        head_hash = head.hexdigest() if head is not None else None
        candidates = self.con.execute(
            "SELECT end_offset, prefix_sha256, resume_offset, resume_year, run_id FROM ingested_files"
            " WHERE format = ? AND status IN ('complete', 'resumed', 'truncated')"
            " AND (source_name = ? OR (head_sha256 = ? AND head_sha256 IS NOT NULL))"
            " ORDER BY end_offset DESC LIMIT 3", [fmt, str(path), head_hash]).fetchall()
        for end, prefix, resume, year, run_id in candidates:
            if not prefix or end <= 0:
                continue
            # One read gives both: the check of what was read, and the hash to resume from.
            at_end, at_resume = decoded_prefix_hashers(path, [end, resume])
            if at_end is not None and at_end.hexdigest() == prefix:
                return resume, end, year, at_resume, f"resumed at byte {resume} after run {run_id}"
        return 0, 0, None, None, None

    def _record_file(self, sink: Sink, path: Path, fmt: str, fingerprint: tuple[str, int] | None,
                     head: str | None, prefix: str | None, start: int, end: int, resume: int,
                     resume_year: int | None, status: str, lines: int, records: int, note: str | None,
                     compressed: bool | None = None) -> None:
        sha, size = fingerprint or ("", 0)
        if compressed is None:
            compressed = path.is_file() and _head_bytes(path)[:2] == b"\x1f\x8b"
        self.con.execute(
            "INSERT INTO ingested_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [sink.run.run_id, dt.datetime.now(UTC), sink.run.input_list, sink.run.tool_version, str(path),
             fmt, compressed, sha, size, head, prefix, start, end, resume, resume_year, status, lines,
             records, sink.quarantined, note])

    # -- Postfix and HTTP rows --------------------------------------------------
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
    def _records(self, sink: Sink, pseudo: Pseudonymiser, path: Path, fmt: str,
                 fingerprint: tuple[str, int] | None) -> FileOutcome:
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
        self._record_file(sink, path, fmt, fingerprint, None, None, 0, 0, 0, None, status, 0,
                          sum(sink.counts.values()), note)
        return FileOutcome(str(path), fmt, status, n, dict(sink.counts), sink.quarantined, note)


_HTTP_COLUMNS = ("fetch_key", "source_position", "source", "log_format", "fetched_at", "client_addr",
                 "host", "policy_domain", "server_label", "method", "path", "protocol", "status",
                 "bytes_sent", "referer", "user_agent", "forwarded_for", "is_policy_fetch")


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
