"""The driver of a distributed crawl: split the run's pending domains into shards, keep a
bounded window of shard tasks on the Dask cluster, and register each shard's committed
Parquet partitions into the store exactly once, with one progress bar for the cluster.

Exactly once: a shard's rows and its ``crawl_shards`` row commit in one DuckDB
transaction, whose primary key refuses a second registration; so a shard retried after
a lost worker, or completed twice, is counted once.

Once per MX host: domain shards leave the per-host facts (TLSA, the SMTP probe) out; as
each registers, its MX hosts not seen before in the run go to host shards
(:class:`HostFeed`), so a provider's MX shared by domains in every shard is looked up and
probed once per run, as in a local crawl. A task that fails (or whose worker
dies more often than Dask allows) is resubmitted up to ``max_submissions`` times; a shard
that still fails stays pending, and ``mtasts crawl --resume`` finishes it.

Politeness across the cluster (docs/cluster.md): each of the cluster's concurrent shard
slots (worker threads) gets ``rate / slots`` of the global DNS rate and
``per_host / slots`` (at least 1) parallel connections per policy/MX address, so the
cluster as a whole stays within the single-machine limits (per host: ``max(per_host,
slots)``).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import pyarrow as pa

from collectors.crawl.distributed.shardstore import ShardStore, ShardStoreError
from collectors.crawl.distributed.task import ShardJob, ShardResult, crawl_shard
from collectors.crawl.runner import (
    CrawlSettings, CrawlStats, pending_count, pending_host_count, pending_host_pages, pending_pages, progress_bar,
    session_summary, summarise,
)
from collectors.crawl.writer import DOMAIN_TABLES, HOST_TABLES, TABLES
from collectors.store import Run, Store, transaction, utcnow

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
          worker_resolver: bool, numbers: Iterator[int]) -> Iterator[ShardJob]:
    """Domain shard jobs over the pending snapshot (``pending_count`` first), one page at a
    time; their MX hosts are left to host shards (``defer_hosts``)."""
    for rows in pending_pages(store, shard_size):
        positions, ranks, domains = zip(*rows)
        yield ShardJob(run, next(numbers), tuple(positions), tuple(ranks), tuple(domains), settings, store_url,
                       worker_resolver, defer_hosts=True)


class HostFeed:
    """The run's MX hosts not yet given to a host shard, so each is looked up (TLSA) and
    probed (SMTP) once per run, however many domains in however many shards use it.

    The driver already loads every domain shard's rows; it puts the shard's MX hosts into
    a temp table keyed by host name (``INSERT OR IGNORE ... RETURNING``: an index probe
    per host, no scan of the run) and batches the new ones into host shards. Hosts of a
    previous session's domains still without their rows (the driver was killed before
    their host shard registered) come first (``runner.pending_host_count``)."""

    def __init__(self, store: Store, run_id: str, probe_smtp: bool, size: int) -> None:
        self._con = store.con
        self._size = size
        self._con.execute("CREATE OR REPLACE TEMP TABLE _crawl_hosts_known (mx_host VARCHAR PRIMARY KEY)")
        self._con.execute("INSERT INTO _crawl_hosts_known SELECT DISTINCT mx_host FROM crawl_mx"
                          " WHERE run_id = ? AND coalesce(mx_host, '') <> ''", [run_id])
        self.leftover = pending_host_count(store, run_id, probe_smtp)
        self._pages = pending_host_pages(store, size) if self.leftover else iter(())
        self._buffer: list[str] = []
        self.given = 0

    def add(self, mx_rows: pa.Table) -> int:
        """Queue the hosts of a registered shard's ``crawl_mx`` rows not seen before; how many."""
        if not mx_rows.num_rows:
            return 0
        self._con.register("_shard_mx", mx_rows.select(["mx_host"]))
        try:
            new = self._con.execute(
                "INSERT OR IGNORE INTO _crawl_hosts_known SELECT DISTINCT mx_host FROM _shard_mx"
                " WHERE coalesce(mx_host, '') <> '' RETURNING mx_host").fetchall()
        finally:
            self._con.unregister("_shard_mx")
        self._buffer.extend(sorted(h for (h,) in new))
        return len(new)

    def take(self, final: bool) -> tuple[str, ...] | None:
        """The next host shard: a full one, or (``final``: no domain shard can add more) the rest."""
        page = next(self._pages, None)
        if page:
            hosts = tuple(page)
        elif len(self._buffer) >= self._size or (final and self._buffer):
            hosts = tuple(self._buffer[:self._size])
            del self._buffer[:self._size]
        else:
            return None
        self.given += len(hosts)
        return hosts


def register_shard(store: Store, run: Run, job: ShardJob, result: ShardResult, shard_store: ShardStore,
                   submissions: int = 1) -> bool:
    """Load a committed attempt's partitions into the raw tables and record the shard, in
    one transaction. False (nothing written) when the shard is registered already.
    Raises :class:`ShardStoreError` when the attempt does not hold exactly the shard."""
    return _register(store, run, job, result, shard_store, submissions) is not None


def _check(job: ShardJob, tables: dict[str, pa.Table]) -> None:
    """The attempt holds exactly the shard: its domains, or (a host shard) a row of each of
    its hosts in crawl_tlsa (and crawl_smtp when probing) and no domain rows."""
    if job.is_hosts:
        wanted = ("crawl_tlsa", "crawl_smtp") if job.settings.probe_smtp else ("crawl_tlsa",)
        for table in wanted:
            names = tables[table].column("mx_host").to_pylist()
            if len(names) != len(job.hosts) or set(names) != set(job.hosts):
                raise ShardStoreError(f"shard {job.shard}: {table} holds other MX hosts than the shard")
        if any(tables[t].num_rows for t in DOMAIN_TABLES):
            raise ShardStoreError(f"shard {job.shard}: a host shard's attempt holds domain rows")
        return
    observed = tables["crawl_observations"].column("domain").to_pylist()
    if len(observed) != job.size or set(observed) != set(job.domains):
        raise ShardStoreError(f"shard {job.shard}: the attempt holds other domains than the shard")


def _register(store: Store, run: Run, job: ShardJob, result: ShardResult, shard_store: ShardStore,
              submissions: int) -> dict[str, pa.Table] | None:
    """:func:`register_shard`, returning the registered rows per table (None: registered before)."""
    con = store.con
    if con.execute("SELECT count(*) FROM crawl_shards WHERE run_id = ? AND shard = ?",
                   [run.run_id, job.shard]).fetchone()[0]:
        return None
    manifest = shard_store.manifest(result.attempt)
    tables = {t: shard_store.read_table(result.attempt, t) for t in TABLES}
    for table, data in tables.items():
        if data.num_rows != manifest["rows"].get(table, -1):
            raise ShardStoreError(f"shard {job.shard}: {table} has {data.num_rows} rows, "
                                  f"the marker says {manifest['rows'].get(table)}")
    _check(job, tables)
    now = utcnow()
    with transaction(con):
        for table in HOST_TABLES + DOMAIN_TABLES:
            data = tables[table]
            if not data.num_rows:
                continue
            con.register("_shard_rows", data)
            # per-host rows come from host shards, one per host and run; INSERT OR IGNORE
            # keeps a run's first row of a host (one row per run, as in a local crawl)
            verb = "INSERT OR IGNORE" if table in HOST_TABLES else "INSERT"
            con.execute(f"{verb} INTO {table} BY NAME SELECT * FROM _shard_rows")
            con.unregister("_shard_rows")
        # a host shard has no positions: 0..0 and 0 domains (its hosts: crawl_shard_files)
        first, last = (job.positions[0], job.positions[-1]) if job.positions else (0, 0)
        con.execute(
            "INSERT INTO crawl_shards VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run.run_id, now, run.input_list, run.tool_version, job.shard, first, last, job.size,
             result.attempt, result.attempt.rsplit("attempt=", 1)[-1],
             submissions, result.worker, result.host, result.pid, result.stats.seconds,
             result.stats.cpu_seconds, result.stats.dns_queries, result.stats.policy_fetches,
             result.stats.smtp_probes])
        con.register("_shard_files", pa.table({
            "table_name": list(result.files), "path": list(result.files.values()),
            "rows": [result.rows[t] for t in result.files]}))
        con.execute("INSERT INTO crawl_shard_files SELECT ?, ?, ?, ?, ?, table_name, path, rows FROM _shard_files",
                    [run.run_id, now, run.input_list, run.tool_version, job.shard])
        con.unregister("_shard_files")
    return tables


class ShardScheduler:
    """One session's shards on the cluster: a bounded window of tasks in flight, domain
    shards in list order and host shards as their MX hosts come in, each completed attempt
    registered once, a failed task resubmitted up to ``max_submissions`` times."""

    def __init__(self, store: Store, run: Run, settings: CrawlSettings, client: Any, shard_store: ShardStore,
                 out: ClusterOutcome, *, max_submissions: int, worker_resolver: bool) -> None:
        from distributed import as_completed

        self.store, self.run, self.client, self.shard_store, self.out = store, run, client, shard_store, out
        self.max_submissions = max_submissions
        self.worker_resolver = worker_resolver
        self.polite = polite_settings(settings, out.slots)
        self.numbers = itertools.count(store.con.execute(
            "SELECT coalesce(max(shard), 0) + 1 FROM crawl_shards WHERE run_id = ?", [run.run_id]).fetchone()[0])
        self.jobs = _jobs(store, run, self.polite, shard_store.url, out.shard_size, worker_resolver, self.numbers)
        self.hosts = HostFeed(store, run.run_id, settings.probe_smtp, out.shard_size)
        self.inflight: dict[Any, tuple[ShardJob, int]] = {}
        self.registered: list[tuple[int, str]] = []
        self.pool = as_completed()
        self.window = 2 * out.slots  # a queued shard per slot keeps every worker busy
        self.domains_left = True

    def submit(self, job: ShardJob, n: int) -> None:
        """Submit attempt ``n`` of a shard's task."""
        future = self.client.submit(crawl_shard, job, key=f"crawl-shard-{self.run.run_id}-{job.shard:06d}-{n}",
                                    pure=False, retries=1)
        self.inflight[future] = (job, n)
        self.out.submissions += 1
        self.pool.add(future)

    def next_job(self) -> ShardJob | None:
        """A host shard when one is full (or, the domains done, the rest), else a domain shard."""
        domains_inflight = any(not j.is_hosts for j, _ in self.inflight.values())
        batch = self.hosts.take(final=not self.domains_left and not domains_inflight)
        if batch is None and self.domains_left:
            job = next(self.jobs, None)
            if job is not None:
                return job
            self.domains_left = False
            batch = self.hosts.take(final=not domains_inflight)
        if batch is None:
            return None
        return ShardJob(self.run, next(self.numbers), (), (), (), self.polite, self.shard_store.url,
                        self.worker_resolver, hosts=batch)

    def fill(self) -> None:
        """Submit shards until the window is full or none is left to give."""
        while len(self.inflight) < self.window:
            job = self.next_job()
            if job is None:
                return
            self.submit(job, 1)

    def completed(self, future: Any) -> tuple[ShardResult, bool] | None:
        """Register a finished task's attempt; on failure resubmit it or give the shard up.
        The result and whether it was registered now (False: a duplicate), None when the
        task failed; ``self.out`` counts what happened."""
        job, n = self.inflight.pop(future)
        try:
            result: ShardResult = future.result()
            tables = _register(self.store, self.run, job, result, self.shard_store, n)
        except Exception as exc:  # KilledWorker, a task error after its retry, a bad attempt
            if n < self.max_submissions:
                self.submit(job, n + 1)
            else:
                self.out.failed.append((job.shard, f"{type(exc).__name__}: {exc}"[:300]))
            return None
        finally:
            future.release()
        if tables is None:
            self.out.duplicates += 1
            return result, False
        self.out.shards += 1
        self.registered.append((job.shard, result.attempt))
        self.hosts.add(tables["crawl_mx"])
        self.out.stats.add_counts(result.stats)
        return result, True

    def cancel(self) -> None:
        """Cancel the tasks still in flight (an interrupt, an error of the driver)."""
        for future in list(self.inflight):
            future.cancel()


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
    """Crawl every pending domain of ``run`` on the cluster behind ``client``: domain
    shards, and host shards for the MX hosts they meet (each host once per run)."""
    out = ClusterOutcome(dashboard=getattr(client, "dashboard_link", None))
    out.slots = max(1, sum(client.nthreads().values()))
    started = time.monotonic()
    remove_orphans(store, shard_store, run.run_id)
    total = pending_count(store, run.run_id)
    out.shard_size = shard_size or auto_shard_size(total, out.slots)
    scheduler = ShardScheduler(store, run, settings, client, shard_store, out,
                               max_submissions=max_submissions, worker_resolver=worker_resolver)
    bar = progress_bar(total, progress, desc=f"crawl ({out.slots} slots)")
    try:
        scheduler.fill()
        for future in scheduler.pool:
            completed = scheduler.completed(future)
            if completed is not None:
                result, done = completed
                if done:
                    bar.update(result.stats.domains)
                if on_shard is not None:
                    on_shard(result, done)
            scheduler.fill()
    finally:
        bar.close()
        scheduler.cancel()
    _remove_unregistered(shard_store, run.run_id, scheduler.registered)
    out.stats.seconds = time.monotonic() - started
    return out


def remove_orphans(store: Store, shard_store: ShardStore, run_id: str) -> int:
    """Delete the attempt folders of shards the run never registered (a killed driver's
    shards in flight: their domains are pending again and get new shards); returns how many.
    Safe: only one driver holds a run's database, and registration reads only the attempt
    a task of this session reports."""
    known = {s for (s,) in store.con.execute("SELECT shard FROM crawl_shards WHERE run_id = ?",
                                             [run_id]).fetchall()}
    removed = 0
    for shard in shard_store.shards(run_id):
        if shard not in known:
            for attempt in shard_store.attempts(run_id, shard):
                shard_store.remove(attempt)
                removed += 1
    return removed


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
