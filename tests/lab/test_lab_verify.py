"""``mtasts lab verify`` against a rendered plan brought up for real: the testbed's DNS (Knot
behind Unbound) serves the rendered zone, nginx serves the rendered conf.d site, and six
Postfix instances read the rendered main.cf/master.cf of receivers A-F, all in a network
namespace of the test's own. The checklist passes; one broken thing fails with its line.

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

from collectors.lab import netns as lab_netns
from collectors.lab.deploy import DeployPlan, render_deployment
from collectors.lab.design import SERVERS
from collectors.lab.dns import start_dns
from collectors.lab.postfix import PostfixInstance
from collectors.lab.verify import PLAN_FILE, plan_json
from collectors.testbed.pki import Pki
from support import REPO_ROOT, require_binaries
from test_lab_render_runs import _install

pytestmark = [pytest.mark.root, pytest.mark.servers]

BASE = "verify.test"   # under the testbed's test. zone, as the local lab's lab.test


def _plan(root: Path, policy_id: str = "20261206") -> DeployPlan:
    return DeployPlan(base=BASE, receivers_v4={"a": "127.0.0.11", "b": "127.0.0.12", "d": "127.0.0.14",
                                              "e": "127.0.0.15", "f": "127.0.0.16"},
                      receiver_c_v6="::1", policy_v4="127.0.0.10", policy_id=policy_id,
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
    started: list[PostfixInstance] = []
    nginx = None
    try:
        lab_netns.add_addresses(name, [plan.policy_v4, *plan.receivers_v4.values()])
        pki = Pki.open(Path(world.ca_bundle).parent)
        _certificates(plan, pki)
        _install(plan, files, root)
        conf = root / "nginx.conf"
        conf.write_text(f"daemon off;\npid {root}/nginx.pid;\nerror_log {root}/nginx-error.log;\nevents {{}}\n"
                        f"http {{\n    client_body_temp_path {root}/tmp-body;\n"
                        f"    proxy_temp_path {root}/tmp-proxy;\n    include {out}/nginx/mtasts-lab.conf;\n}}\n")
        nginx = subprocess.Popen(["ip", "netns", "exec", name, "nginx", "-c", str(conf)])
        for inst in _receivers(plan, files, pki, root):
            inst.start(name)
            started.append(inst)
        yield name, world, out, plan
    finally:
        for inst in started:
            inst.stop(name)
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=10)
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
    assert "C AAAA, no A       ::1" in good.stdout
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
