"""mx_matches against RFC 8461 section 4.1, and classify_mismatch's classes for uncovered MX hosts."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies_sts import domains, labels

from collectors.rfc.mx_match import classify_mismatch, mx_matches, normalize_name

POLICY = ["mail.example.com", "*.example.net", "backupmx.example.com"]

MATCH_VECTORS = [
    # exact names, case-insensitive (section 4.1), trailing root dot ignored
    ("mail.example.com", POLICY, True),
    ("MAIL.Example.COM", POLICY, True),
    ("mail.example.com.", POLICY, True),
    ("mail.example.com", ["MAIL.EXAMPLE.COM."], True),
    ("backupmx.example.com", POLICY, True),
    ("other.example.com", POLICY, False),
    ("example.com", POLICY, False),
    ("mail.example.com.evil.test", POLICY, False),
    ("xmail.example.com", POLICY, False),
    # the wildcard stands for exactly one left-most label (section 4.1's own example)
    ("mx1.example.net", POLICY, True),
    ("MX1.EXAMPLE.NET.", POLICY, True),
    ("example.net", POLICY, False),
    ("foo.bar.example.net", POLICY, False),
    (".example.net", POLICY, False),
    ("mx1.example.net", ["*.EXAMPLE.NET."], True),
    ("a.com", ["*.com"], True),
    # a "*" is only a wildcard as the whole left-most label
    ("mx1.example.net", ["*example.net"], False),
    ("mx1.example.net", ["mx*.example.net"], False),
    ("a.mx1.example.net", ["*.*.example.net"], False),
    ("*.example.net", ["*.example.net"], True),  # the label "*" is one label; harmless
    # internationalised names compare as A-labels
    ("mail.bücher.de", ["mail.xn--bcher-kva.de"], True),
    ("mail.xn--bcher-kva.de", ["mail.bücher.de"], True),
    ("MAIL.BÜCHER.DE", ["mail.xn--bcher-kva.de"], True),
    ("mx.xn--bcher-kva.de", ["*.bücher.de"], True),
    ("mx.bücher.de", ["*.xn--bcher-kva.de"], True),
    ("mail。bücher。de", ["mail.xn--bcher-kva.de"], True),  # UTS 46 maps the ideographic full stop
    ("mail.bücher.de", ["mail.bucher.de"], False),
    # names that cannot be converted match nothing (and do not raise)
    ("mail.\udcffbad.de", ["mail.\udcffbad.de"], False),
    ("mail." + "ü" * 80 + ".de", ["mail." + "ü" * 80 + ".de"], False),
    # nothing to compare
    ("", POLICY, False),
    (".", POLICY, False),
    ("mail.example.com", [], False),
    ("mail.example.com", [""], False),
    ("mail.example.com", ["*."], False),
    ("mail.example.com", ["*"], False),
    ("mail..example.com", ["mail..example.com"], False),
]


@pytest.mark.parametrize(("host", "patterns", "expected"), MATCH_VECTORS,
                         ids=[f"{h!r}-{p[:1]!r}" for h, p, _ in MATCH_VECTORS])
def test_match_vector(host: str, patterns: list[str], expected: bool) -> None:
    assert mx_matches(host, patterns) is expected


def test_odd_inputs_never_raise() -> None:
    assert mx_matches(None, POLICY) is False  # type: ignore[arg-type]
    assert mx_matches("mail.example.com", None) is False  # type: ignore[arg-type]
    assert mx_matches("mail.example.com", [None, 5, "mail.example.com"]) is True  # type: ignore[list-item]
    assert mx_matches("mail.example.com", ("mail.example.com",)) is True
    assert normalize_name(b"mail.example.com") is None  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(labels(), domains(), st.booleans(), st.booleans())
def test_wildcard_covers_exactly_one_label(label: str, domain: str, host_dot: bool, pattern_dot: bool) -> None:
    pattern = "*." + domain.upper() + ("." if pattern_dot else "")
    host = label + "." + domain
    assert mx_matches(host + ("." if host_dot else ""), [pattern])
    assert not mx_matches(domain, [pattern])
    assert not mx_matches("x." + host, [pattern])


@settings(max_examples=150, deadline=None)
@given(domains(), domains())
def test_exact_patterns_match_only_themselves(host: str, other: str) -> None:
    assert mx_matches(host.swapcase(), [host])
    assert mx_matches(host, [other]) == (host.lower() == other.lower())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.lists(st.text(max_size=40), max_size=4))
def test_arbitrary_text_never_raises(host: str, patterns: list[str]) -> None:
    assert mx_matches(host, patterns) in (True, False)
    assert classify_mismatch(host, patterns) in (
        "wrong_tld", "wrong_domain", "extra_label", "typo", "mta_sts_in_pattern", "other")


# --- classify_mismatch --------------------------------------------------------------------

CLASS_VECTORS = [
    # extra_label: a label too many (or too few) against a pattern
    ("a.b.example.com", ["*.example.com"], "extra_label"),
    ("example.com", ["*.example.com"], "extra_label"),
    ("mx.mail.example.com", ["mail.example.com"], "extra_label"),
    ("example.com", ["mail.example.com"], "extra_label"),
    # wrong_tld: everything but the top-level domain / public suffix agrees
    ("mail.example.com", ["mail.example.net"], "wrong_tld"),
    ("mx1.example.org", ["*.example.com"], "wrong_tld"),
    ("mail.example.co.uk", ["mail.example.com"], "wrong_tld"),
    ("mail.example.de", ["mail.example.co.uk"], "wrong_tld"),
    # typo: within edit distance 3
    ("mail.exmaple.com", ["mail.example.com"], "typo"),
    ("mx1.example.com", ["mx2.example.com"], "typo"),
    ("mx1.exampel.com", ["*.example.com"], "typo"),
    ("mail.example.com", ["mail.exampl.com"], "typo"),
    # mta_sts_in_pattern: the policy host written where an MX host belongs
    ("mx.example.com", ["mta-sts.example.com"], "mta_sts_in_pattern"),
    ("aspmx.l.google.com", ["mta-sts.example.com"], "mta_sts_in_pattern"),
    ("mx.example.com", ["*.mta-sts.example.com"], "mta_sts_in_pattern"),
    # wrong_domain: no pattern in the host's registered domain
    ("aspmx.l.google.com", ["*.mail.protection.outlook.com"], "wrong_domain"),
    ("mx.provider.net", ["mail.example.com", "*.example.org"], "wrong_domain"),
    ("mx.example.co.uk", ["mx.other.co.uk"], "wrong_domain"),
    # other: a pattern in the same domain names a different host
    ("smtp.example.com", ["mail.example.com"], "other"),
    ("inbound.example.com", ["*.mail.example.com"], "other"),
    # not an uncovered host, or no usable input
    ("mail.example.com", ["mail.example.com"], "other"),
    ("", ["mail.example.com"], "other"),
    ("mail.example.com", [], "other"),
]


@pytest.mark.parametrize(("host", "patterns", "expected"), CLASS_VECTORS,
                         ids=[f"{h}-{p[0] if p else ''}" for h, p, _ in CLASS_VECTORS])
def test_classify_vector(host: str, patterns: list[str], expected: str) -> None:
    assert classify_mismatch(host, patterns) == expected


def test_classes_are_tried_in_documented_order() -> None:
    # extra_label wins over typo, wrong_tld over typo ("de" vs "com" is 3 edits), typo over mta-sts
    assert classify_mismatch("a.example.com", ["example.com"]) == "extra_label"
    assert classify_mismatch("mail.example.de", ["mail.example.com"]) == "wrong_tld"
    assert classify_mismatch("mail.exmaple.com", ["mta-sts.example.com", "mail.example.com"]) == "typo"


def test_classify_is_fast_for_a_large_policy() -> None:
    patterns = [f"mx{i}.example{i}.com" for i in range(3000)]  # about what 64 KiB can hold
    assert classify_mismatch("zz.unrelated.org", patterns) == "wrong_domain"


@settings(max_examples=100, deadline=None)
@given(labels(), domains(), st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=6))
def test_changing_only_the_tld_is_wrong_tld(label: str, domain: str, tld: str) -> None:
    host = f"{label}.{domain}"
    stem = host.rsplit(".", 1)[0]
    assume(host.rsplit(".", 1)[1].lower() != tld)
    assume(stem.rsplit(".", 1)[-1].lower() not in ("ac", "co", "com", "edu", "gov", "go", "ne", "net", "or", "org",
                                                    "gv", "ltd", "plc"))
    assert classify_mismatch(host, [f"{stem}.{tld}"]) == "wrong_tld"
