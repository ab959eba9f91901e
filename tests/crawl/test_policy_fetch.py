"""The policy fetch (RFC 8461 3.3) against tiny real HTTPS servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from typing import Awaitable, Callable

import pytest

from collectors.crawl.policy_fetch import MAX_POLICY_BYTES, FetchResult, fetch_policy
from collectors.crawl.tlsinfo import client_context
from crawl_certs import MiniCA


HOST = "mta-sts.example.test"
POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> MiniCA:
    return MiniCA(tmp_path_factory.mktemp("pki"))


def _server_ctx(ca: MiniCA, **kw: object) -> ssl.SSLContext:
    return ca.server_context(kw.pop("name", HOST), **kw)  # type: ignore[arg-type]


async def _read_request(reader: asyncio.StreamReader) -> list[bytes]:
    lines = []
    while (line := await reader.readline()) not in (b"\r\n", b""):
        lines.append(line)
    return lines


def respond(head: bytes, body: bytes = b"", seen: list | None = None) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            req = await _read_request(reader)
            if seen is not None:
                seen.append(req)
            writer.write(head + body)
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
    return handler


def _fetch(handler: Handler | None, server_ctx: ssl.SSLContext | None, ca: MiniCA,
           timeout: float = 3.0) -> FetchResult:
    async def main() -> FetchResult:
        if handler is None:  # nothing listens: a free port
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            server = None
        else:
            server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_ctx)
            port = server.sockets[0].getsockname()[1]
        try:
            return await fetch_policy(HOST, "127.0.0.1", port=port, context=client_context(str(ca.bundle)),
                                      timeout=timeout)
        finally:
            if server is not None:
                server.close()
    return asyncio.run(main())


def test_ok_sends_exact_request(ca: MiniCA) -> None:
    seen: list = []
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(POLICY)
    r = _fetch(respond(head, POLICY, seen), _server_ctx(ca), ca)
    assert r.outcome == "ok" and r.status == 200 and r.body == POLICY and not r.findings
    request = seen[0]
    assert request[0] == b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n"
    assert f"Host: {HOST}\r\n".encode() in request
    assert r.t_connect is not None and r.t_tls is not None and r.t_total >= r.t_tls


def test_wrong_content_type_is_a_warning(ca: MiniCA) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(POLICY)
    r = _fetch(respond(head, POLICY), _server_ctx(ca), ca)
    assert r.outcome == "ok"
    assert [f[0] for f in r.findings] == ["policy_fetch.content_type"]


def test_redirect_is_not_followed(ca: MiniCA) -> None:
    seen: list = []
    head = b"HTTP/1.1 301 Moved\r\nLocation: https://elsewhere.test/\r\nContent-Length: 0\r\n\r\n"
    r = _fetch(respond(head, b"", seen), _server_ctx(ca), ca)
    assert r.outcome == "redirect" and r.status == 301 and len(seen) == 1


@pytest.mark.parametrize("status", [404, 500, 204])
def test_non_200_is_http_error(ca: MiniCA, status: int) -> None:
    head = b"HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n" % status
    r = _fetch(respond(head), _server_ctx(ca), ca)
    assert r.outcome == "http_error" and r.status == status


def test_too_large_by_content_length(ca: MiniCA) -> None:
    size = MAX_POLICY_BYTES + 1
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % size
    r = _fetch(respond(head, b"x" * size), _server_ctx(ca), ca)
    assert r.outcome == "too_large" and len(r.body) <= MAX_POLICY_BYTES


def test_exactly_the_cap_is_accepted(ca: MiniCA) -> None:
    body = b"x" * MAX_POLICY_BYTES
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"  # delimited by close
    r = _fetch(respond(head, body), _server_ctx(ca), ca)
    assert r.outcome == "ok" and len(r.body) == MAX_POLICY_BYTES


def test_too_large_chunked(ca: MiniCA) -> None:
    chunk = b"y" * 8192
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(12)) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    r = _fetch(respond(head, body), _server_ctx(ca), ca)
    assert r.outcome == "too_large" and r.body_truncated and len(r.body) == MAX_POLICY_BYTES


def test_small_chunked_is_decoded(ca: MiniCA) -> None:
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(POLICY), POLICY)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    r = _fetch(respond(head, body), _server_ctx(ca), ca)
    assert r.outcome == "ok" and r.body == POLICY


@pytest.mark.parametrize("size", [b"-5", b"+5", b"0x5", b"5_0", b""])
def test_chunk_size_must_be_hex_digits(ca: MiniCA, size: bytes) -> None:
    # RFC 9112 7.1: chunk-size = 1*HEXDIG; int(text, 16) alone would take each of these
    body = size + b"\r\nversion\r\n0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    r = _fetch(respond(head, body), _server_ctx(ca), ca)
    assert r.outcome == "http_error" and "bad chunk size" in r.detail


@pytest.mark.parametrize("lengths", [b"Content-Length: 5\r\nContent-Length: %d\r\n",
                                     b"Content-Length: %d\r\nContent-Length: 5\r\n",
                                     b"Content-Length: 5, %d\r\n"])
def test_differing_content_lengths_are_an_error(ca: MiniCA, lengths: bytes) -> None:
    # RFC 9110 8.6 / RFC 9112 6.3: differing Content-Length values make the message invalid,
    # whichever comes first (the body reader must not pick one of them); h11 refuses the head.
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + lengths % len(POLICY) + b"\r\n"
    r = _fetch(respond(head, POLICY), _server_ctx(ca), ca)
    assert r.outcome == "http_error" and r.phase == "response" and r.body == b""
    assert "differing Content-Length values" in r.detail and "RFC 9110 8.6" in r.detail


@pytest.mark.parametrize("lengths", [b"Content-Length: %d\r\nContent-Length: %d\r\n",
                                     b"Content-Length: %d, %d\r\n"])
def test_identical_repeated_content_lengths_are_one_value(ca: MiniCA, lengths: bytes) -> None:
    # RFC 9110 8.6: a recipient may take repeated identical values as that one value.
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + lengths % (len(POLICY), len(POLICY))
            + b"\r\n")
    r = _fetch(respond(head, POLICY), _server_ctx(ca), ca)
    assert r.outcome == "ok" and r.body == POLICY


def test_repeated_singleton_headers_use_the_first_line(ca: MiniCA) -> None:
    # The same rule for Content-Type (the field and its warning) and Location.
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\n"
            b"Content-Length: %d\r\n\r\n" % len(POLICY))
    r = _fetch(respond(head, POLICY), _server_ctx(ca), ca)
    assert r.outcome == "ok" and r.content_type == "text/plain" and not r.findings
    head = (b"HTTP/1.1 302 Found\r\nLocation: https://first.test/\r\nLocation: https://second.test/\r\n"
            b"Content-Length: 0\r\n\r\n")
    r = _fetch(respond(head), _server_ctx(ca), ca)
    assert r.outcome == "redirect" and "first.test" in r.detail and "second.test" not in r.detail


def test_transfer_encoding_counts_every_field_line(ca: MiniCA) -> None:
    # RFC 9110 5.3: a list header's field lines combine; an empty later line must not hide
    # "chunked" (which then wins over Content-Length, RFC 9112 6.3).
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(POLICY), POLICY)
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
            b"Transfer-Encoding: \r\n\r\n")
    r = _fetch(respond(head, body), _server_ctx(ca), ca)
    assert r.outcome == "ok" and r.body == POLICY


def test_refused_is_tcp_error(ca: MiniCA) -> None:
    r = _fetch(None, None, ca)
    assert r.outcome == "tcp_error"


def test_stalling_host_is_timeout(ca: MiniCA) -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()
    r = _fetch(stall, None, ca, timeout=0.5)  # plain TCP: never answers the handshake
    assert r.outcome == "timeout" and r.phase == "tls" and r.t_total < 2


@pytest.mark.parametrize("kind, subclass", [
    ({"name": "other.example.test"}, "name_mismatch"),
    ({"self_signed": True}, "self_signed"),
    ({"expired": True}, "expired"),
])
def test_tls_failure_subclasses(ca: MiniCA, kind: dict, subclass: str) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    r = _fetch(respond(head), _server_ctx(ca, **kind), ca)
    assert r.outcome == "tls_error" and r.tls_subclass == subclass


def test_unknown_ca(ca: MiniCA, tmp_path: Path) -> None:
    other = MiniCA(tmp_path, "Other CA")
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    r = _fetch(respond(head), _server_ctx(other), ca)
    assert r.outcome == "tls_error" and r.tls_subclass == "unknown_ca"


def test_http10_body_closed_without_close_notify(ca: MiniCA) -> None:
    """An HTTP/1.0 answer without Content-Length ends when the server closes the TCP
    connection (RFC 9112 6.3 item 8); many small servers skip the TLS close_notify.
    The policy is still read whole (a truncation attack is moot: the parser sees the bytes)."""
    import threading

    ctx = _server_ctx(ca)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with ctx.wrap_socket(conn, server_side=True) as tls:
            data = b""
            while b"\r\n\r\n" not in data:
                data += tls.recv(4096)
            tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + POLICY)
        # leaving the with closes the socket without unwrap(): no close_notify, just FIN

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        r = asyncio.run(fetch_policy(HOST, "127.0.0.1", port=port,
                                     context=client_context(str(ca.bundle)), timeout=3.0))
    finally:
        thread.join(5)
        listener.close()
    assert r.outcome == "ok" and r.status == 200 and r.body == POLICY


@pytest.mark.parametrize("extra", [b"X-Pad: " + b"a" * 40_000 + b"\r\n",               # one huge line
                                   b"".join(b"X-%d: v\r\n" % i for i in range(3000)),  # many lines
                                   b"X-Pad: " + b"b" * 1_000_000 + b"\r\n"])           # 1 MB of headers
def test_a_response_head_over_the_cap_is_an_error(ca: MiniCA, extra: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(POLICY)
    r = _fetch(respond(head, POLICY), _server_ctx(ca), ca)
    assert r.outcome == "http_error" and r.detail == "response head too large" and r.phase == "response"


def test_interim_responses_are_skipped(ca: MiniCA) -> None:
    head = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(POLICY))
    r = _fetch(respond(head, POLICY), _server_ctx(ca), ca)
    assert r.outcome == "ok" and r.status == 200 and r.body == POLICY


@pytest.mark.parametrize("head, words", [
    (b"HTTP/1.1 200 OK\r\nnot a field line\r\nContent-Length: 0\r\n\r\n", "not a valid HTTP/1.1 response"),
    (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not a valid HTTP/1.1 response"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "not a valid HTTP/1.1 response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nshort", "connection closed before the whole body"),
])
def test_malformed_responses_are_http_errors_that_say_why(ca: MiniCA, head: bytes, words: str) -> None:
    r = _fetch(respond(head), _server_ctx(ca), ca)
    assert r.outcome == "http_error" and words in r.detail, r.detail
