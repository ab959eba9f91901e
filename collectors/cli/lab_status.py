"""``mtasts lab serve-status`` (on the lab host, behind nginx) and ``mtasts lab watch``
(anywhere): the live view of arrivals, as the published lab's ``audit.sh`` gave it."""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from collectors.cli.common import CliError

__all__ = ["add_serve_status", "add_watch"]


def add_serve_status(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve-status", help="serve the lab's live view of arrivals (on the lab host, behind nginx)",
        description="A read-only HTTP service for the lab host: POST /v1/addresses (with the token) "
                    "issues one fresh test address per lab server; GET /v1/status/ADDRESS says what "
                    "arrived for an issued address (server, time, sending host, TLS) and the policy "
                    "fetches of its lab domain; never message content. Reads the same evidence files "
                    "as `mtasts ingest`.")
    p.add_argument("--lab-domain", required=True, metavar="DOMAIN",
                   help="the lab's domain: addresses are <uuid>@<label>.DOMAIN")
    p.add_argument("--received", required=True, type=Path, metavar="FILE", help="the recorder's received.jsonl")
    p.add_argument("--access-log", required=True, type=Path, metavar="FILE", help="the policy server's access log")
    p.add_argument("--issued", required=True, type=Path, metavar="FILE",
                   help="where the issued addresses are kept (JSON lines, appended)")
    p.add_argument("--token-file", required=True, type=Path, metavar="FILE",
                   help="a file holding the secret that issuing addresses needs")
    p.add_argument("--listen", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8444, help="port (default %(default)s)")
    p.add_argument("--per-minute", type=int, default=60, help="requests per client a minute (default %(default)s)")
    p.add_argument("--ready", type=Path, metavar="FILE", help="file written once the socket listens")
    p.set_defaults(func=_cmd_serve_status)


def _cmd_serve_status(args: argparse.Namespace) -> int:
    from collectors.lab import EvidenceIndex, StatusService, serve_status

    token = args.token_file.read_text().strip() if args.token_file.exists() else ""
    if len(token) < 16:
        raise CliError(f"{args.token_file}: needs a secret of at least 16 characters "
                       "(e.g. `openssl rand -hex 32 > FILE`)")
    service = StatusService(args.lab_domain.rstrip(".").lower(),
                            EvidenceIndex(args.received, args.access_log), args.issued, token)
    try:
        serve_status(service, args.listen, args.port, per_minute=args.per_minute, ready=args.ready)
    except KeyboardInterrupt:
        pass
    return 0


def add_watch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "watch", help="poll the lab's live view and print arrivals and policy fetches as they come",
        description="Poll a lab's status service (`mtasts lab serve-status`) for test addresses and "
                    "print, per address, the lab server, arrival time, sending host and TLS, and the "
                    "policy fetches of its domain. --issue first asks the lab for six fresh addresses.")
    p.add_argument("addresses", nargs="*", metavar="ADDRESS", help="test addresses the lab issued")
    p.add_argument("--lab", required=True, metavar="URL", help="the status service, e.g. https://tlsrpt.audit.example.org")
    p.add_argument("--issue", action="store_true", help="first ask the lab for six fresh addresses")
    p.add_argument("--token-file", type=Path, metavar="FILE", help="the lab's token (for --issue)")
    p.add_argument("--provider", help="the provider under test, kept with issued addresses")
    p.add_argument("--account", help="the sending account (an address at the provider), for the ledger")
    p.add_argument("--ledger", type=Path, metavar="FILE",
                   help="append the issued addresses to this send ledger with the provider, account and "
                        "time, as `mtasts lab addresses` does (docs/lab-deploy.md section 6)")
    p.add_argument("--ca-bundle", metavar="PEM", help="trust this CA bundle (a test lab's private CA)")
    p.add_argument("--interval", type=float, default=10.0,
                   help="seconds between polls (default %(default)s; at least one per address, the lab's rate)")
    p.add_argument("--once", action="store_true", help="print the table once and exit")
    p.add_argument("--until", type=float, default=3600.0, metavar="SECONDS",
                   help="stop after this long (default %(default)s)")
    p.set_defaults(func=_cmd_watch)


# The lab answers each client 60 requests a minute (the status service and its nginx site):
# a watch polls each address at most once a second on average, and waits when told to.
REQUESTS_PER_SECOND = 1.0
RATE_LIMITED = (429, 503)       # 503: what nginx's limit_req answers unless told otherwise
MAX_WAITS = 5


def _request(url: str, context: ssl.SSLContext | None, *, data: bytes | None = None,
             headers: dict[str, str] | None = None) -> dict:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    for attempt in range(MAX_WAITS + 1):
        try:
            with urllib.request.urlopen(request, timeout=15, context=context) as response:
                return json.loads(response.read(1024 * 1024))
        except urllib.error.HTTPError as error:
            detail = error.read(4096).decode("utf-8", "replace")
            if error.code in RATE_LIMITED and attempt < MAX_WAITS:
                time.sleep(_retry_after(error.headers.get("Retry-After"), attempt))
                continue
            raise CliError(f"{url}: HTTP {error.code}: {detail.strip()[:200]}") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise CliError(f"{url}: {error}") from None
    raise AssertionError("unreachable")


def _retry_after(header: str | None, attempt: int) -> float:
    """Seconds to wait before asking again: the server's Retry-After (RFC 9110 section
    10.2.3, seconds form), else 2, 4, 8... seconds; never more than a minute."""
    try:
        seconds = float(header) if header else 2.0 ** (attempt + 1)
    except ValueError:
        seconds = 2.0 ** (attempt + 1)
    return min(max(seconds, 0.5), 60.0)


def _rows(status: dict) -> list[str]:
    rows = []
    for a in status["arrivals"]:
        tls = f"{a['tls_protocol']} {a['tls_cipher']}" if a["tls_protocol"] else "no TLS"
        rows.append(f"  {status['server'].upper()}  arrived {a['received_at']}  from "
                    f"{a['client_hostname'] or '?'} [{a['client_address'] or '?'}]  {tls}")
    if not status["arrivals"]:
        rows.append(f"  {status['server'].upper()}  nothing arrived yet")
    for f in status["policy_fetches"]:
        rows.append(f"      policy fetched {f['fetched_at']}  by {f['client_address']}  "
                    f"status {f['status']}  agent {f['user_agent'] or '-'}")
    return rows


def _record_issued(ledger: Path, provider: str, account: str | None, addresses: list[str]) -> None:
    """The issued addresses, as `mtasts lab addresses` records its own: ingested later with
    the evidence, they say which provider each arrival belongs to."""
    import datetime as dt

    from collectors.lab_ingest import LedgerEntry, address_uuid, append_ledger_csv, lab_label, normalize_address

    now = dt.datetime.now(dt.timezone.utc)
    sender = normalize_address(account) if account else None
    append_ledger_csv(ledger, [
        LedgerEntry(provider=provider, account=sender, sent_at=now, from_addr=sender, to_addr=address.lower(),
                    message_id=None, server_label=lab_label(address), address_uuid=address_uuid(address),
                    source="addresses")
        for address in addresses])


def _cmd_watch(args: argparse.Namespace) -> int:
    if args.ledger is not None and not (args.issue and args.provider):
        raise CliError("--ledger records issued addresses: it needs --issue and --provider")
    context = ssl.create_default_context(cafile=args.ca_bundle) if args.lab.startswith("https:") else None
    base = args.lab.rstrip("/")
    addresses = list(args.addresses)
    if args.issue:
        if args.token_file is None:
            raise CliError("--issue needs --token-file")
        headers = {"Authorization": f"Bearer {args.token_file.read_text().strip()}"}
        if args.provider:
            headers["X-Provider"] = args.provider
        issued = _request(f"{base}/v1/addresses", context, data=b"", headers=headers)["addresses"]
        addresses += [entry["address"] for entry in issued]
        if args.ledger is not None:
            _record_issued(args.ledger, args.provider, args.account, [entry["address"] for entry in issued])
        print("send one message to each:\n" + "\n".join(f"  {a}" for a in addresses), flush=True)
    if not addresses:
        raise CliError("no address to watch: give some, or --issue")
    shown: list[str] = []
    deadline = time.monotonic() + args.until
    interval = max(args.interval, len(addresses) / REQUESTS_PER_SECOND)   # within the lab's rate
    while True:
        table = [row for address in addresses
                 for row in [address, *_rows(_request(f"{base}/v1/status/{address}", context))]]
        if table != shown:
            print(time.strftime("%H:%M:%S"), "\n".join(table), sep="\n", flush=True)
            shown = table
        if args.once or time.monotonic() >= deadline:
            return 0
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0
