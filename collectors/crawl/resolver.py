"""A lean asynchronous stub resolver client: a small pool of connected UDP sockets with our
own query-ID matching, per-attempt timeouts, bounded retries, TCP on truncation
(RFC 7766 5), and a global query-rate limit.

It asks one recursive, ideally validating, resolver (``--resolver`` or the first
``nameserver`` of resolv.conf). Every query carries EDNS0 with DO (RFC 3225) so the
resolver reports the AD bit (RFC 4035 3.2.3); :meth:`DnsClient.query` can also set CD
(checking disabled) to tell a bogus answer from a broken server (RFC 4035 3.2.2).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import struct
from dataclasses import dataclass
from pathlib import Path

from collectors.crawl.wire import Response, build_query, encode_question, parse_response, rcode_text

DEFAULT_RESOLV_CONF = Path("/etc/resolv.conf")

# Outcome names of one lookup; an answer's own rcode when there was one.
TIMEOUT = "TIMEOUT"
ERROR = "ERROR"       # local failure: bad name, unreachable resolver, malformed answers


class ResolverConfigError(Exception):
    """No usable resolver address (bad --resolver value, empty resolv.conf)."""


def parse_resolver(value: str, default_port: int = 53) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address -> (ip, port)."""
    text = value.strip()
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ResolverConfigError(f"bad resolver address {value!r}")
            port = _port(rest[1:], value)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, value)
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise ResolverConfigError(f"resolver must be an IP address[:PORT], got {value!r}") from exc
    return host, port


def _port(text: str, value: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ResolverConfigError(f"bad port in resolver address {value!r}")
    return int(text)


def system_resolver(path: Path = DEFAULT_RESOLV_CONF) -> tuple[str, int]:
    """The first ``nameserver`` of resolv.conf (read as any libc stub would, resolv.conf(5))."""
    try:
        text = path.read_text("utf-8", "replace")
    except OSError as exc:
        raise ResolverConfigError(f"cannot read {path}: {exc.strerror}; pass --resolver IP") from exc
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            addr = parts[1].split("%")[0]
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                continue
            return addr, 53
    raise ResolverConfigError(f"no nameserver in {path}; pass --resolver IP[:PORT]")


@dataclass(frozen=True, slots=True)
class Lookup:
    """The outcome of one question: ``status`` is the rcode name (NOERROR, NXDOMAIN,
    SERVFAIL, REFUSED...) or TIMEOUT/ERROR; ``response`` the parsed answer if any."""

    qname: str
    qtype: int
    status: str
    response: Response | None
    attempts: int
    elapsed: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "NOERROR"

    @property
    def ad(self) -> bool:
        return self.response is not None and self.response.authenticated


class RateLimiter:
    """A global pace: at most ``rate`` acquisitions a second (none when ``rate`` is 0)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._next = 0.0

    async def acquire(self) -> None:
        if not self._interval:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(self._next, now)
        self._next = slot + self._interval
        if slot - now > 0.001:
            await asyncio.sleep(slot - now)


class _UdpProtocol(asyncio.DatagramProtocol):
    """Hands each datagram to the waiter with its query ID and the same question."""

    def __init__(self) -> None:
        self.pending: dict[int, tuple[bytes, asyncio.Future[bytes]]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) < 12:
            return
        qid = data[0] << 8 | data[1]
        waiter = self.pending.get(qid)
        if waiter is None:
            return
        question, fut = waiter
        # The answer must echo our question (RFC 5452 9.1); otherwise keep waiting.
        if data[12:12 + len(question)].lower() != question:
            return
        del self.pending[qid]
        if not fut.done():
            fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable etc.: fail every waiter now rather than at the timeout.
        for _, fut in self.pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self.pending.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self.error_received(exc or ConnectionError("socket closed"))


class DnsClient:
    """Queries one resolver over a pool of UDP sockets. Use ``async with``."""

    def __init__(
        self,
        server: tuple[str, int],
        *,
        timeout: float = 2.0,
        attempts: int = 3,
        sockets: int = 8,
        rate: float = 0.0,
    ) -> None:
        self.server = server
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self._n_sockets = sockets
        self._pool: list[_UdpProtocol] = []
        self._next = 0
        self._rate = RateLimiter(rate)
        self._random = random.SystemRandom()
        self.queries_sent = 0
        self.tcp_queries = 0

    async def __aenter__(self) -> "DnsClient":
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self._n_sockets):
            _, proto = await loop.create_datagram_endpoint(_UdpProtocol, remote_addr=self.server)
            self._pool.append(proto)

    def close(self) -> None:
        for proto in self._pool:
            if proto.transport is not None:
                proto.transport.close()
        self._pool.clear()

    async def query(self, qname: str, qtype: int, *, cd: bool = False) -> Lookup:
        """Ask ``qname``/``qtype``; retries only timeouts, up to ``attempts`` in all."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            question = encode_question(qname, qtype)
        except (ValueError, UnicodeError) as exc:
            return Lookup(qname, qtype, ERROR, None, 0, 0.0, f"bad name: {exc}")
        status, detail = ERROR, ""  # why the last attempt failed
        for attempt in range(1, self.attempts + 1):
            await self._rate.acquire()
            try:
                wire = await self._udp_exchange(question, cd, loop)
            except asyncio.TimeoutError:
                status, detail = TIMEOUT, f"no answer within {self.timeout:g}s"
                continue
            except OSError as exc:
                status, detail = ERROR, f"{type(exc).__name__}: {exc}"
                if attempt < self.attempts:
                    await asyncio.sleep(min(0.2 * attempt, self.timeout))
                continue
            response = parse_response(wire)
            if response is not None and response.truncated:
                try:
                    wire = await asyncio.wait_for(self._tcp_exchange(question, cd), self.timeout)
                    response = parse_response(wire)
                except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                    return Lookup(qname, qtype, ERROR, None, attempt, loop.time() - started,
                                  f"truncated over UDP, TCP failed: {type(exc).__name__}")
            if response is None:
                return Lookup(qname, qtype, ERROR, None, attempt, loop.time() - started,
                              "malformed response")
            return Lookup(qname, qtype, rcode_text(response.rcode), response, attempt,
                          loop.time() - started)
        return Lookup(qname, qtype, status, None, self.attempts, loop.time() - started, detail)

    async def _udp_exchange(self, question: bytes, cd: bool, loop: asyncio.AbstractEventLoop) -> bytes:
        proto = self._pool[self._next]
        self._next = (self._next + 1) % len(self._pool)
        pending = proto.pending
        qid = self._random.getrandbits(16)
        while qid in pending:
            qid = self._random.getrandbits(16)
        fut: asyncio.Future[bytes] = loop.create_future()
        pending[qid] = (question.lower(), fut)
        assert proto.transport is not None
        proto.transport.sendto(build_query(qid, question, cd=cd))
        self.queries_sent += 1
        handle = loop.call_later(self.timeout, _expire, fut)
        try:
            return await fut
        finally:
            handle.cancel()
            if pending.get(qid, (None, None))[1] is fut:
                del pending[qid]

    async def _tcp_exchange(self, question: bytes, cd: bool) -> bytes:
        self.tcp_queries += 1
        reader, writer = await asyncio.open_connection(*self.server)
        try:
            qid = self._random.getrandbits(16)
            msg = build_query(qid, question, cd=cd)
            writer.write(struct.pack("!H", len(msg)) + msg)
            await writer.drain()
            length = struct.unpack("!H", await reader.readexactly(2))[0]
            data = await reader.readexactly(length)
            if data[:2] != msg[:2]:
                raise OSError("TCP answer with another query ID")
            return data
        finally:
            writer.close()


def _expire(fut: asyncio.Future[bytes]) -> None:
    if not fut.done():
        fut.set_exception(asyncio.TimeoutError())
