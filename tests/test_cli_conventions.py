"""Command-line conventions a first-time user runs into: a file named but not recognised
fails the command, binary output is not written to a terminal, a closed pipe ends quietly."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

MTASTS = str(Path(sys.executable).parent / "mtasts")


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([MTASTS, *args], capture_output=True, text=True, timeout=120, **kw)


def test_ingest_fails_when_a_named_file_is_not_recognised(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\nnot evidence\n")
    db = str(tmp_path / "db.duckdb")
    done = _run("ingest", str(junk), "--db", db)
    assert done.returncode == 1
    assert f"not recognised as lab evidence: {junk}" in done.stderr and "--format" in done.stderr
    assert "quarantined: 1" in done.stdout            # kept and counted all the same
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "README").write_text("what this folder holds\n")
    assert _run("ingest", str(folder), "--db", db).returncode == 0   # found in a folder: not named


def test_an_empty_evidence_file_is_said_not_refused(tmp_path):
    """A receiver's output before its first report is empty: no format to recognise, no
    evidence lost; the command says so and succeeds."""
    empty = tmp_path / "tlsrpt-posts.jsonl"
    empty.write_bytes(b"")
    done = _run("ingest", str(empty), "--db", str(tmp_path / "db.duckdb"))
    assert done.returncode == 0, done.stderr
    assert "empty file: no evidence in it yet" in done.stdout and "quarantined: 0\n" in done.stdout
    assert "not recognised" not in done.stderr


def test_parquet_is_not_written_to_a_terminal(tmp_path):
    db = str(tmp_path / "db.duckdb")
    assert _run("db", "init", "--db", db).returncode == 0
    main, secondary = pty.openpty()
    try:
        done = subprocess.run([MTASTS, "export", "posture", "--db", db, "--format", "parquet"],
                              stdout=secondary, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(secondary)
        os.close(main)
    assert done.returncode == 2 and "not written to a terminal" in done.stderr


def test_a_closed_pipe_ends_quietly(tmp_path):
    db = str(tmp_path / "db.duckdb")
    assert _run("db", "init", "--db", db).returncode == 0
    for args in (["db", "info", "--db", db], ["ingest", "--db", db, str(Path(__file__))]):
        # 'true' exits at once, so every write of the command meets a closed pipe
        done = subprocess.run(f"{MTASTS} {' '.join(args)} | true", shell=True, executable="/bin/bash",
                              capture_output=True, text=True, timeout=120)
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
