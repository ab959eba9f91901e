"""Fetch an MTA-STS policy as RFC 8461 section 3.3 tells a sending MTA to.

Connect to an address the policy host resolved to (never re-resolve), TLS with SNI =
``mta-sts.<domain>`` and a verified PKIX certificate, ``GET /.well-known/mta-sts.txt``
with that Host, accept only ``200`` (no redirects followed: 3.3 "MUST NOT follow
redirects"), check ``Content-Type: text/plain`` (3.2, a warning here), cap the body at
64 KiB while streaming (also chunked bodies) and bound the whole fetch in time.

Plain asyncio + ssl instead of httpx: the pinned address with a separate SNI, the
per-phase failure stage (tcp / tls with its subclass / http) and the byte cap on a
chunked body are each one line here and a fight with a transport there.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field

from collectors.crawl.tlsinfo import tls_failure
from collectors.store import FetchOutcome, FetchPhase, TlsSubclass

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_POLICY_BYTES = 65536          # RFC 8461 3.3: "a policy ... larger than 64 KB" MAY be rejected
MAX_HEADER_BYTES = 16384
MAX_HEADER_LINES = 100
_HEXDIGITS = b"0123456789abcdefABCDEF"
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
        writer.write(
            (f"GET {POLICY_PATH} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
             "Accept: text/plain, */*;q=0.1\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
             ).encode("ascii")
        )
        await writer.drain()
        st.phase = "response"
        await _read_head(reader, st, started)
        status = st.status or 0
        if 300 <= status < 400:
            location = _header(st, "location") or ""
            raise _Abort("redirect", f"HTTP {status} to {location[:200]!r} (not followed, RFC 8461 3.3)")
        if status != 200:
            raise _Abort("http_error", f"HTTP {status} {st.reason or ''}".strip())
        st.phase = "body"
        await _read_body(reader, st, max_bytes)
        findings = ()
        ctype = _header(st, "content-type")
        if ctype is None or ctype.split(";")[0].strip().lower() != "text/plain":
            findings = (("policy_fetch.content_type", "warning",
                         f"Content-Type {ctype!r} is not text/plain (RFC 8461 3.2)"),)
        return _result(st, "ok", address, port, started, "", findings=findings)
    finally:
        writer.transport.abort()


def _header_values(st: _State, name: str) -> list[str]:
    """Every field line value of header ``name`` (lower case), in the order received."""
    return [v for k, v in st.headers if k == name]


def _header(st: _State, name: str) -> str | None:
    """The one lookup rule for a singleton header (Content-Type, Location): its first field
    line, if any. List headers go through :func:`_header_values` (RFC 9110 5.3)."""
    values = _header_values(st, name)
    return values[0] if values else None


def _content_length(st: _State) -> int | None:
    """The body length from Content-Length, or None when there is none.

    RFC 9110 8.6: repeated field lines or a list of *identical* values may be taken as that
    one value; differing values make the message invalid (RFC 9112 6.3 item 5), an
    ``http_error``, as is a value that is not 1*DIGIT."""
    values = [item.strip() for line in _header_values(st, "content-length") for item in line.split(",")]
    if not values:
        return None
    if len(set(values)) > 1:
        shown = ", ".join(repr(v[:20]) for v in values[:5])
        raise _Abort("http_error", f"differing Content-Length values {shown} (invalid message, "
                                   "RFC 9110 8.6, RFC 9112 6.3)")
    text = values[0]
    if not text.isascii() or not text.isdigit():
        raise _Abort("http_error", f"bad Content-Length {text[:40]!r}")
    return int(text)


async def _read_head(reader: asyncio.StreamReader, st: _State, started: float) -> None:
    total = 0
    lines: list[bytes] = []
    while True:
        try:
            line = await reader.readline()
        except ValueError as exc:  # a line over the stream limit
            raise _Abort("http_error", "response header line too long") from exc
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            raise _Abort("http_error", f"connection failed reading the response: {exc}") from exc
        if st.t_first is None:
            st.t_first = time.monotonic() - started
        if not line:
            raise _Abort("http_error", "connection closed before a complete response head")
        total += len(line)
        if total > MAX_HEADER_BYTES or len(lines) > MAX_HEADER_LINES:
            raise _Abort("http_error", "response head too large")
        if line in (b"\r\n", b"\n"):
            if not lines:
                continue
            break
        lines.append(line)
    status_line = lines[0].decode("latin-1").strip()
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise _Abort("http_error", f"not an HTTP/1.x status line: {status_line[:100]!r}")
    st.status = int(parts[1])
    st.reason = parts[2] if len(parts) > 2 else ""
    for raw in lines[1:]:
        text = raw.decode("latin-1").rstrip("\r\n")
        name, sep, value = text.partition(":")
        if sep:
            st.headers.append((name.strip().lower(), value.strip()))


async def _read_body(reader: asyncio.StreamReader, st: _State, max_bytes: int) -> None:
    # Transfer-Encoding is a list header: every field line counts (RFC 9110 5.3), and it
    # overrides Content-Length (RFC 9112 6.3 item 3).
    te = ", ".join(_header_values(st, "transfer-encoding")).lower()
    try:
        if "chunked" in te:
            await _read_chunked(reader, st, max_bytes)
            return
        length = _content_length(st)
        if length is not None:
            if length > max_bytes:
                raise _Abort("too_large", f"Content-Length {length} over the {max_bytes}-byte cap")
            st.body += await reader.readexactly(length)
            return
        while True:  # delimited by close
            chunk = await reader.read(16384)
            if not chunk:
                return
            _append(st, chunk, max_bytes)
    except asyncio.IncompleteReadError as exc:
        st.body += exc.partial[: max_bytes - len(st.body)]
        raise _Abort("http_error", "connection closed before the whole body") from exc
    except (ConnectionError, ssl.SSLError, OSError) as exc:
        raise _Abort("http_error", f"connection failed reading the body: {exc}") from exc


def _append(st: _State, chunk: bytes, max_bytes: int) -> None:
    room = max_bytes - len(st.body)
    if len(chunk) > room:
        st.body += chunk[:room]
        st.truncated = True
        raise _Abort("too_large", f"body over the {max_bytes}-byte cap")
    st.body += chunk


async def _read_chunked(reader: asyncio.StreamReader, st: _State, max_bytes: int) -> None:
    """RFC 9112 7.1 chunked transfer coding, with the cap applied to the decoded body."""
    while True:
        size_line = await reader.readline()
        if not size_line:
            raise _Abort("http_error", "connection closed inside a chunked body")
        size_text = size_line.split(b";", 1)[0].strip()
        # chunk-size = 1*HEXDIG: int() alone would also take "-5", "+5", "0x5" and "5_0".
        if not size_text or size_text.translate(None, _HEXDIGITS):
            raise _Abort("http_error", f"bad chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            return  # trailers are ignored
        if len(st.body) + size > max_bytes:
            take = max_bytes - len(st.body)
            if take > 0:
                st.body += await reader.readexactly(take)
            st.truncated = True
            raise _Abort("too_large", f"chunked body over the {max_bytes}-byte cap")
        st.body += await reader.readexactly(size)
        await reader.readline()  # CRLF after the chunk
