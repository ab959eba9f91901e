"""The send ledger: fresh test addresses and the CSV ledger (hand-written CSV inputs)."""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from collectors.lab_ingest.ledger import LedgerEntry, make_addresses, parse_ledger_csv, sniff
from collectors.lab_ingest.records import Quarantined

NOW = datetime(2024, 9, 30, 12, 0, tzinfo=timezone.utc)


def test_make_addresses_one_fresh_uuid_per_label():
    entries = make_addresses("gmail", "alice@gmail.com", "Lab.Example.org.", now=NOW)
    assert [e.server_label for e in entries] == list("abcdef")
    for entry in entries:
        local, domain = entry.to_addr.split("@")
        assert uuid.UUID(local).version == 4 and str(uuid.UUID(local)) == local
        assert domain == f"{entry.server_label}.lab.example.org"
        assert entry.address_uuid == local
        assert (entry.provider, entry.account, entry.from_addr) == ("gmail", "alice@gmail.com", "alice@gmail.com")
        assert entry.sent_at == NOW and entry.message_id is None and entry.source == "addresses"
    assert len({e.to_addr for e in entries}) == 6
    again = make_addresses("gmail", "alice@gmail.com", "lab.example.org", now=NOW)
    assert not {e.to_addr for e in entries} & {e.to_addr for e in again}


def test_make_addresses_custom_labels_and_default_time():
    entries = make_addresses("postfix-mta-sts", None, "lab.test", labels=["a", "c"])
    assert [e.server_label for e in entries] == ["a", "c"]
    assert entries[0].from_addr is None
    assert abs(entries[0].sent_at - datetime.now(timezone.utc)) < timedelta(seconds=5)


LEDGER = """\
provider,sent_at,from,to,message_id
gmail,2024-09-30T12:00:00Z,Alice@Gmail.com,0F8FAD5B-D9CB-469F-A165-70867728950E@B.lab.example.org,<CAabc@mail.gmail.com>
outlook,2024-09-30 14:00:00+02:00,bob@outlook.com,hand-made@c.lab.example.org,
,2024-09-30T12:00:00Z,a@b.c,x@a.lab.example.org,
gmail,2024-09-30T12:00:00,a@b.c,x@a.lab.example.org,
gmail,yesterday,a@b.c,x@a.lab.example.org,
gmail,2024-09-30T12:00:00Z,a@b.c,not-an-address,
gmail,2024-09-30T12:00:00Z,a@b.c,x@a.lab.example.org,no id here
gmail,2024-09-30T12:00:00Z,a@b.c

"""


def test_parse_ledger_csv_entries_and_quarantine():
    results = list(parse_ledger_csv(io.BytesIO(LEDGER.encode())))
    first, second, *bad = results
    assert isinstance(first, LedgerEntry)
    assert first.to_addr == "0f8fad5b-d9cb-469f-a165-70867728950e@b.lab.example.org"
    assert first.address_uuid == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert first.server_label == "b"
    assert first.from_addr == "alice@gmail.com" and first.account == "alice@gmail.com"
    assert first.message_id == "CAabc@mail.gmail.com"
    assert first.sent_at == datetime(2024, 9, 30, 12, tzinfo=timezone.utc)
    assert first.source == "csv" and first.position == "line 2"
    assert second.sent_at == datetime(2024, 9, 30, 12, tzinfo=timezone.utc)  # +02:00 to UTC
    assert second.address_uuid is None and second.server_label == "c" and second.message_id is None
    assert all(isinstance(b, Quarantined) for b in bad)
    reasons = [b.reason for b in bad]
    assert reasons[0] == "provider is empty"
    assert "no UTC offset" in reasons[1]
    assert "not an ISO 8601 time" in reasons[2]
    assert "to is not an address" in reasons[3]
    assert "message_id" in reasons[4]
    assert "3 fields where the header has 5" in reasons[5]
    assert all(b.raw for b in bad)


def test_account_column_and_other_order():
    data = b"to,from,provider,sent_at,message_id,account\nx@a.lab.test,a@b.c,p,2024-01-01T00:00:00Z,,acct-1\n"
    assert sniff(data)
    [entry] = parse_ledger_csv(io.BytesIO(data))
    assert entry.account == "acct-1" and entry.provider == "p"


def test_not_a_ledger_header():
    data = b"a,b,c\n1,2,3\n"
    assert not sniff(data)
    [item] = parse_ledger_csv(io.BytesIO(data))
    assert isinstance(item, Quarantined) and "not a ledger header" in item.reason


def test_stream_left_open():
    stream = io.BytesIO(LEDGER.encode())
    list(parse_ledger_csv(stream))
    assert not stream.closed


@settings(max_examples=150)
@given(st.binary(max_size=400))
def test_garbage_never_raises(data):
    for item in parse_ledger_csv(io.BytesIO(b"provider,sent_at,from,to,message_id\n" + data)):
        assert isinstance(item, (LedgerEntry, Quarantined))


def test_parse_path(tmp_path):
    from collectors.lab_ingest.ledger import parse_path

    path = tmp_path / "ledger.csv"
    path.write_bytes(LEDGER.encode())
    assert [type(r).__name__ for r in parse_path(path)][:2] == ["LedgerEntry", "LedgerEntry"]
