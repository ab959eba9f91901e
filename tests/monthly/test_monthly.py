"""``mtasts monthly``: crawl, ingest and report composed, idempotent for a month: a finished
crawl of the same list is reused, an interrupted one is resumed, evidence is not doubled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from collectors.testbed import load_catalogue

pytestmark = [pytest.mark.servers]

MTASTS = str(Path(sys.executable).parent / "mtasts")
LEDGER = ("provider,sent_at,from,to,message_id\n"
          "p,2026-01-02T03:04:05Z,x@p.example,11111111-1f0e-4c1a-9b7e-000000000001@a.lab.example,\n")


def _monthly(world, listing: Path, db: Path, evidence: Path) -> subprocess.CompletedProcess:
    crawl_args = " ".join([*world.crawler_args(), "--timeout", "3", "--no-progress"])
    return subprocess.run(
        [*world.exec_prefix(), MTASTS, "monthly", "--list", str(listing), "--db", str(db),
         "--evidence", str(evidence), "--crawl-args", crawl_args, "--skip-report"],
        capture_output=True, text=True, timeout=300)


def test_monthly_twice_crawls_once_and_ingests_once(catalogue_world, tmp_path: Path) -> None:
    domains = [d.name for d in load_catalogue().domains][:20]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(domains) + "\n")
    evidence = tmp_path / "ledger.csv"
    evidence.write_text(LEDGER)
    db = tmp_path / "m.duckdb"

    first = _monthly(catalogue_world, listing, db, evidence)
    assert first.returncode == 0, first.stderr
    second = _monthly(catalogue_world, listing, db, evidence)
    assert second.returncode == 0, second.stderr
    assert "already finished; not repeated" in second.stdout

    con = duckdb.connect(str(db))
    assert con.execute("SELECT count(*) FROM runs WHERE kind = 'crawl'").fetchone()[0] == 1
    assert con.execute("SELECT count(DISTINCT domain), count(*) FROM posture").fetchone() == (20, 20)
    assert con.execute("SELECT count(*) FROM ledger").fetchone()[0] == 1
    # an interrupted crawl of the month is resumed, not started again
    con.execute("UPDATE runs SET status = 'running' WHERE kind = 'crawl'")
    con.close()
    third = _monthly(catalogue_world, listing, db, evidence)
    assert third.returncode == 0, third.stderr
    assert "resuming crawl" in third.stdout
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*), min(status) FROM runs WHERE kind = 'crawl'").fetchone() == (1, "finished")
    assert con.execute("SELECT count(*) FROM posture").fetchone()[0] == 20


def test_a_past_month_without_its_crawl_is_refused_not_crawled_today(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("example.test\n")
    db = tmp_path / "m.duckdb"
    r = subprocess.run([MTASTS, "monthly", "--list", str(listing), "--db", str(db), "--month", "2001-01",
                        "--skip-report"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "would be dated" in r.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
