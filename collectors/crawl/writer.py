"""The one writer of a crawl: rows are queued by the observers and written in batches,
one DuckDB transaction per batch through Arrow tables.

A domain's rows (crawl_observations, its completion marker, plus crawl_mx and
crawl_policy) are always in the same batch, so a kill at any point leaves each domain
either wholly written or not at all. Per-host rows (crawl_tlsa, crawl_smtp) are queued
before the first domain that uses them and inserted with INSERT OR IGNORE.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import duckdb
import pyarrow as pa

from collectors.store import Run, transaction

DOMAIN_TABLES = ("crawl_observations", "crawl_mx", "crawl_policy")
HOST_TABLES = ("crawl_tlsa", "crawl_smtp")
TABLES = HOST_TABLES + DOMAIN_TABLES


@dataclass(slots=True)
class Batch:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {t: [] for t in TABLES})
    domains: int = 0


class BatchWriter:
    """Collects rows and writes them every ``batch_size`` domains or ``interval`` seconds."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run: Run, *, batch_size: int = 2000,
                 interval: float = 1.0, on_commit: Callable[[int], None] | None = None) -> None:
        self._con = con
        self._run = run
        self._batch_size = batch_size
        self._interval = interval
        self._on_commit = on_commit
        self._batch = Batch()
        self._schemas = {t: con.sql(f"SELECT * FROM {t} LIMIT 0").to_arrow_table().schema for t in TABLES}
        self._lock = asyncio.Lock()
        self._last_flush = time.monotonic()
        self._ticker: asyncio.Task[None] | None = None
        self.committed_domains = 0
        self.flush_seconds = 0.0

    def start(self) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._batch.domains and time.monotonic() - self._last_flush >= self._interval:
                await self.flush()

    def add_host_row(self, table: str, row: dict[str, Any]) -> None:
        self._batch.rows[table].append(row)

    async def add_domain(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        """Queue one domain's complete rows; waits for a flush when the batch is full."""
        batch = self._batch
        for table, table_rows in rows.items():
            batch.rows[table].extend(table_rows)
        batch.domains += 1
        if batch.domains >= self._batch_size:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            batch, self._batch = self._batch, Batch()
            self._last_flush = time.monotonic()
            if not any(batch.rows.values()):
                return
            started = time.monotonic()
            await asyncio.to_thread(self._write, batch)
            self.flush_seconds += time.monotonic() - started
            self.committed_domains += batch.domains
            if self._on_commit:
                self._on_commit(batch.domains)

    async def close(self) -> None:
        """Stop the ticker (never in the middle of its flush: it holds the lock while it
        writes, and one connection must not run two writes), then write the rest."""
        if self._ticker:
            async with self._lock:
                self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        await self.flush()

    def _write(self, batch: Batch) -> None:
        prov = {"run_id": self._run.run_id, "input_list": self._run.input_list,
                "tool_version": self._run.tool_version}
        con = self._con
        with transaction(con):
            for table in TABLES:
                rows = batch.rows[table]
                if not rows:
                    continue
                for row in rows:
                    row.update(prov)
                arrow = pa.Table.from_pylist(rows, schema=self._schemas[table])
                con.register("_crawl_batch", arrow)
                verb = "INSERT OR IGNORE" if table in HOST_TABLES else "INSERT"
                con.execute(f"{verb} INTO {table} SELECT * FROM _crawl_batch")
                con.unregister("_crawl_batch")
