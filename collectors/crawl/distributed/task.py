"""The shard task that runs on a Dask worker: the crawler itself (``runner.crawl_pending``:
same Observer, resolver client, BatchWriter and tables) on a private in-memory store
holding just the shard's domains, then the rows as Parquet in a fresh attempt folder of
the shard store, committed last.

A shard is either a run of consecutive domains (``domains``; with ``defer_hosts`` their
MX hosts' TLSA and SMTP facts are left out) or a set of MX hosts (``hosts``) whose
per-host facts it gathers (``runner.crawl_hosts``): the driver gives each MX host of a
run to one host shard, so a host shared by many domains is looked up and probed once.

Nothing of the driver's database reaches the worker: the job carries the run's
provenance, the settings and the shard's (position, rank, domain) rows.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass, replace

import pyarrow as pa

from collectors.crawl.distributed.shardstore import ShardStore
from collectors.crawl.runner import CrawlSettings, CrawlStats, crawl_hosts, crawl_pending
from collectors.crawl.writer import TABLES
from collectors.store import Run, open_store


@dataclass(frozen=True, slots=True)
class ShardJob:
    """One shard of a run: its domains and how to crawl them."""

    run: Run
    shard: int
    positions: tuple[int, ...]
    ranks: tuple[int | None, ...]
    domains: tuple[str, ...]
    settings: CrawlSettings
    store_url: str
    worker_resolver: bool = False   # ask each worker's own resolv.conf nameserver
    defer_hosts: bool = False       # domains only: their MX hosts go to host shards
    hosts: tuple[str, ...] = ()     # a host shard: these MX hosts (and no domains)

    @property
    def size(self) -> int:
        return len(self.domains)

    @property
    def is_hosts(self) -> bool:
        return bool(self.hosts)


@dataclass(frozen=True, slots=True)
class ShardResult:
    """What a committed attempt holds, what it took, and who made it."""

    shard: int
    attempt: str                    # the attempt folder URL
    rows: dict[str, int]            # per raw table
    files: dict[str, str]           # per raw table, the Parquet file
    stats: CrawlStats               # the shard's domains (job.size), MX hosts, queries, fetches,
                                    # probes; seconds and cpu_seconds of the whole task
    worker: str | None
    host: str
    pid: int


def _worker_address() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # not inside a Dask worker (a direct call)
        return None


def crawl_shard(job: ShardJob) -> ShardResult:
    """Crawl one shard and commit its Parquet partitions; raises on failure (Dask retries)."""
    started = time.monotonic()
    cpu_started = time.process_time()
    settings = job.settings
    if job.worker_resolver:
        from collectors.crawl.resolver import system_resolver

        settings = replace(settings, resolver=system_resolver())
    store = open_store(":memory:")
    try:
        run = job.run
        con = store.con
        con.register("_shard_domains", pa.table({
            "position": pa.array(job.positions, pa.int64()),
            "rank": pa.array(job.ranks, pa.int64()),
            "domain": pa.array(job.domains, pa.string())}))
        con.execute("INSERT INTO crawl_domains SELECT ?, now(), ?, ?, position, rank, domain FROM _shard_domains",
                    [run.run_id, run.input_list, run.tool_version])
        con.unregister("_shard_domains")
        if job.is_hosts:
            stats = asyncio.run(crawl_hosts(store, run, settings, job.hosts, len(job.hosts), progress=False))
            if stats.hosts != len(job.hosts):
                raise RuntimeError(f"shard {job.shard}: {stats.hosts} of {len(job.hosts)} MX hosts looked up")
        else:
            stats = asyncio.run(crawl_pending(store, run, settings, progress=False,
                                              host_lookups=not job.defer_hosts))
            if stats.domains != job.size:
                raise RuntimeError(f"shard {job.shard}: {stats.domains} of {job.size} domains observed")

        shard_store = ShardStore(job.store_url)
        attempt = shard_store.new_attempt(run.run_id, job.shard)
        rows: dict[str, int] = {}
        files: dict[str, str] = {}
        for table in TABLES:
            data = con.sql(f"SELECT * FROM {table} WHERE run_id = ?", params=[run.run_id]).to_arrow_table()
            files[table] = shard_store.write_table(attempt, table, data)
            rows[table] = data.num_rows
        seconds = time.monotonic() - started
        shard_store.commit(attempt, {"run_id": run.run_id, "shard": job.shard, "rows": rows,
                                     "domains": job.size, "hosts": len(job.hosts),
                                     "seconds": round(seconds, 3)})
    finally:
        store.close()
    stats = replace(stats, domains=job.size, seconds=seconds, cpu_seconds=time.process_time() - cpu_started)
    return ShardResult(shard=job.shard, attempt=attempt, rows=rows, files=files, stats=stats,
                       worker=_worker_address(), host=socket.gethostname(), pid=os.getpid())
