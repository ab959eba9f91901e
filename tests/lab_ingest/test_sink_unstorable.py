"""The sink's last line of defence: a row whose value no column holds (a parser let a
number beyond BIGINT or a lone surrogate through) is quarantined with the reason, and the
rows beside it are stored; the ingest never dies in pyarrow (issue 14)."""

from __future__ import annotations

import datetime as dt

from collectors.lab_ingest.readers import HTTP_COLUMNS
from collectors.lab_ingest.sink import Sink

WHEN = dt.datetime(2024, 3, 3, 9, 59, 51, tzinfo=dt.timezone.utc)


def fetch_row(key: int, **changes: object) -> tuple:
    row = dict.fromkeys(HTTP_COLUMNS)
    row.update(fetch_key=key, source_position=f"line {key}", source="http_log", log_format="combined",
               fetched_at=WHEN + dt.timedelta(seconds=key), method="GET", status=200, bytes_sent=87,
               is_policy_fetch=True)
    row.update(changes)
    return tuple(row[c] for c in HTTP_COLUMNS)


def test_an_unstorable_row_is_quarantined_and_its_neighbours_stored(store) -> None:
    run = store.start_run("ingest", "t")
    sink = Sink(store.con, run)
    sink.begin("access.log")
    rows = [fetch_row(1), fetch_row(2, bytes_sent=2**70), fetch_row(3, user_agent="a\udcffb"), fetch_row(4)]
    for row in rows:
        sink.add("policy_fetches_http", HTTP_COLUMNS, "fetch_key", "ignore", row)
    sink.flush()
    sink.close()
    stored = store.con.execute("SELECT fetch_key FROM policy_fetches_http ORDER BY 1").fetchall()
    assert stored == [(1,), (4,)]
    kept = store.con.execute("SELECT position, reason FROM quarantine ORDER BY position").fetchall()
    assert [p for p, _ in kept] == ["line 2", "line 3"]
    assert all(reason.startswith("a value no column of policy_fetches_http holds") for _, reason in kept)
    assert sink.quarantined == 2
