"""``mtasts lab serve-status`` (on the lab host, behind nginx) and ``mtasts lab watch``
(anywhere): the live view of arrivals, as the published lab's ``audit.sh`` gave it."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from collectors.cli.common import CliError

if TYPE_CHECKING:
    from collectors.lab import StatusClient

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


# The lab answers each client 60 requests a minute: a watch polls each address at most
# once a second on average.
REQUESTS_PER_SECOND = 1.0


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
    from collectors.lab_ingest import append_ledger_csv, ledger_entries

    append_ledger_csv(ledger, ledger_entries(provider, account, addresses))


def _cmd_watch(args: argparse.Namespace) -> int:
    from collectors.lab import LabError, StatusClient

    if args.ledger is not None and not (args.issue and args.provider):
        raise CliError("--ledger records issued addresses: it needs --issue and --provider")
    client = StatusClient(args.lab, args.ca_bundle)
    addresses = list(args.addresses)
    try:
        if args.issue:
            if args.token_file is None:
                raise CliError("--issue needs --token-file")
            issued = client.issue(args.token_file.read_text().strip(), args.provider)
            addresses += issued
            if args.ledger is not None:
                _record_issued(args.ledger, args.provider, args.account, issued)
            print("send one message to each:\n" + "\n".join(f"  {a}" for a in addresses), flush=True)
        if not addresses:
            raise CliError("no address to watch: give some, or --issue")
        return _poll(client, addresses, args)
    except LabError as exc:
        raise CliError(str(exc)) from None


def _poll(client: "StatusClient", addresses: list[str], args: argparse.Namespace) -> int:
    shown: list[str] = []
    deadline = time.monotonic() + args.until
    interval = max(args.interval, len(addresses) / REQUESTS_PER_SECOND)   # within the lab's rate
    while True:
        table = [row for address in addresses for row in [address, *_rows(client.status(address))]]
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
