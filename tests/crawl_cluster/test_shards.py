"""The shard store's atomic commit, exactly-once registration into the store, and the
politeness split. No servers: attempts are written from rows made here."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from collectors.crawl.distributed import (
    ShardJob, ShardResult, ShardStore, ShardStoreError, auto_shard_size, polite_settings, register_shard,
)
from collectors.crawl.runner import CrawlSettings, CrawlStats
from collectors.crawl.writer import TABLES

SETTINGS = CrawlSettings(resolver=("127.0.0.1", 53), rate=1000.0, per_host=8)


def _schemas(store) -> dict[str, pa.Schema]:
    cur = store.con.cursor()  # store.con may hold an unfinished result
    return {t: cur.sql(f"SELECT * FROM {t} LIMIT 0").to_arrow_table().schema for t in TABLES}


def _attempt(store, shard_store: ShardStore, run, job: ShardJob, *, mx_host: str = "mx.shared.test",
             commit: bool = True, domains: tuple[str, ...] | None = None) -> ShardResult:
    """Write an attempt as a worker would: one observation and one MX row per domain, one
    TLSA row for a host every shard shares."""
    now = dt.datetime.now(dt.timezone.utc)
    prov = {"run_id": run.run_id, "observed_at": now, "input_list": run.input_list,
            "tool_version": run.tool_version}
    names = domains if domains is not None else job.domains
    rows = {t: [] for t in TABLES}
    for d in names:
        rows["crawl_observations"].append({**prov, "domain": d, "mx_rcode": "NOERROR", "sts_rcode": "NXDOMAIN",
                                           "tlsrpt_rcode": "NXDOMAIN", "sts_status": "absent",
                                           "tlsrpt_status": "absent", "mx_preferences": [10],
                                           "mx_exchanges": [mx_host]})
        rows["crawl_mx"].append({**prov, "domain": d, "mx_host": mx_host, "preference": 10})
    rows["crawl_tlsa"].append({**prov, "mx_host": mx_host, "rcode": "NXDOMAIN", "records": []})
    schemas = _schemas(store)
    attempt = shard_store.new_attempt(run.run_id, job.shard)
    files, counts = {}, {}
    for t in TABLES:
        data = pa.Table.from_pylist(rows[t], schema=schemas[t])
        files[t] = shard_store.write_table(attempt, t, data)
        counts[t] = data.num_rows
    if commit:
        shard_store.commit(attempt, {"rows": counts, "shard": job.shard})
    return ShardResult(job.shard, attempt, counts, files,
                       CrawlStats(domains=len(names), seconds=0.1, cpu_seconds=0.05, dns_queries=3), "tcp://w:1", "h", 1)


def _job(run, shard: int, domains: list[str], store_url: str) -> ShardJob:
    positions = tuple(range(shard * 100, shard * 100 + len(domains)))
    return ShardJob(run, shard, positions, positions, tuple(domains), SETTINGS, store_url)


def _loaded_run(store, domains: list[str]):
    run = store.start_run("crawl", "test-list")
    store.con.executemany("INSERT INTO crawl_domains VALUES (?, now(), ?, ?, ?, ?, ?)",
                          [(run.run_id, run.input_list, run.tool_version, i, i, d) for i, d in enumerate(domains)])
    return run


@pytest.mark.parametrize("as_url", [False, True])
def test_commit_marker_and_attempt_folders(store, tmp_path: Path, as_url: bool) -> None:
    root = f"file://{tmp_path}/shards" if as_url else str(tmp_path / "shards")
    shard_store = ShardStore.at(root)
    run = _loaded_run(store, ["a.test", "b.test"])
    job = _job(run, 1, ["a.test", "b.test"], shard_store.url)
    done = _attempt(store, shard_store, run, job)
    lost = _attempt(store, shard_store, run, job, commit=False)  # a worker killed before its commit
    assert done.attempt != lost.attempt
    assert set(shard_store.attempts(run.run_id, 1)) == {done.attempt, lost.attempt}
    assert shard_store.manifest(done.attempt)["rows"]["crawl_observations"] == 2
    with pytest.raises(ShardStoreError, match="not committed"):
        shard_store.manifest(lost.attempt)
    assert "shard=000001/attempt=" in done.attempt and run.run_id in done.attempt
    assert not list(Path(tmp_path / "shards").rglob("*.tmp-*"))  # the marker's temp name is gone


def test_a_shard_is_registered_once(store, tmp_path: Path) -> None:
    shard_store = ShardStore.at(tmp_path / "shards")
    run = _loaded_run(store, ["a.test", "b.test", "c.test"])
    one = _job(run, 1, ["a.test", "b.test"], shard_store.url)
    two = _job(run, 2, ["c.test"], shard_store.url)
    first = _attempt(store, shard_store, run, one)
    late = _attempt(store, shard_store, run, one)     # the same shard finished twice (retry + zombie)
    assert register_shard(store, run, one, first, shard_store) is True
    assert register_shard(store, run, one, late, shard_store) is False
    assert register_shard(store, run, two, _attempt(store, shard_store, run, two), shard_store) is True
    con = store.con
    assert con.execute("SELECT count(*), count(DISTINCT domain) FROM crawl_observations").fetchone() == (3, 3)
    # every shard observed the shared MX host; the run keeps one row for it
    assert con.execute("SELECT count(*) FROM crawl_tlsa").fetchone()[0] == 1
    assert con.execute("SELECT shard, attempt FROM crawl_shards ORDER BY shard").fetchall()[0] == (
        1, first.attempt.rsplit("attempt=", 1)[-1])
    assert con.execute("SELECT count(*) FROM crawl_shard_files WHERE shard = 1").fetchone()[0] == len(TABLES)
    # the views read the registered rows like a local crawl's
    assert con.execute("SELECT count(*) FROM posture WHERE run_id = ?", [run.run_id]).fetchone()[0] == 3


def test_an_attempt_with_other_domains_is_refused(store, tmp_path: Path) -> None:
    shard_store = ShardStore.at(tmp_path / "shards")
    run = _loaded_run(store, ["a.test", "b.test"])
    job = _job(run, 1, ["a.test", "b.test"], shard_store.url)
    wrong = _attempt(store, shard_store, run, job, domains=("a.test",))
    with pytest.raises(ShardStoreError, match="other domains"):
        register_shard(store, run, job, wrong, shard_store)
    uncommitted = _attempt(store, shard_store, run, job, commit=False)
    with pytest.raises(ShardStoreError):
        register_shard(store, run, job, uncommitted, shard_store)
    assert store.con.execute("SELECT count(*) FROM crawl_observations").fetchone()[0] == 0
    assert store.con.execute("SELECT count(*) FROM crawl_shards").fetchone()[0] == 0


def test_politeness_divides_the_limits_among_slots() -> None:
    one = polite_settings(SETTINGS, 1)
    assert (one.rate, one.per_host) == (1000.0, 8)
    four = polite_settings(SETTINGS, 4)
    assert (four.rate, four.per_host) == (250.0, 2)
    many = polite_settings(SETTINGS, 20)
    assert many.per_host == 1 and many.rate == 50.0   # at least one connection per host and slot
    assert polite_settings(CrawlSettings(resolver=("127.0.0.1", 53)), 8).rate == 0.0  # unlimited stays so
    assert four.concurrency == SETTINGS.concurrency and four.resolver == SETTINGS.resolver


def test_auto_shard_size() -> None:
    assert auto_shard_size(50, 2) == 100
    assert auto_shard_size(16_000, 2) == 2000
    assert auto_shard_size(87_000_000, 64) == 50_000


def _host_attempt(store, shard_store: ShardStore, run, job: ShardJob, hosts: tuple[str, ...]) -> ShardResult:
    """A host shard's attempt: one TLSA row per host, nothing else."""
    now = dt.datetime.now(dt.timezone.utc)
    prov = {"run_id": run.run_id, "observed_at": now, "input_list": run.input_list,
            "tool_version": run.tool_version}
    schemas = _schemas(store)
    attempt = shard_store.new_attempt(run.run_id, job.shard)
    files, counts = {}, {}
    for t in TABLES:
        rows = [{**prov, "mx_host": h, "rcode": "NXDOMAIN", "records": []} for h in hosts] if t == "crawl_tlsa" else []
        data = pa.Table.from_pylist(rows, schema=schemas[t])
        files[t] = shard_store.write_table(attempt, t, data)
        counts[t] = data.num_rows
    shard_store.commit(attempt, {"rows": counts, "shard": job.shard})
    return ShardResult(job.shard, attempt, counts, files,
                       CrawlStats(seconds=0.1, cpu_seconds=0.05, dns_queries=len(hosts), hosts=len(hosts)),
                       "tcp://w:1", "h", 1)


def test_host_feed_gives_each_mx_host_once_and_finishes_a_killed_sessions_hosts(store, tmp_path: Path) -> None:
    from collectors.crawl.distributed import HostFeed
    from collectors.crawl.runner import pending_host_count

    shard_store = ShardStore.at(tmp_path / "shards")
    run = _loaded_run(store, ["a.test", "b.test", "c.test", "d.test"])
    one = _job(run, 1, ["a.test", "b.test"], shard_store.url)
    # the shard's domains use a provider MX
    assert register_shard(store, run, one, _attempt(store, shard_store, run, one, mx_host="mx.provider.test"),
                          shard_store)
    feed = HostFeed(store, run.run_id, probe_smtp=False, size=10)
    assert feed.leftover == 0  # the attempt carried its host's TLSA row (an old-style shard)
    store.con.execute("DELETE FROM crawl_tlsa")  # as a deferred domain shard leaves it
    feed = HostFeed(store, run.run_id, probe_smtp=False, size=10)
    assert feed.leftover == 1 and feed.take(final=False) == ("mx.provider.test",)
    mx = pa.table({"mx_host": ["mx.provider.test", "mx.provider.test", "mx.own.test", ""]})
    assert feed.add(mx) == 1            # only the host not seen before in the run
    assert feed.add(mx) == 0
    assert feed.take(final=False) is None          # not a full shard yet
    assert feed.take(final=True) == ("mx.own.test",)  # no domain shard left to add more
    assert feed.take(final=True) is None
    assert pending_host_count(store, run.run_id, probe_smtp=False) == 1
    host_job = ShardJob(run, 3, (), (), (), SETTINGS, shard_store.url, hosts=("mx.provider.test",))
    assert register_shard(store, run, host_job, _host_attempt(store, shard_store, run, host_job,
                                                              ("mx.provider.test",)), shard_store)
    assert pending_host_count(store, run.run_id, probe_smtp=False) == 0
    assert store.con.execute("SELECT first_position, last_position, domains FROM crawl_shards WHERE shard = 3"
                             ).fetchone() == (0, 0, 0)


def test_a_host_shard_missing_a_host_is_refused(store, tmp_path: Path) -> None:
    shard_store = ShardStore.at(tmp_path / "shards")
    run = _loaded_run(store, ["a.test"])
    job = ShardJob(run, 1, (), (), (), SETTINGS, shard_store.url, hosts=("mx1.test", "mx2.test"))
    with pytest.raises(ShardStoreError, match="other MX hosts"):
        register_shard(store, run, job, _host_attempt(store, shard_store, run, job, ("mx1.test",)), shard_store)
    assert store.con.execute("SELECT count(*) FROM crawl_tlsa").fetchone()[0] == 0


def test_a_killed_sessions_unregistered_attempts_are_removed(store, tmp_path: Path) -> None:
    from collectors.crawl.distributed import remove_orphans

    shard_store = ShardStore.at(tmp_path / "shards")
    run = _loaded_run(store, ["a.test", "b.test"])
    five = _job(run, 5, ["a.test"], shard_store.url)
    six = _job(run, 6, ["b.test"], shard_store.url)
    _attempt(store, shard_store, run, five)                # committed, never registered (driver killed)
    _attempt(store, shard_store, run, five, commit=False)  # a worker killed mid-write
    kept = _attempt(store, shard_store, run, six)
    assert register_shard(store, run, six, kept, shard_store)
    assert remove_orphans(store, shard_store, run.run_id) == 2
    assert shard_store.attempts(run.run_id, 5) == [] and shard_store.attempts(run.run_id, 6) == [kept.attempt]
