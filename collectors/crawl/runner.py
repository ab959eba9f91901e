"""One crawl run, start to finish or resumed: load the normalised list into the store in one
transaction, then observe every domain without a completion marker, with bounded
concurrency, one writer and a progress bar; finally summarise from the views.

Resume contract: the list is in ``crawl_domains`` (with ``crawl_inputs`` as its marker)
before any domain is crawled; each domain's rows and its completion marker (its
``crawl_observations`` row) commit together; so after ``kill -9`` a resume crawls
exactly the domains without a marker, and primary keys make a duplicate impossible.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Awaitable, Callable, Iterable, Iterator

import duckdb
import pyarrow as pa

from collectors.crawl.inputs import InputEntry
from collectors.crawl.observe import ObserveConfig, Observer
from collectors.crawl.resolver import DnsClient
from collectors.crawl.tlsinfo import client_context
from collectors.crawl.writer import BatchWriter
from collectors.store import Run, Store, transaction, utcnow

QUARANTINE_SOURCE = "crawl_input"
_STAGE_ROWS = 50_000


@dataclass(frozen=True, slots=True)
class CrawlSettings:
    """Everything a run needs besides its list; stored in the run's parameters for --resume."""

    resolver: tuple[str, int]
    ca_bundle: str | None = None
    https_port: int = 443
    smtp_port: int = 25
    timeout: float = 10.0
    dns_timeout: float = 2.0
    dns_attempts: int = 3
    concurrency: int = 500
    rate: float = 0.0
    per_host: int = 8
    probe_smtp: bool = False
    domain_timeout: float | None = None   # one domain's whole observation; None: from the others
    breaker_threshold: int = 3            # unanswered attempts in a row that open an address's circuit
    breaker_cooldown: float = 60.0        # seconds an open circuit refuses before one trial
    batch_size: int = 2000
    udp_sockets: int = 8
    db_memory: str = "256MB"        # DuckDB's buffer pool; it spills beyond (flat RSS)

    @property
    def domain_bound(self) -> float:
        """``domain_timeout``, or by default room for four DNS lookups one after another
        (MX, its CD retry, the policy or MX host's A then AAAA), each with every attempt,
        and three connection time bounds (a fetch; a probe and its certificate re-read)."""
        if self.domain_timeout is not None:
            return self.domain_timeout
        return 4 * self.dns_timeout * self.dns_attempts + 3 * self.timeout

    def to_parameters(self) -> dict[str, Any]:
        d = asdict(self)
        d["resolver"] = f"{self.resolver[0]}:{self.resolver[1]}"
        return d

    @classmethod
    def from_parameters(cls, params: dict[str, Any], **overrides: Any) -> "CrawlSettings":
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in params.items() if k in names}
        if isinstance(values.get("resolver"), str):
            host, _, port = values["resolver"].rpartition(":")
            values["resolver"] = (host.strip("[]"), int(port))
        values.update({k: v for k, v in overrides.items() if v is not None and k in names})
        return cls(**values)


@dataclass(slots=True)
class InputCounts:
    entries: int = 0
    accepted: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def input_loaded(store: Store, run_id: str) -> bool:
    """True once the run's list is in the store (its ``crawl_inputs`` marker): a resume
    then crawls the pending domains without reading the list again."""
    return bool(store.con.execute("SELECT count(*) FROM crawl_inputs WHERE run_id = ?", [run_id]).fetchone()[0])


def load_input(store: Store, run: Run, entries: Iterable[InputEntry], source: str) -> InputCounts:
    """Write the list's valid, first-seen domains to ``crawl_domains`` and quarantine the rest
    (with the reason; duplicates too), all in one transaction with the ``crawl_inputs`` marker.
    Streams: at most ``_STAGE_ROWS`` entries are held in Python at a time."""
    con = store.con
    counts = InputCounts()
    with transaction(con):
        con.execute("CREATE OR REPLACE TEMP TABLE _crawl_stage (position BIGINT, rank BIGINT, domain VARCHAR)")
        pos: list[int] = []
        ranks: list[int | None] = []
        names: list[str] = []
        bad: list[tuple[int, str, str]] = []

        def flush() -> None:
            if pos:
                con.register("_crawl_stage_batch", pa.table({
                    "position": pa.array(pos, pa.int64()), "rank": pa.array(ranks, pa.int64()),
                    "domain": pa.array(names, pa.string())}))
                con.execute("INSERT INTO _crawl_stage SELECT * FROM _crawl_stage_batch")
                con.unregister("_crawl_stage_batch")
                pos.clear(); ranks.clear(); names.clear()
            if bad:
                store.quarantine(run, QUARANTINE_SOURCE, source, bad)
                bad.clear()

        for entry in entries:
            counts.entries += 1
            if entry.domain is None:
                reason = entry.reason or "invalid"
                counts.reasons[reason] = counts.reasons.get(reason, 0) + 1
                bad.append((entry.position, entry.raw, f"{reason}: {entry.detail}" if entry.detail else reason))
            else:
                pos.append(entry.position)
                ranks.append(entry.rank)
                names.append(entry.domain)
            if len(pos) + len(bad) >= _STAGE_ROWS:
                flush()
        flush()
        now = utcnow()
        con.execute(
            "INSERT INTO crawl_domains SELECT ?, ?, ?, ?, position, rank, domain FROM _crawl_stage"
            " QUALIFY row_number() OVER (PARTITION BY domain ORDER BY position) = 1",
            [run.run_id, now, run.input_list, run.tool_version])
        dups = con.execute(
            "SELECT position, domain FROM _crawl_stage"
            " QUALIFY row_number() OVER (PARTITION BY domain ORDER BY position) > 1 ORDER BY position"
        ).fetchall()
        if dups:
            counts.reasons["duplicate"] = len(dups)
            store.quarantine(run, QUARANTINE_SOURCE, source, [(p, d, "duplicate") for p, d in dups])
        counts.accepted = con.execute(
            "SELECT count(*) FROM crawl_domains WHERE run_id = ?", [run.run_id]).fetchone()[0]
        counts.quarantined = counts.entries - counts.accepted
        con.execute("INSERT INTO crawl_inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [run.run_id, now, run.input_list, run.tool_version, source,
                     counts.entries, counts.accepted, counts.quarantined])
        con.execute("DROP TABLE _crawl_stage")
    return counts


def pending_count(store: Store, run_id: str) -> int:
    """Snapshot the run's domains without a completion marker (list order) into the temp
    table ``_crawl_pending``, read by :func:`pending_pages`; returns how many there are."""
    store.con.execute(
        "CREATE OR REPLACE TEMP TABLE _crawl_pending AS"
        " SELECT d.position, d.rank, d.domain FROM crawl_domains d"
        " WHERE d.run_id = ? AND NOT EXISTS (SELECT 1 FROM crawl_observations o"
        "   WHERE o.run_id = d.run_id AND o.domain = d.domain)"
        " ORDER BY d.position", [run_id])
    return store.con.execute("SELECT count(*) FROM _crawl_pending").fetchone()[0]


def pending_pages(store: Store, page: int) -> Iterator[list[tuple[int, int | None, str]]]:
    """The snapshot (``pending_count`` first) as pages of (position, rank, domain), in list
    order: never the whole list in memory."""
    last = -1
    while True:
        rows = store.con.execute(
            "SELECT position, rank, domain FROM _crawl_pending WHERE position > ? ORDER BY position LIMIT ?",
            [last, page]).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield rows


def pending_host_count(store: Store, run_id: str, probe_smtp: bool) -> int:
    """Snapshot the run's MX hosts (of observed domains) still without their per-host rows
    (TLSA; SMTP with ``probe_smtp``) into the temp table ``_crawl_pending_hosts``; returns
    how many. Empty after a local crawl (it looks hosts up inline); after a Dask crawl
    killed between a domain shard and its hosts' shard, these are the hosts to finish."""
    store.con.execute(
        "CREATE OR REPLACE TEMP TABLE _crawl_pending_hosts AS"
        " SELECT DISTINCT m.mx_host FROM crawl_mx m WHERE m.run_id = ? AND coalesce(m.mx_host, '') <> ''"
        " AND (NOT EXISTS (SELECT 1 FROM crawl_tlsa t WHERE t.run_id = m.run_id AND t.mx_host = m.mx_host)"
        "      OR (? AND NOT EXISTS (SELECT 1 FROM crawl_smtp s WHERE s.run_id = m.run_id"
        "                                                      AND s.mx_host = m.mx_host)))",
        [run_id, probe_smtp])
    return store.con.execute("SELECT count(*) FROM _crawl_pending_hosts").fetchone()[0]


def pending_host_pages(store: Store, page: int) -> Iterator[list[str]]:
    """The host snapshot (``pending_host_count`` first) as pages of names, in name order."""
    last = ""
    while True:
        rows = store.con.execute(
            "SELECT mx_host FROM _crawl_pending_hosts WHERE mx_host > ? ORDER BY mx_host LIMIT ?",
            [last, page]).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield [r[0] for r in rows]


def _pending_hosts(store: Store, page: int = 10_000) -> Iterator[str]:
    for hosts in pending_host_pages(store, page):
        yield from hosts


def _pending(store: Store, page: int = 10_000) -> Iterator[str]:
    """The pending domains in list order, a page at a time (``pending_count`` first)."""
    for rows in pending_pages(store, page):
        for _, _, domain in rows:
            yield domain


@dataclass(slots=True)
class CrawlStats:
    """The work of one crawl session (or one shard): what was observed and asked, and how long it took."""

    domains: int = 0
    seconds: float = 0.0
    dns_queries: int = 0
    tcp_queries: int = 0
    policy_fetches: int = 0
    smtp_probes: int = 0
    writer_seconds: float = 0.0
    hosts: int = 0                  # MX hosts looked up on their own (crawl_hosts)
    cpu_seconds: float = 0.0        # CPU of the crawl phase (all threads), not start-up
    not_contacted: dict[str, int] = field(default_factory=dict)  # gate verdicts (host_unresponsive, host_busy)

    def add_counts(self, other: "CrawlStats") -> None:
        """Count ``other``'s domains, hosts, queries, fetches, probes and hosts not contacted in
        this one (not its times: shards on a cluster run side by side)."""
        for name in ("domains", "dns_queries", "tcp_queries", "policy_fetches", "smtp_probes", "hosts"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, n in other.not_contacted.items():
            self.not_contacted[code] = self.not_contacted.get(code, 0) + n

    def add(self, other: "CrawlStats") -> None:
        """Count ``other``'s work in this one (the seconds of both, as they ran one after the other)."""
        self.add_counts(other)
        self.seconds += other.seconds
        self.writer_seconds += other.writer_seconds
        self.cpu_seconds += other.cpu_seconds

    @property
    def rate(self) -> float:
        return self.domains / self.seconds if self.seconds else 0.0


def progress_bar(total: int, enabled: bool | None, desc: str = "crawl") -> Any:
    """A domains progress bar on stderr; by default shown only when stderr is a terminal."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, disable=not show, file=sys.stderr, unit="dom", unit_scale=True,
                dynamic_ncols=True, smoothing=0.1, desc=desc)


async def crawl_pending(store: Store, run: Run, settings: CrawlSettings,
                        progress: bool | None = None, host_lookups: bool = True) -> CrawlStats:
    """Observe every pending domain of ``run``; returns counters. ``host_lookups=False``
    leaves the TLSA lookup and SMTP probe of the MX hosts to :func:`crawl_hosts` (the Dask
    crawl does them once per run, not once per shard)."""
    total = pending_count(store, run.run_id)

    async def observe(observer: Observer, writer: BatchWriter, domain: str) -> None:
        await writer.add_domain(await observer.observe(domain))

    stats, stats.domains = await _crawl_items(store, run, settings, _pending(store), total, progress, "crawl",
                                              host_lookups, observe)
    return stats


async def crawl_hosts(store: Store, run: Run, settings: CrawlSettings, hosts: Iterable[str], total: int,
                      progress: bool | None = None) -> CrawlStats:
    """The per-host facts (TLSA; SMTP probe with ``probe_smtp``) of each of ``hosts``, once:
    rows of ``crawl_tlsa``/``crawl_smtp``, each host's rows committed together."""

    async def observe(observer: Observer, writer: BatchWriter, host: str) -> None:
        await observer.observe_host(host)  # its rows are queued (emit_host) when this returns
        await writer.add_domain({})        # one host done: batches count hosts like domains

    stats, stats.hosts = await _crawl_items(store, run, settings, iter(hosts), total, progress, "MX hosts",
                                            True, observe)
    return stats


async def _crawl_items(store: Store, run: Run, settings: CrawlSettings, feed: Iterator[str], total: int,
                       progress: bool | None, desc: str, host_lookups: bool,
                       observe: Callable[[Observer, BatchWriter, str], Awaitable[None]]) -> tuple[CrawlStats, int]:
    """``observe`` every item of ``feed`` with bounded concurrency, one writer and a progress
    bar; the counters and how many items were committed."""
    # Without a limit DuckDB keeps every written block cached (up to 80% of RAM): RSS
    # would grow with the list. With one it spills and the crawl's memory stays flat.
    store.con.execute(f"SET memory_limit = '{settings.db_memory}'")
    stats = CrawlStats()
    bar = progress_bar(total, progress, desc=desc)
    started = time.monotonic()
    cpu_started = time.process_time()
    writer_con = store.con.cursor()
    writer = BatchWriter(writer_con, run, batch_size=settings.batch_size,
                         on_commit=lambda n: bar.update(n))
    context = client_context(settings.ca_bundle)
    config = ObserveConfig(https_port=settings.https_port, smtp_port=settings.smtp_port,
                           timeout=settings.timeout, probe_smtp=settings.probe_smtp,
                           per_host=settings.per_host, host_lookups=host_lookups,
                           domain_timeout=settings.domain_bound, breaker_threshold=settings.breaker_threshold,
                           breaker_cooldown=settings.breaker_cooldown)
    try:
        async with DnsClient(settings.resolver, timeout=settings.dns_timeout,
                             attempts=settings.dns_attempts, sockets=settings.udp_sockets,
                             rate=settings.rate) as dns:
            # ``concurrency`` items work at a time; as many again may wait for an address slot,
            # having handed their turn back (gate.Turn), so a busy host never starves the rest
            active = asyncio.Semaphore(settings.concurrency)
            observer = Observer(dns, config, context, writer.add_host_row, active)
            writer.start()

            async def worker() -> None:
                for item in feed:
                    await observe(observer, writer, item)

            workers = max(1, min(2 * settings.concurrency, total or 1))
            await asyncio.gather(*(worker() for _ in range(workers)))
            await writer.close()
            stats.dns_queries = dns.queries_sent
            stats.tcp_queries = dns.tcp_queries
            stats.policy_fetches = observer.fetches
            stats.smtp_probes = observer.probes
            for gate in (observer.https_gate, observer.smtp_gate):
                for code, n in gate.denied.items():
                    if n:
                        stats.not_contacted[code] = stats.not_contacted.get(code, 0) + n
    finally:
        bar.close()
        try:
            writer_con.close()
        except duckdb.Error:  # interrupted mid-write: the thread still holds it; exit anyway
            pass
    stats.seconds = time.monotonic() - started
    stats.cpu_seconds = time.process_time() - cpu_started
    stats.writer_seconds = writer.flush_seconds
    return stats, writer.committed_domains


_SUMMARY_COLUMNS = ("mx_status", "sts_record", "policy_fetch", "policy_mode", "mx_policy_match",
                    "tlsrpt_record", "dnssec", "tlsa", "mx_starttls", "misconfigured", "delivery_risk")


def summarise(store: Store, run_id: str) -> dict[str, Any]:
    """Counts per class of the run's posture, errors by stage, and the input quarantine."""
    con = store.con
    summary: dict[str, Any] = {col: {} for col in _SUMMARY_COLUMNS}
    # One pass over the view (UNPIVOT), not one per column: memory and time stay small.
    casts = ", ".join(f"coalesce(CAST({c} AS VARCHAR), '') AS {c}" for c in _SUMMARY_COLUMNS)
    for col, value, n in con.execute(
            f"SELECT col, val, count(*) FROM (UNPIVOT (SELECT {casts} FROM posture WHERE run_id = ?)"
            f" ON {', '.join(_SUMMARY_COLUMNS)} INTO NAME col VALUE val) GROUP BY ALL ORDER BY 1, 3 DESC",
            [run_id]).fetchall():
        summary[col][value] = n
    errors = {}
    for stage, column, value in (("dns_mx", "mx_status", "dns_error"), ("dns_sts", "sts_record", "dns_error"),
                                 ("dns_tlsrpt", "tlsrpt_record", "dns_error")):
        errors[stage] = summary[column].get(value, 0)
    errors["internal"] = con.execute(
        "SELECT count(*) FROM crawl_observations WHERE run_id = ? AND error IS NOT NULL", [run_id]).fetchone()[0]
    for outcome, n in summary["policy_fetch"].items():
        if outcome not in ("ok", "not_attempted"):
            errors[f"policy_{outcome}"] = n
    summary["errors_by_stage"] = errors
    summary["quarantine"] = dict(con.execute(
        # the reason's code: the text before a ': detail' (line_too_long says what it cut)
        "SELECT split_part(reason, ':', 1), count(*) FROM quarantine WHERE run_id = ? AND source = ?"
        " GROUP BY 1 ORDER BY 2 DESC",
        [run_id, QUARANTINE_SOURCE]).fetchall())
    summary["domains"] = con.execute("SELECT count(*) FROM crawl_observations WHERE run_id = ?",
                                     [run_id]).fetchone()[0]
    return summary


def format_summary(run_id: str, summary: dict[str, Any], stats: CrawlStats | None) -> str:
    """The few lines ``mtasts crawl`` prints at the end: the run's totals, this session's pace."""
    lines = [f"run {run_id}: {summary.get('domains', 0):,} domains observed"]
    if stats is not None and stats.domains:
        lines.append(f"  this session: {stats.domains:,} domains in {stats.seconds:.1f}s "
                     f"({stats.rate:,.0f}/s), {stats.dns_queries:,} DNS queries "
                     f"({stats.tcp_queries} over TCP), {stats.policy_fetches:,} policy fetches, "
                     f"{stats.smtp_probes:,} SMTP probes")
        if stats.not_contacted:
            lines.append("  not contacted    " + ", ".join(f"{k}={v:,}" for k, v in stats.not_contacted.items()))
    for col in _SUMMARY_COLUMNS:
        counts = summary.get(col) or {}
        lines.append(f"  {col:<16} " + ", ".join(f"{k or '-'}={v:,}" for k, v in counts.items()))
    errs = {k: v for k, v in (summary.get("errors_by_stage") or {}).items() if v}
    lines.append("  errors by stage  " + (", ".join(f"{k}={v:,}" for k, v in errs.items()) or "none"))
    q = summary.get("quarantine") or {}
    lines.append("  input quarantine " + (", ".join(f"{k}={v:,}" for k, v in q.items()) or "none"))
    return "\n".join(lines)


def session_summary(stats: CrawlStats) -> dict[str, Any]:
    """What one crawl session did, for the run's stored summary."""
    return {"domains": stats.domains, "seconds": round(stats.seconds, 3), "dns_queries": stats.dns_queries,
            "policy_fetches": stats.policy_fetches, "smtp_probes": stats.smtp_probes, "hosts": stats.hosts,
            "cpu_seconds": round(stats.cpu_seconds, 3), "not_contacted": dict(stats.not_contacted)}


def run_crawl(store: Store, run: Run, settings: CrawlSettings, progress: bool | None = None) -> tuple[CrawlStats, dict[str, Any]]:
    """Crawl the pending domains of a run whose input is loaded, then finish it."""
    stats = asyncio.run(crawl_pending(store, run, settings, progress))
    # hosts a Dask session left without their rows (killed between shards), if any
    hosts = pending_host_count(store, run.run_id, settings.probe_smtp)
    if hosts:
        stats.add(asyncio.run(crawl_hosts(store, run, settings, _pending_hosts(store), hosts, progress)))
    summary = summarise(store, run.run_id)
    summary["session"] = {**session_summary(stats), "pid": os.getpid()}
    store.finish_run(run.run_id, "finished", summary)
    return stats, summary


__all__ = ["CrawlSettings", "CrawlStats", "InputCounts", "crawl_hosts", "crawl_pending", "format_summary",
           "input_loaded", "load_input", "pending_count", "pending_host_count", "pending_host_pages",
           "pending_pages", "progress_bar", "run_crawl", "session_summary", "summarise"]
