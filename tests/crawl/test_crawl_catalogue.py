"""Every testbed catalogue case gets its expected verdict in the posture export.

The crawl runs as the checks run it: ``mtasts crawl LIST --db PATH --probe-smtp`` plus
``world.crawler_args()`` (only ``--ca-bundle`` in a namespace, where resolv.conf points at
the world's resolver), under ``world.exec_prefix()`` (``ip netns exec NS`` as root), then
``mtasts export posture --db PATH --run latest --format csv --output FILE``.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collectors.testbed import load_catalogue

from support import export_text

pytestmark = [pytest.mark.servers, pytest.mark.slow]

MTASTS = str(Path(sys.executable).parent / "mtasts")
CATALOGUE = load_catalogue()


def crawl_and_export(world, workdir: Path, domains: list[str], *extra: str) -> dict[str, dict[str, str]]:
    """Crawl ``domains`` in ``world`` with the checked command lines; the export's rows by domain."""
    workdir.mkdir(parents=True, exist_ok=True)
    listing = workdir / "list.txt"
    listing.write_text("".join(f"{d}\n" for d in domains))
    db, out = workdir / "crawl.duckdb", workdir / "posture.csv"
    cmd = [*world.exec_prefix(), MTASTS, "crawl", str(listing), "--db", str(db),
           *world.crawler_args(), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run([MTASTS, "export", "posture", "--db", str(db), "--run", "latest",
                           "--format", "csv", "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out, newline="", encoding="utf-8") as fh:
        return {row["domain"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def probed(catalogue_world, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    return crawl_and_export(catalogue_world, tmp_path_factory.mktemp("probed"),
                            [d.name for d in CATALOGUE.domains], "--probe-smtp")


@pytest.fixture(scope="module")
def unprobed(catalogue_world, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    return crawl_and_export(catalogue_world, tmp_path_factory.mktemp("unprobed"),
                            [d.name for d in CATALOGUE.domains], "--timeout", "3")


def _diff(expected: dict[str, Any], row: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {k: (export_text(v), row.get(k, "<missing column>")) for k, v in expected.items()
            if export_text(v) != row.get(k, "<missing column>")}


@pytest.mark.parametrize("domain", sorted(CATALOGUE.expected))
def test_catalogue_case_probed(probed: dict[str, dict[str, str]], domain: str) -> None:
    assert domain in probed, f"{domain} missing from the export"
    assert _diff(CATALOGUE.expected[domain], probed[domain]) == {}


def test_catalogue_without_probe(unprobed: dict[str, dict[str, str]]) -> None:
    wrong = {d: _diff(exp, unprobed.get(d, {})) for d, exp in CATALOGUE.expected_unprobed.items()}
    assert {d: w for d, w in wrong.items() if w} == {}


def test_export_has_every_domain_once(probed: dict[str, dict[str, str]]) -> None:
    assert sorted(probed) == sorted(d.name for d in CATALOGUE.domains)


@pytest.mark.root
def test_netns_crawl_uses_resolv_conf(catalogue_world, probed: dict[str, dict[str, str]]) -> None:
    """As root the world is a namespace: the crawl above ran under ``ip netns exec`` with
    only ``--ca-bundle`` (the resolver came from the namespace's resolv.conf)."""
    assert catalogue_world.netns and catalogue_world.crawler_args()[0] == "--ca-bundle"
    assert len(catalogue_world.crawler_args()) == 2
    assert any(r["policy_fetch"] == "ok" for r in probed.values())
