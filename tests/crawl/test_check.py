"""``mtasts check``: the crawl's code for a few domains, no database; on the testbed
catalogue it gives every case the verdicts the crawl gives it, with the export's columns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.crawl.advice import advise, suggested_pattern
from collectors.testbed import load_catalogue

from support import export_text

MTASTS = str(Path(sys.executable).parent / "mtasts")
CATALOGUE = load_catalogue()


def _check(world, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*world.exec_prefix(), MTASTS, "check", *world.crawler_args(), *args],
                          input=stdin, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def checked(catalogue_world) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    done = _check(catalogue_world, "--json", "--probe-smtp", *(d.name for d in CATALOGUE.domains))
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return done, {r["domain"]: r for r in rows}


@pytest.mark.servers
@pytest.mark.slow
def test_check_gives_every_catalogue_case_the_crawls_verdicts(checked) -> None:
    done, rows = checked
    assert sorted(rows) == sorted(d.name for d in CATALOGUE.domains), done.stderr[-2000:]
    wrong = {}
    for domain, expected in CATALOGUE.expected.items():
        diff = {k: (export_text(v), export_text(rows[domain].get(k)))
                for k, v in expected.items() if export_text(v) != export_text(rows[domain].get(k))}
        if diff:
            wrong[domain] = diff
    assert wrong == {}
    assert done.returncode == 1  # the catalogue has misconfigured domains


@pytest.mark.servers
@pytest.mark.slow
def test_json_has_exactly_the_export_columns(checked) -> None:
    from collectors.store import open_store

    with open_store(":memory:") as store:
        columns = [c for (c,) in store.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'posture'"
            " AND column_name <> 'run_id' ORDER BY ordinal_position").fetchall()]
    _, rows = checked
    assert all(list(r) == columns for r in rows.values())


@pytest.mark.servers
@pytest.mark.slow
def test_human_verdict_says_what_to_fix_and_exit_status_follows(catalogue_world) -> None:
    done = _check(catalogue_world, "mx-wrong-domain.test")
    assert done.returncode == 1, done.stderr
    assert "mx-wrong-domain.test: MISCONFIGURED" in done.stdout
    assert "RFC 8461 4.1" in done.stdout and "fix: add `mx: " in done.stdout
    good = _check(catalogue_world, "-", stdin="valid-enforce.test\n")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "valid-enforce.test: ok: MTA-STS in enforce mode" in good.stdout


def test_bad_names_are_a_usage_error_before_any_query() -> None:
    done = subprocess.run([MTASTS, "check", "--resolver", "127.0.0.1:9", "https://x.example/"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not a domain name" in done.stderr and not done.stdout


def test_advice_names_the_uncovered_host_and_a_pattern_that_covers_it() -> None:
    row = {"domain": "example.com", "sts_record": "valid", "policy_fetch": "ok", "policy_mode": "enforce",
           "mx_status": "ok", "tlsrpt_record": "valid"}
    (a,) = advise(row, ["mx2.example.net"])
    assert (a.level, a.rfc) == ("error", "RFC 8461 4.1")
    assert a.message == "the policy's mx patterns do not cover mx2.example.net"
    assert a.fix == "add `mx: *.example.net`"
    assert suggested_pattern("example.net") == "example.net"
    assert advise({**row, "policy_mode": "testing"}, ["mx.example.org"])[0].level == "warning"


def test_crawl_reads_a_list_on_stdin_and_keeps_it_for_resume(tmp_path) -> None:
    import duckdb

    db = tmp_path / "c.duckdb"
    done = subprocess.run([MTASTS, "crawl", "-", "--db", str(db), "--resolver", "127.0.0.1:9",
                           "--dns-timeout", "0.1", "--timeout", "1", "--no-progress"],
                          input="one.test\ntwo.test\n", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (kept,) = (tmp_path / "runs").glob("stdin-*.txt")
    assert kept.read_text() == "one.test\ntwo.test\n"
    con = duckdb.connect(str(db), read_only=True)
    assert sorted(r[0] for r in con.execute("SELECT domain FROM crawl_domains").fetchall()) == ["one.test", "two.test"]
    con.close()
    empty = subprocess.run([MTASTS, "crawl", "-", "--db", str(db)], input="", capture_output=True,
                           text=True, timeout=60)
    assert empty.returncode == 2 and "no domains on standard input" in empty.stderr
