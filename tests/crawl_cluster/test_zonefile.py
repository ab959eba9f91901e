"""Zone files (RFC 1035 5.1 master files, the CZDS form) to registered domains: owner-name
forms, parentheses, comments, gzip, deduplication through spill buckets, quarantine."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.crawl.inputs import InputError
from collectors.crawl.runner import load_input
from collectors.crawl.zonefile import (
    ZoneStats, absolute_name, looks_like_zone, origin_from_filename, read_list_or_zone, read_zone_entries,
)

CZDS_SAMPLE = """\
com.\t900\tin\tsoa\ta.gtld-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 900
com.\t172800\tin\tns\ta.gtld-servers.net.
example.com.\t172800\tin\tns\tns1.example.net.
example.com.\t172800\tin\tns\tns2.example.net.
example.com.\t86400\tin\tds\t370 13 2 BE74359954660069D5C63D200C39F5603827D7DD02B56F120EE9F3A86764247C
ns1.example.com.\t172800\tin\ta\t192.0.2.1
other.com.\t172800\tin\tns\tns1.other.com.
"""

BIND_SAMPLE = """\
; a master file in BIND style
$ORIGIN com.
$TTL 86400
@   IN  SOA a.gtld-servers.net. hostmaster.example.net. (
            2024010101 ; serial
            1800 900 604800 86400 )
    IN  NS  a.gtld-servers.net.          ; blank owner: still the apex
example         172800 IN NS ns1.example.net.
                172800 IN NS ns2.example.net.   ; blank owner: example.com again
Other.COM.      IN 172800 NS ns.other.net.       ; class before TTL, mixed case
www.deep        NS ns.deep.net.                  ; below a domain: its registrable domain
txtowner        TXT "not a delegation ; ( really"
b\\097z          NS ns.baz.net.                   ; \\DDD escape: baz
"""


def _write(tmp_path: Path, text: str, name: str = "zone.txt", compress: bool = False) -> Path:
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def _domains(path: Path, **kw) -> list[str]:
    return [e.domain for e in read_zone_entries(path, **kw) if e.domain]


def test_czds_form(tmp_path: Path) -> None:
    stats = ZoneStats()
    entries = list(read_zone_entries(_write(tmp_path, CZDS_SAMPLE), stats=stats))
    assert sorted(e.domain for e in entries) == ["example.com", "other.com"]
    assert all(e.reason is None and e.rank is None for e in entries)
    assert {e.domain: e.position for e in entries} == {"example.com": 3, "other.com": 7}
    assert stats.apex == "com"
    assert stats.delegations == 3 and stats.domains == 2
    assert stats.skipped == {"apex": 1, "not_ns": 3}


def test_bind_form(tmp_path: Path) -> None:
    stats = ZoneStats()
    assert sorted(_domains(_write(tmp_path, BIND_SAMPLE), stats=stats)) == [
        "baz.com", "deep.com", "example.com", "other.com"]
    assert stats.apex == "com" and stats.bad == {}
    assert stats.skipped["apex"] == 1  # the blank-owner NS after the SOA's parentheses


def test_gzip_by_content_not_name(tmp_path: Path) -> None:
    plain = _write(tmp_path, CZDS_SAMPLE, "a.zone")
    packed = _write(tmp_path, CZDS_SAMPLE, "com.txt", compress=True)  # gzip without .gz
    assert looks_like_zone(packed) and looks_like_zone(plain)
    assert _domains(packed) == _domains(plain)


def test_truncated_gzip_is_an_input_error(tmp_path: Path) -> None:
    data = gzip.compress(("".join(f"d{i}.com. 1 in ns ns.x.\n" for i in range(5000))).encode())
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot read zone file"):
        list(read_zone_entries(path))


def test_lists_are_not_zones(tmp_path: Path) -> None:
    for text in ("1,example.com\n2,other.com\n", "example.com\nother.com\n", "# c\nexample.com\n",
                 "rank\tdomain\n1\texample.com\n", "GlobalRank,TldRank,Domain\n1,1,example.com\n"):
        assert not looks_like_zone(_write(tmp_path, text, "l.txt")), text
    assert looks_like_zone(_write(tmp_path, "$ORIGIN com.\nexample NS ns.\n"))
    # read_list_or_zone keeps the list formats of inputs.py
    entries = list(read_list_or_zone(_write(tmp_path, "1,example.com\n2,bad..name\n", "l.csv")))
    assert [(e.rank, e.domain, e.reason) for e in entries] == [(1, "example.com", None), (2, None, "empty_label")]


def test_bad_lines_are_kept_with_a_reason(tmp_path: Path) -> None:
    text = ("$ORIGIN com.\n@ SOA a. b. 1 2 3 4 5\n"
            "good NS ns.\n"
            "bad\\.dot NS ns.\n"           # an escaped dot inside a label: no host name
            "x.org. NS ns.\n"               # outside the zone
            "$INCLUDE other.zone\n"         # never reads another file
            "xn--zz NS ns.\n"               # an A-label that does not decode
            "unclosed TXT \"abc\n"          # a quote left open
            "paren NS ( ns.\n")              # parentheses never closed
    stats = ZoneStats()
    entries = list(read_zone_entries(_write(tmp_path, text), stats=stats))
    bad = {e.reason: e.position for e in entries if e.domain is None}
    assert bad == {"invalid_characters": 4, "out_of_zone": 5, "unsupported_directive": 6,
                   "invalid_idn": 7, "unterminated_quote": 8, "unbalanced_parentheses": 9}
    assert [e.domain for e in entries if e.domain] == ["good.com"]
    assert all(e.raw for e in entries)


def test_public_suffix_delegations_are_skipped(tmp_path: Path) -> None:
    # in se., fhv.se is itself a public suffix (PSL ICANN section): not a registered domain
    text = "se. 1 in soa a. b. 1 2 3 4 5\nfhv.se. 1 in ns ns.\nfoo.fhv.se. 1 in ns ns.\nplain.se. 1 in ns ns.\n"
    stats = ZoneStats()
    assert sorted(_domains(_write(tmp_path, text), stats=stats)) == ["foo.fhv.se", "plain.se"]
    assert stats.skipped.get("public_suffix") == 1


def test_origin_from_the_file_name(tmp_path: Path) -> None:
    assert origin_from_filename("com.txt.gz") == "com."
    assert origin_from_filename("se.zone") == "se."
    assert origin_from_filename("weird name.txt") is None
    # relative owners before any $ORIGIN/SOA: the file name's zone (RFC 1035 5.1 leaves it to the loader)
    assert _domains(_write(tmp_path, "example 1 in ns ns.\n", "net.txt")) == ["example.net"]


def test_top_keeps_the_first_n_domains(tmp_path: Path) -> None:
    text = "".join(f"d{i}.com. 1 in ns ns.\n" for i in range(50))
    assert len(_domains(_write(tmp_path, text), top=7)) == 7


def test_top_of_a_bucketed_zone_is_the_same_in_every_process(tmp_path: Path) -> None:
    # the buckets must not follow Python's per-process str hash, or --top picks other domains
    zone = _write(tmp_path, "".join(f"d{i}.com. 1 in ns ns.\n" for i in range(200)))
    script = ("import sys; from collectors.crawl.zonefile import read_zone_entries; "
              "print([e.domain for e in read_zone_entries(sys.argv[1], top=10, buckets=8)])")
    picks = {subprocess.run([sys.executable, "-c", script, str(zone)], capture_output=True, text=True,
                            check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
             for seed in ("1", "2", "3")}
    assert len(picks) == 1, picks


def test_zone_input_loads_into_the_store(store, tmp_path: Path) -> None:
    path = _write(tmp_path, BIND_SAMPLE + "x.org. NS ns.\n", "com.zone", compress=True)
    run = store.start_run("crawl", "com.zone")
    counts = load_input(store, run, read_list_or_zone(path), str(path))
    assert counts.accepted == 4 and counts.quarantined == 1 and counts.reasons == {"out_of_zone": 1}
    assert store.con.execute("SELECT count(*) FROM quarantine WHERE reason = 'out_of_zone'").fetchone()[0] == 1


def test_memory_is_bounded_by_a_bucket(tmp_path: Path) -> None:
    """The names of the whole zone are never in memory at once: with 32 spill buckets the
    peak is a fraction of the one-bucket peak."""
    n = 15_000
    text = "com. 1 in soa a. b. 1 2 3 4 5\n" + "".join(
        f"dom{i:07d}.com. 1 in ns ns1.x.net.\ndom{i:07d}.com. 1 in ns ns2.x.net.\n" for i in range(n))
    path = _write(tmp_path, text, compress=True)

    def peak(buckets: int) -> tuple[int, int]:
        # In a fresh interpreter: tracemalloc counts every thread's allocations, and threads
        # that earlier tests leave behind (a Dask cluster, an event loop) would be counted too.
        script = (
            "import sys, tracemalloc\n"
            "from collectors.crawl.zonefile import read_zone_entries\n"
            f"def run(): return sum(1 for _ in read_zone_entries({str(path)!r}, buckets={buckets},"
            f" spill_dir={str(tmp_path)!r}, spill_batch=500))\n"
            "run()\n"                   # once untraced: lazy imports and caches are not the zone
            "tracemalloc.start()\n"
            "n = run()\n"
            "print(n, tracemalloc.get_traced_memory()[1])\n")
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=120, check=True).stdout.split()
        return int(out[0]), int(out[1])

    one = peak(1)
    many = peak(32)
    assert one[0] == many[0] == n
    assert many[1] < one[1] / 4, (one, many)


# -- owner names (hypothesis) ------------------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


def test_absolute_name_forms() -> None:
    assert absolute_name("@", "com.") == ("com.", None)
    assert absolute_name("Example", "com.") == ("example.com.", None)
    assert absolute_name("example.com.", "net.") == ("example.com.", None)
    assert absolute_name("a\\.b", "com.") == (None, "invalid_characters")
    assert absolute_name("\\065b", "com.") == ("ab.com.", None)
    assert absolute_name("x", None) == (None, "no_origin")
    assert absolute_name("x", ".") == ("x.", None)
    assert absolute_name(".", "com.") == (".", None)  # absolute: the root


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.tuples(st.lists(_label, min_size=1, max_size=3),
                                   st.sampled_from(["absolute", "relative", "upper", "continue"]),
                                   st.integers(min_value=1, max_value=3)), min_size=1, max_size=25),
       buckets=st.integers(min_value=1, max_value=5))
def test_owner_forms_give_the_registered_domains(tmp_path: Path, records, buckets) -> None:
    """Whatever form the owner takes (absolute, relative to $ORIGIN, upper case, a blank
    owner continuing the previous one) the result is the set of distinct registrable
    domains under the apex, each once, at its first line."""
    lines = ["$ORIGIN com.", "@ 3600 IN SOA a.gtld. h.gtld. 1 2 3 4 5"]
    expected: dict[str, int] = {}
    previous: str | None = None
    for labels, form, n_ns in records:
        name = ".".join(labels)
        registered = f"{labels[-1]}.com"
        if form == "continue" and previous is not None:
            owner_text, registered = "", previous
        elif form == "absolute":
            owner_text = f"{name}.com."
        elif form == "upper":
            owner_text = name.upper()
        else:
            owner_text = name
        for _ in range(n_ns):
            lines.append(f"{owner_text}\t172800 IN NS ns1.example.net." if owner_text else
                         "\t172800 IN NS ns2.example.net.")
            expected.setdefault(registered, len(lines))
            owner_text = ""  # the following records continue the owner
        previous = registered
    path = tmp_path / f"h{abs(hash((tuple(lines), buckets)))}.zone"
    path.write_text("\n".join(lines) + "\n")
    entries = list(read_zone_entries(path, buckets=buckets))
    assert all(e.reason is None for e in entries)
    got = {e.domain: e.position for e in entries}
    assert len(got) == len(entries)          # each domain once
    assert got == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("ab.com@$ \t\n;()\"\\01NSINsoa")), max_size=300))
def test_never_raises_on_garbage(tmp_path: Path, text: str) -> None:
    path = tmp_path / "g.zone"
    path.write_text(text, encoding="utf-8")
    for entry in read_zone_entries(path, origin="com."):
        assert (entry.domain is None) != (entry.reason is None)
        if entry.domain:
            assert entry.domain.endswith(".com") and entry.domain.count(".") == 1


@settings(max_examples=400, deadline=None)
@given(name=st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.text(alphabet=st.sampled_from(list("abz09-.xn_A")), max_size=30)))
def test_canonical_fast_path_agrees_with_normalise_domain(name: str) -> None:
    """The zone reader's shortcut for names already canonical never disagrees with inputs.py."""
    from collectors.crawl.inputs import normalise_domain
    from collectors.crawl.zonefile import CANONICAL_NAME

    if CANONICAL_NAME.match(name):
        assert normalise_domain(name) == (name, None)


def test_an_overlong_line_or_record_is_quarantined_cut(tmp_path: Path) -> None:
    from collectors.crawl.inputs import MAX_LINE_CHARS

    long_line = "x" * 1_000_000
    open_record = "big.com.\t172800\tin\tns\t(\n" + "ns.example.net.\n" * 6000 + ")\n"
    path = _write(tmp_path, CZDS_SAMPLE + long_line + "\n" + open_record + "last.com.\t1\tin\tns\tns.last.net.\n")
    entries = list(read_zone_entries(path))
    bad = {e.reason: e for e in entries if e.domain is None}
    assert set(bad) >= {"line_too_long", "record_too_long"}
    assert len(bad["line_too_long"].raw) == MAX_LINE_CHARS
    assert bad["line_too_long"].detail.startswith("line of 1,000,000 bytes")
    assert len(bad["record_too_long"].raw) == MAX_LINE_CHARS
    assert {"example.com", "other.com", "last.com"} <= {e.domain for e in entries if e.domain}
