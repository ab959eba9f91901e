"""The sink: rows in, bulk inserts out, each key once, on a writer thread.

Rows arrive per table (tuples from the Python parsers, Arrow batches from the compiled
reader), are buffered into pyarrow batches, de-duplicated by their key within the batch and
against what is stored, and inserted by a second thread (DuckDB releases the GIL, so parsing
and storing overlap) through a bounded queue (memory stays flat). What each insert really
did (added, updated, duplicates) is counted from DuckDB's affected-row counts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import queue
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collectors.lab_ingest.postfix_log import row_key
from collectors.lab_ingest.records import Quarantined
from collectors.rfc import storable_text
from collectors.store import Run, transaction

UTC = dt.timezone.utc
BATCH_ROWS = 10_000
# Quarantined items are handed on (and buffered here) at most this many raw bytes at a time,
# however few good rows come with them: a log of junk, or a capture of many 8 MiB bodies,
# stays within memory and within DuckDB's limit per transaction (issue 14).
QUARANTINE_BATCH_BYTES = 16 << 20
QUARANTINE_COLUMNS = ("quarantine_key", "source", "position", "raw", "reason")


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
        """Keep an item that could not be read, keyed by where it was read and what it holds
        (a re-read, e.g. after a kill, adds it once); flushed on its own byte budget, so a
        capture of many 8 MiB bodies never makes one transaction too big for DuckDB."""
        raw = item.raw if isinstance(item.raw, (bytes, bytearray)) else str(item.raw).encode("utf-8", "replace")
        raw, reason = bytes(raw), storable_text(item.reason)
        key = row_key("quarantine", source, self.source_name, item.position, reason,
                      hashlib.blake2b(raw, digest_size=16).hexdigest())
        self.add("quarantine", QUARANTINE_COLUMNS, "quarantine_key", "ignore",
                 (key, source, storable_text(str(item.position)), raw, reason))
        self.quarantined += 1
        self._quarantine_bytes += len(raw)
        if self._quarantine_bytes >= QUARANTINE_BATCH_BYTES:
            self._flush_table("quarantine")

    def flush(self) -> None:
        """Insert everything buffered, wait until it is stored, and count what it did."""
        for table in list(self._buffers):
            self._flush_table(table)
        if "quarantine" in self._buffers:  # what flushing the others quarantined
            self._flush_table("quarantine")
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
        if table == "quarantine":
            self._quarantine_bytes = 0
        if not rows:
            return
        types = self._column_types(table)
        try:
            batch = _batch(columns, rows, types)
        except _UNSTORABLE:
            if table == "quarantine":
                raise
            batch = self._storable_rows(table, columns, rows, types)
        self._buffers[table][3].clear()
        if batch.num_rows:
            self._submit(table, key, mode, batch)

    def _storable_rows(self, table: str, columns: tuple[str, ...], rows: list[tuple],
                       types: dict[str, pa.DataType]) -> pa.Table:
        """The rows a column can hold; any other (a value beyond BIGINT, a lone surrogate:
        whatever a parser let through) is quarantined with the reason, never a crash."""
        good = []
        for row in rows:
            try:
                _batch(columns, [row], types)
            except _UNSTORABLE as error:
                position = row[columns.index("source_position")] if "source_position" in columns else ""
                self.quarantine(table, Quarantined(str(position or ""), repr(row)[:4096].encode("utf-8", "backslashreplace"),
                                                   f"a value no column of {table} holds: {type(error).__name__}: {error}"[:500]))
                continue
            good.append(row)
        return _batch(columns, good, types) if good else pa.table({})

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
        elif table == "quarantine":  # keyed, but no constraint (crawl rows have no key)
            statements = [(f"INSERT INTO {table} BY NAME {select} WHERE NOT EXISTS "
                           f"(SELECT 1 FROM {table} o WHERE o.{key} = b.{key})", provenance)]
            counting = "none"
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


# What pyarrow raises for a value its column cannot hold.
_UNSTORABLE = (OverflowError, UnicodeError, pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError)


def _batch(columns: Sequence[str], rows: list[tuple], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.table({name: _array(values, types.get(name)) for name, values in zip(columns, zip(*rows))})


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

