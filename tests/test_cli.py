"""The command line: help reads well, user mistakes are one line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from collectors.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collectors.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    assert "db" in r.stdout and "report" in r.stdout


def test_db_init_info_migrate(tmp_path, capsys):
    db = str(tmp_path / "x.duckdb")
    assert main(["db", "init", "--db", db]) == 0
    assert main(["db", "info", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "schema version" in out and "runs" in out
    assert main(["db", "migrate", "--db", db]) == 0


def test_info_json(tmp_path, capsys):
    import json

    db = str(tmp_path / "x.duckdb")
    main(["db", "init", "--db", db])
    capsys.readouterr()
    assert main(["db", "info", "--db", db, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["schema_version"] >= 1 and "quarantine" in info["tables"]


@pytest.mark.parametrize("args, needle", [
    (["db", "info", "--db", "/nonexistent/dir/x.duckdb"], "no database at"),
    (["db", "frobnicate"], "invalid choice"),
    (["nosuchcommand"], "invalid choice"),
])
def test_user_mistakes_are_one_line_without_traceback(args, needle):
    r = run_cli(*args)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert any(needle in ln for ln in lines), r.stderr
    assert len(lines) <= 2, r.stderr  # argparse may add its usage line


def test_not_a_database_is_one_line(tmp_path):
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_bytes(b"this is not a duckdb file" * 100)
    r = run_cli("db", "info", "--db", str(bogus))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "mtasts: error:" in r.stderr
