"""``mtasts lab addresses`` and ``mtasts lab sent``: the ledger of sends made by hand."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import duckdb

from collectors.cli import main


def test_addresses_then_sent_land_in_the_ledger_file_and_the_database(tmp_path: Path, capsys) -> None:
    db, ledger = str(tmp_path / "t.duckdb"), tmp_path / "ledger.csv"
    assert main(["lab", "addresses", "--provider", "gmail", "--account", "Alice@Gmail.com",
                 "--lab-domain", "audit.example.org", "--db", db, "--ledger", str(ledger)]) == 0
    printed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [label for label, _ in printed] == list("abcdef")
    addresses = [addr for _, addr in printed]
    assert len(set(addresses)) == 6
    assert all(a.endswith(f"@{a[37]}.audit.example.org") and len(a.split("@")[0]) == 36 for a in addresses)
    assert main(["lab", "sent", "--provider", "gmail", "--from", "alice@gmail.com", "--to", addresses[1],
                 "--message-id", "<m1@mail.example>", "--at", "2030-01-02T03:04:05Z",
                 "--db", db, "--ledger", str(ledger)]) == 0
    with open(ledger, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 7 and rows[-1]["to"] == addresses[1] and rows[-1]["sent_at"] == "2030-01-02T03:04:05Z"
    con = duckdb.connect(db, read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT to_addr) FROM ledger").fetchone() == (7, 6)
    assert con.execute("SELECT DISTINCT provider, account FROM ledger").fetchall() == [("gmail", "alice@gmail.com")]
    sent_at, message_id = con.execute(
        "SELECT sent_at, message_id FROM lab_deliveries WHERE address = ?", [addresses[1]]).fetchone()
    assert (sent_at.year, message_id) == (2030, "m1@mail.example")   # the send, not the making


def test_sent_without_offset_is_one_line_error(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "collectors.cli", "lab", "sent", "--provider", "p",
                        "--to", "x@a.lab.example", "--at", "2030-01-02T03:04:05",
                        "--ledger", str(tmp_path / "l.csv"), "--no-ingest"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "UTC offset" in r.stderr
    assert not (tmp_path / "l.csv").exists()
