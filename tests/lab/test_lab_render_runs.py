"""The rendered policy host, run: nginx reads the rendered conf.d site and the TLS-RPT
receiver runs from the rendered systemd unit's ExecStart, in a network namespace of their
own; a real client fetches every policy and POSTs reports through nginx, and the evidence
lands exactly where the rendered ``collect-evidence.sh`` looks for it.

Only a documented prefix differs from a real host: the plan's directories (certificates,
logs, data, policies) point into the test's folder, Debian's /etc/nginx/nginx.conf is a
minimal one that includes the site, and /usr/local/bin/ is the repository's lab/ folder."""

from __future__ import annotations

import gzip
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from collectors.lab.deploy import (
    RECEIVER_LISTEN, RECEIVER_PORT, STATUS_PORT, DeployPlan, evidence_paths, install_map, render_deployment,
)
from collectors.lab.templates import template_path
from collectors.lab_ingest import HttpRequest, parse_access_log_lines
from collectors.rfc import parse_sts_policy
from collectors.testbed import netns
from collectors.testbed.pki import Pki
from support import REPO_ROOT, require_binaries

pytestmark = [pytest.mark.root, pytest.mark.servers]

BASE = "example.org"
REPORT = {"organization-name": "Example Sender", "report-id": "r-1", "contact-info": "x@sender.example",
          "date-range": {"start-datetime": "2024-09-29T00:00:00Z", "end-datetime": "2024-09-29T23:59:59Z"},
          "policies": [{"policy": {"policy-type": "sts", "policy-domain": "a.audit.example.org"},
                        "summary": {"total-successful-session-count": 1, "total-failure-session-count": 0}}]}


def _plan(tmp: Path) -> DeployPlan:
    return DeployPlan(base=BASE, receivers_v4={"a": "127.0.0.11", "b": "127.0.0.12", "d": "127.0.0.14",
                                              "e": "127.0.0.15", "f": "127.0.0.16"},
                      receiver_c_v6="::1", policy_v4="127.0.0.10", policy_id="20261206",
                      acme_live=str(tmp / "live"), log_directory=str(tmp / "log"),
                      data_directory=str(tmp / "data"), policy_directory=str(tmp / "policies"),
                      status_token_file=str(tmp / "status-token"))


def _install(plan: DeployPlan, files: dict[str, str], tmp: Path) -> None:
    """What install.sh does, for the files under the plan's (prefixed) directories."""
    for name, where in install_map(plan, list(files)).items():
        if where.destination.startswith(str(tmp)):
            target = Path(where.destination)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[name], newline="")
    for directory in (plan.log_directory, plan.data_directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o777)  # the unit's User= is the recorder account; here, anyone


def _certificates(plan: DeployPlan, tmp: Path) -> Pki:
    pki = Pki.open(tmp / "pki")
    names = [f"mta-sts.{label}.audit.{BASE}" for label in "abcde"] + [f"tlsrpt.audit.{BASE}"]
    live = Path(plan.acme_live) / plan.web_certificate
    live.mkdir(parents=True)
    (live / "fullchain.pem").write_bytes(pki.issue(names[0], "name_mismatch", mismatch_names=tuple(names)))
    (live / "privkey.pem").write_bytes(pki.leaf_key_pem())
    return pki


def _exec_start(unit: str) -> list[str]:
    """A rendered unit's ExecStart, with the installed programs replaced by this checkout's."""
    line = unit.split("ExecStart=", 1)[1].split("\nRestart=", 1)[0].replace("\\\n", " ")
    argv = shlex.split(line)
    installed = {"/usr/local/bin/mtasts-tlsrpt-receiver": [sys.executable,
                                                           str(template_path("tlsrpt/mtasts-tlsrpt-receiver"))],
                 "/opt/mtasts/bin/mtasts": [sys.executable, "-m", "collectors.cli"]}
    return [*installed[argv[0]], *argv[1:]]


def _listening(host: str, address: str, port: int) -> bool:
    """Whether something accepts connections on ``address``:``port`` in namespace ``host``."""
    import socket

    def connect() -> bool:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return True
        except OSError:
            return False
    return netns.call_in(host, connect)


def _curl(name: str, pki: Pki, url: str, *args: str) -> subprocess.CompletedProcess:
    host = url.split("/")[2]
    return subprocess.run(["ip", "netns", "exec", name, "curl", "-s", "-S", "--max-time", "10",
                           "--cacert", str(pki.ca_bundle), "--resolve", f"{host}:443:127.0.0.10",
                           "-o", "-", "-w", "\n%{http_code}", *args, url], capture_output=True, text=True)


@pytest.fixture
def host_root():
    """A folder nginx's unprivileged workers can read (pytest's tmp_path is root-only)."""
    root = Path(tempfile.mkdtemp(prefix="mtasts-render-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def policy_host(host_root: Path):
    require_binaries("nginx", "curl", "ip")
    tmp_path = host_root
    plan = _plan(tmp_path)
    Path(plan.status_token_file).write_text("a-test-token-of-enough-length\n")
    files = render_deployment(plan)
    _install(plan, files, tmp_path)
    pki = _certificates(plan, tmp_path)
    out = tmp_path / "rendered"
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, newline="")
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/nginx-error.log;\n"
                    "events {}\nhttp {\n"
                    + "".join(f"    {kind}_temp_path {tmp_path}/tmp-{kind};\n"
                              for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                    + f"    include {out}/nginx/mtasts-lab.conf;\n}}\n")
    name = f"mtasts-render-t{os.getpid() % 100000}"
    netns.create(name)
    procs = []
    try:
        check = subprocess.run(["ip", "netns", "exec", name, "nginx", "-t", "-c", str(conf)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        procs.append(subprocess.Popen(["ip", "netns", "exec", name, "nginx", "-c", str(conf)]))
        for unit in ("mtasts-tlsrpt-receiver", "mtasts-lab-status"):
            procs.append(subprocess.Popen(["ip", "netns", "exec", name,
                                           *_exec_start(files[f"systemd/{unit}.service"])],
                                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}))
        for _ in range(100):   # nginx, and behind it the receiver and the live view on loopback
            up = _curl(name, pki, f"https://mta-sts.a.audit.{BASE}/.well-known/mta-sts.txt")
            if up.stdout.endswith("200") and all(_listening(name, RECEIVER_LISTEN, port)
                                                 for port in (RECEIVER_PORT, STATUS_PORT)):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the rendered policy host did not come up in 10 s (nginx, receiver, live view)")
        yield name, pki, plan, files
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        netns.delete(name)


def test_the_rendered_policy_host_serves_policies_and_takes_reports(policy_host, host_root: Path) -> None:
    name, pki, plan, files = policy_host
    for label in "abcde":
        got = _curl(name, pki, f"https://mta-sts.{label}.audit.{BASE}/.well-known/mta-sts.txt")
        body, _, status = got.stdout.rpartition("\n")
        assert status == "200", got.stderr
        policy = parse_sts_policy(body.encode())
        assert policy.ok and policy.mode == "enforce" and policy.mx == (f"mx.{label}.audit.{BASE}",)
    report = f"https://tlsrpt.audit.{BASE}/v1/report"
    posted = _curl(name, pki, report, "-X", "POST", "-H", "Content-Type: application/tlsrpt+gzip",
                   "--data-binary", "@-")
    assert posted.stdout.endswith("415")  # an empty body: neither gzip nor JSON
    body = host_root / "report.json.gz"
    body.write_bytes(gzip.compress(json.dumps(REPORT).encode()))
    posted = _curl(name, pki, report, "-X", "POST", "-H", "Content-Type: application/tlsrpt+gzip",
                   "--data-binary", f"@{body}")
    assert posted.stdout.endswith("201"), posted.stdout + posted.stderr

    # The evidence is where the rendered collect-evidence.sh copies it from.
    sources = evidence_paths(plan)
    for source in sources:
        assert source in files["collect-evidence.sh"]
    posts = Path(f"{plan.data_directory}/tlsrpt-posts.jsonl")
    assert str(posts) in sources
    (stored,) = [json.loads(line) for line in posts.read_text().splitlines()]
    assert stored["remote_addr"] == "127.0.0.1" and stored["host"] == f"tlsrpt.audit.{BASE}"
    access = Path(f"{plan.log_directory}/policy-access.log")
    assert str(access) in sources
    lines = ((0, number, line) for number, line in enumerate(access.read_text().splitlines(), start=1))
    fetches = [f for f in parse_access_log_lines(lines) if isinstance(f, HttpRequest)]
    assert {f.policy_domain for f in fetches if f.is_policy_fetch and f.status == 200} == {
        f"{label}.audit.{BASE}" for label in "abcde"}


def test_the_live_view_answers_through_the_rendered_nginx(policy_host, host_root: Path) -> None:
    name, pki, plan, files = policy_host
    base = f"https://tlsrpt.audit.{BASE}"
    watch = ["ip", "netns", "exec", name, sys.executable, "-m", "collectors.cli", "lab", "watch", "--lab", base,
             "--ca-bundle", str(pki.ca_bundle), "--once"]
    # the name resolves through /etc/hosts of the namespace's view: curl's --resolve has no
    # equivalent in urllib, so give the test's resolver an answer
    hosts = Path("/etc/netns") / name / "hosts"
    hosts.parent.mkdir(parents=True, exist_ok=True)
    hosts.write_text(f"127.0.0.1 localhost\n127.0.0.10 tlsrpt.audit.{BASE}\n")
    for _ in range(50):
        issued = subprocess.run([*watch, "--issue", "--token-file", plan.status_token_file],
                                capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        if issued.returncode == 0:
            break
        time.sleep(0.2)
    assert issued.returncode == 0, issued.stderr
    assert issued.stdout.count("nothing arrived yet") == 6
    assert Path(f"{plan.data_directory}/issued-addresses.jsonl").read_text().count("@") == 6
    stranger = _curl(name, pki, f"{base}/v1/status/0f8fad5b-d9cb-469f-a165-70867728950e@a.audit.{BASE}")
    assert stranger.stdout.endswith("404")
    no_token = _curl(name, pki, f"{base}/v1/addresses", "-X", "POST")
    assert no_token.stdout.endswith("401")
