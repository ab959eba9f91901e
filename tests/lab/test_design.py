"""The lab's design has one meaning: the store's ``lab_servers`` view (which cannot import the
lab) says of each server exactly what ``collectors.lab.SERVERS`` says."""

from __future__ import annotations

from collectors.lab import SERVERS
from collectors.store import open_store


def test_the_lab_servers_view_is_the_design() -> None:
    store = open_store(":memory:")
    try:
        rows = store.con.execute("SELECT server_label, setup, under_enforce_policy, enforcing_sender_must"
                                 " FROM lab_servers ORDER BY server_label").fetchall()
    finally:
        store.close()
    assert rows == [(s.label, s.description, s.sts_policy, "deliver" if s.expect_enforcing_delivery else "refuse")
                    for s in SERVERS]
