"""The compiled Postfix log reader: PostfixLogReader's rows, as Arrow columns, several times faster.

``_postfix_fast.c`` parses the common lines itself and applies every event to a port of
:class:`~collectors.lab_ingest.postfix_log.PostfixLogReader`'s state machine; each line it
does not recognise goes to :meth:`PostfixLogReader.interpret`, the reference reader's own
reading of one line. The Python reader stays the definition: the differential tests
(``tests/lab_ingest/test_postfix_fast.py``) hold both to the same rows on every log we have.

The extension is optional (``setup.py`` builds it where a C compiler is found);
:data:`AVAILABLE` says whether it was. Rows come out per table as :class:`pyarrow.Table`
(one column per field of the row NamedTuple), so no Python object is made per value.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from collectors.lab_ingest import postfix_log as pl
from collectors.lab_ingest import postfix_messages as pm
from collectors.lab_ingest.records import Quarantined

try:
    from collectors.lab_ingest import _postfix_fast
except ImportError:          # not built (no C compiler at install): the Python reader is used
    _postfix_fast = None

AVAILABLE = _postfix_fast is not None
UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

ROW_CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    pl.SessionRow, pl.MessageRow, pl.DeliveryRow, pl.NoticeRow, pl.ResolverRow, pl.OtherRow, pl.OtherCountRow)}

_TIMESTAMP = pa.timestamp("us", tz="UTC")


class FastPostfixReader:
    """Feeds blocks of complete lines; rows accumulate until :meth:`take`. One per file."""

    def __init__(self, first_year: int, source_name: str = "", keep_other_lines: bool = False,
                 count_from: int = 0) -> None:
        if _postfix_fast is None:
            raise RuntimeError("the compiled reader is not built (reinstall with a C compiler)")
        # The reference reader lends its envelope parser (year tracking, time stamp cache)
        # and its helpers for the lines the compiled parsers leave to Python. Other daemons'
        # and programs' lines are kept raw or counted as PostfixLogReader does (the same options).
        self._reference = pl.PostfixLogReader(first_year, source_name)
        self.envelopes = self._reference.envelopes
        self._reader = _postfix_fast.Reader(
            stamp_cache=self.envelopes._stamp_cache, stamp=self.envelopes._stamp, fallback=self._reference.interpret,
            events=pm, rows=pl, quarantined=Quarantined,
            caps=(pl.MAX_OPEN_SESSIONS, pl.MAX_OPEN_MESSAGES, pl.MAX_SMTP_PROCESSES, pl.MAX_NOTICE_PARENTS,
                  pl.MAX_RESUME_REWIND, pl.MAX_OPEN_COUNTS),
            keep_other_lines=keep_other_lines, count_from=count_from)

    # -- the feed --------------------------------------------------------------
    def feed_block(self, block: bytes, base_offset: int, lineno: int) -> int:
        """Read ``block`` (complete lines, each ending in a newline) that starts at decoded
        byte ``base_offset`` after line ``lineno``; returns the number of its last line."""
        return self._reader.feed(block, base_offset, lineno)

    def finish(self) -> None:
        """End of input: every state still open becomes an incomplete row (see :meth:`take`)."""
        self._reader.finish()

    def resume_point(self, end_offset: int) -> tuple[int, dt.datetime | None]:
        offset, at = self._reader.resume_point(end_offset)
        return offset, None if at is None else _EPOCH + dt.timedelta(microseconds=at)

    @property
    def pending_rows(self) -> int:
        return self._reader.pending_rows

    @property
    def pending_quarantined_bytes(self) -> int:
        """What the lines quarantined since the last :meth:`take_quarantined` hold (their raw
        bytes, and some overhead each): the caller takes them at its own budget."""
        return self._reader.pending_quarantined_bytes

    def take(self) -> dict[type, pa.Table]:
        """The rows made since the last call, per row class, as Arrow tables."""
        out = {}
        for name, (n, columns) in self._reader.take().items():
            out[ROW_CLASSES[name]] = pa.table({col[0]: _arrow(n, *col[1:]) for col in columns})
        return out

    def take_quarantined(self) -> list[tuple[int, Quarantined]]:
        """Lines that are not log lines, with their byte offsets, since the last call."""
        return self._reader.take_quarantined()

    @property
    def lines(self) -> int:
        return self._reader.counters()["lines"]

    @property
    def blank(self) -> int:
        return self._reader.counters()["blank"]

    @property
    def interpreted(self) -> int:
        return self._reader.counters()["interpreted"]

    def counters(self) -> dict[str, int]:
        """lines, blank, interpreted, and how many lines the compiled parsers took (fast)
        and how many went to the Python parsers (slow)."""
        return self._reader.counters()


def compiled_reader_counters(data: bytes, first_year: int, block: int = 1 << 20) -> dict[str, int]:
    """How the compiled reader reads ``data`` (complete lines): its counters, among them how many
    lines its own parsers took (``fast``) and how many it handed to Python (``slow``). For the
    benchmark, which reports the slow share of each envelope."""
    reader = FastPostfixReader(first_year)
    pos = lineno = 0
    while pos < len(data):
        cut = max(data.rfind(b"\n", pos, pos + block), data.find(b"\n", pos)) + 1
        if cut == 0:
            break
        lineno = reader.feed_block(data[pos:cut], pos, lineno)
        pos = cut
    return reader.counters()


def _arrow(n: int, kind: int, valid: bytes, data: bytes, offsets: bytes, child_offsets: bytes,
           child_data: bytes) -> pa.Array:
    """One column from the extension's buffers (validity: one byte per row)."""
    ok = np.frombuffer(valid, np.uint8).astype(bool)
    nulls = n - int(ok.sum())
    mask = ~ok if nulls else None
    k = _postfix_fast
    if kind == k.K_STR:
        bitmap = pa.py_buffer(np.packbits(ok, bitorder="little")) if nulls else None
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data), bitmap, nulls)
    if kind == k.K_I64:
        return pa.array(np.frombuffer(data, np.int64), pa.int64(), mask=mask)
    if kind == k.K_TS:
        return pa.array(np.frombuffer(data, np.int64), pa.int64(), mask=mask).cast(_TIMESTAMP)
    if kind == k.K_F64:
        return pa.array(np.frombuffer(data, np.float64), pa.float64(), mask=mask)
    if kind == k.K_BOOL:
        return pa.array(np.frombuffer(data, np.uint8).astype(bool), pa.bool_(), mask=mask)
    # K_LIST: lists of strings, never null
    n_child = len(child_offsets) // 4 - 1
    child = pa.StringArray.from_buffers(n_child, pa.py_buffer(child_offsets), pa.py_buffer(child_data))
    return pa.ListArray.from_arrays(pa.array(np.frombuffer(offsets, np.int32)), child)
