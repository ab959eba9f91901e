"""The SMTP probe (RFC 3207 STARTTLS, RFC 8461 4.1 certificate check) against tiny asyncio
SMTP listeners on 127.0.0.1. It must never send MAIL FROM."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from collectors.crawl.smtp_probe import SmtpProbe, probe_mx
from collectors.crawl.tlsinfo import client_context
from crawl_certs import MiniCA

MX = "mx.example.test"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> MiniCA:
    return MiniCA(tmp_path_factory.mktemp("pki"))


def _ctx(ca: MiniCA, **kw: object) -> ssl.SSLContext:
    return ca.server_context(kw.pop("name", MX), **kw)  # type: ignore[arg-type]


def _smtp_server(tls: ssl.SSLContext | None, commands: list[str], after_starttls: bytes | None = None):
    """A tiny SMTP listener; ``after_starttls`` (bytes, maybe empty): after its 220 to
    STARTTLS it sends these bytes instead of a handshake and closes the connection."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"220 mx.example.test ESMTP test\r\n")
            while line := await reader.readline():
                cmd = line.decode().strip()
                commands.append(cmd)
                verb = cmd.split(" ")[0].upper()
                if verb == "EHLO":
                    writer.write(b"250-mx.example.test\r\n250-PIPELINING\r\n"
                                 + (b"250-STARTTLS\r\n" if tls else b"") + b"250 8BITMIME\r\n")
                elif verb == "STARTTLS" and tls:
                    writer.write(b"220 go ahead\r\n")
                    await writer.drain()
                    if after_starttls is not None:
                        writer.write(after_starttls)
                        await writer.drain()
                        break
                    await writer.start_tls(tls)
                elif verb == "QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"502 no\r\n")
                await writer.drain()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            writer.close()
    return handler


def _probe(ca: MiniCA, tls: ssl.SSLContext | None, listen: bool = True,
           after_starttls: bytes | None = None) -> tuple[SmtpProbe, list[str]]:
    commands: list[str] = []

    async def main() -> SmtpProbe:
        if not listen:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            return await probe_mx(MX, "127.0.0.1", port=port, context=client_context(str(ca.bundle)), timeout=3)
        server = await asyncio.start_server(_smtp_server(tls, commands, after_starttls), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await probe_mx(MX, "127.0.0.1", port=port, context=client_context(str(ca.bundle)), timeout=3)
        finally:
            server.close()
    return asyncio.run(main()), commands


def test_valid_certificate(ca: MiniCA) -> None:
    probe, commands = _probe(ca, _ctx(ca))
    assert probe.outcome == "ok" and probe.starttls_offered
    assert probe.cert["sans"] == [MX] and probe.tls_version
    assert probe.banner.startswith("220 ")
    assert not any(c.upper().startswith(("MAIL", "RCPT", "DATA")) for c in commands)
    assert commands[-1] == "QUIT"


def test_no_starttls(ca: MiniCA) -> None:
    probe, commands = _probe(ca, None)
    assert probe.outcome == "no_starttls" and probe.starttls_offered is False
    assert "QUIT" in commands


@pytest.mark.parametrize("kw, subclass", [({"name": "other.example.test"}, "name_mismatch"),
                                          ({"self_signed": True}, "self_signed"),
                                          ({"expired": True}, "expired")])
def test_invalid_certificate_keeps_facts(ca: MiniCA, kw: dict, subclass: str) -> None:
    probe, commands = _probe(ca, _ctx(ca, **kw))
    assert probe.outcome == "cert_invalid" and probe.tls_subclass == subclass
    assert probe.verify_error and probe.cert.get("subject")
    assert not any(c.upper().startswith("MAIL") for c in commands)


def test_refused_is_tcp_error(ca: MiniCA) -> None:
    probe, _ = _probe(ca, None, listen=False)
    assert probe.outcome == "tcp_error"


def test_certificate_facts_do_not_depend_on_verification(ca: MiniCA, tmp_path_factory) -> None:
    # One certificate, read once by the verified session (the client trusts ``ca``) and once by
    # the unverified second session (the client trusts another CA): the same strings, RFC 4514.
    server = _ctx(ca)
    verified, _ = _probe(ca, server)
    unverified, _ = _probe(MiniCA(tmp_path_factory.mktemp("other-pki"), name="Other CA"), server)
    assert verified.outcome == "ok"
    assert unverified.outcome == "cert_invalid" and unverified.tls_subclass == "unknown_ca"
    assert verified.cert["subject"] == f"CN={MX}" and verified.cert["issuer"] == "CN=Test CA"
    assert unverified.cert == verified.cert


@pytest.mark.parametrize("after", [b"", b"454 4.7.0 TLS not available\r\n"])
def test_a_handshake_the_server_breaks_is_a_tls_error_not_a_certificate_one(ca: MiniCA, after: bytes) -> None:
    # STARTTLS answered 220, then the server closes (or writes plain text) instead of TLS:
    # no certificate was presented, so nothing failed verification. (Plain text read as a
    # TLS record, or the reset that follows the close: either subclass.)
    probe, commands = _probe(ca, _ctx(ca), after_starttls=after)
    assert commands[-1] == "STARTTLS"
    assert probe.outcome == "tls_error" and probe.tls_subclass in ("no_certificate", "other"), probe
    assert probe.verify_code is None and probe.verify_error and not probe.cert.get("subject")
