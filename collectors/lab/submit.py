"""Talk to the lab's MTAs from inside its namespace: submit test messages over SMTP and
prime postfix-mta-sts-resolver's policy cache through its socketmap.

Both run in a thread that joined the namespace (collectors.testbed.call_in), so
the sockets are plain Python ones; every connection has a bounded timeout.
"""

from __future__ import annotations

import smtplib
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from collectors.testbed import call_in

SMTP_TIMEOUT = 30.0
SOCKETMAP_TIMEOUT = 15.0
MAX_NETSTRING = 100_000


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One test message: a single recipient, so each address has its own Message-ID."""

    from_addr: str
    to_addr: str
    message_id: str      # without angle brackets
    subject: str


@dataclass(frozen=True, slots=True)
class SubmitResult:
    to_addr: str
    message_id: str
    accepted: bool
    submitted_at: datetime   # when the submission server answered DATA (UTC)
    response: str            # its reply, or the error


def new_message_id(domain: str) -> str:
    return make_msgid(domain=domain).strip("<>")


def build_message(item: Outgoing, round_number: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = item.from_addr
    msg["To"] = item.to_addr
    msg["Subject"] = item.subject
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = f"<{item.message_id}>"
    msg["X-MTASTS-Lab-Round"] = str(round_number)
    msg.set_content(
        "A test message of the MTA-STS audit lab (RFC 8461).\n"
        "Its recipient address is unique to this message; its body is never stored.\n")
    return msg


def _submit_all(host: str, port: int, items: list[Outgoing], round_number: int,
                helo: str) -> list[SubmitResult]:
    results: list[SubmitResult] = []
    try:
        client = smtplib.SMTP(host, port, local_hostname=helo, timeout=SMTP_TIMEOUT)
    except (OSError, smtplib.SMTPException) as exc:
        now = datetime.now(timezone.utc)
        return [SubmitResult(i.to_addr, i.message_id, False, now, f"connect to {host}:{port}: {exc}")
                for i in items]
    with client:
        for item in items:
            try:
                refused = client.send_message(build_message(item, round_number),
                                              from_addr=item.from_addr, to_addrs=[item.to_addr])
                accepted = item.to_addr not in refused
                response = "accepted" if accepted else str(refused[item.to_addr])
            except smtplib.SMTPResponseException as exc:
                accepted, response = False, f"{exc.smtp_code} {exc.smtp_error!r}"
                try:
                    client.rset()
                except (OSError, smtplib.SMTPException):
                    pass
            except (OSError, smtplib.SMTPException) as exc:
                accepted, response = False, str(exc)
            results.append(SubmitResult(item.to_addr, item.message_id, accepted,
                                        datetime.now(timezone.utc), response))
    return results


def submit(netns: str | None, host: str, port: int, items: list[Outgoing], *, round_number: int = 1,
           helo: str = "lab-submit.invalid") -> list[SubmitResult]:
    """Submit ``items`` to the MTA at ``host:port`` (inside ``netns``), one transaction each."""
    return call_in(netns, _submit_all, host, port, items, round_number, helo)


def netstring(data: bytes) -> bytes:
    return str(len(data)).encode() + b":" + data + b","


def read_netstring(sock: socket.socket) -> bytes:
    """One netstring (``<length>:<bytes>,``) from a socket: a socketmap(5) answer."""
    buf = b""
    while b":" not in buf:
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("socketmap closed the connection")
        buf += chunk
        if len(buf) > 10:
            raise ValueError("bad netstring length")
    length = int(buf[:-1])
    if length > MAX_NETSTRING:
        raise ValueError("netstring too long")
    body = b""
    while len(body) < length + 1:
        chunk = sock.recv(length + 1 - len(body))
        if not chunk:
            raise ConnectionError("socketmap closed the connection")
        body += chunk
    if body[-1:] != b",":
        raise ValueError("netstring without its comma")
    return body[:-1]


def _query_all(host: str, port: int, map_name: str, domains: list[str]) -> dict[str, str]:
    answers: dict[str, str] = {}
    with socket.create_connection((host, port), timeout=SOCKETMAP_TIMEOUT) as sock:
        for domain in domains:
            try:
                sock.sendall(netstring(f"{map_name} {domain}".encode()))
                answers[domain] = read_netstring(sock).decode("utf-8", "replace")
            except (OSError, ValueError) as exc:
                answers[domain] = f"ERROR {exc}"
    return answers


def socketmap_query(netns: str | None, host: str, port: int, domains: list[str],
                    map_name: str = "postfix") -> dict[str, str]:
    """Ask a Postfix socketmap (the Postfix socketmap_table(5) protocol, netstrings) for
    each domain, as smtp(8) would before delivering: postfix-mta-sts-resolver fetches
    and caches the domain's policy to answer (RFC 8461 section 5.1: the sender's cache)."""
    return call_in(netns, _query_all, host, port, map_name, domains)
