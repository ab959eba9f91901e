"""``mtasts lab verify`` against a rendered plan brought up for real, as separate hosts: the
testbed's DNS (Knot behind Unbound) serves the rendered zone in one network namespace (where
the check runs too), nginx serves the rendered conf.d site in another, and each of the six
Postfix receivers A-F reads its rendered main.cf/master.cf in a namespace of its own, each
host linked to the DNS host by a veth pair (documentation addresses, RFC 5737 and a ULA).
The checklist passes; one broken thing fails with its line.

Only a documented prefix differs from a real host: the plan's directories point into the
test's folder (as in test_lab_render_runs.py), and /etc/postfix-<x>, /var/spool/postfix-<x>
and /var/lib/postfix-<x> in the rendered Postfix files are moved under it too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from collectors.lab.deploy import DeployPlan, render_deployment
from collectors.lab.design import SERVERS
from collectors.lab.dns import start_dns
from collectors.lab.postfix import PostfixInstance
from collectors.lab.verify import PLAN_FILE, plan_json
from collectors.testbed.netns import delete as lab_netns_delete
from collectors.testbed.pki import Pki
from support import REPO_ROOT, require_binaries
from test_lab_render_runs import _install

pytestmark = [pytest.mark.root, pytest.mark.servers]

BASE = "verify.test"   # under the testbed's test. zone, as the local lab's lab.test


def _plan(root: Path, policy_id: str = "20261206") -> DeployPlan:
    return DeployPlan(base=BASE, receivers_v4={"a": "192.0.2.11", "b": "192.0.2.12", "d": "192.0.2.14",
                                              "e": "192.0.2.15", "f": "192.0.2.16"},
                      receiver_c_v6="fd00:77::13", policy_v4="192.0.2.10", policy_id=policy_id,
                      acme_live=str(root / "live"), log_directory=str(root / "log"),
                      data_directory=str(root / "data"), policy_directory=str(root / "policies"),
                      status_token_file=str(root / "status-token"))


def _certificates(plan: DeployPlan, pki: Pki) -> None:
    """What certbot would leave in the live folder: lab-web (every policy host and the
    TLS-RPT endpoint) and lab-mx (mx.a, mx.c, mx.e), from the CA the namespace trusts."""
    zone = f"audit.{BASE}"
    wanted = {plan.web_certificate: [f"mta-sts.{s.label}.{zone}" for s in SERVERS if s.sts_policy]
              + [f"tlsrpt.{zone}"],
              plan.mx_certificate: [f"mx.{s.label}.{zone}" for s in SERVERS if s.tls in ("valid", "required")]}
    for cert_name, names in wanted.items():
        live = Path(plan.acme_live) / cert_name
        live.mkdir(parents=True)
        (live / "fullchain.pem").write_bytes(pki.issue(names[0], "name_mismatch", mismatch_names=tuple(names)))
        (live / "privkey.pem").write_bytes(pki.leaf_key_pem())


def _receivers(plan: DeployPlan, files: dict[str, str], pki: Pki, root: Path) -> list[PostfixInstance]:
    """Receivers A-F from their rendered files, with the documented path prefix."""
    instances = []
    for server in SERVERS:
        name = f"postfix-{server.label}"
        inst = PostfixInstance(name, root / "postfix" / server.label, Path(plan.log_directory) / f"{name}.log")
        moved = {f"/etc/{name}": str(inst.config_directory), f"/var/spool/{name}": str(inst.queue_directory),
                 f"/var/lib/{name}": str(inst.data_directory)}
        config = {}
        for rel in ("main.cf", "master.cf", "aliases.regexp"):
            text = files[f"{name}/{rel}"]
            for old, new in moved.items():
                text = text.replace(old, new)
            config[rel] = text
        inst.write_config(config)
        if server.tls == "wrong_name":  # docs/lab-deploy.md section 2: openssl req -x509 ... wrong-name
            (inst.config_directory / "wrong-name.pem").write_bytes(pki.issue("wrong-name.invalid", "self_signed"))
            (inst.config_directory / "wrong-name.key").write_bytes(pki.leaf_key_pem())
        instances.append(inst)
    return instances


HUB_V4, HUB_V6 = "192.0.2.1", "fd00:77::1"   # the DNS host's end of every link


def _sh(*argv: str) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"


def _host(hub: str, name: str, link: str, address: str) -> None:
    """Namespace ``name``, a separate host with ``address`` on its eth0, linked to the hub
    namespace (the DNS host) by a veth pair whose hub end is ``link``."""
    v6 = ":" in address
    _sh("ip", "netns", "add", name)
    # Postfix looks each client's name up before its banner; a host's resolver that answers
    # nothing quickly (no one on its loopback) stands in for a real host's working one.
    etc = Path("/etc/netns") / name
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    for ns in (hub, name):  # no duplicate address detection: usable at once
        _sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0")
    _sh("ip", "link", "add", link, "netns", hub, "type", "veth", "peer", "name", "eth0", "netns", name)
    family, plen, hub_address = (["-6"], 128, HUB_V6) if v6 else ([], 32, HUB_V4)
    for ns, dev, own, peer in ((name, "eth0", address, None), (hub, link, hub_address, address)):
        _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "-n", ns, "link", "set", dev, "up")
        _sh("ip", "-n", ns, *family, "addr", "add", f"{own}/{plen}", "dev", dev, *(["nodad"] if v6 else []))
        _sh("ip", "-n", ns, *family, "route", "add", f"{peer}/{plen}" if peer else "default", "dev", dev)


@pytest.fixture
def deployment():
    require_binaries("nginx", "postfix", "knotd", "unbound", "ip")
    root = Path(tempfile.mkdtemp(prefix="mtasts-verify-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    plan = _plan(root)
    files = render_deployment(plan)
    out = root / "rendered"
    for rel, text in {**files, PLAN_FILE: plan_json(plan)}.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, newline="")
    name = f"mtasts-verify-t{os.getpid() % 100000}"
    world = start_dns(files[f"dns/audit.{BASE}.zone"], f"audit.{BASE}.", root / "testbed", name)
    hosts = {label: f"{name}-{label}" for label in [*(s.label for s in SERVERS), "p"]}
    started: list[tuple[PostfixInstance, str]] = []
    nginx = None
    try:
        for label, host in hosts.items():
            address = plan.policy_v4 if label == "p" else (
                plan.receiver_c_v6 if label == "c" else plan.receivers_v4[label])
            _host(name, host, f"mtv{os.getpid() % 10000}{label}", address)
        pki = Pki.open(Path(world.ca_bundle).parent)
        _certificates(plan, pki)
        _install(plan, files, root)
        conf = root / "nginx.conf"
        conf.write_text(f"daemon off;\npid {root}/nginx.pid;\nerror_log {root}/nginx-error.log;\nevents {{}}\n"
                        f"http {{\n    client_body_temp_path {root}/tmp-body;\n"
                        f"    proxy_temp_path {root}/tmp-proxy;\n    include {out}/nginx/mtasts-lab.conf;\n}}\n")
        nginx = subprocess.Popen(["ip", "netns", "exec", hosts["p"], "nginx", "-c", str(conf)])
        for inst in _receivers(plan, files, pki, root):
            host = hosts[inst.name.removeprefix("postfix-")]
            inst.start(host)
            started.append((inst, host))
        yield name, world, out, plan
    finally:
        for inst, host in started:
            inst.stop(host)
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=10)
        for host in hosts.values():
            lab_netns_delete(host)
        world.down()
        shutil.rmtree(root, ignore_errors=True)


def _verify(name: str, world, plan_file: Path) -> subprocess.CompletedProcess:
    ip, port = world.resolver
    return subprocess.run(["ip", "netns", "exec", name, sys.executable, "-m", "collectors.cli", "lab", "verify",
                           str(plan_file), "--resolver", f"{ip}:{port}", "--ca-bundle", str(world.ca_bundle),
                           "--timeout", "5"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_verify_passes_on_the_deployment_as_rendered_and_names_what_is_broken(deployment) -> None:
    name, world, out, plan = deployment
    good = _verify(name, world, out / PLAN_FILE)
    lines = good.stdout.splitlines()
    assert good.returncode == 0, good.stdout + good.stderr
    assert sum(line.startswith("OK ") for line in lines) == 36, good.stdout  # six checks per server
    assert "C AAAA, no A       fd00:77::13" in good.stdout
    assert "D SMTP TLS         STARTTLS, certificate refused (self_signed: " in good.stdout
    assert "for wrong-name.invalid" in good.stdout

    # A plan whose id the zone does not publish: exactly the five _mta-sts lines fail.
    other = out / "other-plan.json"
    other.write_text(plan_json(_plan(Path(plan.log_directory).parent, policy_id="20991231")))
    wrong_id = _verify(name, world, other)
    failed = [line for line in wrong_id.stdout.splitlines() if line.startswith("FAIL")]
    assert wrong_id.returncode == 1
    assert len(failed) == 5 and all("_mta-sts TXT" in line and "expected id=20991231" in line for line in failed)

    # One policy edited on the policy host: exactly that line fails.
    served = Path(plan.policy_directory) / "c" / "mta-sts.txt"
    served.write_bytes(served.read_bytes().replace(b"enforce", b"testing"))
    edited = _verify(name, world, out / PLAN_FILE)
    failed = [line for line in edited.stdout.splitlines() if line.startswith("FAIL")]
    assert edited.returncode == 1
    assert failed == [next(line for line in failed if line.startswith("FAIL C policy"))], edited.stdout
    assert "not the rendered policy/c/mta-sts.txt" in failed[0]
