"""The list reader: formats, normalisation, the reasons of quarantined entries, streaming."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from collectors.crawl.inputs import (
    MAX_LINE_CHARS,
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


# --- overlong lines (issue 14: a 300 MB line ended in a DuckDB FATAL error) ---------------

def _with_long_line(tmp_path: Path, head: str, long_line: bytes, tail: str, name: str) -> Path:
    p = tmp_path / name
    with open(p, "wb") as fh:
        fh.write(head.encode())
        fh.write(long_line)
        fh.write(tail.encode())
    return p


@pytest.mark.parametrize("name, head, tail, good", [
    ("list.txt", "a.example\n", "\nb.example\n", ["a.example", "b.example"]),
    ("tranco.csv", "1,a.example\r\n2,", "\r\n3,b.example\r\n", ["a.example", "b.example"]),
])
def test_an_overlong_line_is_quarantined_cut_and_the_list_goes_on(tmp_path: Path, name: str, head: str,
                                                                   tail: str, good: list[str]) -> None:
    # 1 MB in one line: beyond the csv module's field limit, and no list entry
    size = 1_000_000
    path = _with_long_line(tmp_path, head, b"x" * size, tail, name)
    entries = list(read_entries(path))
    assert [e.domain for e in entries if e.domain] == good
    bad = [e for e in entries if e.domain is None]
    assert len(bad) == 1 and bad[0].position == 2 and bad[0].reason == "line_too_long"
    assert len(bad[0].raw) == MAX_LINE_CHARS
    line_bytes = size + (len(head.split("\n")[-1]) if name.endswith(".csv") else 0)
    assert bad[0].detail == f"line of {line_bytes:,} bytes; its first {MAX_LINE_CHARS:,} characters kept"
    assert [e.position for e in entries] == [1, 2, 3]


def test_a_line_of_exactly_the_cap_is_an_entry(tmp_path: Path) -> None:
    label = "a" * 60
    name = ".".join([label] * (MAX_LINE_CHARS // 61)) + ".example"
    name = name[-MAX_LINE_CHARS:].lstrip(".")
    path = _with_long_line(tmp_path, "", name.encode().rjust(MAX_LINE_CHARS, b"b"), "\r\nc.example\r\n", "l.txt")
    entries = list(read_entries(path))
    assert [e.reason for e in entries] == ["name_too_long", None]  # read whole, judged as a name


def test_an_overlong_line_is_never_held_whole(tmp_path: Path) -> None:
    import tracemalloc

    from collectors.crawl.zonefile import read_list_or_zone

    path = _with_long_line(tmp_path, "a.example\n", b"y" * 30_000_000, "\nb.example\n", "big.txt")
    tracemalloc.start()
    try:
        entries = list(read_list_or_zone(path))  # the format sniffing reads it too
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [e.domain for e in entries] == ["a.example", None, "b.example"]
    assert peak < 4_000_000, f"peak {peak:,} bytes for a 30 MB line"


def test_an_overlong_line_reaches_the_quarantine_with_what_was_cut(tmp_path: Path, store) -> None:
    from collectors.crawl.runner import load_input, summarise

    path = _with_long_line(tmp_path, "a.example\n", b"\xff" * 200_000, "\nb.example\n", "bin.txt")
    run = store.start_run("crawl", str(path))
    counts = load_input(store, run, read_entries(path), str(path))
    assert (counts.accepted, counts.quarantined, counts.reasons) == (2, 1, {"line_too_long": 1})
    raw, reason = store.con.execute("SELECT raw, reason FROM quarantine WHERE run_id = ?", [run.run_id]).fetchone()
    assert raw == b"\xff" * MAX_LINE_CHARS  # the bytes as they were (undecodable kept)
    assert reason == f"line_too_long: line of 200,000 bytes; its first {MAX_LINE_CHARS:,} characters kept"
    assert summarise(store, run.run_id)["quarantine"] == {"line_too_long": 1}
