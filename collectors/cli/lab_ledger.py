"""``mtasts lab addresses`` and ``mtasts lab sent``: the send ledger, for sends made by hand.

``addresses`` makes one fresh ``<uuid4>@<label>.<lab domain>`` test address per lab server
(as the published lab did; with ``--lab``, the lab's live view issues them) and appends
them, with the provider, the sending account and the time, to the ledger CSV; ``sent`` appends one send made by hand. With ``--db`` the grown
ledger is ingested at once (``mtasts ingest`` adds only the new rows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from collectors.cli.common import CliError, add_db_option, open_db

DEFAULT_LEDGER = "data/lab/ledger.csv"


def _ledger_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ledger", default=os.environ.get("MTASTS_LEDGER", DEFAULT_LEDGER), metavar="FILE",
                   help="the ledger CSV to append to (default: $MTASTS_LEDGER or %(default)s)")
    add_db_option(p)
    p.add_argument("--no-ingest", action="store_true", help="only append to the ledger file")


def _time(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value}") from exc
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset (e.g. {value}Z): {value}")
    return moment.astimezone(dt.timezone.utc)


def add_addresses(sub: argparse._SubParsersAction) -> None:
    """``mtasts lab addresses``: fresh test addresses for a provider, recorded in the ledger."""
    p = sub.add_parser("addresses", help="make fresh test addresses, one per lab server, and record them",
                       description="Make one fresh test address per lab server label and append them "
                                   "to the send ledger with the provider, account and time.")
    p.add_argument("--provider", required=True, help="the provider under test, e.g. gmail")
    p.add_argument("--account", help="the sending account (an address at the provider)")
    p.add_argument("--lab-domain", required=True, metavar="DOMAIN",
                   help="the lab's domain: addresses are <uuid>@<label>.DOMAIN")
    p.add_argument("--labels", default="abcdef", help="server labels (default: %(default)s)")
    p.add_argument("--lab", metavar="URL",
                   help="have the lab's live view issue them (e.g. https://tlsrpt.audit.example.org), so that "
                        "'mtasts lab watch' can follow them; needs --token-file")
    p.add_argument("--token-file", type=Path, metavar="FILE", help="the lab's token (with --lab)")
    p.add_argument("--ca-bundle", metavar="PEM", help="trust this CA bundle for --lab (a test lab's private CA)")
    _ledger_options(p)
    p.set_defaults(func=_addresses)


def add_sent(sub: argparse._SubParsersAction) -> None:
    """``mtasts lab sent``: one send made by hand, recorded in the ledger."""
    p = sub.add_parser("sent", help="record a send made by hand in the ledger",
                       description="Append one send made by hand to the send ledger.")
    p.add_argument("--provider", required=True)
    p.add_argument("--to", required=True, metavar="ADDRESS", help="the test address the message went to")
    p.add_argument("--from", dest="from_addr", metavar="ADDRESS", help="the sending account")
    p.add_argument("--message-id", help="the message's Message-ID, if known")
    p.add_argument("--at", type=_time, metavar="TIME", help="ISO 8601 time with offset (default: now)")
    _ledger_options(p)
    p.set_defaults(func=_sent)


def _record(args: argparse.Namespace, entries: list) -> None:
    from collectors.lab_ingest import IngestOptions, append_ledger_csv, ingest

    ledger = Path(args.ledger)
    append_ledger_csv(ledger, entries)
    if not args.no_ingest:
        with open_db(args.db) as store:
            summary = ingest(store, [ledger], IngestOptions(format="ledger"))
        if summary.quarantined:
            raise CliError(f"{summary.quarantined} ledger row(s) quarantined; see 'mtasts db info'")


def _addresses(args: argparse.Namespace) -> int:
    from collectors.lab_ingest import ledger_entries, make_addresses

    labels = [c for c in args.labels.lower() if c.isalnum()]
    if not labels:
        raise CliError("--labels names no server label")
    if args.lab:
        entries = ledger_entries(args.provider, args.account, _issued_by_the_lab(args, labels))
    else:
        entries = make_addresses(args.provider, args.account, args.lab_domain, labels)
    _record(args, entries)
    for e in entries:
        print(f"{e.server_label}\t{e.to_addr}")
    return 0


def _issued_by_the_lab(args: argparse.Namespace, labels: list[str]) -> list[str]:
    """One address per label, issued by the lab's status service instead of made here: the lab
    then answers for them (`mtasts lab watch`)."""
    from collectors.lab import LabError, StatusClient

    if args.token_file is None:
        raise CliError("--lab needs --token-file (the lab's token, docs/lab-deploy.md section 6)")
    try:
        issued = StatusClient(args.lab, args.ca_bundle).issue(args.token_file.read_text().strip(), args.provider)
    except (LabError, OSError) as exc:
        raise CliError(str(exc)) from None
    by_label = {address.rsplit("@", 1)[1].split(".", 1)[0]: address for address in issued}
    domain = args.lab_domain.strip().strip(".").lower()
    if any(not by_label.get(label, "").endswith(f"@{label}.{domain}") for label in labels):
        raise CliError(f"{args.lab} issued {', '.join(issued)}: not one address per label under {domain}")
    return [by_label[label] for label in labels]


def _sent(args: argparse.Namespace) -> int:
    from collectors.lab_ingest import (
        LedgerEntry, address_uuid, lab_label, normalize_address, normalize_message_id,
    )

    to_addr = normalize_address(args.to)
    if not to_addr or "@" not in to_addr:
        raise CliError(f"not an address: {args.to}")
    entry = LedgerEntry(
        provider=args.provider, account=args.from_addr,
        sent_at=args.at or dt.datetime.now(dt.timezone.utc),
        from_addr=normalize_address(args.from_addr) if args.from_addr else None,
        to_addr=to_addr, message_id=normalize_message_id(args.message_id) if args.message_id else None,
        server_label=lab_label(to_addr), address_uuid=address_uuid(to_addr), source="manual")
    _record(args, [entry])
    print(f"recorded: {entry.provider} -> {entry.to_addr} at {entry.sent_at.isoformat()}")
    return 0
