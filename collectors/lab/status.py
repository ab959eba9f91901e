"""The lab's live view of arrivals: a small read-only HTTP service on the lab host.

Like the published lab's ``audit.sh``, a researcher gets fresh test addresses from the lab
and then sees, while the providers deliver, which lab server received each message, when,
from which sending host and with which TLS, and which policy fetches came for its lab
domain, never the content. The service reads exactly the evidence ``mtasts ingest`` reads
(the recorder's JSON lines and the policy server's access log, with the same parsers), and
answers only for addresses it issued itself: their local parts are random UUIDs (122 bits),
so an address is its own secret. Issuing needs a token; every client is rate-limited.
It runs behind nginx on loopback (``mtasts lab serve-status``; ``mtasts lab render``).
"""

from __future__ import annotations

import io
import json
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from collectors.lab.design import SERVER_LABELS
from collectors.lab_ingest import (
    HttpRequest, RecordedMessage, parse_access_log_lines, parse_recorder_lines, utc_iso,
)

__all__ = ["Arrival", "EvidenceIndex", "IssuedAddress", "PolicyFetch", "RateLimiter", "StatusService",
           "serve"]

MAX_TAIL_BYTES = 64 * 1024 * 1024   # read per refresh, so one huge append cannot stall a request


@dataclass(frozen=True, slots=True)
class Arrival:
    """A message a lab server received, as the recorder wrote it down (no content)."""

    server: str
    received_at: str
    client_address: str | None
    client_hostname: str | None
    tls_protocol: str | None
    tls_cipher: str | None


@dataclass(frozen=True, slots=True)
class PolicyFetch:
    """A request for a lab domain's policy, from the policy server's access log."""

    fetched_at: str
    client_address: str | None
    user_agent: str | None
    status: int | None


@dataclass(frozen=True, slots=True)
class IssuedAddress:
    address: str
    label: str
    issued_at: str
    provider: str | None


class _Tail:
    """The complete lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_lines(self) -> bytes:
        try:
            with self.path.open("rb") as handle:
                if handle.seek(0, io.SEEK_END) < self.offset:
                    self.offset = 0  # rotated or truncated: read it again
                handle.seek(self.offset)
                data = handle.read(MAX_TAIL_BYTES)
        except FileNotFoundError:
            return b""
        complete = data[:data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return complete


class EvidenceIndex:
    """Arrivals by address UUID and policy fetches by lab domain, from the evidence files."""

    def __init__(self, received: Path, access_log: Path) -> None:
        self._received, self._access = _Tail(received), _Tail(access_log)
        self.arrivals: dict[str, list[Arrival]] = {}
        self.fetches: dict[str, list[PolicyFetch]] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            for item in parse_recorder_lines(io.BytesIO(self._received.new_lines())):
                if isinstance(item, RecordedMessage) and item.address_uuid:
                    self.arrivals.setdefault(item.address_uuid, []).append(Arrival(
                        item.server_label, utc_iso(item.received_at), item.client_address,
                        item.client_hostname, item.tls_protocol, item.tls_cipher))
            text = self._access.new_lines().decode("utf-8", "replace")
            lines = ((0, number, line) for number, line in enumerate(text.splitlines(), start=1))
            for item in parse_access_log_lines(lines):
                if isinstance(item, HttpRequest) and item.is_policy_fetch and item.policy_domain:
                    self.fetches.setdefault(item.policy_domain, []).append(PolicyFetch(
                        utc_iso(item.fetched_at), item.client_addr, item.user_agent, item.status))


class RateLimiter:
    """At most ``per_minute`` requests per client in any minute (a sliding window)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._seen.get(client, []) if now - t < 60]
            if len(recent) >= self.per_minute:
                self._seen[client] = recent
                return False
            recent.append(now)
            self._seen[client] = recent
            if len(self._seen) > 100_000:  # forget idle clients; memory stays bounded
                self._seen = {c: ts for c, ts in self._seen.items() if ts and now - ts[-1] < 60}
            return True

    def retry_after(self, client: str) -> int:
        """Whole seconds until ``client`` may ask again (for a 429's Retry-After)."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._seen.get(client, []) if now - t < 60]
        return max(1, int(60 - (now - recent[0])) + 1) if len(recent) >= self.per_minute else 1


class StatusService:
    """Issues test addresses (with the token) and answers for them (anyone who knows one)."""

    def __init__(self, lab_domain: str, index: EvidenceIndex, issued_file: Path, token: str) -> None:
        """``lab_domain``: addresses are ``<uuid>@<label>.<lab_domain>`` (``audit.<base>``)."""
        self.lab_domain, self.index, self.issued_file, self.token = lab_domain, index, issued_file, token
        self.issued: dict[str, IssuedAddress] = {}
        self._lock = threading.Lock()
        if issued_file.exists():
            for line in issued_file.read_text().splitlines():
                if line.strip():
                    entry = IssuedAddress(**json.loads(line))
                    self.issued[entry.address.split("@", 1)[0]] = entry

    def issue(self, provider: str | None) -> list[IssuedAddress]:
        """One fresh ``<uuid4>@<label>.<lab domain>`` per lab server, remembered on disk."""
        now = utc_iso(datetime.now(timezone.utc))
        fresh = [IssuedAddress(f"{uuid.uuid4()}@{label}.{self.lab_domain}", label, now, provider)
                 for label in SERVER_LABELS]
        with self._lock, self.issued_file.open("a") as handle:
            for entry in fresh:
                handle.write(json.dumps(asdict(entry)) + "\n")
                self.issued[entry.address.split("@", 1)[0]] = entry
        return fresh

    def status(self, address: str) -> dict | None:
        """What arrived for an issued address and the policy fetches of its lab domain since
        it was issued; None for an address this service did not issue."""
        entry = self.issued.get(address.strip().lower().split("@", 1)[0])
        if entry is None or entry.address != address.strip().lower():
            return None
        self.index.refresh()
        domain = f"{entry.label}.{self.lab_domain}"
        # The access log has whole seconds: a fetch in the second the address was issued counts.
        since = datetime.fromisoformat(entry.issued_at).replace(microsecond=0)
        fetches = [f for f in self.index.fetches.get(domain, []) if datetime.fromisoformat(f.fetched_at) >= since]
        return {"address": entry.address, "server": entry.label, "issued_at": entry.issued_at,
                "arrivals": [asdict(a) for a in self.index.arrivals.get(entry.address.split("@")[0], [])],
                "policy_fetches": [asdict(f) for f in fetches]}


def _handler(service: StatusService, limiter: RateLimiter, behind_proxy: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "mtasts-lab-status"
        sys_version = ""

        def _client(self) -> str:
            forwarded = self.headers.get("X-Real-IP") if behind_proxy else None
            return forwarded or self.client_address[0]

        def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body, indent=1).encode() + b"\n"
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def _allowed(self) -> bool:
            if limiter.allow(self._client()):
                return True
            wait = limiter.retry_after(self._client())
            self._send(HTTPStatus.TOO_MANY_REQUESTS, {"error": f"too many requests; try again in {wait} s"},
                       {"Retry-After": str(wait)})
            return False

        def do_GET(self) -> None:  # noqa: N802 - http.server's names
            if not self._allowed():
                return
            prefix = "/v1/status/"
            found = service.status(self.path[len(prefix):]) if self.path.startswith(prefix) else None
            if found is None:
                self._send(HTTPStatus.NOT_FOUND, {"error": "not an address this lab issued"})
            else:
                self._send(HTTPStatus.OK, found)

        def do_POST(self) -> None:  # noqa: N802
            if not self._allowed():
                return
            if self.path.split("?", 1)[0] != "/v1/addresses":
                self._send(HTTPStatus.NOT_FOUND, {"error": "no such resource"})
                return
            offered = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not secrets.compare_digest(offered.encode(), service.token.encode()):
                self._send(HTTPStatus.UNAUTHORIZED, {"error": "issuing addresses needs the lab's token"})
                return
            provider = self.headers.get("X-Provider") or None
            self._send(HTTPStatus.CREATED, {"addresses": [asdict(a) for a in service.issue(provider)]})

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # the addresses are secrets: no access log here (nginx keeps its own)

    return Handler


def serve(service: StatusService, listen: str, port: int, *, per_minute: int = 60,
          ready: Path | None = None) -> None:
    """Serve until interrupted. Behind a proxy on loopback, X-Real-IP names the client."""
    behind_proxy = listen in ("127.0.0.1", "::1", "localhost")
    server = ThreadingHTTPServer((listen, port), _handler(service, RateLimiter(per_minute), behind_proxy))
    server.daemon_threads = True
    if ready is not None:
        ready.write_text("ready\n")
    try:
        server.serve_forever()
    finally:
        server.server_close()
