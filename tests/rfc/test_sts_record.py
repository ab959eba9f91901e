"""parse_sts_record against RFC 8461 section 3.1: the RFC's example, a table of vectors, properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies_sts import ALNUM, GeneratedRecord, valid_records

from collectors.rfc.sts_record import StsRecord, parse_sts_record


def codes(record: StsRecord) -> set[str]:
    return {f.code for f in record.findings}


def error_codes(record: StsRecord) -> set[str]:
    return {f.code for f in record.findings if f.severity == "error"}


def assert_consistent(record: StsRecord) -> None:
    """Invariants every result keeps, whatever the input."""
    assert record.ok == (not error_codes(record))
    assert record.status in ("absent", "valid", "invalid", "multiple")
    assert record.ok == (record.status == "valid")
    assert all(f.severity in ("error", "warning") and f.code.startswith("sts_record.") for f in record.findings)
    if record.status == "multiple":
        assert record.raw is None and record.id is None
    if record.raw is not None:
        assert record.raw in record.records


# --- the RFC's example (section 3.1) ----------------------------------------------------


def test_rfc_example() -> None:
    record = parse_sts_record([["v=STSv1; id=20160831085700Z;"]])
    assert record.ok and record.status == "valid"
    assert record.id == "20160831085700Z"
    assert record.raw == "v=STSv1; id=20160831085700Z;"
    assert record.records == ("v=STSv1; id=20160831085700Z;",)
    assert record.extensions == {}
    assert record.findings == ()


def test_one_string_per_record_is_accepted_too() -> None:
    assert parse_sts_record(["v=STSv1; id=20160831085700Z;"]).id == "20160831085700Z"


def test_a_multi_string_record_is_valid_when_it_joins_correctly() -> None:
    # Section 3.1: "the record MUST be treated as if those strings are concatenated without adding spaces".
    record = parse_sts_record([["v=STSv1; id=2016", "0831085700Z;"]])
    assert record.ok and record.id == "20160831085700Z"
    assert record.findings == ()
    assert record.records == ("v=STSv1; id=20160831085700Z;",)


def test_a_multi_string_record_that_joins_badly_says_why() -> None:
    record = parse_sts_record([["v=STSv1", "id=1"]])  # joins to "v=STSv1id=1"
    assert record.status == "invalid"
    assert error_codes(record) == {"sts_record.missing_separator"}


def test_bytes_strings_are_decoded_and_invalid_utf8_is_flagged() -> None:
    assert parse_sts_record([[b"v=STSv1; ", b"id=abc"]]).id == "abc"
    record = parse_sts_record([[b"v=STSv1; id=ab\xffc"]])
    assert record.status == "invalid"
    assert {"sts_record.not_utf8", "sts_record.id_invalid_char"} <= codes(record)
    assert "\\xff" in record.raw


def test_dnspython_rdata_is_accepted() -> None:
    import dns.rdata

    rdata = dns.rdata.from_text("IN", "TXT", '"v=STSv1; " "id=fromdns"')
    assert parse_sts_record([rdata]).id == "fromdns"


# --- vectors: (answer, status, id, error codes, warning codes) --------------------------

VECTORS = [
    # valid, with the white space and separators sts-sep allows
    (["v=STSv1;id=1"], "valid", "1", set(), set()),
    (["v=STSv1; id=1;"], "valid", "1", set(), set()),
    (["v=STSv1;\tid=1 ;\t"], "valid", "1", set(), set()),
    (["v=STSv1; id=" + "a" * 32], "valid", "a" * 32, set(), set()),
    (["v=STSv1; id=1; foo=bar; x.y_z-1=a:b/c"], "valid", "1", set(), set()),
    (["v=STSv1; foo=bar; id=1"], "valid", "1", set(), set()),  # order of other fields is free
    (["v=STSv1 ; id=1"], "valid", "1", set(), {"sts_record.version_separator_whitespace"}),
    # repeated fields: the first counts (section 3.2), a later v= is an extension named "v"
    (["v=STSv1; v=STSv1; id=1"], "valid", "1", set(), {"sts_record.duplicate_field"}),
    (["v=STSv1; id=1; id=2"], "valid", "1", set(), {"sts_record.duplicate_field"}),
    (["v=STSv1; id=1; v=STSv2"], "valid", "1", set(), {"sts_record.duplicate_field"}),
    # discarded records do not count (section 3.1)
    (["v=spf1 -all", "v=STSv1; id=1"], "valid", "1", set(), {"sts_record.unrelated_txt"}),
    (["v=STSv2; id=2", "v=STSv1; id=1"], "valid", "1", set(), {"sts_record.discarded_record"}),
    (["v=STSv1", "v=STSv1; id=1"], "valid", "1", set(), {"sts_record.discarded_record"}),
    # absent
    ([], "absent", None, {"sts_record.absent"}, set()),
    (None, "absent", None, {"sts_record.absent"}, set()),
    (["v=spf1 include:_spf.example.com -all"], "absent", None, {"sts_record.absent"},
     {"sts_record.unrelated_txt"}),
    (["google-site-verification=abc"], "absent", None, {"sts_record.absent"}, {"sts_record.unrelated_txt"}),
    # several records
    (["v=STSv1; id=1", "v=STSv1; id=2"], "multiple", None, {"sts_record.multiple"}, set()),
    (["v=STSv1; id=1", "v=STSv1; id=1"], "multiple", None, {"sts_record.multiple"}, set()),
    # the published study's invalid-TXT classes
    (["v=STSv1;"], "invalid", None, {"sts_record.no_id"}, set()),
    (["v=STSv1"], "invalid", None, {"sts_record.no_id"}, set()),
    (["v=STSv1; foo=bar"], "invalid", None, {"sts_record.no_id"}, set()),
    (["v=STSv1; id=2019-01-01"], "invalid", None, {"sts_record.id_invalid_char"}, set()),
    (["v=STSv1; id=abc_1"], "invalid", None, {"sts_record.id_invalid_char"}, set()),
    (["v=STSv1; id=1.0"], "invalid", None, {"sts_record.id_invalid_char"}, set()),
    (["v=STSv1; id=" + "a" * 33], "invalid", None, {"sts_record.id_too_long"}, set()),
    (["v=STSv1; id=" + "a-" * 20], "invalid", None, {"sts_record.id_invalid_char", "sts_record.id_too_long"},
     set()),
    (["v=STSv1; id="], "invalid", None, {"sts_record.id_empty"}, set()),
    (["v=STSv1; ID=1"], "invalid", None, {"sts_record.id_wrong_case"}, set()),
    (["v=STSv2; id=1"], "invalid", "1", {"sts_record.bad_version"}, set()),
    (["v=stsv1; id=1"], "invalid", "1", {"sts_record.bad_version"}, set()),
    (["V=STSv1; id=1"], "invalid", "1", {"sts_record.bad_version"}, set()),
    (["v=STSv10; id=1"], "invalid", "1", {"sts_record.bad_version"}, set()),
    (["v=STSv1.0; id=1"], "invalid", "1", {"sts_record.bad_version"}, set()),
    (["v=STS1; id=1"], "invalid", "1", {"sts_record.bad_version"}, set()),
    (["id=1; v=STSv1"], "invalid", "1", {"sts_record.version_not_first"}, set()),
    (["id=1; v=STSv1;"], "invalid", "1", {"sts_record.version_not_first"}, set()),
    (["id=1"], "invalid", "1", {"sts_record.no_version"}, set()),
    (["v=STSv1 id=1"], "invalid", "1", {"sts_record.missing_separator"}, set()),
    # other syntax
    ([" v=STSv1; id=1"], "invalid", "1", {"sts_record.leading_whitespace"}, set()),
    (["v=STSv1; id=1 "], "invalid", "1", {"sts_record.trailing_whitespace"}, set()),
    (["v=STSv1;; id=1"], "invalid", "1", {"sts_record.empty_field"}, set()),
    (["v=STSv1; id=1; ; foo=bar"], "invalid", "1", {"sts_record.empty_field"}, set()),
    (["v=STSv1; id = 1"], "invalid", "1", {"sts_record.whitespace_around_equals"}, set()),
    (["v = STSv1; id=1"], "invalid", "1", {"sts_record.whitespace_around_equals"}, set()),
    (["v=STSv1; id=1; flag"], "invalid", "1", {"sts_record.syntax"}, set()),
    (["v=STSv1; id=1; foo=bar baz"], "invalid", "1", {"sts_record.bad_extension"}, set()),
    (["v=STSv1; id=1; foo=a=b"], "invalid", "1", {"sts_record.bad_extension"}, set()),
    (["v=STSv1; id=1; _foo=bar"], "invalid", "1", {"sts_record.bad_extension"}, set()),
    (["v=STSv1; id=1; " + "f" * 33 + "=bar"], "invalid", "1", {"sts_record.bad_extension"}, set()),
    (["v=STSv1; id=1; foo="], "invalid", "1", {"sts_record.bad_extension"}, set()),
    (["v=STSv1; id=1; föo=bar"], "invalid", "1", {"sts_record.bad_extension"}, set()),
    (["v=STSv1; id=1\n"], "invalid", None, {"sts_record.id_invalid_char"}, set()),
]


@pytest.mark.parametrize(("answer", "status", "record_id", "errors", "warnings"), VECTORS,
                         ids=[repr(v[0])[:60] for v in VECTORS])
def test_vector(answer, status, record_id, errors, warnings) -> None:
    record = parse_sts_record(answer)
    assert_consistent(record)
    assert record.status == status
    assert record.id == record_id
    assert error_codes(record) == errors
    assert {f.code for f in record.findings if f.severity == "warning"} == warnings


def test_extensions_are_kept_and_ignored() -> None:
    record = parse_sts_record(["v=STSv1; id=1; foo=bar; ID=x"])
    assert record.ok
    assert record.extensions == {"foo": "bar", "ID": "x"}


def test_every_joined_record_is_listed() -> None:
    record = parse_sts_record([["v=spf1", " -all"], ["v=STSv1; ", "id=1"]])
    assert record.records == ("v=spf1 -all", "v=STSv1; id=1")
    assert record.raw == "v=STSv1; id=1"


def test_invalid_record_is_the_one_that_looks_like_mta_sts() -> None:
    record = parse_sts_record(["v=spf1 -all", "v=STSv2; id=1"])
    assert record.status == "invalid"
    assert record.raw == "v=STSv2; id=1"


# --- properties --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(valid_records())
def test_every_generated_valid_record_parses_and_round_trips(generated: GeneratedRecord) -> None:
    record = parse_sts_record([list(generated.strings)])
    assert_consistent(record)
    assert record.status == "valid", record.findings
    assert error_codes(record) == set()
    assert record.id == generated.id
    assert record.extensions == generated.extensions
    assert record.raw == generated.joined


def _rebuild(generated: GeneratedRecord, fields: list[str], version: str = "v=STSv1") -> str:
    return "; ".join([version, *fields])


def _fields(generated: GeneratedRecord, record_id: str | None) -> list[str]:
    fields = [f"{k}={v}" for k, v in generated.extensions.items()]
    if record_id is not None:
        fields.insert(0, f"id={record_id}")
    return fields


MUTATIONS = {
    "drop id": (lambda g, d: _rebuild(g, _fields(g, None)), "sts_record.no_id"),
    "bad id char": (
        lambda g, d: _rebuild(g, _fields(g, g.id[:16] + d(st.sampled_from("-_.:/+!é")) + g.id[17:])),
        "sts_record.id_invalid_char",
    ),
    "over-long id": (
        lambda g, d: _rebuild(g, _fields(g, g.id + d(st.text(alphabet=ALNUM, min_size=33, max_size=60)))),
        "sts_record.id_too_long",
    ),
    "empty id": (lambda g, d: _rebuild(g, _fields(g, "")), "sts_record.id_empty"),
    "upper-case id key": (
        lambda g, d: _rebuild(g, [f"ID={g.id}", *_fields(g, None)]), "sts_record.id_wrong_case"),
    "wrong version": (
        lambda g, d: _rebuild(g, _fields(g, g.id),
                              "v=" + d(st.sampled_from(["STSv2", "stsv1", "STSV1", "STSv10", "STS", "sts1", ""]))),
        "sts_record.bad_version",
    ),
    "version not first": (
        lambda g, d: "; ".join([*_fields(g, g.id), "v=STSv1"]), "sts_record.version_not_first"),
    "no version": (lambda g, d: "; ".join(_fields(g, g.id)), "sts_record.no_version"),
    "missing separator": (lambda g, d: "v=STSv1 " + "; ".join(_fields(g, g.id)), "sts_record.missing_separator"),
    "empty field": (lambda g, d: _rebuild(g, ["", *_fields(g, g.id)]), "sts_record.empty_field"),
    "bad extension": (
        lambda g, d: _rebuild(g, ["ext=" + d(st.sampled_from(["a b", "a=b", "é"])), *_fields(g, g.id)]),
        "sts_record.bad_extension",
    ),
    "leading white space": (lambda g, d: " " + _rebuild(g, _fields(g, g.id)), "sts_record.leading_whitespace"),
    "trailing white space": (lambda g, d: _rebuild(g, _fields(g, g.id)) + " ", "sts_record.trailing_whitespace"),
    "space around =": (
        lambda g, d: _rebuild(g, [f"id ={g.id}", *_fields(g, None)]), "sts_record.whitespace_around_equals"),
}


@settings(max_examples=60, deadline=None)
@given(valid_records(), st.sampled_from(sorted(MUTATIONS)), st.data())
def test_each_single_mutation_yields_its_own_code(generated: GeneratedRecord, name: str, data) -> None:
    mutate, code = MUTATIONS[name]
    text = mutate(generated, data.draw)
    record = parse_sts_record([text])
    assert_consistent(record)
    assert record.status == "invalid", (name, text)
    assert error_codes(record) == {code}, (name, text, record.findings)


def test_two_valid_records_are_multiple_whatever_they_hold() -> None:
    @settings(max_examples=40, deadline=None)
    @given(valid_records(), valid_records())
    def check(a: GeneratedRecord, b: GeneratedRecord) -> None:
        record = parse_sts_record([list(a.strings), list(b.strings)])
        assert record.status == "multiple"
        assert error_codes(record) == {"sts_record.multiple"}

    check()


answers = st.one_of(
    st.none(),
    st.text(max_size=200),
    st.binary(max_size=200),
    st.lists(st.one_of(st.text(max_size=100), st.binary(max_size=100)), max_size=4),
    st.lists(st.lists(st.one_of(st.text(max_size=60), st.binary(max_size=60)), max_size=4), max_size=4),
    st.lists(st.builds(lambda a, b: a + b, st.sampled_from(["v=STSv1", "v=STSv1;", "id=", "v=", ""]),
                       st.text(alphabet="v=STSid1;- \t_.abc", max_size=40)), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(answers)
def test_arbitrary_answers_never_raise(answer) -> None:
    assert_consistent(parse_sts_record(answer))


def test_odd_inputs_never_raise() -> None:
    for answer in (42, [None], [[1, 2]], [b"\x00" * 10], "v=STSv1; id=1", b"v=STSv1; id=1", iter(["v=STSv1; id=1"])):
        assert_consistent(parse_sts_record(answer))
    assert parse_sts_record("v=STSv1; id=1").id == "1"  # a bare string is taken as one record


def test_megabytes_of_garbage_are_findings_not_exceptions() -> None:
    big = "v=STSv1; " + "x=y; " * 50_000 + "id=" + "9" * 100_000
    record = parse_sts_record([big])
    assert record.status == "invalid" and error_codes(record) == {"sts_record.id_too_long"}
    assert parse_sts_record([";" * 1_000_000]).status == "absent"
