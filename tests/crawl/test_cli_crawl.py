"""User mistakes on ``mtasts crawl`` / ``mtasts export posture`` are one line and exit 2."""

from __future__ import annotations

import json
import time
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
    (["crawl", "{tmp}/l.txt", "--weights", "{tmp}/nope.csv"], "no such weights file"),
    (["crawl", "{tmp}/l.txt", "--weights", "{tmp}/w-zero.csv"], "weight must be > 0"),
    (["crawl", "{tmp}/l.txt", "--weights", "{tmp}/w-bad-name.csv"], "bad row"),
    (["crawl", "{tmp}/l.txt", "--weights", "{tmp}/w-twice.csv"], "listed twice"),
    (["crawl", "{tmp}/l.txt", "--weights", "{tmp}/w-words.csv"], "unreadable weights file"),
    (["crawl", "--resume", "latest", "--weights", "{tmp}/w-zero.csv"], "--weights applies to a new crawl"),
    (["crawl", "--resume", "latest", "--simulated-date", "2026-01-01"], "--simulated-date applies to a new crawl"),
])
def test_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    (tmp_path / "l.txt").write_text("example.test\n")
    for name, rows in (("w-zero", "example.test,a,0"), ("w-bad-name", "http://x/,a,1"),
                       ("w-twice", "example.test,a,1\nEXAMPLE.test.,a,2"), ("w-words", "example.test,a,heavy")):
        (tmp_path / f"{name}.csv").write_text(f"domain,stratum,weight\n{rows}\n")
    db = tmp_path / "x.duckdb"
    from collectors.store import open_store
    open_store(db).close()
    code = main([a.format(tmp=tmp_path) for a in argv] + ["--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.strip().count("\n") == 0


def test_bad_option_values_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--simulated-date", "2026-13-01"], ["--simulated-date", "yesterday"],["--https-port", "70000"], ["--concurrency", "0"], ["--timeout", "-1"], ["--rate", "x"],
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


# ---- options given with --resume (each refused with one line, or honoured) ----------------

def _tranco_cache(folder: Path, list_id: str, text: str) -> Path:
    """A tranco package cache holding one list, as a download would leave it (offline)."""
    from tranco import Tranco

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{list_id}.csv").write_text(text)
    Tranco(cache_dir=str(folder))._add_to_cache(list_id)
    return folder / f"{list_id}.csv"


def _run_killed_before_loading(db: Path, name: str, path: Path, **settings: object) -> str:
    """A crawl run as ``mtasts crawl`` records it before loading its list (killed there)."""
    from collectors.crawl.runner import CrawlSettings
    from collectors.store import file_fingerprint, open_store

    sha, size = file_fingerprint(path)
    with open_store(db) as store:
        run = store.start_run("crawl", name, inputs=[{"name": name, "sha256": sha, "bytes": size}],
                              parameters={"source": str(path.resolve()), "top": None, "settings":
                                          CrawlSettings(resolver=("127.0.0.1", 9), **settings).to_parameters()})
    return run.run_id


# Lists of bad entries only: the resumed run loads and quarantines them and has nothing to
# crawl, so these tests need no servers (the resolver 127.0.0.1:9 is never asked).
BAD_LIST = "1,http://x.test/\n2,192.0.2.1\n"


def test_resume_reads_a_tranco_list_from_the_tranco_cache_given(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from collectors.store import open_store

    first = _tranco_cache(tmp_path / "cache1", "ABCD", BAD_LIST)
    db = tmp_path / "x.duckdb"
    run_id = _run_killed_before_loading(db, "tranco:ABCD", first)
    first.unlink()  # the cache the run began with is gone; the list is in another one
    _tranco_cache(tmp_path / "cache2", "ABCD", BAD_LIST)
    code = main(["crawl", "--resume", run_id, "--db", str(db), "--tranco-cache", str(tmp_path / "cache2"),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    with open_store(db) as store:
        assert store.con.execute("SELECT entries, source FROM crawl_inputs").fetchone()[0] == 2
        assert store.con.execute("SELECT count(*) FROM quarantine WHERE run_id = ?", [run_id]).fetchone()[0] == 2
        assert store.con.execute("SELECT status FROM runs").fetchone()[0] == "finished"
        # the session's own CPU (the benchmark's like-for-like figure): recorded, and no more
        # than this process has used
        session = json.loads(store.con.execute("SELECT summary FROM runs").fetchone()[0])["session"]
        assert 0 <= session["cpu_seconds"] <= time.process_time()


def test_resume_refuses_a_list_that_is_not_the_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _tranco_cache(tmp_path / "cache1", "ABCD", BAD_LIST)
    db = tmp_path / "x.duckdb"
    run_id = _run_killed_before_loading(db, "tranco:ABCD", first)
    _tranco_cache(tmp_path / "cache2", "ABCD", BAD_LIST + "3,a..b\n")
    code = main(["crawl", "--resume", run_id, "--db", str(db), "--tranco-cache", str(tmp_path / "cache2")])
    err = capsys.readouterr().err
    assert code == 2 and "SHA-256 differs" in err and err.strip().count("\n") == 0
    first.write_text(BAD_LIST + "# edited\n")  # the run's own file, changed since it began
    code = main(["crawl", "--resume", run_id, "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2 and "SHA-256 differs" in err and err.strip().count("\n") == 0


@pytest.mark.parametrize("argv, message", [
    (["--tranco-cache", "{tmp}/c"], "--tranco-cache applies to a tranco:ID list"),
    (["--smtp-port", "2525"], "--smtp-port differs from run"),
    (["--https-port", "8443"], "--https-port differs from run"),
    (["--probe-smtp"], "--probe-smtp differs from run"),
    (["--shard-size", "100"], "--shard-size applies to a distributed crawl"),
    (["--shard-store", "{tmp}/s"], "--shard-store applies to a distributed crawl"),
])
def test_resume_refuses_what_cannot_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                          message: str) -> None:
    listing = tmp_path / "l.csv"
    listing.write_text(BAD_LIST)
    db = tmp_path / "x.duckdb"
    run_id = _run_killed_before_loading(db, str(listing), listing)
    code = main(["crawl", "--resume", run_id, "--db", str(db), *[a.format(tmp=tmp_path) for a in argv]])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.strip().count("\n") == 0


def test_new_crawl_refuses_options_it_would_ignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "l.txt").write_text("example.test\n")
    for extra, message in ((["--tranco-cache", str(tmp_path)], "--tranco-cache applies to a tranco:ID list"),
                           (["--shard-size", "10"], "--shard-size applies to a distributed crawl")):
        code = main(["crawl", str(tmp_path / "l.txt"), "--db", str(tmp_path / "x.duckdb"), "--resolver",
                     "127.0.0.1:9", *extra])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.strip().count("\n") == 0


def test_resume_honours_and_keeps_the_other_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from collectors.store import open_store

    listing = tmp_path / "l.csv"
    listing.write_text(BAD_LIST)
    db = tmp_path / "x.duckdb"
    run_id = _run_killed_before_loading(db, str(listing), listing, smtp_port=2525, probe_smtp=True)
    # the run's own measurement repeated is fine (mtasts monthly passes the same flags again)
    code = main(["crawl", "--resume", run_id, "--db", str(db), "--smtp-port", "2525", "--probe-smtp",
                 "--concurrency", "7", "--timeout", "4", "--resolver", "127.0.0.2:5353", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    with open_store(db) as store:
        settings = json.loads(store.con.execute("SELECT parameters FROM runs").fetchone()[0])["settings"]
    assert (settings["concurrency"], settings["timeout"], settings["resolver"]) == (7, 4.0, "127.0.0.2:5353")
    assert (settings["smtp_port"], settings["probe_smtp"]) == (2525, True)
