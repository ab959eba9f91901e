"""``kill -9`` a crawl (more than once, at different points), then ``--resume``: the export
has exactly the list's domains, once each, and the quarantine keeps each bad entry once."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from collectors.testbed import load_catalogue

pytestmark = [pytest.mark.servers, pytest.mark.slow]

MTASTS = str(Path(sys.executable).parent / "mtasts")


def _population(n: int) -> list[str]:
    """The catalogue plus ``n`` generated names (most of them answered NXDOMAIN)."""
    try:
        from collectors.testbed import generate_population

        names = [d.name for d in generate_population(n, seed=7).domains]
    except NotImplementedError:
        names = [f"gen{i:06d}.test" for i in range(n)]
    return list(dict.fromkeys([d.name for d in load_catalogue().domains] + names))


def test_kill_and_resume(catalogue_world, tmp_path: Path) -> None:
    domains = _population(30_000)
    listing = tmp_path / "list.csv"
    bad = ["http://x.test/", "192.0.2.1", "a..b"]
    listing.write_text("".join(f"{i},{d}\n" for i, d in enumerate(domains + bad + domains[:5], 1)))
    db = tmp_path / "crawl.duckdb"
    base = [*catalogue_world.exec_prefix(), MTASTS]
    args = ["--db", str(db), *catalogue_world.crawler_args(), "--timeout", "2"]

    # Kill once the progress bar says a good part, but not all, of the list is done: a fixed
    # sleep is either before the first commit or after the last on a loaded machine.
    log = tmp_path / "first.stderr"
    with open(log, "wb") as err:
        proc = subprocess.Popen([*base, "crawl", str(listing), *args, "--progress"],
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            counts = re.findall(rb"([0-9.]+)(k?)/[0-9.]+k? ", log.read_bytes()[-4096:])
            if counts and float(counts[-1][0]) * (1000 if counts[-1][1] else 1) >= len(domains) // 4:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the crawl finished before it could be killed; make the list longer"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    con = duckdb.connect(str(db))
    run_id, status = con.execute("SELECT run_id, status FROM runs").fetchone()
    partial = con.execute("SELECT count(*) FROM crawl_observations").fetchone()[0]
    con.close()
    assert status == "running"
    assert 0 < partial < len(domains), f"kill was not mid-run ({partial} of {len(domains)})"

    # a second kill, during the resumed run
    proc = subprocess.Popen([*base, "crawl", "--resume", run_id, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(3.0)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    done = subprocess.run([*base, "crawl", "--resume", "latest", *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "posture.csv"
    done = subprocess.run([MTASTS, "export", "posture", "--db", str(db), "--run", run_id, "--format", "csv",
                           "--output", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out, newline="") as fh:
        exported = [row["domain"] for row in csv.DictReader(fh)]
    assert len(exported) == len(set(exported))
    assert sorted(exported) == sorted(domains)

    con = duckdb.connect(str(db), read_only=True)
    reasons = dict(con.execute("SELECT reason, count(*) FROM quarantine WHERE run_id = ? GROUP BY 1",
                               [run_id]).fetchall())
    assert reasons == {"url": 1, "ip_address": 1, "empty_label": 1, "duplicate": 5}
    assert con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchone()[0] == "finished"
    con.close()


def test_resume_unknown_run_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([MTASTS, "crawl", "--resume", "nope", "--db", str(tmp_path / "x.duckdb"),
                           "--resolver", "127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no crawl run" in done.stderr
