"""I-JSON (RFC 7493) checks that keep unstorable values out: lone surrogates and numbers
beyond doubles, in any TLS-RPT report (RFC 8460 section 4.4) and any JSON-lines evidence."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from collectors.rfc import MAX_EXACT_INTEGER, ijson_violation, parse_tlsrpt_report
from support import EXTERNAL_DIR

GOOGLE = EXTERNAL_DIR / "tlsrpt" / "dmarc-report-viewer" / "google.json"

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_scalar = (st.none() | st.booleans() | _text
           | st.integers(-MAX_EXACT_INTEGER, MAX_EXACT_INTEGER)
           | st.floats(allow_nan=False, allow_infinity=False))
documents = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(_text, inner, max_size=4), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_every_storable_document_passes_and_survives_utf8(document) -> None:
    assert ijson_violation(document) is None
    json.dumps(document, ensure_ascii=False).encode("utf-8")  # what the store will do


@settings(max_examples=200, deadline=None)
@given(documents, st.sampled_from(["\ud800", "\udcff", "a\udfffb"]), st.booleans())
def test_a_lone_surrogate_anywhere_is_named(document, bad, as_key) -> None:
    wrapped = {bad: document} if as_key else {"x": [document, {"deep": bad}]}
    problem = ijson_violation(wrapped)
    assert problem is not None and "surrogate" in problem
    problem.encode("utf-8")  # the reason itself is storable


@given(st.sampled_from([2**53, -(2**53), 2**63, 10**400, float("inf"), float("-inf")]))
def test_numbers_beyond_doubles_are_named(number) -> None:
    assert ijson_violation({"a": [1, {"b": number}]}) is not None


def test_nesting_deeper_than_the_stack_is_walked() -> None:
    deep: object = "\udcff"
    for _ in range(50_000):
        deep = [deep]
    assert "surrogate" in (ijson_violation(deep) or "")


def _google(mutate) -> bytes:
    document = json.loads(GOOGLE.read_bytes())
    mutate(document)
    return json.dumps(document).encode()


def _set_count(value):
    def mutate(document) -> None:
        document["policies"][0]["summary"]["total-successful-session-count"] = value
    return mutate


def test_real_report_with_a_surrogate_or_a_huge_count_is_rejected_not_raised() -> None:
    surrogate = GOOGLE.read_bytes().replace(b'"organization-name": "', b'"organization-name": "\\udcff', 1)
    assert surrogate != GOOGLE.read_bytes()
    for raw in (surrogate, _google(_set_count(2**63)), _google(_set_count(10**400)),
                GOOGLE.read_bytes().replace(b'"total-successful-session-count": ',
                                            b'"total-successful-session-count": 1e999, "x": ', 1)):
        report = parse_tlsrpt_report(raw)
        assert not report.ok
        assert [f.code for f in report.findings if f.severity == "error"] == ["tlsrpt_report.not_ijson"]
        for finding in report.findings:
            finding.message.encode("utf-8")


def test_the_largest_exact_count_is_still_a_count() -> None:
    report = parse_tlsrpt_report(_google(_set_count(MAX_EXACT_INTEGER)))
    assert report.ok
    assert report.policies[0].total_successful_session_count == MAX_EXACT_INTEGER
