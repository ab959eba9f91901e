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
