"""Fetch an MTA-STS policy as RFC 8461 section 3.3 tells a sending MTA to.

Connect to an address the policy host resolved to (never re-resolve), TLS with SNI =
``mta-sts.<domain>`` and a verified PKIX certificate, ``GET /.well-known/mta-sts.txt``
with that Host, accept only ``200`` (no redirects followed: 3.3 "MUST NOT follow
redirects"), check ``Content-Type: text/plain`` (3.2, a warning here), cap the body at
64 KiB while streaming (also chunked bodies) and bound the whole fetch in time.

The transport is asyncio + ssl (the pinned address with a separate SNI, the per-phase
failure stage: tcp / tls with its subclass / http); the HTTP/1.1 protocol (status line,
headers, Content-Length, chunked coding) is h11's, the parser httpx itself uses.
httpx on top costs more CPU per fetch (``benchmarks/fetch_bench.py``).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field

import h11

from collectors.crawl.tlsinfo import tls_failure
from collectors.store import FetchOutcome, FetchPhase, TlsSubclass

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_POLICY_BYTES = 65536          # RFC 8461 3.3: "a policy ... larger than 64 KB" MAY be rejected
MAX_HEADER_BYTES = 16384
MAX_HEADER_LINES = 100
USER_AGENT = "mtasts-observatory (research crawler; RFC 8461 policy fetch)"


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one fetch saw: how it ended (``outcome``, the store's vocabulary: ``ok`` = a 200
    with a body within the cap; parsing is separate), where, and what came back."""

    outcome: FetchOutcome
    address: str
    port: int
    tls_subclass: TlsSubclass | None = None
    tls_verify_code: int | None = None
    tls_version: str | None = None
    status: int | None = None
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    body_truncated: bool = False
    content_type: str | None = None
    detail: str = ""
    t_connect: float | None = None
    t_tls: float | None = None
    t_first_byte: float | None = None
    t_total: float = 0.0
    phase: FetchPhase = "connect"
    findings: tuple[tuple[str, str, str], ...] = field(default=())


class _Abort(Exception):
    def __init__(self, outcome: FetchOutcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


class _State:
    """Mutable scratch for one fetch, so a timeout keeps what was seen before it."""

    __slots__ = ("phase", "t_connect", "t_tls", "t_first", "status", "reason", "headers",
                 "body", "truncated", "tls_version")

    def __init__(self) -> None:
        self.phase: FetchPhase = "connect"
        self.t_connect = self.t_tls = self.t_first = None
        self.status = self.reason = None
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.truncated = False
        self.tls_version = None


async def fetch_policy(
    host: str,
    address: str,
    *,
    port: int = 443,
    context: ssl.SSLContext,
    timeout: float = 10.0,
    max_bytes: int = MAX_POLICY_BYTES,
) -> FetchResult:
    """Fetch ``https://host/.well-known/mta-sts.txt`` from ``address``; never raises."""
    started = time.monotonic()
    st = _State()
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(host, address, port, context, max_bytes, st, started)
    except TimeoutError:
        return _result(st, "timeout", address, port, started,
                       f"no complete answer within {timeout:g}s (during {st.phase})")
    except _Abort as exc:
        return _result(st, exc.outcome, address, port, started, exc.detail)
    except Exception as exc:  # defensive: a hostile server must never crash the crawl
        return _result(st, "http_error" if st.phase in ("request", "response", "body") else "tcp_error",
                       address, port, started, f"{type(exc).__name__}: {exc}"[:300])


def _result(st: _State, outcome: FetchOutcome, address: str, port: int, started: float, detail: str,
            **extra: object) -> FetchResult:
    ctype = _header(st, "content-type")
    return FetchResult(
        outcome=outcome, address=address, port=port, status=st.status, reason=st.reason,
        headers=tuple(st.headers), body=bytes(st.body), body_truncated=st.truncated,
        content_type=ctype, detail=detail, t_connect=st.t_connect, t_tls=st.t_tls,
        t_first_byte=st.t_first, t_total=time.monotonic() - started, phase=st.phase,
        tls_version=st.tls_version, **extra,  # type: ignore[arg-type]
    )


async def _fetch(host: str, address: str, port: int, context: ssl.SSLContext, max_bytes: int,
                 st: _State, started: float) -> FetchResult:
    try:
        reader, writer = await asyncio.open_connection(address, port)
    except OSError as exc:
        raise _Abort("tcp_error", f"connect to {address}:{port}: {exc.strerror or exc}") from exc
    st.t_connect = time.monotonic() - started
    try:
        st.phase = "tls"
        try:
            await writer.start_tls(context, server_hostname=host)
        except (ssl.SSLError, ssl.CertificateError) as exc:
            subclass, code, detail = tls_failure(exc)
            st.t_tls = time.monotonic() - started
            return _result(st, "tls_error", address, port, started, detail,
                           tls_subclass=subclass, tls_verify_code=code)
        except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
            # The peer closed during the handshake without an alert: it presented nothing.
            st.t_tls = time.monotonic() - started
            return _result(st, "tls_error", address, port, started,
                           f"handshake aborted: {type(exc).__name__}: {exc}"[:300],
                           tls_subclass="no_certificate")
        st.t_tls = time.monotonic() - started
        sslobj = writer.get_extra_info("ssl_object")
        st.tls_version = sslobj.version() if sslobj is not None else None
        st.phase = "request"
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        writer.write(conn.send(h11.Request(method="GET", target=POLICY_PATH, headers=_request_headers(host)))
                     + conn.send(h11.EndOfMessage()))
        await writer.drain()
        st.phase = "response"
        await _read_response(_Feed(reader, conn, st, started), max_bytes)
        findings = ()
        ctype = _header(st, "content-type")
        if ctype is None or ctype.split(";")[0].strip().lower() != "text/plain":
            findings = (("policy_fetch.content_type", "warning",
                         f"Content-Type {ctype!r} is not text/plain (RFC 8461 3.2)"),)
        return _result(st, "ok", address, port, started, "", findings=findings)
    finally:
        writer.transport.abort()


def _request_headers(host: str) -> list[tuple[str, str]]:
    return [("Host", host), ("User-Agent", USER_AGENT), ("Accept", "text/plain, */*;q=0.1"),
            ("Accept-Encoding", "identity"), ("Connection", "close")]


def _header_values(st: _State, name: str) -> list[str]:
    """Every field line value of header ``name`` (lower case), in the order received."""
    return [v for k, v in st.headers if k == name]


def _header(st: _State, name: str) -> str | None:
    """The one lookup rule for a singleton header (Content-Type, Location): its first field
    line, if any. List headers go through :func:`_header_values` (RFC 9110 5.3)."""
    values = _header_values(st, name)
    return values[0] if values else None


class _Feed:
    """h11's events of one response, read from the stream 16 KiB at a time. Until the head
    is complete its bytes are held (at most ``MAX_HEADER_BYTES``) so that the field lines of
    Transfer-Encoding reach h11 combined, as RFC 9110 5.3 allows a sender to split a list
    header (h11 refuses a second line)."""

    def __init__(self, reader: asyncio.StreamReader, conn: h11.Connection, st: _State, started: float) -> None:
        self.reader, self.conn, self.st, self.started = reader, conn, st, started
        self.head: bytearray | None = bytearray()

    async def next(self) -> object:
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise _Abort("http_error", _protocol_detail(str(exc))) from exc
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.reader.read(16384)
            except (ConnectionError, ssl.SSLError, OSError) as exc:
                part = "body" if self.st.phase == "body" else "response"
                raise _Abort("http_error", f"connection failed reading the {part}: {exc}") from exc
            if self.st.t_first is None:
                self.st.t_first = time.monotonic() - self.started
            self._give(data)

    def _give(self, data: bytes) -> None:
        if self.head is None:
            self.conn.receive_data(data)
            return
        self.head += data
        end = _head_end(self.head)
        if end < 0 and data and len(self.head) <= MAX_HEADER_BYTES:
            return  # the head is not complete yet
        head, self.head = self.head, None
        if end > MAX_HEADER_BYTES or len(head) > MAX_HEADER_BYTES and end < 0:
            raise _Abort("http_error", "response head too large")
        if end >= 0:
            head = _fold_transfer_encoding(head[:end]) + head[end:]
        self.conn.receive_data(bytes(head))
        if not data:
            self.conn.receive_data(b"")


def _head_end(buf: bytearray) -> int:
    """Where the response head ends (after its blank line), or -1."""
    ends = [i + n for i, n in ((buf.find(b"\r\n\r\n"), 4), (buf.find(b"\n\n"), 2)) if i >= 0]
    return min(ends) if ends else -1


def _fold_transfer_encoding(head: bytes | bytearray) -> bytes:
    """The head with its Transfer-Encoding field lines combined into one, empty list
    elements dropped (RFC 9110 5.3 and 5.6.1); any other line untouched."""
    lines = bytes(head).split(b"\n")
    te = [ln for ln in lines if ln.split(b":", 1)[0].strip().lower() == b"transfer-encoding"]
    if not te:
        return bytes(head)
    items = [i.strip() for ln in te for i in ln.split(b":", 1)[1].rstrip(b"\r").split(b",") if i.strip()]
    kept = [ln for ln in lines if ln not in te]
    return b"\n".join(kept[:1] + [b"Transfer-Encoding: " + b", ".join(items) + b"\r"] + kept[1:])


def _protocol_detail(message: str) -> str:
    """h11's reason for refusing the response, in the fetch's words (with the RFC rule)."""
    if message.startswith("conflicting Content-Length"):
        return "differing Content-Length values (invalid message, RFC 9110 8.6, RFC 9112 6.3)"
    if message.startswith("bad Content-Length"):
        return "bad Content-Length (not 1*DIGIT, RFC 9110 8.6)"
    if message.startswith("illegal chunk header"):
        return f"bad chunk size (chunk-size = 1*HEXDIG, RFC 9112 7.1): {message[21:80]}"
    if message.startswith("peer closed connection without sending complete message body"):
        return "connection closed before the whole body"
    return f"not a valid HTTP/1.1 response: {message[:200]}"


async def _read_response(feed: _Feed, max_bytes: int) -> None:
    """The response through h11: its head into the state (a redirect or a status other
    than 200 ends the fetch), then the body, capped at ``max_bytes`` while streaming
    (Content-Length, chunked or delimited by close alike)."""
    st = feed.st
    while True:
        event = await feed.next()
        if isinstance(event, h11.InformationalResponse):
            continue  # 1xx: the final response follows
        if isinstance(event, h11.Response):
            _take_head(st, event, max_bytes)
            st.phase = "body"
        elif isinstance(event, h11.Data):
            _append(st, event.data, max_bytes)
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return


def _take_head(st: _State, event: h11.Response, max_bytes: int) -> None:
    st.status = event.status_code
    st.reason = event.reason.decode("latin-1")
    st.headers = [(k.decode("latin-1"), v.decode("latin-1").strip()) for k, v in event.headers]
    if len(st.headers) > MAX_HEADER_LINES:
        raise _Abort("http_error", "response head too large")
    if 300 <= st.status < 400:
        location = _header(st, "location") or ""
        raise _Abort("redirect", f"HTTP {st.status} to {location[:200]!r} (not followed, RFC 8461 3.3)")
    if st.status != 200:
        raise _Abort("http_error", f"HTTP {st.status} {st.reason or ''}".strip())
    lengths = _header_values(st, "content-length")  # h11 checked it: 1*DIGIT, one value
    if lengths and "transfer-encoding" not in dict(st.headers) and int(lengths[0].split(",")[0]) > max_bytes:
        raise _Abort("too_large", f"Content-Length {lengths[0]} over the {max_bytes}-byte cap")


def _append(st: _State, chunk: bytes, max_bytes: int) -> None:
    room = max_bytes - len(st.body)
    if len(chunk) > room:
        st.body += chunk[:room]
        st.truncated = True
        raise _Abort("too_large", f"body over the {max_bytes}-byte cap")
    st.body += chunk
