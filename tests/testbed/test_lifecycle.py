"""Worlds come up, are idempotent, leave nothing behind, and work in both modes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dns.message
import dns.query
import pytest

from collectors.testbed import Testbed, TestbedError, World, generate_population, load_catalogue
from collectors.testbed import netns, processes
from collectors.testbed.scenario import Scenario, from_dict
from collectors.testbed.selfcheck import check_world, sample_domains

pytestmark = pytest.mark.servers


def small() -> Scenario:
    cat = load_catalogue()
    keep = {"valid-enforce", "fetch-redirect-301", "fetch-too-large-chunked", "mx-no-starttls", "dnssec-signed"}
    return Scenario(name="small", domains=tuple(d for d in cat.domains if d.case in keep),
                    mx_hosts=cat.mx_hosts, https_hosts=cat.https_hosts, records=cat.records)


def _processes_mentioning(path: Path) -> list[int]:
    """PIDs whose command line mentions ``path`` (read-only check that nothing is left)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(path).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_loopback_world_uses_high_ports_and_the_crawler_flags(make_world, tmp_path) -> None:
    world = make_world(small(), tmp_path, mode="loopback")
    args = world.crawler_args()
    assert world.netns is None and world.exec_prefix() == []
    assert args[:2] == ["--ca-bundle", str(world.ca_bundle)]
    assert args[2:] == ["--resolver", f"{world.resolver[0]}:{world.resolver[1]}", "--https-port",
                        str(world.https_port), "--smtp-port", str(world.smtp_port)]
    assert min(world.resolver[1], world.https_port, world.smtp_port) > 1024
    problems = check_world(world, small())
    assert all(p == [] for p in problems.values()), problems


@pytest.mark.root
def test_netns_world_up_is_idempotent_and_down_leaves_nothing(tmp_path) -> None:
    name = f"mtasts-lc-{os.getpid()}"
    testbed = Testbed(small(), tmp_path / "w", mode="netns", netns_name=name)
    world = testbed.up()
    assert world.crawler_args() == ["--ca-bundle", str(world.ca_bundle)]
    assert world.exec_prefix() == ["ip", "netns", "exec", name]
    assert world.resolver == ("127.53.0.1", 53) and (world.https_port, world.smtp_port) == (443, 25)
    assert Path(f"/etc/netns/{name}/resolv.conf").read_text().count("nameserver 127.53.0.1") == 1
    first = {d.name: d.pid for d in world.daemons()}
    assert set(first) == {"knot", "unbound", "nginx", "helpers"}
    again = testbed.up()
    assert {d.name: d.pid for d in again.daemons()} == first  # nothing restarted
    assert _processes_mentioning(tmp_path / "w")
    world.down()
    assert not netns.exists(name)
    assert not Path(f"/etc/netns/{name}").exists()
    assert not any(d.running() for d in world.daemons())
    deadline = time.monotonic() + 5
    while _processes_mentioning(tmp_path / "w") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_mentioning(tmp_path / "w") == []  # nginx workers too
    world.down()  # idempotent


@pytest.mark.root
def test_changed_scenario_restarts_the_world(tmp_path) -> None:
    name = f"mtasts-re-{os.getpid()}"
    a = Testbed(small(), tmp_path / "w", mode="netns", netns_name=name).up()
    try:
        other = from_dict({"domains": [{"name": "only.test", "mx": ["mx1.only.test"]}]})
        b = Testbed(other, tmp_path / "w", mode="netns", netns_name=name).up()
        assert b.fingerprint != a.fingerprint and b.domains == 1
        assert not any(d.running() for d in [d for d in a.daemons() if d.pid not in
                                                     {x.pid for x in b.daemons()}])
        r = b.call(lambda: dns.query.udp(dns.message.make_query("only.test", "MX"), "127.53.0.1", timeout=3))
        assert r.answer
    finally:
        current = World.load(tmp_path / "w")
        if current is not None:
            current.down()


def test_a_broken_zone_fails_fast_with_knots_reason_and_cleans_up(tmp_path) -> None:
    bad = from_dict({"domains": [{"name": "a.test", "records": ['a.test. TXT unquoted "x']}]})
    with pytest.raises(TestbedError, match="knot could not load"):
        Testbed(bad, tmp_path / "w", mode="loopback").up()
    assert processes.load(tmp_path / "w" / "pids") == []


def test_population_world_comes_up_and_passes_the_self_check(make_world, tmp_path) -> None:
    pop = generate_population(3000, seed=5, mix="stress")
    world = make_world(pop, tmp_path)
    problems = check_world(world, pop, sample_domains(pop, 60, seed=1))
    assert all(p == [] for p in problems.values()), {k: v for k, v in problems.items() if v}


def test_latency_mode_delays_every_answer(make_world, tmp_path) -> None:
    world = make_world(small(), tmp_path, latency_ms=80)
    assert world.resolver[0] == "127.53.0.3"

    def timed() -> float:
        q = dns.message.make_query("valid-enforce.test", "MX")
        dns.query.udp(q, world.resolver[0], port=world.resolver[1], timeout=3)  # warm the cache
        t0 = time.monotonic()
        r = dns.query.udp(q, world.resolver[0], port=world.resolver[1], timeout=3)
        assert r.answer
        return time.monotonic() - t0

    assert world.call(timed) >= 0.075
