"""parse_tlsrpt_record against RFC 8460 section 3: examples, edge cases and properties."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.rfc.tlsrpt_record import TlsRptRecord, parse_tlsrpt_record


def codes(record: TlsRptRecord) -> set[str]:
    return {f.code for f in record.findings}


def error_codes(record: TlsRptRecord) -> set[str]:
    return {f.code for f in record.findings if f.severity == "error"}


# --- the RFC's examples (section 3 and Appendix A) -------------------------------------


def test_rfc_mailto_example() -> None:
    record = parse_tlsrpt_record(["v=TLSRPTv1;rua=mailto:reports@example.com"])
    assert record.ok and record.status == "valid"
    assert record.rua == ("mailto:reports@example.com",)
    assert record.raw == "v=TLSRPTv1;rua=mailto:reports@example.com"
    assert record.findings == ()


def test_rfc_https_example() -> None:
    record = parse_tlsrpt_record([["v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt"]])
    assert record.ok and record.rua == ("https://reporting.example.com/v1/tlsrpt",)


def test_comma_separated_uris_with_white_space() -> None:
    record = parse_tlsrpt_record(
        ["v=TLSRPTv1 ;\trua=mailto:a@example.com , https://r.example.net/tls ; "]
    )
    assert record.ok, record.findings
    assert record.rua == ("mailto:a@example.com", "https://r.example.net/tls")
    # Valid by the ABNF, but not literally "v=TLSRPTv1;": a warning.
    assert codes(record) == {"tlsrpt_record.version_separator_whitespace"}


def test_strings_of_one_record_are_joined_without_spaces() -> None:
    record = parse_tlsrpt_record([["v=TLSRPTv1;rua=mailto:rep", "orts@example.com"]])
    assert record.ok
    assert record.rua == ("mailto:reports@example.com",)
    assert record.records == ("v=TLSRPTv1;rua=mailto:reports@example.com",)


def test_bytes_strings_from_dns_are_accepted() -> None:
    record = parse_tlsrpt_record([[b"v=TLSRPTv1;", b"rua=mailto:r@example.com"]])
    assert record.ok and record.rua == ("mailto:r@example.com",)


def test_other_txt_records_are_discarded_silently() -> None:
    record = parse_tlsrpt_record(["v=spf1 -all", "v=TLSRPTv1;rua=mailto:r@example.com", "hello"])
    assert record.ok and record.findings == ()
    assert record.records == ("v=spf1 -all", "v=TLSRPTv1;rua=mailto:r@example.com", "hello")


def test_extensions_are_kept_and_ignored() -> None:
    record = parse_tlsrpt_record(["v=TLSRPTv1; rua=mailto:r@example.com; x-future=on; k9.a_b=1"])
    assert record.ok
    assert record.extensions == {"x-future": "on", "k9.a_b": "1"}


@pytest.mark.parametrize("txt", [[], None, ["v=spf1 -all"], [["v=STSv1; id=1"]]])
def test_absent(txt: object) -> None:
    record = parse_tlsrpt_record(txt)
    assert record.status == "absent" and not record.ok and record.rua == ()


def test_two_records_are_multiple_and_unusable() -> None:
    record = parse_tlsrpt_record(["v=TLSRPTv1;rua=mailto:a@example.com",
                                  "v=TLSRPTv1;rua=mailto:b@example.com"])
    assert record.status == "multiple" and not record.ok
    assert record.rua == () and record.raw is None
    assert error_codes(record) == {"tlsrpt_record.multiple"}


def test_a_lookalike_next_to_a_valid_record_is_a_warning() -> None:
    record = parse_tlsrpt_record(["v=tlsrptv1;rua=mailto:a@example.com",
                                  "v=TLSRPTv1;rua=mailto:b@example.com"])
    assert record.ok and record.rua == ("mailto:b@example.com",)
    assert codes(record) == {"tlsrpt_record.discarded_record"}


@pytest.mark.parametrize(
    ("txt", "code"),
    [
        ("v=tlsrptv1; rua=mailto:r@example.com", "tlsrpt_record.bad_version"),
        ("V=TLSRPTv1; rua=mailto:r@example.com", "tlsrpt_record.bad_version"),
        ("v=TLSRPTv2; rua=mailto:r@example.com", "tlsrpt_record.bad_version"),
        (" v=TLSRPTv1; rua=mailto:r@example.com", "tlsrpt_record.bad_version"),
        ("v = TLSRPTv1; rua=mailto:r@example.com", "tlsrpt_record.bad_version"),
        ("v=TLSRPTv1", "tlsrpt_record.no_rua"),
        ("v=TLSRPTv1;", "tlsrpt_record.no_rua"),
        ("v=TLSRPTv1; ruf=mailto:r@example.com", "tlsrpt_record.no_rua"),
        ("v=TLSRPTv1; rua=http://r.example.com/", "tlsrpt_record.bad_scheme"),
        ("v=TLSRPTv1; rua=ftp://r.example.com/", "tlsrpt_record.bad_scheme"),
        ("v=TLSRPTv1; rua=mailto:a@example.com,ldap://r.example.com", "tlsrpt_record.bad_scheme"),
        ("v=TLSRPTv1; rua=r@example.com", "tlsrpt_record.bad_uri"),
        ("v=TLSRPTv1; rua=", "tlsrpt_record.bad_uri"),
        ("v=TLSRPTv1; rua=mailto:a@example.com,", "tlsrpt_record.bad_uri"),
        ("v=TLSRPTv1; rua=mailto:a@example.com!10m", "tlsrpt_record.bad_uri"),
        ("v=TLSRPTv1; rua=mailto:a@example.com mailto:b@example.com", "tlsrpt_record.bad_uri"),
        ("v=TLSRPTv1; rua=mailto:", "tlsrpt_record.bad_uri"),
        ("v=TLSRPTv1; rua=https:///path", "tlsrpt_record.bad_uri"),
        ("v=TLSRPTv1; rua=https://r.example.com/%zz", "tlsrpt_record.bad_uri"),
        ("v=TLSRPTv1;;rua=mailto:r@example.com", "tlsrpt_record.empty_field"),
        ("v=TLSRPTv1; rua = mailto:r@example.com", "tlsrpt_record.bad_whitespace"),
        ("v=TLSRPTv1;\nrua=mailto:r@example.com", "tlsrpt_record.bad_whitespace"),
        ("v=TLSRPTv1 rua=mailto:r@example.com", "tlsrpt_record.bad_whitespace"),
        ("v=TLSRPTv1; rua=mailto:r@example.com ", "tlsrpt_record.trailing_whitespace"),
        ("v=TLSRPTv1; rua=mailto:r@example.com\t", "tlsrpt_record.trailing_whitespace"),
        ("v=TLSRPTv1; rua=mailto:r@example.com; x=1  ", "tlsrpt_record.trailing_whitespace"),
        ("v=TLSRPTv1; rua=mailto:r@example.com; _x=1", "tlsrpt_record.bad_extension"),
        ("v=TLSRPTv1; rua=mailto:r@example.com; x=a=b", "tlsrpt_record.bad_extension"),
        ("v=TLSRPTv1; rua=mailto:r@example.com; x=", "tlsrpt_record.bad_extension"),
        ("v=TLSRPTv1; rua=mailto:r@example.com; flag", "tlsrpt_record.bad_extension"),
        ("v=TLSRPTv1; rua=mailto:r@example.com; " + "a" * 33 + "=1", "tlsrpt_record.bad_extension"),
        ("v=TLSRPTv1; rua=mailto:r@example.com; x=caf\u00e9", "tlsrpt_record.bad_extension"),
    ],
)
def test_invalid_records_say_why(txt: str, code: str) -> None:
    record = parse_tlsrpt_record([txt])
    assert record.status == "invalid" and not record.ok
    assert error_codes(record) == {code}


def test_upper_case_rua_is_an_extension_by_the_abnf() -> None:
    record = parse_tlsrpt_record(["v=TLSRPTv1; RUA=mailto:r@example.com"])
    assert not record.ok
    assert error_codes(record) == {"tlsrpt_record.no_rua"}
    assert "tlsrpt_record.rua_case" in codes(record)


def test_repeated_rua_is_combined_with_a_warning() -> None:
    record = parse_tlsrpt_record(["v=TLSRPTv1; rua=mailto:a@example.com; rua=https://r.example.com/"])
    assert record.ok
    assert record.rua == ("mailto:a@example.com", "https://r.example.com/")
    assert codes(record) == {"tlsrpt_record.duplicate_rua"}


def test_scheme_is_case_insensitive() -> None:
    record = parse_tlsrpt_record(["v=TLSRPTv1; rua=MAILTO:a@example.com,HTTPS://r.example.com/"])
    assert record.ok, record.findings


def test_dnspython_rdata_is_joined_like_its_strings() -> None:
    import dns.rdata

    rdata = dns.rdata.from_text("IN", "TXT", '"v=TLSRPTv1;" "rua=mailto:r@example.com"')
    record = parse_tlsrpt_record([rdata])
    assert record.ok and record.raw == "v=TLSRPTv1;rua=mailto:r@example.com"


def test_undecodable_bytes_are_kept_and_flagged() -> None:
    record = parse_tlsrpt_record([b"v=TLSRPTv1;rua=mailto:r@ex\xffample.com"])
    assert "\\xff" in record.raw
    assert "tlsrpt_record.not_utf8" in {f.code for f in record.findings}


def test_findings_of_one_code_are_bounded() -> None:
    record = parse_tlsrpt_record(["v=TLSRPTv1;rua=mailto:r@example.com" + ";;" * 5000])
    assert not record.ok and len(record.findings) <= 11
    assert record.findings[-1].message.endswith("more like this")


@pytest.mark.parametrize("garbage", [
    ["\x00" * 100], ["v=TLSRPTv1;" + "\x00;" * 50], [b"\xff\xfe\x00"], [["v=TLSRPTv1;", None]],
    [12345], 7, ["v=TLSRPTv1;" + "rua=mailto:a@b.example," * 10_000],
])
def test_garbage_never_raises(garbage: object) -> None:
    record = parse_tlsrpt_record(garbage)
    assert isinstance(record, TlsRptRecord)


# --- properties -----------------------------------------------------------------------

_label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
_domain = st.lists(_label, min_size=2, max_size=4).map(".".join)
_local = st.text(string.ascii_letters + string.digits + "._+-", min_size=1, max_size=10)
_path = st.text(string.ascii_letters + string.digits + "/_-.~", max_size=12)
_mailto = st.builds(lambda scheme, local, domain: f"{scheme}:{local}@{domain}",
                    st.sampled_from(["mailto", "MAILTO", "mailto"]), _local, _domain)
_https = st.builds(lambda domain, path: f"https://{domain}/{path}", _domain, _path)
_uris = st.lists(st.one_of(_mailto, _https), min_size=1, max_size=3)
_wsp = st.text(" \t", max_size=2)
_ext_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}", fullmatch=True).filter(
    lambda n: not n.lower().endswith("rua"))
_ext_value = st.text(
    alphabet=st.characters(codec="ascii", min_codepoint=0x21, max_codepoint=0x7E,
                           exclude_characters="=;"),
    min_size=1, max_size=10,
)
_extensions = st.lists(st.tuples(_ext_name, _ext_value), max_size=3, unique_by=lambda e: e[0])


@st.composite
def valid_records(draw: st.DrawFn) -> tuple[list[str], list[str], dict[str, str]]:
    """A valid record as (its TXT strings, its rua URIs, its extensions)."""
    uris = draw(_uris)
    extensions = draw(_extensions)
    comma = [draw(_wsp) + "," + draw(_wsp) for _ in uris[1:]]
    rua = "rua=" + uris[0] + "".join(c + u for c, u in zip(comma, uris[1:], strict=True))
    fields = [f"{n}={v}" for n, v in extensions]
    fields.insert(draw(st.integers(0, len(fields))), rua)
    text = "v=TLSRPTv1"
    for f in fields:
        text += draw(_wsp) + ";" + draw(_wsp) + f
    if draw(st.booleans()):
        text += draw(_wsp) + ";" + draw(_wsp)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=3)))
    strings = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    return strings, uris, dict(extensions)


@settings(max_examples=200, deadline=None)
@given(valid_records(), st.lists(st.sampled_from(["v=spf1 -all", "google-site-verification=x"]),
                                 max_size=2))
def test_every_generated_valid_record_parses(generated, others: list[str]) -> None:
    strings, uris, extensions = generated
    record = parse_tlsrpt_record([*others, strings])
    assert record.ok and record.status == "valid", record.findings
    spaced = "".join(strings)[len("v=TLSRPTv1")] in " \t"
    assert codes(record) == ({"tlsrpt_record.version_separator_whitespace"} if spaced else set())
    assert record.rua == tuple(uris)
    assert record.extensions == extensions
    assert record.raw == "".join(strings)


def _swap_version(text: str, variant: str) -> str:
    return variant + text[len("v=TLSRPTv1"):]


# Each mutation of a valid record and the one error code it must produce.
MUTATIONS = {
    "version_case": (lambda t, d: _swap_version(t, d(st.sampled_from(
        ["v=tlsrptv1", "V=TLSRPTv1", "v=TLSRPTV1", "v=TlsRptv1"]))), "tlsrpt_record.bad_version"),
    "version_number": (lambda t, d: _swap_version(t, "v=TLSRPTv2"), "tlsrpt_record.bad_version"),
    "scheme": (lambda t, d: t.replace("rua=", "rua=" + d(st.sampled_from(
        ["http://h.example/,", "ftp://h.example/,", "ldap://h.example,"])), 1), "tlsrpt_record.bad_scheme"),
    "no_scheme": (lambda t, d: t.replace("rua=", "rua=reports@example.com,", 1), "tlsrpt_record.bad_uri"),
    "bang": (lambda t, d: t.replace("rua=", "rua=mailto:r@example.com!10m,", 1), "tlsrpt_record.bad_uri"),
    "empty_field": (lambda t, d: t.replace(";", ";;", 1), "tlsrpt_record.empty_field"),
    "space_around_equals": (lambda t, d: t.replace("rua=", "rua =", 1), "tlsrpt_record.bad_whitespace"),
    "bad_extension_name": (lambda t, d: t + ";" + d(st.sampled_from(["_x", "-x", "a" * 33, "x y"])) + "=1",
                           "tlsrpt_record.bad_extension"),
    "bad_extension_value": (lambda t, d: t + ";x=" + d(st.sampled_from(["a=b", "", "a b", "\u00e9"])),
                            "tlsrpt_record.bad_extension"),
    "trailing_whitespace": (lambda t, d: t + d(st.text(" \t", min_size=1, max_size=3)),
                            "tlsrpt_record.trailing_whitespace"),
}


def _drop_rua(text: str) -> str:
    version, *fields = text.split(";")
    kept = ";".join([version, *(f for f in fields if not f.strip(" \t").startswith("rua="))])
    return kept.rstrip(" \t")  # the WSP before a dropped last field would end the record


@settings(max_examples=300, deadline=None)
@given(valid_records(), st.sampled_from(sorted(MUTATIONS)), st.data())
def test_each_single_mutation_yields_its_own_code(generated, name: str, data: st.DataObject) -> None:
    text = "".join(generated[0]).rstrip(" \t;")
    mutate, code = MUTATIONS[name]
    record = parse_tlsrpt_record([mutate(text, data.draw)])
    assert not record.ok and record.status == "invalid"
    assert error_codes(record) == {code}, (name, record)


@settings(max_examples=100, deadline=None)
@given(valid_records())
def test_dropping_rua_yields_no_rua(generated) -> None:
    record = parse_tlsrpt_record([_drop_rua("".join(generated[0]))])
    assert error_codes(record) == {"tlsrpt_record.no_rua"}


@settings(max_examples=100, deadline=None)
@given(valid_records(), valid_records())
def test_two_valid_records_yield_multiple(first, second) -> None:
    record = parse_tlsrpt_record([first[0], second[0]])
    assert record.status == "multiple" and error_codes(record) == {"tlsrpt_record.multiple"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=80), st.lists(st.text(max_size=40), max_size=3),
                          st.binary(max_size=40)), max_size=4))
def test_arbitrary_input_never_raises(txt) -> None:
    record = parse_tlsrpt_record(txt)
    assert record.status in {"absent", "valid", "invalid", "multiple"}
    assert record.ok == (record.status == "valid")
