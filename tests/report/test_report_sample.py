"""The embedded sample's format: written by write_sample (make sample), read back
by import_sample (mtasts report without --db), labelled a local simulation."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from collectors.report import SampleError, import_sample, read_metadata, write_sample
from collectors.report.sample import SAMPLE_DIR


def test_roundtrip_keeps_every_row_and_recreates_views(synthetic, tmp_path):
    meta = synthetic["meta"]
    assert meta["local_simulation"] is True and meta["label"] == "local simulation"
    assert meta["produced_by"] == "tests/report"
    assert {r["run_id"] for r in meta["runs"]} >= set(synthetic["run_ids"])
    con = duckdb.connect(str(synthetic["db"]), read_only=True)
    for table, n in meta["tables"].items():
        # the import adds one run: the sample's own record (kind 'sample', its metadata)
        assert con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == n + (table == "runs"), table
    assert con.execute("SELECT count(*) FROM posture").fetchone()[0] == 4000
    kind, params, inputs = con.execute("SELECT kind, parameters, inputs FROM runs WHERE kind = 'sample'").fetchone()
    assert json.loads(params)["local_simulation"] is True
    assert {i["name"].rsplit("/", 1)[-1] for i in json.loads(inputs)} == set(meta["files"])
    con.close()


def test_sample_holds_data_only_with_relative_paths(synthetic, tmp_path):
    export = synthetic["db"].parent / "sample" / "export"
    schema = (export / "schema.sql").read_text()
    assert "CREATE VIEW" not in schema and "CREATE MACRO" not in schema
    load = (export / "load.sql").read_text()
    assert str(export) not in load and "/" not in load.replace("'", "")


def test_import_refuses_an_existing_database(synthetic, tmp_path):
    (tmp_path / "x.duckdb").write_bytes(b"")
    with pytest.raises(SampleError, match="exists"):
        import_sample(tmp_path / "x.duckdb", synthetic["db"].parent / "sample")


def test_a_sample_in_a_folder_with_a_quote_roundtrips(synthetic, tmp_path):
    """load.sql names files as SQL strings ('' for '): written relative, read back absolute."""
    sample = tmp_path / "o'brien's sample"
    meta = write_sample(synthetic["db"], sample, produced_by="quoted", description="quoted folder")
    assert "brien" not in (sample / "export" / "load.sql").read_text()
    db = tmp_path / "again.duckdb"
    import_sample(db, sample)
    con = duckdb.connect(str(db), read_only=True)
    try:
        for table, n in meta["tables"].items():
            assert con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == n + (table == "runs"), table
    finally:
        con.close()


def test_import_refuses_a_load_sql_with_other_statements(synthetic, tmp_path):
    sample = tmp_path / "sample"
    shutil.copytree(synthetic["db"].parent / "sample", sample)
    with open(sample / "export" / "load.sql", "a", encoding="utf-8") as fh:
        fh.write("DROP TABLE runs;\n")
    with pytest.raises(SampleError, match="unexpected line.*DROP TABLE runs"):
        import_sample(tmp_path / "x.duckdb", sample)


def test_missing_sample_says_how_to_make_one(tmp_path):
    with pytest.raises(SampleError, match="make sample"):
        read_metadata(tmp_path)


def test_rewriting_replaces_the_previous_sample(synthetic, tmp_path):
    sample = tmp_path / "sample"
    write_sample(synthetic["db"], sample, produced_by="one", description="first")
    write_sample(synthetic["db"], sample, produced_by="two", description="second")
    assert json.loads((sample / "metadata.json").read_text())["produced_by"] == "two"
    assert sorted(p.name for p in sample.iterdir()) == ["export", "metadata.json"]


def test_embedded_sample_renders(tmp_path):
    """data/sample/ comes from 'make sample' (the lab issue); until it exists, skipped."""
    if not (SAMPLE_DIR / "metadata.json").is_file():
        pytest.skip("data/sample/ has not been produced yet ('make sample')")
    from collectors.cli import main

    assert main(["report", "--out", str(tmp_path)]) == 0
    index_file = next(tmp_path.glob("*/index.html"))
    index = index_file.read_text()
    assert "Local simulation" in index
    out = index_file.parent
    current = [r["run_id"] for r in read_metadata()["runs"] if r["kind"] == "crawl"][-1]
    from test_report_figures import review_figures

    assert review_figures(out, current)  # every figure holds data, nothing cut, footer labelled
    # the lab senders' timers come from the sample's stored provenance and stand beside the times
    notifications = (out / "notifications.html").read_text()
    timers = read_metadata().get("details", {}).get("lab", {}).get("timers", {})
    for name, value in timers.items():
        assert f"{name} = {value}" in notifications
