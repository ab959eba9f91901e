"""One vocabulary per crawl column (collectors/store/vocabulary.py), and everything that
speaks it agrees: the RFC core's Literal types, the posture view's SQL, the README's data
dictionary and the schema's own data dictionary (the posture view's column comments)."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from collectors.crawl.inputs import normalise_domain
from collectors.rfc.mx_match import MismatchClass
from collectors.rfc.sts_policy import Mode
from collectors.rfc.txt import RecordStatus
from collectors.store import (
    POSTURE_VALUES, DomainReason, FetchOutcome, FetchPhase, InputReason, ProbeOutcome, TlsSubclass,
)
from support import REPO_ROOT, readme_table

VIEWS = REPO_ROOT / "collectors" / "store" / "views" / "010_crawl.sql"
DNS_RCODES = {"NOERROR", "NXDOMAIN", "SERVFAIL"}


def _readme_values() -> dict[str, set[str]]:
    """The README data dictionary's ``values`` cell of each posture column."""
    return {column.strip("`"): set(re.findall(r"`([^`]+)`", values))
            for column, _type, values, _meaning in readme_table("### Data dictionary: the posture export")}


def test_values_the_rfc_core_decides_are_its_own() -> None:
    assert set(POSTURE_VALUES["sts_record"]) == set(get_args(RecordStatus)) | {"dns_error"}
    assert set(POSTURE_VALUES["tlsrpt_record"]) == set(get_args(RecordStatus)) | {"dns_error"}
    assert POSTURE_VALUES["policy_mode"] == get_args(Mode)
    assert POSTURE_VALUES["mismatch_subclass"] == get_args(MismatchClass)


def test_the_export_vocabulary_builds_on_the_raw_one() -> None:
    assert set(get_args(FetchOutcome)) < set(POSTURE_VALUES["policy_fetch"])
    assert set(get_args(ProbeOutcome)) < set(POSTURE_VALUES["mx_starttls"])
    assert POSTURE_VALUES["policy_tls_subclass"] == get_args(TlsSubclass)


@pytest.mark.parametrize("column", sorted(POSTURE_VALUES))
def test_the_readme_data_dictionary_lists_exactly_the_vocabulary(column: str) -> None:
    assert _readme_values()[column] == set(POSTURE_VALUES[column])


def test_the_schema_data_dictionary_names_every_value(store) -> None:
    comments = dict(store.con.execute(
        "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'posture'").fetchall())
    for column, values in POSTURE_VALUES.items():
        words = set(re.findall(r"[a-z_/]+", comments[column] or ""))
        assert set(values) <= words, (column, sorted(set(values) - words))


def test_the_views_speak_only_the_vocabulary() -> None:
    """Every value the posture view's SQL produces or compares a crawl value with is a word
    of a vocabulary (or a DNS rcode): a new or misspelt value fails here."""
    sql = re.sub(r"--[^\n]*", "", VIEWS.read_text())
    # a word in quotes: the values (not the JSON paths and separators the SQL also quotes)
    literals = set(re.findall(r"'([A-Za-z_/]+)'", sql))
    known = set().union(*map(set, POSTURE_VALUES.values())) | set(get_args(FetchPhase)) | DNS_RCODES
    assert literals - known == set()
    assert {"not_attempted", "syntax_error", "null_mx", "bogus", "not_probed", "n/a"} <= literals


def test_the_list_quarantine_reasons_are_documented() -> None:
    """docs/posture-export.md lists exactly the reasons a list entry is quarantined for."""
    text = (REPO_ROOT / "docs" / "posture-export.md").read_text()
    listed = text.split("with the raw bytes and a reason:", 1)[1].split(")", 1)[0]
    assert set(re.findall(r"`([a-z_]+)`", listed)) == set(get_args(InputReason))


@pytest.mark.parametrize("value", ["", "http://example.com/", "192.0.2.1", "a_b.example", "xn--zz.example",
                                   "a..example", "a" * 64 + ".example", ("a" * 63 + ".") * 4 + "example",
                                   "localhost", "example.123"])
def test_normalise_domain_speaks_the_vocabulary(value: str) -> None:
    domain, reason = normalise_domain(value)
    assert domain is None and reason in get_args(DomainReason)
