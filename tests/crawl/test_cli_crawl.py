"""User mistakes on ``mtasts crawl`` / ``mtasts export posture`` are one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.cli import main


@pytest.mark.parametrize("argv, message", [
    (["crawl", "{tmp}/missing.csv"], "no such list file"),
    (["crawl"], "missing LIST"),
    (["crawl", "{tmp}/l.txt", "--resume", "x"], "not both"),
    (["crawl", "{tmp}/l.txt", "--resolver", "dns.example"], "resolver must be an IP"),
    (["crawl", "{tmp}/l.txt", "--ca-bundle", "{tmp}/nope.pem"], "no such CA bundle"),
    (["crawl", "--resume", "latest"], "no crawl run"),
    (["crawl", "--resume", "latest", "--top", "5"], "--top applies to a new crawl"),
    (["export", "posture", "--run", "latest"], "no crawl run"),
])
def test_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    (tmp_path / "l.txt").write_text("example.test\n")
    db = tmp_path / "x.duckdb"
    from collectors.store import open_store
    open_store(db).close()
    code = main([a.format(tmp=tmp_path) for a in argv] + ["--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.strip().count("\n") == 0


def test_bad_option_values_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--https-port", "70000"], ["--concurrency", "0"], ["--timeout", "-1"], ["--rate", "x"],
                ["--rate", "nan"], ["--rate", "inf"], ["--timeout", "nan"]):
        with pytest.raises(SystemExit) as exc:
            main(["crawl", "l.txt", *bad])
        assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_tranco_offline_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["crawl", "tranco:ZZZZZ", "--tranco-cache", str(tmp_path / "c"), "--db", str(tmp_path / "x.duckdb"),
                 "--resolver", "127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot get Tranco list" in err and err.strip().count("\n") == 0
