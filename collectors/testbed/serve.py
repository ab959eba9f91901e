"""The testbed's own small servers, in one asyncio process:

- SMTP listeners for MX hosts (RFC 5321 / RFC 3207): greeting, EHLO (with or without
  STARTTLS), STARTTLS with the certificate kind of the address the client connected to
  (name from SNI, so one address can serve many host names), QUIT. They never accept mail.
- stalling listeners: accept a TCP connection and never send a byte.

Run as ``python -m collectors.testbed.serve CONFIG.json``; writes ``ready`` beside the
config once every socket listens.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import sys
import tempfile
from pathlib import Path

from collectors.testbed.pki import Pki

LINE_LIMIT = 4096
IDLE_TIMEOUT = 60.0


class CertStore:
    """TLS contexts per (name, kind), issued on first use from the world's PKI."""

    def __init__(self, pki: Pki, tmpdir: Path) -> None:
        self.pki = pki
        self.tmpdir = tmpdir
        self.key = pki.leaf_key_path
        self.contexts: dict[tuple[str, str], ssl.SSLContext] = {}

    def context(self, name: str, kind: str) -> ssl.SSLContext:
        key = (name.lower(), kind)
        ctx = self.contexts.get(key)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            pem = self.pki.issue(name.lower(), kind, mismatch_names=(f"mail.unrelated-hosting.test",))
            if pem is not None:
                path = self.tmpdir / f"{len(self.contexts)}.pem"
                path.write_bytes(pem)
                ctx.load_cert_chain(path, self.key)
            self.contexts[key] = ctx
        return ctx


class SmtpListener:
    def __init__(self, spec: dict, certs: CertStore) -> None:
        self.address = spec["address"]
        self.names = spec["names"]
        self.starttls = spec["smtp"] == "starttls"
        self.kind = spec["certificate"]
        self.certs = certs

    def tls_context(self) -> ssl.SSLContext:
        base = self.certs.context(self.names[0], self.kind)
        if self.kind == "none":
            return base

        def pick(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            if server_name:
                sslobj.context = self.certs.context(server_name, self.kind)

        base.sni_callback = pick
        return base

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        name = self.names[0]
        tls = False

        async def send(text: str) -> None:
            writer.write(text.encode())
            await writer.drain()

        try:
            await send(f"220 {name} ESMTP testbed (accepts no mail)\r\n")
            while True:
                line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
                if not line:
                    return
                if len(line) > LINE_LIMIT:
                    await send("500 5.5.2 Line too long\r\n")
                    return
                verb = line.decode("latin-1").strip().split(" ", 1)[0].upper()
                if verb == "EHLO":
                    ext = ["PIPELINING", "SIZE 10240000", "8BITMIME"]
                    if self.starttls and not tls:
                        ext.insert(2, "STARTTLS")
                    lines = [name] + ext
                    await send("".join(f"250-{l}\r\n" for l in lines[:-1]) + f"250 {lines[-1]}\r\n")
                elif verb == "HELO":
                    await send(f"250 {name}\r\n")
                elif verb == "STARTTLS":
                    if not self.starttls:
                        await send("502 5.5.1 STARTTLS not offered\r\n")
                    elif tls:
                        await send("503 5.5.1 TLS already active\r\n")
                    else:
                        await send("220 2.0.0 Ready to start TLS\r\n")
                        await writer.start_tls(self.tls_context())
                        tls = True
                elif verb == "QUIT":
                    await send("221 2.0.0 Bye\r\n")
                    return
                elif verb in ("NOOP", "RSET"):
                    await send("250 2.0.0 OK\r\n")
                elif verb in ("MAIL", "RCPT", "DATA", "BDAT", "VRFY", "EXPN"):
                    await send("550 5.7.1 This testbed accepts no mail\r\n")
                else:
                    await send("502 5.5.2 Command not recognized\r\n")
        except (OSError, ssl.SSLError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()


async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and never answer: read (and drop) until the peer gives up."""
    try:
        while await reader.read(65536):
            pass
    except OSError:
        pass
    finally:
        writer.close()


async def serve(config_path: Path) -> None:
    config = json.loads(config_path.read_text())
    pki = Pki.open(Path(config["pki"]))
    tmp = Path(tempfile.mkdtemp(prefix="smtp-certs-", dir=config_path.parent))
    certs = CertStore(pki, tmp)
    servers = []
    for spec in config["smtp"]:
        listener = SmtpListener(spec, certs)
        servers.append(await asyncio.start_server(listener.handle, spec["address"], config["smtp_port"],
                                                  reuse_address=True, limit=LINE_LIMIT * 2, backlog=1024))
    for address in config["stall"]:
        servers.append(await asyncio.start_server(_stall, address, config["https_port"],
                                                  reuse_address=True, backlog=1024))
    (config_path.parent / "ready").write_text("ready\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m collectors.testbed.serve CONFIG.json", file=sys.stderr)
        return 2
    asyncio.run(serve(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
