"""The store: migrations, runs with provenance, quarantine, and the views' single definitions."""

from __future__ import annotations

import duckdb
import pytest

from collectors import __version__
from collectors.store import SchemaError, available_migrations, file_fingerprint, open_store, transaction


def test_new_database_is_at_newest_schema(tmp_path):
    with open_store(tmp_path / "a.duckdb") as s:
        assert s.schema_version() == available_migrations()[-1].version
        assert s.pending_migrations() == []
        tables = {r[0] for r in s.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"runs", "quarantine", "schema_migrations", "run_overview", "quarantine_summary"} <= tables


def test_migrate_is_idempotent_and_keeps_data(tmp_path):
    path = tmp_path / "a.duckdb"
    with open_store(path) as s:
        run = s.start_run("crawl", "list.csv")
    with open_store(path) as s:
        assert s.migrate() == []
        assert s.get_run(run.run_id).run_id == run.run_id


def test_migrations_apply_in_order_from_version_zero(tmp_path):
    path = tmp_path / "old.duckdb"
    with open_store(path, migrate=False) as s:
        assert s.schema_version() == 0
        applied = s.migrate()
    assert [m.version for m in applied] == sorted(m.version for m in available_migrations())
    assert applied[0].version == 1


def test_newer_schema_than_tool_is_refused(tmp_path):
    path = tmp_path / "future.duckdb"
    with open_store(path) as s:
        s.con.execute("INSERT INTO schema_migrations VALUES (999, 'future', now(), 'x')")
    with pytest.raises(SchemaError, match="newer than this tool"):
        open_store(path)


def test_run_records_provenance_and_latest(store):
    first = store.start_run("crawl", "tranco-2026-11-01 (top 100)", [{"name": "l.csv", "sha256": "ab", "bytes": 3}], {"top": 100})
    second = store.start_run("ingest", "maillog")
    assert store.get_run("latest").run_id == second.run_id
    assert store.get_run("latest", kind="crawl").run_id == first.run_id
    assert store.get_run("nope") is None
    prov = first.provenance()
    assert prov["run_id"] == first.run_id and prov["tool_version"] == __version__
    assert prov["input_list"] == "tranco-2026-11-01 (top 100)"
    store.finish_run(first.run_id, summary={"domains": 100})
    status, summary = store.con.execute(
        "SELECT status, summary->>'domains' FROM runs WHERE run_id = ?", [first.run_id]).fetchone()
    assert (status, summary) == ("finished", "100")


def test_quarantine_keeps_raw_bytes_and_reason(store):
    run = store.start_run("ingest", "x.log")
    n = store.quarantine(run, "postfix_log", "x.log", [(3, b"\xff\x00garbage", "not a syslog line"),
                                                      (7, "text line", "bad timestamp")])
    assert n == 2
    rows = store.con.execute(
        "SELECT position, raw, reason, run_id, tool_version FROM quarantine ORDER BY position").fetchall()
    assert rows[0][:3] == ("3", b"\xff\x00garbage", "not a syslog line")
    assert rows[1][1] == b"text line"
    assert all(r[3] == run.run_id and r[4] == __version__ for r in rows)
    summary = store.con.execute("SELECT source, reason, n FROM quarantine_summary ORDER BY reason").fetchall()
    assert summary == [("postfix_log", "bad timestamp", 1), ("postfix_log", "not a syslog line", 1)]


def test_file_fingerprint_streams(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"a" * (3 << 20) + b"b")
    digest, size = file_fingerprint(p, chunk=4096)
    import hashlib

    assert size == (3 << 20) + 1
    assert digest == hashlib.sha256(p.read_bytes()).hexdigest()


def test_read_only_open_does_not_migrate(tmp_path):
    path = tmp_path / "r.duckdb"
    open_store(path).close()
    with open_store(path, read_only=True) as s:
        with pytest.raises(duckdb.Error):
            s.con.execute("CREATE TABLE x (a INT)")


def test_a_failing_view_script_leaves_every_view_as_it_was(tmp_path, monkeypatch):
    from collectors.store import db

    path = tmp_path / "v.duckdb"
    open_store(path).close()
    real = db._view_scripts()
    broken = [(real[0][0], "CREATE OR REPLACE VIEW run_overview AS SELECT 42 AS changed;"),
              ("999_broken.sql", "CREATE OR REPLACE VIEW nope AS SELECT * FROM no_such_table;")]
    monkeypatch.setattr(db, "_view_scripts", lambda: broken)
    with pytest.raises(SchemaError, match="999_broken.sql"):
        open_store(path)
    monkeypatch.undo()
    with open_store(path, read_only=True) as s:
        columns = [r[0] for r in s.con.execute("DESCRIBE run_overview").fetchall()]
        assert "changed" not in columns and "run_id" in columns


def test_a_transaction_stores_all_or_nothing(store):
    con = store.con
    con.execute("CREATE TABLE t (x INTEGER)")
    with transaction(con):
        con.execute("INSERT INTO t VALUES (1), (2)")
    with pytest.raises(KeyboardInterrupt):      # an interrupt, not only an error, rolls back
        with transaction(con):
            con.execute("INSERT INTO t VALUES (3)")
            raise KeyboardInterrupt
    assert con.execute("SELECT list(x ORDER BY x) FROM t").fetchone()[0] == [1, 2]
    with transaction(con):                       # and the connection is usable afterwards
        con.execute("INSERT INTO t VALUES (4)")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 3


def test_a_migration_numbered_below_the_newest_applied_is_still_applied(tmp_path) -> None:
    """Branches merged later can bring a lower number than a database (or the sample) has."""
    from collectors.store import open_store

    path = tmp_path / "gap.duckdb"
    s = open_store(path)
    s.con.execute("DROP TABLE crawl_shard_files")
    s.con.execute("DROP TABLE crawl_shards")
    s.con.execute("DELETE FROM schema_migrations WHERE version = 4")
    assert [m.version for m in s.pending_migrations()] == [4]
    s.migrate()
    assert s.pending_migrations() == []
    assert s.con.execute("SELECT count(*) FROM crawl_shards").fetchone() == (0,)
    s.close()
