"""One data dictionary, complete: every public table, view and column is described once,
at its definition (COMMENT ON in migrations/010_dictionary.sql and in views/*.sql), and the
dictionary page shows all of it, grouped."""

from __future__ import annotations

import duckdb

from collectors.report.dictionary import GROUPS, data_dictionary, dictionary_html, undescribed
from collectors.store import open_store


def test_every_public_relation_and_column_has_a_description(tmp_path):
    with open_store(tmp_path / "db.duckdb") as store:
        assert undescribed(store.con) == []
        df = data_dictionary(store.con)
        assert {"runs", "posture", "crawl_policy", "provider_behaviour", "notification_timing"} <= set(df["relation"])
        assert len(df) > 700


def test_a_new_column_without_a_description_is_reported(tmp_path):
    with open_store(tmp_path / "db.duckdb") as store:
        store.con.execute("ALTER TABLE runs ADD COLUMN forgotten INTEGER")
        store.con.execute("CREATE VIEW new_view AS SELECT 1 AS x")
        assert sorted(undescribed(store.con)) == ["new_view", "new_view.x", "runs.forgotten"]


def test_views_keep_their_descriptions_after_a_second_migrate(tmp_path):
    with open_store(tmp_path / "db.duckdb") as store:
        store.migrate()  # views re-created: their comments come with them
        comment = store.con.execute(
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'posture'"
            " AND column_name = 'mx_policy_match'").fetchone()[0]
        assert "4.1" in comment


def test_the_page_shows_every_relation_grouped_without_a_row_limit(tmp_path):
    with open_store(tmp_path / "db.duckdb") as store:
        df = data_dictionary(store.con)
    html = dictionary_html(df)
    assert html.count("<details") == df["relation"].nunique()
    assert html.count("<tr><td><code>") == len(df)          # every column, no cut
    titles = [t for t, _ in GROUPS]
    positions = [html.index(f"<h3>{t}</h3>") for t in titles]
    assert positions == sorted(positions) and len(positions) == len(titles)
    assert "<script" not in html


def test_remote_looking_text_in_a_comment_is_escaped(tmp_path):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (a INTEGER)")
    con.execute("COMMENT ON TABLE t IS '<b>x</b>'")
    con.execute("COMMENT ON COLUMN t.a IS '<script>alert(1)</script>'")
    html = dictionary_html(data_dictionary(con))
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html


def test_docs_data_dictionary_is_generated_from_the_schema(tmp_path):
    """docs/data-dictionary.md is the command's output on a fresh database: the docs read
    the same comments as the page, so they cannot drift."""
    import subprocess
    import sys
    from pathlib import Path

    from support import REPO_ROOT

    db = tmp_path / "d.duckdb"
    open_store(db).close()
    mtasts = str(Path(sys.executable).parent / "mtasts")
    done = subprocess.run([mtasts, "db", "dictionary", "--db", str(db)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert (REPO_ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8") == done.stdout
    one = subprocess.run([mtasts, "db", "dictionary", "--db", str(db), "--format", "csv", "posture"],
                         capture_output=True, text=True, timeout=60)
    assert one.stdout.splitlines()[0] == "group,relation,kind,relation_meaning,column_name,data_type,column_meaning"
    assert all(line.split(",")[1] == "posture" for line in one.stdout.splitlines()[1:])
    missing = subprocess.run([mtasts, "db", "dictionary", "--db", str(db), "nope"], capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2 and "no table or view nope" in missing.stderr
