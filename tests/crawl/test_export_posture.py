"""``mtasts export posture`` writes the same bytes to stdout and to ``--output FILE``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from collectors.cli import main
from collectors.store import open_store
from test_posture_view import POLICY_OK, _mx, _obs, _policy, _write


@pytest.fixture
def crawl_db(tmp_path: Path) -> Path:
    """A closed store holding one crawl run: NULLs, empty strings, lists and booleans."""
    db = tmp_path / "crawl.duckdb"
    valid = {"sts_rcode": "NOERROR", "sts_status": "valid", "sts_id": "abc"}
    with open_store(db) as store:
        _write(store, [
            {"crawl_observations": [_obs("d.test", **valid)], "crawl_mx": [_mx("d.test", "mx.d.test", True)],
             "crawl_policy": [_policy("d.test", **POLICY_OK)]},
            {"crawl_observations": [_obs("some.test", **valid)],
             "crawl_mx": [_mx("some.test", "mx.some.test", True),
                          _mx("some.test", "mx2.some.test", False, "typo")],
             "crawl_policy": [_policy("some.test", **POLICY_OK)]},
            {"crawl_observations": [_obs("null.test", mx_exchanges=[""], mx_preferences=[0])],
             "crawl_mx": [_mx("null.test", "")]},
            {"crawl_observations": [_obs("nx.test", mx_rcode="NXDOMAIN", mx_exchanges=[], mx_preferences=[])]},
        ])
    return db


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_stdout_and_file_get_the_same_bytes(crawl_db: Path, tmp_path: Path, fmt: str,
                                            capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    argv = ["export", "posture", "--db", str(crawl_db), "--run", "latest", "--format", fmt]
    assert main(argv) == 0
    to_stdout = capsysbinary.readouterr().out
    out = tmp_path / f"posture.{fmt}"
    assert main([*argv, "--output", str(out)]) == 0
    err = capsysbinary.readouterr().err.decode()
    assert out.read_bytes() == to_stdout
    assert "wrote 4 rows of run " in err and err.strip().count("\n") == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial file left
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(to_stdout.decode("utf-8"), newline="")))
        assert [r["domain"] for r in rows] == ["d.test", "some.test", "null.test", "nx.test"]
        assert rows[0]["misconfigured"] == "false" and rows[1]["misconfigured"] == "true"
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in to_stdout.decode("utf-8").splitlines()]
        assert [r["domain"] for r in rows] == ["d.test", "some.test", "null.test", "nx.test"]
