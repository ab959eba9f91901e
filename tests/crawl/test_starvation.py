"""A policy host that stalls the TLS handshake, shared by many domains, must not stall the
crawl (issue 14): on a real testbed world (Knot, Unbound, nginx and a stalling listener),
its domains get a verdict after a few timeouts (the address's circuit opens:
``host_unresponsive``, with the reason) and the healthy domains are unaffected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from collectors.testbed import generate_population

from support import export_text

pytestmark = [pytest.mark.servers]

MTASTS = str(Path(sys.executable).parent / "mtasts")
PER_HOST, THRESHOLD = 2, 2


def test_a_stalling_policy_host_costs_a_few_timeouts(make_world, tmp_path: Path) -> None:
    scenario = generate_population(120, seed=3, mix={"fetch-stall": 2, "valid-enforce": 1})
    world = make_world(scenario)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{d.name}\n" for d in scenario.domains))
    db = tmp_path / "crawl.duckdb"
    done = subprocess.run([*world.exec_prefix(), MTASTS, "crawl", str(listing), "--db", str(db),
                           *world.crawler_args(), "--timeout", "1", "--per-host", str(PER_HOST),
                           "--breaker-threshold", str(THRESHOLD)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    con = duckdb.connect(str(db), read_only=True)
    rows = {d: (f, c, det, phase, addr) for d, f, c, det, phase, addr in con.execute(
        "SELECT v.domain, v.policy_fetch, v.misconfig_classes, p.detail, p.phase, p.address"
        " FROM posture v JOIN crawl_policy p USING (run_id, domain)").fetchall()}
    posture = {r[0]: dict(zip(("domain", "policy_fetch", "policy_mode", "mx_policy_match"), r)) for r in
               con.execute("SELECT domain, policy_fetch, policy_mode, mx_policy_match FROM posture").fetchall()}
    con.close()

    stalled = [d.name for d in scenario.domains if d.case == "fetch-stall"]
    healthy = [d for d in scenario.domains if d.case == "valid-enforce"]
    assert len(stalled) == 80 and len(healthy) == 40
    for d in healthy:  # every healthy domain exactly as the catalogue expects
        for col in ("policy_fetch", "policy_mode", "mx_policy_match"):
            assert posture[d.name][col] == export_text(d.expected[col]), (d.name, col, posture[d.name])
    verdicts = [rows[name][0] for name in stalled]
    assert set(verdicts) <= {"timeout", "host_unresponsive"}
    # the first attempts in flight, then the circuit is open: at most per-host + threshold - 1
    assert verdicts.count("timeout") <= PER_HOST + THRESHOLD - 1, verdicts.count("timeout")
    skipped = [rows[name] for name in stalled if rows[name][0] == "host_unresponsive"]
    assert len(skipped) >= len(stalled) - (PER_HOST + THRESHOLD - 1)
    for _, classes, detail, phase, address in skipped:
        assert classes == "policy_retrieval" and phase == "wait"
        assert detail.startswith(f"not contacted: {address}:") and "timeout during tls" in detail
