"""The lean DNS codec agrees with dnspython on what it parses and never raises on garbage."""

from __future__ import annotations

import dns.flags
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.message
import dns.rrset
from dns.rdtypes.ANY.TXT import TXT
from hypothesis import given, settings, strategies as st

from collectors.crawl import wire

label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20).filter(
    lambda s: not s.startswith("-") and not s.endswith("-"))
name = st.lists(label, min_size=1, max_size=4).map(".".join)


def _response(qname: str, qtype: str, rrsets: list[tuple[str, str, list[str]]], ad: bool = False) -> bytes:
    q = dns.message.make_query(qname, qtype, want_dnssec=True)
    r = dns.message.make_response(q)
    if ad:
        r.flags |= dns.flags.AD
    for owner, rtype, texts in rrsets:
        r.answer.append(dns.rrset.from_text(owner + ".", 300, "IN", rtype, *texts))
    return r.to_wire()


def test_query_is_what_dnspython_reads() -> None:
    q = wire.build_query(0x1234, wire.encode_question("_mta-sts.example.com", wire.TXT), cd=True)
    msg = dns.message.from_wire(q)
    assert msg.id == 0x1234
    assert msg.flags & dns.flags.RD and msg.flags & dns.flags.CD and msg.flags & dns.flags.AD
    assert msg.ednsflags & dns.flags.DO and msg.payload == wire.EDNS_PAYLOAD
    assert msg.question[0].name.to_text() == "_mta-sts.example.com."
    assert msg.question[0].rdtype == wire.TXT


@given(name, st.lists(st.tuples(st.integers(0, 65535), name), min_size=1, max_size=5, unique_by=lambda t: t[1]),
       st.booleans())
@settings(max_examples=60)
def test_mx_answers_agree_with_dnspython(qname: str, mxs: list[tuple[int, str]], ad: bool) -> None:
    w = _response(qname, "MX", [(qname, "MX", [f"{p} {h}." for p, h in mxs])], ad=ad)
    got = wire.parse_response(w)
    ref = dns.message.from_wire(w)
    assert got is not None and got.rcode == ref.rcode() and got.authenticated == ad
    assert sorted(r.data for r in got.answer) == sorted(
        (rd.preference, rd.exchange.to_text(omit_final_dot=True)) for rd in ref.answer[0])


@given(name, st.lists(st.lists(st.binary(max_size=255), min_size=1, max_size=3), min_size=1, max_size=3))
@settings(max_examples=60)
def test_txt_answers_agree_with_dnspython(qname: str, records: list[list[bytes]]) -> None:
    q = dns.message.make_query(qname, "TXT")
    r = dns.message.make_response(q)
    rrset = dns.rrset.RRset(dns.name.from_text(qname), dns.rdataclass.IN, dns.rdatatype.TXT)
    for strings in records:
        rrset.add(TXT(dns.rdataclass.IN, dns.rdatatype.TXT, strings))
    r.answer.append(rrset)
    w = r.to_wire()
    got = wire.parse_response(w)
    ref = dns.message.from_wire(w)
    assert got is not None
    assert sorted(r.data for r in got.answer) == sorted(tuple(rd.strings) for rd in ref.answer[0])


def test_cname_a_aaaa_tlsa() -> None:
    w = _response("mta-sts.example.com", "A", [
        ("mta-sts.example.com", "CNAME", ["policy.provider.net."]),
        ("policy.provider.net", "A", ["192.0.2.7"]),
        ("policy.provider.net", "AAAA", ["2001:db8::7"]),
        ("_25._tcp.mx.example.com", "TLSA", ["3 1 1 " + "ab" * 32]),
    ])
    got = wire.parse_response(w)
    assert got is not None
    assert [(r.name, r.rdtype, r.data) for r in got.answer] == [
        ("mta-sts.example.com", wire.CNAME, "policy.provider.net"),
        ("policy.provider.net", wire.A, "192.0.2.7"),
        ("policy.provider.net", wire.AAAA, "2001:db8::7"),
        ("_25._tcp.mx.example.com", wire.TLSA, (3, 1, 1, "ab" * 32)),
    ]


def test_null_mx_is_the_root() -> None:
    w = _response("example.com", "MX", [("example.com", "MX", ["0 ."])])
    got = wire.parse_response(w)
    assert got is not None and got.answer[0].data == (0, "")


@given(st.binary(max_size=600))
def test_garbage_never_raises(data: bytes) -> None:
    wire.parse_response(data)


def test_compression_loop_is_malformed() -> None:
    header = bytes.fromhex("abcd8180000100010000000000")[:12]
    # question name is a pointer to itself
    msg = header + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    assert wire.parse_response(msg) is None


def test_encode_question_rejects_bad_names() -> None:
    import pytest

    with pytest.raises(ValueError):
        wire.encode_question("a" * 64 + ".com", wire.A)
    with pytest.raises(ValueError):
        wire.encode_question("a..b", wire.A)


def test_names_are_lower_cased() -> None:
    """An MX host written in upper case (DNS names compare case-insensitively, RFC 4343)
    comes out in lower case, so MX matching and per-host lookups see one name (RFC 8461 4.1).
    The testbed cannot serve this: Knot canonicalises names in rdata when it loads a zone."""
    w = _response("Example.TEST", "MX", [("Example.TEST", "MX", ["10 MX1.Example.TEST."])])
    got = wire.parse_response(w)
    assert got is not None
    assert [(r.name, r.data) for r in got.answer] == [("example.test", (10, "mx1.example.test"))]
