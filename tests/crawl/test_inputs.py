"""The list reader: formats, normalisation, the reasons of quarantined entries, streaming."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from collectors.crawl.inputs import (
    InputError,
    is_tranco_spec,
    normalise_domain,
    read_entries,
    resolve_tranco,
)


def _write(tmp_path: Path, text: str, name: str = "list.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("raw, expected", [
    ("Example.COM", "example.com"),
    ("example.com.", "example.com"),
    ("  example.com  ", "example.com"),
    ("bücher.de", "xn--bcher-kva.de"),
    ("BÜCHER.de", "xn--bcher-kva.de"),
    ("xn--bcher-kva.de", "xn--bcher-kva.de"),
    ("a-b.co.uk", "a-b.co.uk"),
])
def test_normalise_valid(raw: str, expected: str) -> None:
    assert normalise_domain(raw) == (expected, None)


@pytest.mark.parametrize("raw, reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("https://example.com/", "url"),
    ("example.com/path", "url"),
    ("user@example.com", "url"),
    ("example.com:8080", "url"),
    ("192.0.2.1", "ip_address"),
    ("2001:db8::1", "ip_address"),
    ("[2001:db8::1]", "ip_address"),
    ("exa mple.com", "invalid_characters"),
    ("-example.com", "invalid_characters"),
    ("exa_mple.com", "invalid_characters"),
    ("a..b", "empty_label"),
    (".example.com", "empty_label"),
    ("a" * 64 + ".com", "label_too_long"),
    (".".join(["a" * 60] * 5), "name_too_long"),
    ("localhost", "single_label"),
    ("1.2.3", "numeric_tld"),
    ("xn--zz.com", "invalid_idn"),
])
def test_normalise_invalid(raw: str, reason: str) -> None:
    assert normalise_domain(raw) == (None, reason)


@given(st.text(max_size=80))
def test_normalise_never_raises_and_is_idempotent(text: str) -> None:
    domain, reason = normalise_domain(text)
    assert (domain is None) != (reason is None)
    if domain is not None:
        assert domain == domain.lower() and domain.isascii() and not domain.endswith(".")
        assert normalise_domain(domain) == (domain, None)


def test_tranco_csv_without_header(tmp_path: Path) -> None:
    p = _write(tmp_path, "1,google.com\n2,Facebook.com.\n3,http://bad/\n")
    got = [(e.position, e.rank, e.domain, e.reason) for e in read_entries(p)]
    assert got == [(1, 1, "google.com", None), (2, 2, "facebook.com", None), (3, 3, None, "url")]


def test_tranco_csv_with_header_and_crlf(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_bytes(b"rank,domain\r\n10,a.com\r\n20,b.com\r\n")
    assert [(e.rank, e.domain) for e in read_entries(p)] == [(10, "a.com"), (20, "b.com")]


def test_cloudflare_radar_domain_column(tmp_path: Path) -> None:
    p = _write(tmp_path, "domain,categories\nexample.org,Tech\nexample.net,News\n")
    assert [(e.rank, e.domain) for e in read_entries(p)] == [(1, "example.org"), (2, "example.net")]


def test_majestic_columns(tmp_path: Path) -> None:
    p = _write(tmp_path, "GlobalRank,TldRank,Domain,TLD,RefSubNets\n1,1,google.com,com,1\n2,2,ex.org,org,5\n")
    assert [(e.rank, e.domain) for e in read_entries(p)] == [(1, "google.com"), (2, "ex.org")]


def test_plain_list_with_comments_and_blank_lines(tmp_path: Path) -> None:
    p = _write(tmp_path, "# my list\nexample.com\n\nexample.org\n", "list.txt")
    entries = list(read_entries(p))
    assert [(e.rank, e.domain, e.reason) for e in entries] == [
        (1, "example.com", None), (2, None, "empty"), (3, "example.org", None)]


def test_top_counts_entries(tmp_path: Path) -> None:
    p = _write(tmp_path, "".join(f"{i},d{i}.com\n" for i in range(1, 101)))
    assert [e.domain for e in read_entries(p, top=3)] == ["d1.com", "d2.com", "d3.com"]


def test_gzip_and_undecodable_bytes(tmp_path: Path) -> None:
    p = tmp_path / "l.csv.gz"
    with gzip.open(p, "wb") as fh:
        fh.write(b"1,ok.com\n2,bad\xff.com\n")
    entries = list(read_entries(p))
    assert entries[0].domain == "ok.com"
    assert entries[1].domain is None and entries[1].reason is not None
    assert entries[1].raw.encode("utf-8", "surrogateescape") == b"bad\xff.com"


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        list(read_entries(tmp_path / "nope.csv"))


def test_read_entries_streams(tmp_path: Path) -> None:
    p = _write(tmp_path, "".join(f"{i},d{i}.com\n" for i in range(1, 10001)))
    it = read_entries(p)
    assert next(it).domain == "d1.com"  # a generator: nothing read ahead into a list


def test_tranco_spec_offline_error(tmp_path: Path) -> None:
    assert is_tranco_spec("tranco:latest") and is_tranco_spec("tranco:X5Y7N")
    assert not is_tranco_spec("tranco.csv")
    with pytest.raises(InputError, match="cannot get Tranco list"):
        resolve_tranco("tranco:ZZZZZ", cache_dir=tmp_path / "cache")


def test_tranco_spec_uses_the_cache_offline(tmp_path: Path) -> None:
    import json

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ABCDE.csv").write_text("1,example.com\n2,example.org\n")
    (cache / "metadata.json").write_text(json.dumps({"ABCDE": 1}))
    path = resolve_tranco("tranco:ABCDE", cache_dir=cache)
    assert [e.domain for e in read_entries(path)] == ["example.com", "example.org"]
