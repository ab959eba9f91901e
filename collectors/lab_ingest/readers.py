"""Parsed input into table rows: each format's parser fed, and its rows handed to the sink.

A log comes from the line source (:class:`~collectors.lab_ingest.linesource.LineSource`)
through the Postfix reader (compiled, or the Python reference) or the access-log parser;
records come from the format's parser in the registry and are turned into rows by
``record_tables``. Pseudonymisation is applied here, before a row reaches the sink.
Whatever a parser refuses goes to the quarantine with its raw bytes and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa

from collectors.lab_ingest import http_log, postfix_fast, record_tables
from collectors.lab_ingest.formats import HTTP_TABLE, POSTFIX_TABLES, EvidenceFormat
from collectors.lab_ingest.linesource import MAX_LINE_BYTES, LineSource, LogOpening, Rereading, SourceEnd
from collectors.lab_ingest.postfix_log import DeliveryRow, MessageRow, OtherRow, PostfixLogReader, row_key
from collectors.lab_ingest.pseudonymise import Pseudonymiser
from collectors.lab_ingest.records import Quarantined
from collectors.lab_ingest.sink import QUARANTINE_BATCH_BYTES, Sink

# The compiled reader hands over this many rows at a time: a DuckDB row group, so that each
# insert writes whole row groups (measured: about twice as fast as 10,000-row inserts).
ARROW_BATCH_ROWS = 122_880
INCOMPLETE_LAST_LINE = "incomplete last line (no newline); read again when the file grows"
HTTP_COLUMNS = ("fetch_key", "source_position", "source", "log_format", "fetched_at", "client_addr",
                "host", "policy_domain", "server_label", "method", "path", "protocol", "status",
                "bytes_sent", "referer", "user_agent", "forwarded_for", "is_policy_fetch")


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a reader stopped: the lines it read, and where (decoded offset) and in which
    year (classic syslog) a later run resumes."""

    lines: int
    offset: int
    year: int | None


@dataclass(frozen=True, slots=True)
class LogRead:
    """What reading a log gave besides its rows: where a later run resumes, and what the line
    source found (hashes, offsets, a broken stream)."""

    resume: Resume
    source: SourceEnd


# --------------------------------------------------------------------------- Postfix logs
def read_log(sink: Sink, pseudo: Pseudonymiser, opening: LogOpening, fmt: str, year: int | None,
             reader: str, keep_other_lines: bool = False) -> LogRead:
    """A log (``postfix`` or ``http``) from its line source into the sink, with what the line
    source could not hand out quarantined. ``year``: ``--year``; ``reader``: ``--reader``;
    ``keep_other_lines``: ``--keep-other-lines`` (other daemons' lines raw, not counted)."""
    src, read_before = opening.source, opening.read_before
    if fmt == "postfix":
        first = opening.year(year)
        if use_compiled(reader, pseudo):
            read = read_postfix_compiled(sink, src, first, read_before, keep_other_lines)
        else:
            read = read_postfix(sink, pseudo, src, first, read_before, keep_other_lines)
    else:
        read = read_http(sink, src)
    quarantine_unread(sink, src, fmt, read_before)
    return LogRead(read, opening.ended())


def use_compiled(reader: str, pseudo: Pseudonymiser) -> bool:
    """Whether Postfix logs go through the compiled reader (same rows, faster): ``--reader``
    ``compiled`` (refused where it is not built, or with ``--pseudonymise``), ``python``, or
    ``auto`` (compiled where built and nothing is pseudonymised)."""
    if reader == "python":
        return False
    if reader == "compiled":
        if not postfix_fast.AVAILABLE:
            raise RuntimeError("the compiled Postfix reader is not built (pip install -e . with a C compiler)")
        if pseudo.active:
            raise RuntimeError("--pseudonymise reads Postfix logs with the Python reader (--reader python)")
        return True
    return postfix_fast.AVAILABLE and not pseudo.active


def read_postfix_compiled(sink: Sink, src: LineSource, year: int, read_before: int,
                          keep_other_lines: bool = False) -> Resume:
    """A Postfix log through the compiled reader; rows reach the sink as Arrow batches."""
    reader = postfix_fast.FastPostfixReader(year, str(src.path), keep_other_lines, read_before)
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
            spec = POSTFIX_TABLES[cls]
            whole = pa.concat_tables(batches)
            full = rows if final else rows - rows % ARROW_BATCH_ROWS
            for at in range(0, full, ARROW_BATCH_ROWS):
                sink.add_arrow(spec.table, spec.key, spec.mode, whole.slice(at, min(ARROW_BATCH_ROWS, full - at)))
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
            sink.quarantine("postfix_log", Quarantined(refused[0].position, refused[0].raw, INCOMPLETE_LAST_LINE))
        else:
            src.accept_unterminated()
    resume, resume_at = reader.resume_point(src.offset)
    reader.finish()
    store(final=True)
    return Resume(reader.lines, resume, resume_at.year if resume_at is not None else reader.envelopes.years.year)


def read_postfix(sink: Sink, pseudo: Pseudonymiser, src: LineSource, year: int, read_before: int,
                 keep_other_lines: bool = False) -> Resume:
    """A Postfix log through the Python reader (the definition of the rows)."""
    reader = PostfixLogReader(year, str(src.path), keep_other_lines, read_before)
    if read_before > src.start:
        # Re-read lines an earlier run read (for the state still open then): their rows
        # are de-duplicated by key, their quarantined lines were stored once already.
        reread = Rereading(src.lines(), read_before)
        rows: Iterable = (r for r in reader.feed(reread)
                          if not (r.__class__ is Quarantined and reread.already_read()))
    else:
        rows = reader.feed(src.lines())
    store_postfix(sink, pseudo, rows)
    last = src.take_unterminated()
    if last is not None:
        got = list(reader.feed([last]))
        if any(isinstance(r, Quarantined) for r in got):
            sink.quarantine("postfix_log", Quarantined(
                f"line {last[1]} (byte {last[0]})", last[2].encode("utf-8", "replace"), INCOMPLETE_LAST_LINE))
        else:
            src.accept_unterminated()
            store_postfix(sink, pseudo, got)
    resume, resume_at = reader.resume_point(src.offset)
    store_postfix(sink, pseudo, reader.finish())
    return Resume(reader.lines, resume, resume_at.year if resume_at is not None else reader.envelopes.years.year)


def store_postfix(sink: Sink, pseudo: Pseudonymiser, rows: Iterable) -> None:
    """The Python reader's rows (pseudonymised when asked) to their tables."""
    tables = POSTFIX_TABLES
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
        sink.add(spec.table, t._fields, spec.key, spec.mode, row)


# --------------------------------------------------------------------------- access logs
def read_http(sink: Sink, src: LineSource) -> Resume:
    """A policy server's access log; a later run resumes at the last complete line."""
    lines = _Counted(src.lines())
    store_http(sink, http_log.parse_lines(lines))
    last = src.take_unterminated()
    if last is not None:
        got = http_log.parse_line(last[2], f"line {last[1]}")
        if got is None:
            sink.quarantine("http_log", Quarantined(
                f"line {last[1]}", last[2].encode("utf-8", "replace"), INCOMPLETE_LAST_LINE))
        else:
            src.accept_unterminated()
            store_http(sink, [got])
            lines.last = last[1]
    return Resume(lines.last, src.offset, None)


class _Counted:
    """Lines passed through, remembering the number of the latest (the summary's count)."""

    def __init__(self, lines: Iterator[tuple[int, int, str]]) -> None:
        self.lines, self.last = lines, 0

    def __iter__(self) -> Iterator[tuple[int, int, str]]:
        for line in self.lines:
            self.last = line[1]
            yield line


def store_http(sink: Sink, rows: Iterable) -> None:
    """Access-log requests to ``policy_fetches_http``, keyed by what identifies the request."""
    for r in rows:
        if isinstance(r, Quarantined):
            sink.quarantine("http_log", r)
            continue
        key = row_key("http", r.fetched_at, r.client_addr, r.host, r.method, r.path, r.status,
                      r.user_agent, r.bytes_sent, sink.source_name.rsplit("/", 1)[-1], r.position)
        sink.add(HTTP_TABLE.table, HTTP_COLUMNS, HTTP_TABLE.key, HTTP_TABLE.mode,
                 (key, r.position, "http_log", r.log_format, r.fetched_at, r.client_addr, r.host,
                  r.policy_domain, r.server_label, r.method, r.path, r.protocol, r.status,
                  r.bytes_sent, r.referer, r.user_agent, r.forwarded_for, r.is_policy_fetch))


def quarantine_unread(sink: Sink, src: LineSource, fmt: str, read_before: int) -> None:
    """What the line source could not hand out as lines: overlong lines (those an earlier run
    did not store already) and a stream that broke off."""
    for pos, lineno, raw in src.overlong:
        if pos < read_before:
            continue
        sink.quarantine(f"{fmt}_log", Quarantined(f"line {lineno} (byte {pos})", raw,
                                                  f"line longer than {MAX_LINE_BYTES} bytes"))
    if src.problem:
        sink.quarantine(f"{fmt}_log", Quarantined(f"byte {src.offset}", b"", src.problem))


# --------------------------------------------------------------------------- records
def read_records(sink: Sink, pseudo: Pseudonymiser, path: Path, fmt: EvidenceFormat) -> int:
    """A record format through its parser: the records (and quarantined items) read."""
    assert fmt.parse is not None
    n = 0
    for rec in fmt.parse(path):
        n += 1
        if isinstance(rec, Quarantined):
            if pseudo.active:
                rec = Quarantined(rec.position, pseudo.text(bytes(rec.raw).decode("utf-8", "replace")).encode(),
                                  rec.reason)
            sink.quarantine(fmt.name, rec)
            continue
        for table, columns, key, row in record_tables.rows_for(rec, pseudo):
            if table == "quarantine":
                sink.quarantine(fmt.name, row)
            else:
                sink.add(table, columns, key, "ignore", row)
    return n
