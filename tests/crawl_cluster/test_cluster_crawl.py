"""The crawl sharded on a Dask LocalCluster against real testbed servers:

* ``mtasts crawl LIST --workers 3`` exports exactly what a single-machine crawl of the
  same list exports (run like the checks: inside the world's namespace as root);
* a worker killed (SIGKILL) in the middle of a shard: the shard is retried elsewhere and
  the run is complete, each domain once;
* ``--cluster ADDRESS`` with a zone file of the catalogue and an fsspec ``file://`` shard
  store gives every catalogue case its expected verdict.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collectors.testbed import generate_population, load_catalogue

from support import export_text

pytestmark = [pytest.mark.servers, pytest.mark.slow]

MTASTS = str(Path(sys.executable).parent / "mtasts")


def _export(world, db: Path, out: Path) -> str:
    done = subprocess.run([MTASTS, "export", "posture", "--db", str(db), "--run", "latest", "--format", "csv",
                           "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return out.read_text()


def _crawl(world, listing: Path, db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [*world.exec_prefix(), MTASTS, "crawl", str(listing), "--db", str(db), *world.crawler_args(),
           "--timeout", "3", "--no-progress", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_cluster_export_equals_single_machine(make_world, tmp_path: Path) -> None:
    scenario = generate_population(2000, seed=11)
    world = make_world(scenario)
    names = [d.name for d in scenario.domains]
    listing = tmp_path / "list.csv"
    # a few bad and duplicate entries: quarantined the same way on both paths
    listing.write_text("".join(f"{i},{d}\n" for i, d in enumerate(names + ["http://x.test/", names[3]], 1)))

    _crawl(world, listing, tmp_path / "single.duckdb", "--probe-smtp")
    done = _crawl(world, listing, tmp_path / "cluster.duckdb", "--probe-smtp", "--workers", "3",
                  "--shard-size", "150")
    assert "dask dashboard: http" in done.stderr

    single = _export(world, tmp_path / "single.duckdb", tmp_path / "single.csv")
    cluster = _export(world, tmp_path / "cluster.duckdb", tmp_path / "cluster.csv")
    assert single.count("\n") == len(names) + 1
    assert cluster == single

    con = duckdb.connect(str(tmp_path / "cluster.duckdb"), read_only=True)
    run_id, status, summary = con.execute("SELECT run_id, status, summary FROM runs").fetchone()
    assert status == "finished" and '"distributed"' in summary
    shards = con.execute("SELECT shard, location, domains FROM crawl_shards ORDER BY shard").fetchall()
    assert [s for s, _, _ in shards] == list(range(1, len(shards) + 1))
    domain_shards = [n for _, _, n in shards if n]
    assert len(domain_shards) == 14 and sum(domain_shards) == len(names)
    # the rest are host shards: every MX host of the run probed by exactly one of them
    hosts = con.execute("SELECT count(DISTINCT mx_host) FROM crawl_mx WHERE mx_host <> ''").fetchone()[0]
    assert con.execute("SELECT sum(smtp_probes) FROM crawl_shards").fetchone()[0] == hosts
    assert con.execute("SELECT sum(smtp_probes) FROM crawl_shards WHERE domains > 0").fetchone()[0] == 0
    assert con.execute("SELECT sum(rows) FROM crawl_shard_files WHERE table_name = 'crawl_observations'"
                       ).fetchone()[0] == len(names)
    assert con.execute("SELECT count(*) FROM quarantine WHERE run_id = ?", [run_id]).fetchone()[0] == 2
    con.close()
    # the default shard store: runs/<run_id>/ beside the database, one committed attempt a shard
    for shard, location, _ in shards:
        folder = Path(location)
        assert folder.parent == tmp_path / "runs" / run_id / f"shard={shard:06d}"
        assert (folder / "_SUCCESS").is_file()
        assert len(list(folder.parent.iterdir())) == 1


def test_killed_worker_still_yields_the_complete_result(make_world, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    from collectors.crawl.distributed import ShardStore, run_distributed
    from collectors.crawl.inputs import read_entries
    from collectors.crawl.runner import CrawlSettings, load_input
    from collectors.store import open_store

    scenario = generate_population(1200, seed=5)
    # DNS answers wait 10 ms, so a shard takes about a second: the kill lands mid-shard
    world = make_world(scenario, mode="loopback", latency_ms=10)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{d.name}\n" for d in scenario.domains))
    store = open_store(tmp_path / "crawl.duckdb")
    run = store.start_run("crawl", "list.txt")
    load_input(store, run, read_entries(listing), str(listing))
    settings = CrawlSettings(resolver=world.resolver, ca_bundle=str(world.ca_bundle),
                             https_port=world.https_port, smtp_port=world.smtp_port, timeout=3.0,
                             concurrency=2)
    killed: dict[str, Any] = {}

    with LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        def kill_once(result, registered) -> None:
            if killed:
                return
            # the worker that just finished has already started its next shard: kill it now
            keys = list(client.processing().get(result.worker, ()))
            if keys:
                os.kill(result.pid, signal.SIGKILL)
                killed.update(pid=result.pid, keys=keys)

        outcome, _ = run_distributed(store, run, settings, client, ShardStore.at(tmp_path / "shards"),
                                     shard_size=60, progress=False, on_shard=kill_once)

    assert killed, "no worker was busy when the first shard completed"
    assert not outcome.failed and outcome.duplicates == 0
    con = store.con
    assert con.execute("SELECT count(*), count(DISTINCT domain) FROM crawl_observations").fetchone() == (1200, 1200)
    assert con.execute("SELECT count(*) FROM posture WHERE run_id = ?", [run.run_id]).fetchone()[0] == 1200
    assert con.execute("SELECT status FROM runs").fetchone()[0] == "finished"
    lost = sorted(int(str(k).split("-")[-2]) for k in killed["keys"])
    rows = con.execute("SELECT shard, worker_pid FROM crawl_shards WHERE shard IN (SELECT unnest(?))",
                       [lost]).fetchall()
    # the shards that were on the killed worker were crawled again by another process, once
    assert sorted(s for s, _ in rows) == lost
    assert all(pid != killed["pid"] for _, pid in rows)
    assert con.execute("SELECT count(*), count(DISTINCT shard) FROM crawl_shards WHERE domains > 0").fetchone() == (20, 20)
    # the verdicts are the scenario's
    expected = scenario.expected_unprobed
    for domain, mx_status, sts_record, policy_fetch in con.execute(
            "SELECT domain, mx_status, sts_record, policy_fetch FROM posture").fetchall():
        want = expected[domain]
        assert (mx_status, sts_record, policy_fetch) == (want["mx_status"], want["sts_record"],
                                                         want["policy_fetch"]), domain
    store.close()


def test_cluster_address_with_a_zone_file_and_a_url_store(make_world, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from distributed import LocalCluster

    from collectors.cli import main

    catalogue = load_catalogue()
    world = make_world(catalogue, mode="loopback")
    # the catalogue as a zone of test. in BIND style: $ORIGIN, relative owners, blank owners
    lines = ["$ORIGIN test.", "$TTL 3600", "@ IN SOA ns.test. host.test. ( 1 2 3 4 5 )", "@ IN NS ns.test."]
    for d in catalogue.domains:
        lines += [f"{d.name.removesuffix('.test')} 86400 IN NS ns1.{d.name}.", "   86400 IN NS ns2.example."]
    zone = tmp_path / "test.zone"
    zone.write_text("\n".join(lines) + "\n")
    db = tmp_path / "zone.duckdb"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        code = main(["crawl", str(zone), "--db", str(db), *world.crawler_args(), "--probe-smtp", "--timeout", "2",
                     "--no-progress", "--cluster", cluster.scheduler_address, "--shard-size", "10",
                     "--shard-store", f"file://{tmp_path}/store"])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    assert f"file://{tmp_path}/store/" in err

    con = duckdb.connect(str(db), read_only=True)
    cur = con.execute("SELECT * FROM posture")
    cols = [c[0] for c in cur.description]
    got = {row[cols.index("domain")]: dict(zip(cols, row)) for row in cur.fetchall()}
    assert con.execute("SELECT count(*) FROM crawl_shards WHERE domains > 0").fetchone()[0] == -(-len(got) // 10)  # 10 a shard
    assert con.execute("SELECT min(path) FROM crawl_shard_files").fetchone()[0].startswith(f"file://{tmp_path}/store/")
    con.close()
    assert sorted(got) == sorted(d.name for d in catalogue.domains)
    wrong = {d: {c: (export_text(got[d][c]), export_text(v)) for c, v in want.items() if export_text(got[d][c]) != export_text(v)}
             for d, want in catalogue.expected.items()}
    assert not {d: w for d, w in wrong.items() if w}
