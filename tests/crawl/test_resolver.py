"""The lean DNS client against a scripted UDP/TCP responder on 127.0.0.1: ID and question
matching, retries on silence, TCP after truncation, resolver address parsing."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from collectors.crawl import wire
from collectors.crawl.resolver import (
    DnsClient,
    ResolverConfigError,
    parse_resolver,
    system_resolver,
)

Behaviour = Callable[[dns.message.Message, int], list[bytes]]  # (query, n-th) -> datagrams


def _answer(q: dns.message.Message, *, tc: bool = False, rcode: int = 0, ad: bool = False) -> dns.message.Message:
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    if ad:
        r.flags |= dns.flags.AD
    if not tc and rcode == 0 and q.question[0].rdtype == wire.MX:
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "MX", "10 mx.example.test."))
    if tc:
        r.flags |= dns.flags.TC
    return r


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.count = 0
        self.seen: list[dns.message.Message] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        q = dns.message.from_wire(data)
        self.seen.append(q)
        self.count += 1
        for out in self.behaviour(q, self.count):
            self.transport.sendto(out, addr)  # type: ignore[attr-defined]


async def _tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    n = struct.unpack("!H", await reader.readexactly(2))[0]
    q = dns.message.from_wire(await reader.readexactly(n))
    out = _answer(q).to_wire()
    writer.write(struct.pack("!H", len(out)) + out)
    await writer.drain()
    writer.close()


def _run(behaviour: Behaviour, qname: str = "example.test", qtype: int = wire.MX, cd: bool = False,
         timeout: float = 0.3):
    async def main():
        loop = asyncio.get_running_loop()
        for _ in range(20):  # the same port number free for UDP and TCP
            transport, proto = await loop.create_datagram_endpoint(lambda: _Udp(behaviour),
                                                                   local_addr=("127.0.0.1", 0))
            port = transport.get_extra_info("sockname")[1]
            try:
                server = await asyncio.start_server(_tcp, "127.0.0.1", port)
                break
            except OSError:
                transport.close()
        else:
            raise RuntimeError("no port free for both UDP and TCP")
        try:
            async with DnsClient(("127.0.0.1", port), timeout=timeout, attempts=3, sockets=2) as client:
                return await client.query(qname, qtype, cd=cd), proto
        finally:
            transport.close()
            server.close()
    return asyncio.run(main())


def test_answer_with_ad_and_flags_sent() -> None:
    lookup, proto = _run(lambda q, n: [_answer(q, ad=True).to_wire()], cd=True)
    assert lookup.status == "NOERROR" and lookup.ad and lookup.attempts == 1
    assert [r.data for r in lookup.response.answer] == [(10, "mx.example.test")]
    sent = proto.seen[0]
    assert sent.flags & dns.flags.CD and sent.ednsflags & dns.flags.DO


def test_nxdomain_and_servfail_are_told_apart() -> None:
    nx, _ = _run(lambda q, n: [_answer(q, rcode=dns.rcode.NXDOMAIN).to_wire()])
    sf, _ = _run(lambda q, n: [_answer(q, rcode=dns.rcode.SERVFAIL).to_wire()])
    assert (nx.status, sf.status) == ("NXDOMAIN", "SERVFAIL")


def test_silence_is_retried_then_timeout() -> None:
    lookup, proto = _run(lambda q, n: [])
    assert lookup.status == "TIMEOUT" and lookup.attempts == 3 and proto.count == 3


def test_retry_succeeds_after_a_lost_answer() -> None:
    lookup, proto = _run(lambda q, n: [] if n == 1 else [_answer(q).to_wire()])
    assert lookup.status == "NOERROR" and lookup.attempts == 2


def test_wrong_id_and_wrong_question_are_ignored() -> None:
    def behaviour(q: dns.message.Message, n: int) -> list[bytes]:
        wrong_id = _answer(q, rcode=dns.rcode.NXDOMAIN)
        wrong_id.id = (q.id + 1) % 65536
        other_q = dns.message.make_query("evil.test", "MX")
        other_q.id = q.id
        spoof = _answer(other_q, rcode=dns.rcode.NXDOMAIN)
        return [wrong_id.to_wire(), spoof.to_wire(), _answer(q).to_wire()]
    lookup, _ = _run(behaviour)
    assert lookup.status == "NOERROR" and lookup.attempts == 1


def test_truncated_answer_goes_to_tcp() -> None:
    lookup, _ = _run(lambda q, n: [_answer(q, tc=True).to_wire()])
    assert lookup.status == "NOERROR"
    assert [r.data for r in lookup.response.answer] == [(10, "mx.example.test")]


def test_malformed_answer_is_an_error_not_a_crash() -> None:
    lookup, _ = _run(lambda q, n: [q.to_wire()[:12] + b"\xc0\x0c\x00"])
    assert lookup.status in ("ERROR", "TIMEOUT")


def test_bad_name_is_an_error_value() -> None:
    lookup, proto = _run(lambda q, n: [], qname="a" * 70 + ".test")
    assert lookup.status == "ERROR" and proto.count == 0


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1", ("127.0.0.1", 53)),
    ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("::1", ("::1", 53)),
    ("[::1]:5353", ("::1", 5353)),
])
def test_parse_resolver(text: str, expected: tuple[str, int]) -> None:
    assert parse_resolver(text) == expected


@pytest.mark.parametrize("text", ["dns.google", "1.2.3.4:0", "1.2.3.4:x", "[::1]x"])
def test_parse_resolver_rejects(text: str) -> None:
    with pytest.raises(ResolverConfigError):
        parse_resolver(text)


def test_system_resolver_reads_resolv_conf(tmp_path: Path) -> None:
    p = tmp_path / "resolv.conf"
    p.write_text("# comment\nsearch example\nnameserver not-an-ip\nnameserver 10.1.2.3\nnameserver 10.9.9.9\n")
    assert system_resolver(p) == ("10.1.2.3", 53)
    p.write_text("search example\n")
    with pytest.raises(ResolverConfigError):
        system_resolver(p)
