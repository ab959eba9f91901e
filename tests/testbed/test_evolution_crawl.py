"""Two consecutive months of an evolving population, crawled through the real testbed with
the checked command line: the crawler's ``report_lifecycle_events`` equals the events the
generator planted between them, and every domain gets the verdict its state implies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from collectors.testbed import generate_population
from collectors.testbed.evolution import RATES, evolve_population
from collectors.testbed.strata import Weight, write_weights

from support import export_text

pytestmark = [pytest.mark.servers, pytest.mark.root]

MTASTS = str(Path(sys.executable).parent / "mtasts")
MIX = {"valid-enforce": 3, "valid-testing": 2, "plain-mx": 1}
SEED = 11
RATES_FAST = {**{k: 0.15 for k in RATES}, "mx_cert_renewed": 0.6, "policy_cert_renewed": 0.6}  # all kinds in 90


def _crawl(world, workdir: Path, db: Path, names: list[str], day: str) -> str:
    listing = workdir / f"list-{day}.txt"
    listing.write_text("".join(f"{n}\n" for n in names))
    weights = workdir / "weights.csv"
    write_weights([Weight(n, "all", 2.0) for n in names], weights)
    done = subprocess.run([*world.exec_prefix(), MTASTS, "crawl", str(listing), "--db", str(db), "--probe-smtp",
                           "--no-progress", "--simulated-date", day, "--weights", str(weights),
                           *world.crawler_args()], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return day[:7]


def test_lifecycle_view_equals_the_planted_events(make_world, tmp_path: Path) -> None:
    base = generate_population(90, seed=SEED, mix=MIX)
    months = [evolve_population(base, SEED, k, rates=RATES_FAST) for k in (1, 2)]
    db = tmp_path / "evolving.duckdb"
    names = [d.name for d in base.domains]
    for month, day in zip(months, ("2026-01-05", "2026-02-05")):
        world = make_world(month.scenario, tmp_path / f"month{month.month}")
        _crawl(world, tmp_path, db, names, day)
        world.down()
    planted = set(months[1].events.items())
    assert {e for _, e in planted} >= {"published", "mode_changed", "policy_changed_same_id",
                                      "id_changed_same_policy", "removed_without_mode_none",
                                      "removed_after_mode_none", "policy_host_moved", "policy_cert_expired",
                                      "policy_cert_renewed", "mx_cert_lapsed", "mx_cert_renewed",
                                      "mx_migrated_uncovered", "tlsrpt_added"}
    con = duckdb.connect(str(db), read_only=True)
    seen = set(con.execute("SELECT domain, event FROM report_lifecycle_events").fetchall())
    assert seen == planted
    runs = con.execute("SELECT month FROM report_crawl_runs ORDER BY run_order").fetchall()
    assert runs == [("2026-01",), ("2026-02",)]
    # every domain of month 2 has the verdict its state implies
    cur = con.execute("SELECT * FROM posture WHERE run_id = (SELECT max(run_id) FROM runs)")
    columns = [c[0] for c in cur.description]
    got = {r["domain"]: r for r in (dict(zip(columns, row)) for row in cur.fetchall())}
    for d in months[1].scenario.domains:
        diff = {k: (export_text(v), export_text(got[d.name][k])) for k, v in d.expected.items()
                if export_text(v) != export_text(got[d.name][k])}
        assert not diff, (d.name, d.case, diff)
    # the weights reach the rates: every domain stands for two
    funnel = con.execute("SELECT domains, sampled_domains FROM report_funnel([NULL::BIGINT])"
                         " WHERE run_id = (SELECT max(run_id) FROM runs)").fetchone()
    assert funnel == (2 * len(names), len(names))
