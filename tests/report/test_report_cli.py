"""``mtasts report``: a user's mistake is one line and a non-zero exit."""

from __future__ import annotations

import pytest

from collectors.cli import main


@pytest.mark.parametrize("argv, message", [
    (["report", "--db", "/nonexistent/x.duckdb"], "no database at"),
    (["report", "--notebook", "nope", "--db", "x"], "no notebook nope"),
])
def test_user_mistakes_are_one_line(argv, message, capsys, tmp_path):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_month_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "--month", "2025-13"])
    assert exc.value.code == 2
    assert "YYYY-MM" in capsys.readouterr().err


def test_unknown_run_is_one_line(synthetic, capsys, tmp_path):
    assert main(["report", "--db", str(synthetic["db"]), "--out", str(tmp_path), "--run", "nosuch"]) == 2
    assert "no crawl run nosuch" in capsys.readouterr().err


def test_from_parameters_reads_every_notebook_parameter(synthetic, tmp_path, monkeypatch):
    """The one place notebooks open the report: defaults filled, a relative default database
    found from the repository when the working directory is elsewhere (JupyterLab's notebooks/)."""
    from collectors.report import ReportContext
    from collectors.report.context import PARAMETERS, resolve_db_path

    monkeypatch.chdir(tmp_path)
    assert resolve_db_path("data/observatory.duckdb").endswith("/data/observatory.duckdb")
    assert resolve_db_path("data/observatory.duckdb") != "data/observatory.duckdb"
    ctx = ReportContext.from_parameters(
        "adoption", {"db_path": str(synthetic["db"]), "month": synthetic["months"][0], "unrelated": 1},
        materialise="none")
    try:
        assert ctx.month == synthetic["months"][0] and ctx.month_given
        assert ctx.run_ids == synthetic["run_ids"][:1]
        assert ctx.rank_buckets == tuple(PARAMETERS["rank_buckets"])
    finally:
        ctx.con.close()
