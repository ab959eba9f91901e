"""The batch writer: one write at a time on its connection, even when closing mid-flush."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time

from collectors.crawl.writer import BatchWriter

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_close_waits_for_the_ticker_flush(store) -> None:
    run = store.start_run("crawl", "test")
    writer = BatchWriter(store.con, run, batch_size=10_000, interval=0.01)
    active = []
    overlaps = []
    real_write = writer._write

    def slow_write(batch):  # type: ignore[no-untyped-def]
        active.append(threading.get_ident())
        if len(active) > 1:
            overlaps.append(True)
        time.sleep(0.2)
        real_write(batch)
        active.pop()

    writer._write = slow_write  # type: ignore[method-assign]

    async def go() -> None:
        writer.start()
        for i in range(50):
            await writer.add_domain({"crawl_observations": [{
                "domain": f"d{i}.test", "observed_at": NOW, "mx_rcode": "NOERROR",
                "sts_rcode": "NXDOMAIN", "tlsrpt_rcode": "NXDOMAIN"}]})
        await asyncio.sleep(0.05)  # the ticker is now inside its (slow) flush
        for i in range(50, 60):
            await writer.add_domain({"crawl_observations": [{
                "domain": f"d{i}.test", "observed_at": NOW, "mx_rcode": "NOERROR",
                "sts_rcode": "NXDOMAIN", "tlsrpt_rcode": "NXDOMAIN"}]})
        await writer.close()

    asyncio.run(go())
    assert not overlaps
    assert writer.committed_domains == 60
    assert store.con.execute("SELECT count(*) FROM crawl_observations").fetchone()[0] == 60
