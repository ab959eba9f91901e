"""Run bookkeeping is the store's: start, resume, inputs, find by kind, list, month, finish;
and the ``ingested_files`` row an ingest writes, by column name."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from collectors.store import IngestedFile, open_store


@pytest.fixture()
def store(tmp_path):
    with open_store(tmp_path / "runs.duckdb") as s:
        yield s


def _backdate(store, run_id: str, when: dt.datetime) -> None:
    store.con.execute("UPDATE runs SET started_at = ? WHERE run_id = ?", [when, run_id])


def test_a_run_is_started_resumed_and_finished(store) -> None:
    run = store.start_run("crawl", "list.csv", parameters={"top": 5, "settings": {"rate": 1}})
    store.finish_run(run.run_id, "failed", {"why": "killed"})
    assert store.list_runs()[0].status == "failed"

    resumed = store.resume_run(run, {"top": 5, "settings": {"rate": 2}})
    assert resumed.run_id == run.run_id and resumed.parameters["settings"] == {"rate": 2}
    assert store.list_runs()[0].status == "running"
    # a later resume reads the parameters the rest of the run used
    assert store.get_run(run.run_id).parameters["settings"] == {"rate": 2}

    store.finish_run(run.run_id, "finished", {"domains": 5})
    status, summary, finished = store.con.execute(
        "SELECT status, summary, finished_at FROM runs WHERE run_id = ?", [run.run_id]).fetchone()
    assert status == "finished" and json.loads(summary) == {"domains": 5} and finished is not None


def test_a_runs_inputs_are_replaced_and_read_back(store) -> None:
    run = store.start_run("ingest", "a.log", inputs=[{"name": "a.log", "sha256": None, "bytes": 3}])
    assert store.run_inputs(run.run_id) == [{"name": "a.log", "sha256": None, "bytes": 3}]
    store.set_run_inputs(run.run_id, [{"name": "a.log", "sha256": "ab" * 32, "bytes": 3}])
    assert store.run_inputs(run.run_id) == [{"name": "a.log", "sha256": "ab" * 32, "bytes": 3}]
    assert store.run_inputs("no-such-run") == []


def test_runs_are_found_by_kind_listed_newest_first_and_by_month(store) -> None:
    old = store.start_run("crawl", "list.csv")
    _backdate(store, old.run_id, dt.datetime(2026, 10, 3, tzinfo=dt.timezone.utc))
    new = store.start_run("crawl", "list.csv")
    _backdate(store, new.run_id, dt.datetime(2026, 11, 3, tzinfo=dt.timezone.utc))
    ingest = store.start_run("ingest", "a.log")

    assert store.latest_run("crawl").run_id == new.run_id
    assert store.latest_run().run_id == ingest.run_id
    assert store.get_run("latest", kind="crawl").run_id == new.run_id
    assert [r.run_id for r in store.list_runs()] == [ingest.run_id, new.run_id, old.run_id]
    assert [r.run_id for r in store.list_runs(kind="crawl", limit=1)] == [new.run_id]
    assert store.run_of_month("crawl", "list.csv", "2026-10").run_id == old.run_id
    assert store.run_of_month("crawl", "list.csv", "2026-11").status == "running"
    assert store.run_of_month("crawl", "other.csv", "2026-11") is None
    assert store.run_of_month("crawl", "list.csv", "2026-09") is None
    assert store.info()["runs"][0]["run_id"] == ingest.run_id


def test_an_ingested_file_is_written_by_column_name(store) -> None:
    run = store.start_run("ingest", "a.log.gz")
    store.record_ingested_file(run, IngestedFile(
        "a.log.gz", "postfix", True, "cd" * 32, 1234, "resumed", head_sha256="ef" * 32,
        prefix_sha256="01" * 32, start_offset=10, end_offset=2000, resume_offset=1500, resume_year=2025,
        lines=40, records=7, quarantined=2, note="resumed at byte 10"))
    row = store.con.execute(
        "SELECT run_id, input_list, source_name, format, compressed, file_sha256, file_bytes, head_sha256,"
        " prefix_sha256, start_offset, end_offset, resume_offset, resume_year, status, lines, records,"
        " quarantined, note FROM ingested_files").fetchone()
    assert row == (run.run_id, "a.log.gz", "a.log.gz", "postfix", True, "cd" * 32, 1234, "ef" * 32, "01" * 32,
                   10, 2000, 1500, 2025, "resumed", 40, 7, 2, "resumed at byte 10")
