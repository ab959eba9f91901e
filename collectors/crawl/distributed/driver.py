"""The driver of a distributed crawl: split the run's pending domains into shards, keep a
bounded window of shard tasks on the Dask cluster, and register each shard's committed
Parquet partitions into the store exactly once, with one progress bar for the cluster.

Exactly once: a shard's rows and its ``crawl_shards`` row commit in one DuckDB
transaction, whose primary key refuses a second registration; so a shard retried after
a lost worker, or completed twice, is counted once. A task that fails (or whose worker
dies more often than Dask allows) is resubmitted up to ``max_submissions`` times; a shard
that still fails stays pending, and ``mtasts crawl --resume`` finishes it.

Politeness across the cluster (docs/cluster.md): each of the cluster's concurrent shard
slots (worker threads) gets ``rate / slots`` of the global DNS rate and
``per_host / slots`` (at least 1) parallel connections per policy/MX address, so the
cluster as a whole stays within the single-machine limits (per host: ``max(per_host,
slots)``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import pyarrow as pa

from collectors.crawl.distributed.shardstore import ShardStore, ShardStoreError
from collectors.crawl.distributed.task import ShardJob, ShardResult, crawl_shard
from collectors.crawl.runner import (
    CrawlSettings, CrawlStats, pending_count, pending_pages, progress_bar, session_summary, summarise,
)
from collectors.crawl.writer import DOMAIN_TABLES, HOST_TABLES, TABLES
from collectors.store import Run, Store
from collectors.store.db import utcnow

MIN_SHARD = 100
MAX_SHARD = 50_000
# A shard lasts at least as long as its slowest domain (a DNS retry, a policy fetch
# timeout): few, large shards amortise that tail; a few per slot still balance the load
# and bound what a lost worker costs (docs/cluster.md, "Shard size").
SHARDS_PER_SLOT = 4


@dataclass(slots=True)
class ClusterOutcome:
    """What one distributed session did."""

    stats: CrawlStats = field(default_factory=CrawlStats)
    slots: int = 0
    shard_size: int = 0
    shards: int = 0                  # shards registered in this session
    submissions: int = 0             # tasks submitted (resubmissions included)
    duplicates: int = 0              # completed attempts not registered (shard already in)
    failed: list[tuple[int, str]] = field(default_factory=list)
    dashboard: str | None = None


def polite_settings(settings: CrawlSettings, slots: int) -> CrawlSettings:
    """The settings of one shard when ``slots`` shards run at once across the cluster."""
    slots = max(1, slots)
    return replace(settings,
                   rate=settings.rate / slots if settings.rate else 0.0,
                   per_host=max(1, settings.per_host // slots))


def auto_shard_size(pending: int, slots: int) -> int:
    """About SHARDS_PER_SLOT shards per slot, between MIN_SHARD and MAX_SHARD domains."""
    return max(MIN_SHARD, min(MAX_SHARD, math.ceil(pending / max(1, slots * SHARDS_PER_SLOT))))


def _jobs(store: Store, run: Run, settings: CrawlSettings, store_url: str, shard_size: int,
          worker_resolver: bool) -> Iterator[ShardJob]:
    """Shard jobs over the pending snapshot (``pending_count`` first), one page at a time."""
    shard = store.con.execute(
        "SELECT coalesce(max(shard), 0) + 1 FROM crawl_shards WHERE run_id = ?", [run.run_id]).fetchone()[0]
    for rows in pending_pages(store, shard_size):
        positions, ranks, domains = zip(*rows)
        yield ShardJob(run, shard, tuple(positions), tuple(ranks), tuple(domains), settings, store_url,
                       worker_resolver)
        shard += 1


def register_shard(store: Store, run: Run, job: ShardJob, result: ShardResult, shard_store: ShardStore,
                   submissions: int = 1) -> bool:
    """Load a committed attempt's partitions into the raw tables and record the shard, in
    one transaction. False (nothing written) when the shard is registered already.
    Raises :class:`ShardStoreError` when the attempt does not hold exactly the shard."""
    con = store.con
    if con.execute("SELECT count(*) FROM crawl_shards WHERE run_id = ? AND shard = ?",
                   [run.run_id, job.shard]).fetchone()[0]:
        return False
    manifest = shard_store.manifest(result.attempt)
    tables = {t: shard_store.read_table(result.attempt, t) for t in TABLES}
    for table, data in tables.items():
        if data.num_rows != manifest["rows"].get(table, -1):
            raise ShardStoreError(f"shard {job.shard}: {table} has {data.num_rows} rows, "
                                  f"the marker says {manifest['rows'].get(table)}")
    observed = tables["crawl_observations"].column("domain").to_pylist()
    if len(observed) != job.size or set(observed) != set(job.domains):
        raise ShardStoreError(f"shard {job.shard}: the attempt holds other domains than the shard")
    now = utcnow()
    con.execute("BEGIN TRANSACTION")
    try:
        for table in HOST_TABLES + DOMAIN_TABLES:
            data = tables[table]
            if not data.num_rows:
                continue
            con.register("_shard_rows", data)
            # per-host rows: each shard observed its MX hosts itself; the first shard
            # registered keeps them (RFC facts of one host, one row per run as in a local crawl)
            verb = "INSERT OR IGNORE" if table in HOST_TABLES else "INSERT"
            con.execute(f"{verb} INTO {table} BY NAME SELECT * FROM _shard_rows")
            con.unregister("_shard_rows")
        con.execute(
            "INSERT INTO crawl_shards VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run.run_id, now, run.input_list, run.tool_version, job.shard, job.positions[0],
             job.positions[-1], job.size, result.attempt, result.attempt.rsplit("attempt=", 1)[-1],
             submissions, result.worker, result.host, result.pid, result.seconds, result.cpu_seconds,
             result.dns_queries,
             result.policy_fetches, result.smtp_probes])
        con.register("_shard_files", pa.table({
            "table_name": list(result.files), "path": list(result.files.values()),
            "rows": [result.rows[t] for t in result.files]}))
        con.execute("INSERT INTO crawl_shard_files SELECT ?, ?, ?, ?, ?, table_name, path, rows FROM _shard_files",
                    [run.run_id, now, run.input_list, run.tool_version, job.shard])
        con.unregister("_shard_files")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return True


def crawl_distributed(
    store: Store,
    run: Run,
    settings: CrawlSettings,
    client: Any,
    shard_store: ShardStore,
    *,
    shard_size: int | None = None,
    progress: bool | None = None,
    max_submissions: int = 3,
    worker_resolver: bool = False,
    on_shard: Callable[[ShardResult, bool], None] | None = None,
) -> ClusterOutcome:
    """Crawl every pending domain of ``run`` on the cluster behind ``client``."""
    from distributed import as_completed

    out = ClusterOutcome(dashboard=getattr(client, "dashboard_link", None))
    out.slots = max(1, sum(client.nthreads().values()))
    started = time.monotonic()
    total = pending_count(store, run.run_id)
    out.shard_size = shard_size or auto_shard_size(total, out.slots)
    jobs = _jobs(store, run, polite_settings(settings, out.slots), shard_store.url, out.shard_size,
                 worker_resolver)
    bar = progress_bar(total, progress, desc=f"crawl ({out.slots} slots)")
    inflight: dict[Any, tuple[ShardJob, int]] = {}
    registered: list[tuple[int, str]] = []
    pool = as_completed()

    def submit(job: ShardJob, n: int) -> None:
        future = client.submit(crawl_shard, job, key=f"crawl-shard-{run.run_id}-{job.shard:06d}-{n}",
                               pure=False, retries=1)
        inflight[future] = (job, n)
        out.submissions += 1
        pool.add(future)

    def submit_next() -> None:
        job = next(jobs, None)
        if job is not None:
            submit(job, 1)

    try:
        for _ in range(2 * out.slots):  # a queued shard per slot keeps every worker busy
            submit_next()
        for future in pool:
            job, n = inflight.pop(future)
            try:
                result: ShardResult = future.result()
                done = register_shard(store, run, job, result, shard_store, n)
            except Exception as exc:  # KilledWorker, a task error after its retry, a bad attempt
                if n < max_submissions:
                    submit(job, n + 1)
                else:
                    out.failed.append((job.shard, f"{type(exc).__name__}: {exc}"[:300]))
                    submit_next()
                future.release()
                continue
            future.release()
            if done:
                out.shards += 1
                registered.append((job.shard, result.attempt))
                out.stats.domains += result.domains
                out.stats.dns_queries += result.dns_queries
                out.stats.tcp_queries += result.tcp_queries
                out.stats.policy_fetches += result.policy_fetches
                out.stats.smtp_probes += result.smtp_probes
                bar.update(result.domains)
            else:
                out.duplicates += 1
            if on_shard is not None:
                on_shard(result, done)
            submit_next()
    finally:
        bar.close()
        for future in list(inflight):
            future.cancel()
    _remove_unregistered(shard_store, run.run_id, registered)
    out.stats.seconds = time.monotonic() - started
    return out


def _remove_unregistered(shard_store: ShardStore, run_id: str, registered: list[tuple[int, str]]) -> None:
    """Delete the other attempts of each registered shard (lost workers' partial folders,
    a late duplicate); the registered attempt stays as the run's Parquet partition."""
    for shard, attempt in registered:
        for other in shard_store.attempts(run_id, shard):
            if other != attempt:
                shard_store.remove(other)


def run_distributed(store: Store, run: Run, settings: CrawlSettings, client: Any, shard_store: ShardStore,
                    **options: Any) -> tuple[ClusterOutcome, dict[str, Any]]:
    """Crawl the pending domains on the cluster, then summarise; the run is finished only
    when no shard failed (else it stays ``running`` for ``--resume``)."""
    outcome = crawl_distributed(store, run, settings, client, shard_store, **options)
    summary = summarise(store, run.run_id)
    summary["session"] = {
        **session_summary(outcome.stats), "distributed": {
            "slots": outcome.slots, "shard_size": outcome.shard_size, "shards": outcome.shards,
            "submissions": outcome.submissions, "duplicates": outcome.duplicates,
            "failed_shards": [s for s, _ in outcome.failed], "shard_store": shard_store.url}}
    if not outcome.failed:
        store.finish_run(run.run_id, "finished", summary)
    return outcome, summary
