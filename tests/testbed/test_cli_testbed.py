"""``mtasts testbed up | status | shell | down`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.cli import main
from support import REPO_ROOT, require_testbed_servers


def mtasts(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collectors.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_missing_or_bad_scenario_is_one_line_and_exit_2(tmp_path: Path) -> None:
    r = mtasts("testbed", "up", str(tmp_path / "nope.yaml"), "--workdir", str(tmp_path / "w"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("domains:\n  - name: a.test\n    null_mx: true\n    mx: [mx.a.test]\n")
    r = mtasts("testbed", "up", str(bad), "--workdir", str(tmp_path / "w"), "--mode", "loopback")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "bad scenario" in r.stderr
    r = mtasts("testbed", "up", "--population", "5", "--mix", "nope", "--workdir", str(tmp_path / "w"),
               "--mode", "loopback")
    assert r.returncode == 2 and "unknown mix" in r.stderr


def test_status_without_a_world_says_so(tmp_path: Path, capsys) -> None:
    assert main(["testbed", "status", "--workdir", str(tmp_path)]) == 3
    assert "no world" in capsys.readouterr().err
    assert main(["testbed", "down", "--workdir", str(tmp_path)]) == 0


@pytest.mark.servers
def test_up_status_down_in_loopback_mode(tmp_path: Path, capsys) -> None:
    require_testbed_servers()
    w = str(tmp_path / "w")
    assert main(["testbed", "up", "--population", "200", "--mix", "stress", "--mode", "loopback",
                 "--workdir", w]) == 0
    try:
        out = capsys.readouterr().out
        assert "crawl flags: --ca-bundle" in out and "--resolver 127.53.0.1:" in out
        assert len((tmp_path / "w" / "domains.txt").read_text().splitlines()) == 200
        assert main(["testbed", "status", "--json", "--workdir", w]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["running"] and status["domains"] == 200 and status["netns"] is None
        pids = {k: v["pid"] for k, v in status["processes"].items()}
        assert main(["testbed", "up", "--population", "200", "--mix", "stress", "--mode", "loopback",
                     "--workdir", w, "--json"]) == 0
        again = json.loads(capsys.readouterr().out)
        assert {k: v["pid"] for k, v in again["processes"].items()} == pids
        assert main(["testbed", "check", "--sample", "0", "--workdir", w]) == 0
        assert "checked 200 of 200 domains: 200 as specified" in capsys.readouterr().out
    finally:
        assert main(["testbed", "down", "--workdir", w]) == 0
    assert main(["testbed", "status", "--workdir", w]) == 3


def test_month_needs_a_population_and_is_not_negative(tmp_path: Path) -> None:
    r = mtasts("testbed", "up", "--month", "2", "--workdir", str(tmp_path / "w"), "--mode", "loopback")
    assert r.returncode == 2 and "--month applies to a generated population" in r.stderr
    r = mtasts("testbed", "up", "--population", "5", "--month", "-1", "--workdir", str(tmp_path / "w"),
               "--mode", "loopback")
    assert r.returncode == 2 and "--month must be >= 0" in r.stderr


@pytest.mark.servers
def test_up_month_serves_the_evolved_population_with_its_events_and_weights(tmp_path: Path, capsys) -> None:
    from collectors.testbed.evolution import planted_events

    require_testbed_servers()
    w = str(tmp_path / "w")
    args = ["testbed", "up", "--population", "300", "--mix", "panel", "--seed", "3", "--mode", "loopback",
            "--workdir", w]
    assert main([*args, "--month", "4"]) == 0
    try:
        events = (tmp_path / "w" / "events.csv").read_text().splitlines()
        assert events[0] == "domain,event" and events[1:] == [f"{d},{e}" for d, e in planted_events(300, 3, "panel", 4)]
        assert len(events) > 1
        weights = (tmp_path / "w" / "weights.csv").read_text().splitlines()
        assert len(weights) == 301 and {row.split(",")[1] for row in weights[1:]} == {"mta-sts", "other"}
        capsys.readouterr()
        assert main(["testbed", "check", "--sample", "0", "--workdir", w]) == 0
        assert "checked 300 of 300 domains: 300 as specified" in capsys.readouterr().out
    finally:
        assert main(["testbed", "down", "--workdir", w]) == 0


@pytest.mark.servers
@pytest.mark.root
def test_shell_runs_unmodified_clients_inside_the_namespace(tmp_path: Path) -> None:
    require_testbed_servers()
    w = str(tmp_path / "w")
    name = f"mtasts-cli-{os.getpid()}"
    r = mtasts("testbed", "up", "--workdir", w, "--netns", name)
    assert r.returncode == 0, r.stderr
    try:
        r = mtasts("testbed", "shell", "--workdir", w, "dig", "+short", "mx", "null-mx.test")
        assert r.stdout.strip() == "0 ."
        r = subprocess.run(["ip", "netns", "exec", name, "curl", "-sS",
                            "https://mta-sts.valid-enforce.test/.well-known/mta-sts.txt"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "mode: enforce" in r.stdout  # the namespace trusts the world's CA
        r = subprocess.run(["ip", "netns", "exec", name, "curl", "-sS",
                            "https://mta-sts.fetch-tls-expired.test/.well-known/mta-sts.txt"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "expired" in r.stderr
    finally:
        r = mtasts("testbed", "down", "--workdir", w)
    assert r.returncode == 0
    assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
