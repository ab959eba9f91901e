"""provider_behaviour credits a policy fetch to the provider whose delivering address made it;
only an unclaimed fetch falls back to the time window, and only when one provider's window
holds it. The small files here are hand-written UNIT-TEST FIXTURES in the lab's formats."""

from __future__ import annotations

import json
from pathlib import Path

from collectors.lab_ingest import IngestOptions, ingest

UUIDS = {("p1", "a"): "11111111-1f0e-4c1a-9b7e-000000000001",
         ("p2", "a"): "22222222-1f0e-4c1a-9b7e-000000000002"}
ADDR = {"p1": "127.0.0.2", "p2": "127.0.0.3"}


def _evidence(tmp_path: Path, fetches: list[tuple[str, str]]) -> list[Path]:
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("provider,sent_at,from,to,message_id\n" + "".join(
        f"{p},2024-03-03T10:00:00Z,x@{p}.example,{u}@{label}.lab.example,\n"
        for (p, label), u in UUIDS.items()))
    recv = tmp_path / "recorder.jsonl"
    recv.write_text("".join(json.dumps({
        "format": "mtasts-recorder/1", "received_at": "2024-03-03T10:00:05Z", "server_label": label,
        "recipient": f"{u}@{label}.lab.example", "original_recipient": f"{u}@{label}.lab.example",
        "sender": f"x@{p}.example", "client_address": ADDR[p], "client_helo": f"mx.{p}.example",
        "client_hostname": f"mx.{p}.example", "client_protocol": "ESMTP", "envid": None, "message_id": None,
        "queue_id": f"4A{i}", "received_with": "ESMTPS", "tls_protocol": "TLSv1.3",
        "tls_cipher": "TLS_AES_256_GCM_SHA384", "tls_bits": 256}) + "\n"
        for i, ((p, label), u) in enumerate(UUIDS.items())))
    access = tmp_path / "access.log"
    access.write_text("".join(
        f'mta-sts.{label}.lab.example {addr} - - [03/Mar/2024:09:59:{10 + i:02d} +0000] '
        f'"GET /.well-known/mta-sts.txt HTTP/1.1" 200 87 "-" "resolver"\n'
        for i, (label, addr) in enumerate(fetches)))
    return [ledger, recv, access]


def _fetches(store) -> dict[str, tuple[bool, int]]:
    rows = store.con.cursor().execute(
        "SELECT provider, policy_fetched, policy_fetches FROM provider_behaviour WHERE server_label = 'a'"
    ).fetchall()
    return {p: (fetched, n) for p, fetched, n in rows}


def test_a_fetch_from_one_providers_address_is_not_credited_to_another(store, tmp_path: Path) -> None:
    s = ingest(store, _evidence(tmp_path, [(label, ADDR["p1"]) for label in "abcde"]),
               IngestOptions(lab_domains=("lab.example",)))
    assert s.quarantined == 0, s.as_dict()
    assert _fetches(store) == {"p1": (True, 5), "p2": (False, 0)}


def test_an_unclaimed_fetch_inside_two_providers_windows_is_credited_to_nobody(store, tmp_path: Path) -> None:
    ingest(store, _evidence(tmp_path, [("a", "127.0.0.9")]), IngestOptions(lab_domains=("lab.example",)))
    assert _fetches(store) == {"p1": (False, 0), "p2": (False, 0)}
