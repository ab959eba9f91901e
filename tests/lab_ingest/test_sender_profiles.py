"""The lab's sender profiles (evidence/senders.json, ``mtasts-lab-senders/1``): parsed into
``lab_sender_profiles``, bad input quarantined and never raised, re-ingesting adds nothing.

The documents here are unit-test fixtures in the shape `mtasts lab up` writes
(collectors.lab.lab.Lab._record_senders); the lab's end-to-end test ingests a real one."""

from __future__ import annotations

import io
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.lab_ingest import sender_profiles
from collectors.lab_ingest.formats import detect_head
from collectors.lab_ingest import IngestOptions, ingest
from collectors.lab_ingest.records import Quarantined


def _doc(**profiles) -> dict:
    return {"format": "mtasts-lab-senders/1", "lab_started_at": "2026-12-06T04:04:30+00:00",
            "base": "lab.test", "tlsa_labels": ["a", "b", "c", "d", "e"], "profiles": profiles}


EXIM = {"description": "Exim", "mta": "exim", "version": "4.96", "mta_sts": False, "policy_cache": None,
        "dane": "required", "notices": "quick+updates", "address": "127.77.2.6",
        "address6": "fd00:6c61:6200::2:6",
        "timers": {"delay_warning": "10s:30s", "retry": "F,2m,10s", "queue_run_interval": "10s"}}
POSTFIX = {"mta": "postfix", "version": "3.7.11", "mta_sts": True, "policy_cache": "lazy", "dane": "none",
           "notices": "delay+failure", "address": "127.77.2.1", "timers": {"delay_warning_time": "30s"}}


def _parse(doc) -> list:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return list(sender_profiles.parse(io.BytesIO(raw)))


def test_each_profile_is_one_record_with_its_timers():
    records = _parse(_doc(**{"exim-dane-required": EXIM, "postfix-mta-sts": POSTFIX}))
    assert [r.provider for r in records] == ["exim-dane-required", "postfix-mta-sts"]
    exim, postfix = records
    assert (exim.mta, exim.mta_version, exim.dane, exim.notices) == ("exim", "4.96", "required", "quick+updates")
    assert exim.timers["delay_warning"] == "10s:30s" and exim.addresses == ("127.77.2.6", "fd00:6c61:6200::2:6")
    assert (postfix.mta_sts, postfix.policy_cache) == (True, "lazy")
    assert exim.tlsa_labels == ("a", "b", "c", "d", "e")
    assert exim.lab_started_at.isoformat() == "2026-12-06T04:04:30+00:00"


def test_bad_documents_and_profiles_are_quarantined_with_a_reason():
    [bad] = _parse(b"{not json")
    assert isinstance(bad, Quarantined) and bad.reason.startswith("not JSON")
    [other] = _parse({"format": "something-else/1", "profiles": {}})
    assert isinstance(other, Quarantined) and "mtasts-lab-senders/1" in other.reason
    records = _parse(_doc(good=POSTFIX, broken={**POSTFIX, "mta": "sendmail"}, odd=[1, 2]))
    assert [type(r).__name__ for r in records] == ["SenderProfileRecord", "Quarantined", "Quarantined"]
    assert records[1].position == "profile broken" and b"sendmail" in records[1].raw


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                              lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                              max_leaves=12).map(lambda v: json.dumps(v).encode())))
def test_any_input_yields_records_or_quarantine_never_an_exception(raw):
    for item in sender_profiles.parse(io.BytesIO(raw)):
        assert isinstance(item, (sender_profiles.SenderProfileRecord, Quarantined))


def test_detected_by_content():
    assert detect_head(json.dumps(_doc(p=POSTFIX), indent=2).encode()) == "lab_senders"
    assert detect_head(b'{"format": "mtasts-recorder/1"}\n') != "lab_senders"


def test_ingested_once_and_shown_beside_the_views(store, tmp_path: Path):
    path = tmp_path / "senders.json"
    path.write_text(json.dumps(_doc(**{"exim-dane-required": EXIM, "postfix-mta-sts": POSTFIX})))
    first = ingest(store, [path], IngestOptions(year=2026))
    again = ingest(store, [path], IngestOptions(year=2026))
    assert first.rows_by_table().get("lab_sender_profiles") == 2 and not again.rows_by_table().get("lab_sender_profiles")
    assert store.con.execute("SELECT count(*) FROM lab_sender_profiles").fetchone()[0] == 2
    rows = store.con.execute("SELECT provider, mta, notices, notice_timers, tlsa_labels "
                             "FROM lab_sender_profile_latest ORDER BY provider").fetchall()
    assert rows[0][:3] == ("exim-dane-required", "exim", "quick+updates")
    assert json.loads(rows[0][3]) == EXIM["timers"] and rows[0][4] == ["a", "b", "c", "d", "e"]
