"""The Dask crawl against real testbed servers, killed and resumed, and its per-host work:

* ``mtasts crawl LIST --workers 2`` killed (SIGKILL of the whole process group: driver,
  scheduler and workers) once the progress bar shows part of the list, then
  ``--resume RUN --workers 2``: every domain once in the export, and the export equals a
  single-process crawl of the same list, byte for byte;
* in a multi-shard run each MX host is looked up (TLSA) and probed (SMTP) once per run,
  counted by a DNS forwarder between the crawler and the world's resolver, not by the
  crawler's own counters.
"""

from __future__ import annotations

import asyncio
import collections
import csv
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dns.message
import dns.rdatatype
import duckdb
import pytest

from collectors.testbed import generate_population

pytestmark = [pytest.mark.servers, pytest.mark.slow]

MTASTS = str(Path(sys.executable).parent / "mtasts")


def _export(db: Path, out: Path) -> str:
    done = subprocess.run([MTASTS, "export", "posture", "--db", str(db), "--run", "latest", "--format", "csv",
                           "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return out.read_text()


def _kill_when_progress(cmd: list[str], log: Path, at_least: int, total: int) -> None:
    """Run ``cmd`` and SIGKILL its process group once the progress bar on stderr shows
    ``at_least`` domains (a fixed sleep lands before the first shard or after the last)."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            counts = re.findall(rb"([0-9.]+)(k?)/[0-9.]+k? ", log.read_bytes()[-4096:])
            if counts and at_least <= float(counts[-1][0]) * (1000 if counts[-1][1] else 1) < total:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the crawl finished before it could be killed; make the list longer"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_dask_crawl_killed_and_resumed_with_workers(make_world, tmp_path: Path) -> None:
    scenario = generate_population(4000, seed=23)
    # DNS answers wait 10 ms and few domains are in flight: a shard lasts long enough to
    # kill the run between shards
    world = make_world(scenario, mode="loopback", latency_ms=10)
    names = [d.name for d in scenario.domains]
    listing = tmp_path / "list.csv"
    listing.write_text("".join(f"{i},{d}\n" for i, d in enumerate(names + ["http://x.test/", names[7]], 1)))
    args = [*world.crawler_args(), "--timeout", "3", "--dns-timeout", "5", "--probe-smtp", "--concurrency", "40"]

    single = tmp_path / "single.duckdb"
    done = subprocess.run([MTASTS, "crawl", str(listing), "--db", str(single), *args, "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    db = tmp_path / "cluster.duckdb"
    _kill_when_progress([MTASTS, "crawl", str(listing), "--db", str(db), *args, "--workers", "2",
                         "--shard-size", "200", "--progress"], tmp_path / "first.stderr", len(names) // 4,
                        len(names))
    con = duckdb.connect(str(db))
    run_id, status = con.execute("SELECT run_id, status FROM runs").fetchone()
    partial = con.execute("SELECT count(*) FROM crawl_observations").fetchone()[0]
    # hosts of registered domain shards still without their per-host rows: --resume must finish them
    unprobed = con.execute("SELECT count(DISTINCT mx_host) FROM crawl_mx m WHERE mx_host <> '' AND NOT EXISTS"
                           " (SELECT 1 FROM crawl_smtp s WHERE s.mx_host = m.mx_host)").fetchone()[0]
    con.close()
    assert status == "running"
    assert 0 < partial < len(names), f"kill was not mid-run ({partial} of {len(names)})"
    assert unprobed > 0, "the kill left no MX host to finish; the test no longer covers that"

    done = subprocess.run([MTASTS, "crawl", "--resume", run_id, "--db", str(db), *args, "--workers", "2",
                           "--shard-size", "200", "--no-progress"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming {run_id}" in done.stderr

    resumed = _export(db, tmp_path / "cluster.csv")
    with open(tmp_path / "cluster.csv", newline="") as fh:
        exported = [row["domain"] for row in csv.DictReader(fh)]
    assert len(exported) == len(set(exported)) and sorted(exported) == sorted(names)
    assert resumed == _export(single, tmp_path / "single.csv")

    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT status FROM runs").fetchone()[0] == "finished"
    assert con.execute("SELECT count(*), count(DISTINCT domain) FROM crawl_observations").fetchone() == \
        (len(names), len(names))
    # shard numbers continue across the resume; registered domain shards cover the list once
    assert con.execute("SELECT sum(domains) FROM crawl_shards").fetchone()[0] == len(names)
    assert con.execute("SELECT count(*) FROM quarantine WHERE run_id = ?", [run_id]).fetchone()[0] == 2
    registered = {Path(loc) for (loc,) in con.execute("SELECT location FROM crawl_shards").fetchall()}
    con.close()
    # the killed session's attempts that were never registered are gone: one folder a shard
    attempts = set((tmp_path / "runs" / run_id).glob("shard=*/attempt=*"))
    assert attempts == registered


def _question(wire: bytes) -> bytes:
    """The question section of a DNS message (after the 12-byte header), up to QTYPE/QCLASS."""
    i = 12
    while i < len(wire) and wire[i]:
        i += 1 + wire[i]
    return wire[12:i + 5]


class CountingForwarder:
    """A DNS forwarder on 127.0.0.1 (UDP and TCP) to ``upstream`` that counts every question
    it relays by (type, name): what the crawler really asked, retries included."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.questions: collections.Counter[tuple[str, str]] = collections.Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _count(self, wire: bytes) -> None:
        try:
            q = dns.message.from_wire(wire).question[0]
        except Exception:  # not a query we can read: forwarded all the same
            return
        self.questions[(dns.rdatatype.to_text(q.rdtype), q.name.to_text().rstrip(".").lower())] += 1

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        fwd = self

        waiting: dict[bytes, list[tuple[object, object]]] = {}  # the query as sent -> who asked

        class Up(asyncio.DatagramProtocol):
            def datagram_received(self, reply: bytes, _addr) -> None:  # type: ignore[no-untyped-def]
                # an answer carries its query's id and question
                for down, addr in waiting.pop(reply[:2] + _question(reply), ()):
                    down.sendto(reply, addr)

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport):  # type: ignore[no-untyped-def]
                self.transport = transport

            def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
                fwd._count(data)
                key = data[:2] + _question(data)
                waiting.setdefault(key, []).append((self.transport, addr))
                fwd._up.sendto(data)

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_r, up_w = await asyncio.open_connection(*fwd.upstream)
                while True:
                    size = await reader.readexactly(2)
                    msg = await reader.readexactly(int.from_bytes(size, "big"))
                    fwd._count(msg)
                    up_w.write(size + msg)
                    rsize = await up_r.readexactly(2)
                    writer.write(rsize + await up_r.readexactly(int.from_bytes(rsize, "big")))
                    await writer.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self._up, _ = await self._loop.create_datagram_endpoint(Up, remote_addr=self.upstream)
        transport, _ = await self._loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", 0))
        for t in (self._up, transport):  # bursts of thousands of queries: no drop (and no retry)
            t.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.port = transport.get_extra_info("sockname")[1]
        self._server = await asyncio.start_server(tcp, "127.0.0.1", self.port)

    def __enter__(self) -> "CountingForwarder":
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def test_each_mx_host_is_looked_up_and_probed_once_per_run(make_world, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from collectors.cli import main

    scenario = generate_population(1500, seed=31)
    world = make_world(scenario, mode="loopback")
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{d.name}\n" for d in scenario.domains))
    db = tmp_path / "hosts.duckdb"
    with CountingForwarder(world.resolver) as dns_seen:
        # a long DNS timeout: a retried question would count twice
        code = main(["crawl", str(listing), "--db", str(db), "--ca-bundle", str(world.ca_bundle),
                     "--resolver", f"127.0.0.1:{dns_seen.port}", "--https-port", str(world.https_port),
                     "--smtp-port", str(world.smtp_port), "--probe-smtp", "--timeout", "3",
                     "--dns-timeout", "20", "--no-progress", "--workers", "3", "--shard-size", "100"])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]

    con = duckdb.connect(str(db), read_only=True)
    hosts = {h for (h,) in con.execute("SELECT DISTINCT mx_host FROM crawl_mx WHERE mx_host <> ''").fetchall()}
    # many domains in many shards share a provider's MX: otherwise this proves nothing
    shared = con.execute(
        "SELECT count(*) FROM (SELECT m.mx_host FROM crawl_mx m JOIN crawl_domains d USING (run_id, domain)"
        " JOIN crawl_shards s ON s.run_id = d.run_id AND s.domains > 0"
        "  AND d.position BETWEEN s.first_position AND s.last_position"
        " WHERE m.mx_host <> '' GROUP BY m.mx_host HAVING count(DISTINCT s.shard) > 1)").fetchone()[0]
    assert con.execute("SELECT count(*) FROM crawl_shards WHERE domains > 0").fetchone()[0] == 15
    assert con.execute("SELECT count(*) FROM crawl_tlsa").fetchone()[0] == len(hosts)
    assert con.execute("SELECT count(*) FROM crawl_smtp").fetchone()[0] == len(hosts)
    con.close()
    assert shared > 0 and len(hosts) > 20

    tlsa = {name.removeprefix("_25._tcp."): n for (rdtype, name), n in dns_seen.questions.items()
            if rdtype == "TLSA"}
    assert tlsa == {h: 1 for h in hosts}
    # the SMTP probe asks the host's address just before it connects: once per host
    probed = {name: n for (rdtype, name), n in dns_seen.questions.items() if rdtype == "A" and name in hosts}
    assert probed == {h: 1 for h in hosts if (("A", h) in dns_seen.questions)}
    assert len(probed) >= len(hosts) * 0.9
