"""Probe one MX host as an RFC 8461 sender would before delivering: banner, EHLO, STARTTLS
(RFC 3207), a TLS handshake verifying the certificate against the MX name (RFC 8461 4.1,
PKIX per RFC 6125), then QUIT. It never sends MAIL FROM: no mail is ever attempted.

Outcome: ok | no_starttls | cert_invalid (a certificate was presented and failed PKIX
verification) | tls_error (STARTTLS accepted, then the handshake failed otherwise: the
server closed the connection, an alert, no shared cipher) | tcp_error (refused, timeout,
broken dialogue). When the certificate fails verification, a second session without
verification reads its facts (subject, issuer, SANs, dates) for the record.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from collectors.crawl.tlsinfo import der_facts, insecure_context, no_certificate_facts, tls_failure
from collectors.store import ProbeOutcome, TlsSubclass

MAX_REPLY_LINES = 100
EHLO_NAME = "mtasts-observatory.invalid"


@dataclass(frozen=True, slots=True)
class SmtpProbe:
    mx_host: str
    address: str | None
    port: int
    outcome: ProbeOutcome
    banner: str = ""
    ehlo: tuple[str, ...] = ()
    starttls_offered: bool | None = None
    tls_version: str | None = None
    verify_code: int | None = None
    verify_error: str | None = None
    tls_subclass: TlsSubclass | None = None
    cert: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    t_connect: float | None = None
    t_total: float = 0.0
    timed_out: bool = False         # no answer within the time bound (the circuit breaker counts these)


class _Fail(Exception):
    def __init__(self, outcome: ProbeOutcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome


async def _reply(reader: asyncio.StreamReader) -> tuple[int, list[str]]:
    """One (possibly multi-line) SMTP reply (RFC 5321 4.2)."""
    lines: list[str] = []
    while True:
        raw = await reader.readline()
        if not raw:
            raise _Fail("tcp_error", "connection closed by the server")
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        lines.append(text)
        if len(lines) > MAX_REPLY_LINES:
            raise _Fail("tcp_error", "reply too long")
        if len(text) < 4 or text[3] != "-":
            break
    code = lines[0][:3]
    return (int(code) if code.isdigit() else 0), lines


async def _dialogue_to_starttls(address: str, port: int, started: float,
                                facts: dict[str, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        reader, writer = await asyncio.open_connection(address, port)
    except OSError as exc:
        raise _Fail("tcp_error", f"connect {address}:{port}: {exc.strerror or exc}") from exc
    facts["t_connect"] = time.monotonic() - started
    try:
        code, lines = await _reply(reader)
        facts["banner"] = "\n".join(lines)[:1000]
        if code != 220:
            raise _Fail("tcp_error", f"banner {code}")
        writer.write(f"EHLO {EHLO_NAME}\r\n".encode())
        await writer.drain()
        code, lines = await _reply(reader)
        facts["ehlo"] = tuple(line[:200] for line in lines)
        if code != 250:
            raise _Fail("tcp_error", f"EHLO refused with {code}")
        offered = any(line[4:].strip().upper().split(" ")[0] == "STARTTLS" for line in lines)
        facts["starttls_offered"] = offered
        if not offered:
            await _quit(reader, writer)
            raise _Fail("no_starttls", "STARTTLS not offered in the EHLO reply")
        writer.write(b"STARTTLS\r\n")
        await writer.drain()
        code, lines = await _reply(reader)
        if code != 220:
            await _quit(reader, writer)
            raise _Fail("no_starttls", f"STARTTLS answered {code}")
    except BaseException:
        # Any failure, the caller's timeout included (a tarpit mid-dialogue), closes the socket.
        writer.transport.abort()
        raise
    return reader, writer


async def _quit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        writer.write(b"QUIT\r\n")
        await writer.drain()
        await asyncio.wait_for(reader.readline(), 2.0)
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        pass
    finally:
        writer.transport.abort()


async def probe_mx(mx_host: str, address: str | None, *, port: int = 25,
                   context: ssl.SSLContext, timeout: float = 15.0) -> SmtpProbe:
    """Probe ``mx_host`` at ``address``; never raises."""
    started = time.monotonic()
    facts: dict[str, Any] = {}
    if address is None:
        return SmtpProbe(mx_host, None, port, "tcp_error", detail="MX host has no address")
    failure: BaseException | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await _dialogue_to_starttls(address, port, started, facts)
            try:
                await writer.start_tls(context, server_hostname=mx_host)
            except (ssl.SSLError, ssl.CertificateError, ConnectionError, OSError) as exc:
                writer.transport.abort()
                failure = exc  # classified below, outside this session's time bound
            except BaseException:  # the timeout during the handshake: close the socket too
                writer.transport.abort()
                raise
            if failure is None:
                sslobj = writer.get_extra_info("ssl_object")
                facts["tls_version"] = sslobj.version() if sslobj else None
                cert = der_facts(sslobj.getpeercert(binary_form=True) if sslobj else None)
                await _quit(reader, writer)
                return SmtpProbe(mx_host, address, port, "ok", cert=cert,
                                 t_total=time.monotonic() - started, **facts)
        return await _handshake_failed(failure, mx_host, address, port, started, timeout, facts)
    except _Fail as exc:
        return SmtpProbe(mx_host, address, port, exc.outcome, detail=str(exc),
                         t_total=time.monotonic() - started, **facts)
    except TimeoutError:
        return SmtpProbe(mx_host, address, port, "tcp_error", detail=f"timeout after {timeout:g}s",
                         t_total=time.monotonic() - started, timed_out=True, **facts)
    except Exception as exc:  # defensive: hostile servers
        return SmtpProbe(mx_host, address, port, "tcp_error", detail=f"{type(exc).__name__}: {exc}"[:300],
                         t_total=time.monotonic() - started, **facts)


async def _handshake_failed(exc: BaseException, mx_host: str, address: str, port: int, started: float,
                            timeout: float, facts: dict[str, Any]) -> SmtpProbe:
    """The probe of a failed STARTTLS handshake: ``cert_invalid`` only when a certificate was
    presented and failed verification (its facts read in a second session); any other
    failure (the server closed the connection or sent an alert) is ``tls_error``."""
    subclass, code, message = tls_failure(exc)
    if isinstance(exc, (ssl.SSLCertVerificationError, ssl.CertificateError)):
        cert = await _unverified_cert(mx_host, address, port, started, timeout)
        return SmtpProbe(mx_host, address, port, "cert_invalid", verify_code=code, verify_error=message,
                         tls_subclass=subclass, cert=cert, t_total=time.monotonic() - started, **facts)
    if not isinstance(exc, ssl.SSLError):  # closed without an alert: nothing was presented
        subclass, message = "no_certificate", f"handshake aborted: {type(exc).__name__}: {exc}"[:300]
    return SmtpProbe(mx_host, address, port, "tls_error", verify_error=message, tls_subclass=subclass,
                     detail="the TLS handshake after STARTTLS failed", t_total=time.monotonic() - started,
                     **facts)


async def _unverified_cert(mx_host: str, address: str, port: int, started: float,
                           timeout: float) -> dict[str, Any]:
    """Read the certificate without verifying it (a second session, QUIT at once)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await _dialogue_to_starttls(address, port, started, {})
            try:
                await writer.start_tls(insecure_context(), server_hostname=mx_host)
            except BaseException:
                writer.transport.abort()
                raise
            sslobj = writer.get_extra_info("ssl_object")
            der = sslobj.getpeercert(binary_form=True) if sslobj else None
            await _quit(reader, writer)
            return der_facts(der)
    except Exception:
        return no_certificate_facts()
