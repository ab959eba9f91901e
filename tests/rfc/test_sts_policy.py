"""parse_sts_policy against RFC 8461 section 3.2: the RFC's example, a table of vectors, properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies_sts import GeneratedPolicy, domains, render, valid_policies

from collectors.rfc.sts_policy import StsPolicy, mx_problems, parse_sts_policy

RFC_EXAMPLE = (
    "version: STSv1\r\n"
    "mode: enforce\r\n"
    "mx: mail.example.com\r\n"
    "mx: *.example.net\r\n"
    "mx: backupmx.example.com\r\n"
    "max_age: 604800\r\n"
)
BASE = ["version: STSv1", "mode: enforce", "mx: mail.example.com", "max_age: 604800"]


def codes(policy: StsPolicy) -> set[str]:
    return {f.code for f in policy.findings}


def error_codes(policy: StsPolicy) -> set[str]:
    return {f.code for f in policy.findings if f.severity == "error"}


def warning_codes(policy: StsPolicy) -> set[str]:
    return {f.code for f in policy.findings if f.severity == "warning"}


def assert_consistent(policy: StsPolicy) -> None:
    assert policy.ok == (not error_codes(policy))
    assert policy.mode in (None, "enforce", "testing", "none")
    assert policy.line_ending in (None, "LF", "CRLF", "mixed")
    assert all(f.severity in ("error", "warning") and f.code.startswith("sts_policy.") for f in policy.findings)
    assert all(isinstance(m, str) and m for m in policy.mx)


# --- the RFC's example (section 3.2) ----------------------------------------------------


@pytest.mark.parametrize("ending", ["\r\n", "\n"])
def test_rfc_example(ending: str) -> None:
    policy = parse_sts_policy(RFC_EXAMPLE.replace("\r\n", ending).encode())
    assert policy.ok
    assert policy.version == "STSv1"
    assert policy.mode == "enforce"
    assert policy.max_age == 604800
    assert policy.mx == ("mail.example.com", "*.example.net", "backupmx.example.com")
    assert policy.line_ending == ("CRLF" if ending == "\r\n" else "LF")
    assert policy.extensions == {}
    assert policy.findings == ()


def test_str_and_bytes_give_the_same_result() -> None:
    assert parse_sts_policy(RFC_EXAMPLE) == parse_sts_policy(RFC_EXAMPLE.encode())


# --- vectors: (lines or body, error codes, warning codes) -------------------------------


def _replace(old: str, *new: str) -> list[str]:
    index = BASE.index(old)
    return [*BASE[:index], *new, *BASE[index + 1:]]


VECTORS = [
    # valid variants
    ("no final terminator", "\n".join(BASE), set(), set()),
    ("fields in any order", render(list(reversed(BASE))), set(), set()),
    ("no space after colon", render([line.replace(": ", ":") for line in BASE]), set(), set()),
    ("tabs after colon and at line end", render([line.replace(": ", ":\t") + " \t" for line in BASE]), set(), set()),
    ("mode testing", render(_replace("mode: enforce", "mode: testing")), set(), set()),
    ("mode none without mx", render(["version: STSv1", "mode: none", "max_age: 86400"]), set(), set()),
    ("max_age 0", render(_replace("max_age: 604800", "max_age: 0")), set(), {"sts_policy.max_age_zero"}),
    ("max_age limit", render(_replace("max_age: 604800", "max_age: 31557600")), set(), set()),
    ("max_age ten digits with zeros", render(_replace("max_age: 604800", "max_age: 0000604800")), set(), set()),
    ("unknown field", render([*BASE, "foo: bar baz"]), set(), {"sts_policy.unknown_field"}),
    ("unknown field with UTF-8 value", render([*BASE, "note: grüße, ünïcode"]), set(), {"sts_policy.unknown_field"}),
    ("misspelt field", render([*BASE, "Mode: testing"]), set(), {"sts_policy.misspelt_field"}),
    ("repeated mode: first wins", render([*BASE, "mode: none"]), set(), {"sts_policy.duplicate_field"}),
    ("repeated max_age", render([*BASE, "max_age: x"]), set(), {"sts_policy.duplicate_field"}),
    ("repeated mx is fine", render([*BASE, "mx: *.example.com"]), set(), set()),
    ("same mx twice", render([*BASE, "mx: mail.example.com"]), set(), {"sts_policy.mx_duplicate"}),
    ("mixed line endings", "version: STSv1\r\nmode: enforce\nmx: a.example.com\r\nmax_age: 1\n", set(),
     {"sts_policy.mixed_line_endings"}),
    ("single-label mx", render(_replace("mx: mail.example.com", "mx: localhost")), set(),
     {"sts_policy.mx_single_label"}),
    ("upper-case mx", render(_replace("mx: mail.example.com", "mx: MAIL.Example.COM")), set(), set()),
    ("A-label mx", render(_replace("mx: mail.example.com", "mx: mail.xn--bcher-kva.de")), set(), set()),
    # required fields
    ("no version", render(BASE[1:]), {"sts_policy.no_version"}, set()),
    ("no mode", render(_replace("mode: enforce")), {"sts_policy.no_mode"}, set()),
    ("no max_age", render(BASE[:-1]), {"sts_policy.no_max_age"}, set()),
    ("no mx in enforce", render(_replace("mx: mail.example.com")), {"sts_policy.no_mx"}, set()),
    ("no mx in testing", render(["version: STSv1", "mode: testing", "max_age: 1"]), {"sts_policy.no_mx"}, set()),
    ("Version is not version", render(["Version: STSv1", *BASE[1:]]), {"sts_policy.no_version"},
     {"sts_policy.misspelt_field"}),
    ("max-age is not max_age", render([*BASE[:-1], "max-age: 1"]), {"sts_policy.no_max_age"},
     {"sts_policy.misspelt_field"}),
    # values
    ("version STSv2", render(_replace("version: STSv1", "version: STSv2")), {"sts_policy.bad_version"}, set()),
    ("version stsv1", render(_replace("version: STSv1", "version: stsv1")), {"sts_policy.bad_version"}, set()),
    ("empty version", render(_replace("version: STSv1", "version:")), {"sts_policy.bad_version"}, set()),
    ("mode Enforce", render(_replace("mode: enforce", "mode: Enforce")), {"sts_policy.bad_mode"}, set()),
    ("mode report", render(_replace("mode: enforce", "mode: report")), {"sts_policy.bad_mode"}, set()),
    ("mode with comment", render(_replace("mode: enforce", "mode: enforce # yes")), {"sts_policy.bad_mode"}, set()),
    ("max_age 1w", render(_replace("max_age: 604800", "max_age: 1w")), {"sts_policy.bad_max_age"}, set()),
    ("max_age negative", render(_replace("max_age: 604800", "max_age: -1")), {"sts_policy.bad_max_age"}, set()),
    ("max_age float", render(_replace("max_age: 604800", "max_age: 1.5")), {"sts_policy.bad_max_age"}, set()),
    ("max_age empty", render(_replace("max_age: 604800", "max_age:")), {"sts_policy.bad_max_age"}, set()),
    ("max_age Arabic-Indic digits", render(_replace("max_age: 604800", "max_age: ٦٠٤٨٠٠")),
     {"sts_policy.bad_max_age"}, set()),
    ("max_age 11 digits", render(_replace("max_age: 604800", "max_age: 00000604800")),
     {"sts_policy.max_age_too_long"}, set()),
    ("max_age over a year", render(_replace("max_age: 604800", "max_age: 31557601")),
     {"sts_policy.max_age_too_large"}, set()),
    # mx values
    *[
        (f"mx {value!r}", render(_replace("mx: mail.example.com", f"mx: {value}")), {code}, set())
        for value, code in [
            ("postmaster@example.com", "sts_policy.mx_email"),
            ("https://mail.example.com", "sts_policy.mx_url"),
            ("smtp://mail.example.com:25", "sts_policy.mx_url"),
            ("mail.example.com.", "sts_policy.mx_trailing_dot"),
            ("192.0.2.25", "sts_policy.mx_ip_address"),
            ("[192.0.2.25]", "sts_policy.mx_ip_address"),
            ("2001:db8::25", "sts_policy.mx_ip_address"),
            ("[IPv6:2001:db8::25]", "sts_policy.mx_ip_address"),
            ("mail.example.com:25", "sts_policy.mx_port"),
            ("mail_1.example.com", "sts_policy.mx_bad_label"),
            ("-mail.example.com", "sts_policy.mx_bad_label"),
            ("mail-.example.com", "sts_policy.mx_bad_label"),
            ("mail..example.com", "sts_policy.mx_bad_label"),
            ("a" * 64 + ".example.com", "sts_policy.mx_bad_label"),
            (".".join(["a" * 63] * 4) + ".com", "sts_policy.mx_too_long"),
            (".example.com", "sts_policy.mx_leading_dot"),
            ("*example.com", "sts_policy.mx_bad_wildcard"),
            ("*", "sts_policy.mx_bad_wildcard"),
            ("*.", "sts_policy.mx_bad_wildcard"),
            ("*.*.example.com", "sts_policy.mx_bad_wildcard"),
            ("mail.*.example.com", "sts_policy.mx_bad_wildcard"),
            ("a.example.com, b.example.com", "sts_policy.mx_multiple_values"),
            ("a.example.com b.example.com", "sts_policy.mx_multiple_values"),
            ("mail.bücher.de", "sts_policy.mx_non_ascii"),
        ]
    ],
    ("empty mx", render([*BASE, "mx:"]), {"sts_policy.mx_empty"}, set()),
    ("only an empty mx", render(_replace("mx: mail.example.com", "mx:   ")), {"sts_policy.mx_empty", "sts_policy.no_mx"},
     set()),
    # lines
    ("blank line between fields", render([*BASE[:2], "", *BASE[2:]]), {"sts_policy.blank_line"}, set()),
    ("blank line at the end", render([*BASE, ""]), {"sts_policy.blank_line"}, set()),
    ("white space only line", render([*BASE[:2], " \t", *BASE[2:]]), {"sts_policy.blank_line"}, set()),
    ("leading white space", render([*BASE[:2], " " + BASE[2], *BASE[3:]]), {"sts_policy.leading_whitespace"},
     set()),
    ("space before colon", render(_replace("mode: enforce", "mode : enforce")),
     {"sts_policy.whitespace_before_colon"}, set()),
    ("line without colon", render([*BASE, "mx mail.example.com"]), {"sts_policy.missing_colon"}, set()),
    ("bad field name", render([*BASE, "_x: y"]), {"sts_policy.bad_field_name"}, set()),
    ("long field name", render([*BASE, "x" * 33 + ": y"]), {"sts_policy.bad_field_name"}, set()),
    ("extension without value", render([*BASE, "foo:"]), {"sts_policy.bad_extension"}, set()),
    ("extension with a control character", render([*BASE, "foo: a\x01b"]), {"sts_policy.bad_extension"}, set()),
    ("bare CR line ends", "\r".join(BASE) + "\r", {"sts_policy.bare_cr"}, set()),
    # the body
    ("empty", "", {"sts_policy.empty"}, set()),
    ("only newlines", "\r\n\n", {"sts_policy.empty"}, set()),
    ("byte order mark", "\ufeff" + render(BASE), {"sts_policy.bom"}, set()),
    ("NUL", render(BASE) + "\x00", {"sts_policy.nul_byte", "sts_policy.missing_colon"}, set()),
    ("HTML page", "<!DOCTYPE html>\n<html><body>Not Found</body></html>\n",
     {"sts_policy.looks_like_html", "sts_policy.missing_colon", "sts_policy.no_version", "sts_policy.no_mode",
      "sts_policy.no_max_age", "sts_policy.no_mx"}, set()),
    ("Latin-1 bytes", render(BASE).encode() + "note: \xe9\n".encode("latin-1"), {"sts_policy.not_utf8"},
     {"sts_policy.unknown_field"}),
]


@pytest.mark.parametrize(("name", "body", "errors", "warnings"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vector(name: str, body, errors: set[str], warnings: set[str]) -> None:
    policy = parse_sts_policy(body)
    assert_consistent(policy)
    assert error_codes(policy) == errors
    assert warning_codes(policy) == warnings


def test_first_of_a_repeated_field_counts() -> None:
    policy = parse_sts_policy(render([*BASE, "mode: none", "max_age: 1", "version: STSv2"]))
    assert policy.ok
    assert (policy.mode, policy.max_age, policy.version) == ("enforce", 604800, "STSv1")


def test_values_are_reported_even_when_wrong() -> None:
    policy = parse_sts_policy(render(["version: STSv2", "mode: Enforce", "mx: a@b.example", "max_age: 99999999999"]))
    assert not policy.ok
    assert policy.version == "STSv2"
    assert policy.mode is None  # only the three modes are a mode
    assert policy.max_age == 99999999999
    assert policy.mx == ("a@b.example",)


def test_extensions_keep_their_first_value() -> None:
    policy = parse_sts_policy(render([*BASE, "foo: 1", "foo: 2", "bar: x y"]))
    assert policy.extensions == {"foo": "1", "bar": "x y"}
    assert warning_codes(policy) == {"sts_policy.unknown_field", "sts_policy.duplicate_field"}


def test_line_ending_is_none_for_a_single_unterminated_line() -> None:
    assert parse_sts_policy("version: STSv1").line_ending is None


def test_mx_problems_accepts_valid_patterns() -> None:
    for value in ("mail.example.com", "*.example.com", "MX1.EXAMPLE.COM", "a.b", "1mail.example.com", "xn--bcher-kva.de"):
        assert mx_problems(value) == [], value


def test_non_ascii_mx_suggests_the_a_label() -> None:
    [(code, _, message)] = mx_problems("*.bücher.de")
    assert code == "sts_policy.mx_non_ascii"
    assert "*.xn--bcher-kva.de" in message


# --- properties --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(valid_policies())
def test_every_generated_valid_policy_parses_and_round_trips(generated: GeneratedPolicy) -> None:
    for body in (generated.text, generated.text.encode()):
        policy = parse_sts_policy(body)
        assert_consistent(policy)
        assert error_codes(policy) == set(), (generated.text, policy.findings)
        assert policy.ok
        assert policy.version == "STSv1"
        assert policy.mode == generated.mode
        assert policy.max_age == generated.max_age
        assert policy.mx == generated.mx
        assert policy.extensions == generated.extensions
        assert policy.line_ending == generated.line_ending


def _without(generated: GeneratedPolicy, *names: str) -> list[str]:
    return [line for name, line in generated.lines if name not in names]


def _with_mode(generated: GeneratedPolicy, mode: str) -> list[str]:
    return [f"mode: {mode}" if name == "mode" else line for name, line in generated.lines]


def _set(generated: GeneratedPolicy, field_name: str, value: str) -> list[str]:
    return [f"{field_name}: {value}" if name == field_name else line for name, line in generated.lines]


# name -> (mutation(generated, draw) -> lines, the one error code it must produce)
MUTATIONS = {
    "drop version": (lambda g, d: _without(g, "version"), "sts_policy.no_version"),
    "bad version": (lambda g, d: _set(g, "version", d(st.sampled_from(["STSv2", "stsv1", "STSV1", "1", "STS v1"]))),
                    "sts_policy.bad_version"),
    "drop mode": (lambda g, d: [*_without(g, "mode", "mx"), "mx: mail.example.com"], "sts_policy.no_mode"),
    "bad mode": (lambda g, d: [*_with_mode(g, d(st.sampled_from(["Enforce", "TESTING", "reject", "off", "none;"]))),
                              "mx: mail.example.com"], "sts_policy.bad_mode"),
    "drop max_age": (lambda g, d: _without(g, "max_age"), "sts_policy.no_max_age"),
    "bad max_age": (lambda g, d: _set(g, "max_age", d(st.sampled_from(["1d", "-5", "86400s", "1e6", "0x10", "1 000"]))),
                    "sts_policy.bad_max_age"),
    "long max_age": (lambda g, d: _set(g, "max_age", str(d(st.integers(10**10, 10**30)))), "sts_policy.max_age_too_long"),
    "large max_age": (lambda g, d: _set(g, "max_age", str(d(st.integers(31557601, 9999999999)))),
                      "sts_policy.max_age_too_large"),
    "missing mx": (lambda g, d: _with_mode(_Lines(_without(g, "mx")), d(st.sampled_from(["enforce", "testing"]))),
                   "sts_policy.no_mx"),
    "mx e-mail": (lambda g, d: [*_without(g), "mx: postmaster@" + d(domains())], "sts_policy.mx_email"),
    "mx URL": (lambda g, d: [*_without(g), "mx: https://" + d(domains()) + "/"], "sts_policy.mx_url"),
    "mx trailing dot": (lambda g, d: [*_without(g), "mx: " + d(domains()) + "."], "sts_policy.mx_trailing_dot"),
    "mx empty": (lambda g, d: [*_without(g), "mx:"], "sts_policy.mx_empty"),
    "mx IPv4": (lambda g, d: [*_without(g), "mx: " + ".".join(str(d(st.integers(0, 255))) for _ in range(4))],
                "sts_policy.mx_ip_address"),
    "mx bad label": (lambda g, d: [*_without(g), "mx: a_b." + d(domains())], "sts_policy.mx_bad_label"),
    "mx bad wildcard": (lambda g, d: [*_without(g), "mx: *" + d(domains())], "sts_policy.mx_bad_wildcard"),
    "mx leading dot": (lambda g, d: [*_without(g), "mx: ." + d(domains())], "sts_policy.mx_leading_dot"),
    "mx list": (lambda g, d: [*_without(g), "mx: " + d(domains()) + ", " + d(domains())],
                "sts_policy.mx_multiple_values"),
    "mx port": (lambda g, d: [*_without(g), "mx: " + d(domains()) + ":25"], "sts_policy.mx_port"),
    "blank line": (lambda g, d: [*_without(g), ""], "sts_policy.blank_line"),
    "space before colon": (lambda g, d: [*_without(g), "foo : bar"], "sts_policy.whitespace_before_colon"),
    "no colon": (lambda g, d: [*_without(g), "foo bar"], "sts_policy.missing_colon"),
}


class _Lines:
    """Adapter so _with_mode can run on already-filtered lines."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = tuple((line.partition(":")[0], line) for line in lines)


@settings(max_examples=80, deadline=None)
@given(valid_policies(), st.sampled_from(sorted(MUTATIONS)), st.data())
def test_each_single_mutation_yields_its_own_code(generated: GeneratedPolicy, name: str, data) -> None:
    mutate, code = MUTATIONS[name]
    lines = mutate(generated, data.draw)
    body = render(lines, data.draw(st.sampled_from(["\n", "\r\n"])))
    policy = parse_sts_policy(body)
    assert_consistent(policy)
    assert not policy.ok
    assert error_codes(policy) == {code}, (name, body, policy.findings)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400),
                 st.lists(st.sampled_from(["version: STSv1", "mode: enforce", "mode: none", "mx: a.example",
                                           "max_age: 1", "mx: *.", "", " ", "\r", ":", "x:y", "\x00", "\ufeff"]),
                          max_size=10).map("\n".join)))
def test_arbitrary_bodies_never_raise(body) -> None:
    assert_consistent(parse_sts_policy(body))


def test_odd_inputs_never_raise() -> None:
    for body in (None, 42, bytearray(b"version: STSv1"), memoryview(b"mode: none"), ["version: STSv1"]):
        assert_consistent(parse_sts_policy(body))  # type: ignore[arg-type]


def test_megabytes_of_garbage_give_bounded_findings() -> None:
    import random

    rng = random.Random(8461)
    noise = rng.randbytes(1 << 20)
    for body in (noise, b"\x00" * (4 << 20), b"x" * (4 << 20), b"\n" * (1 << 18) + b"version: STSv1",
                 b"mx: " + b" " * (2 << 20) + b"x", b"foo bar\n" * 100_000, b"mx: a.example\n" * 20_000):
        policy = parse_sts_policy(body)
        assert_consistent(policy)
        assert not policy.ok
        assert len(policy.findings) < 200
