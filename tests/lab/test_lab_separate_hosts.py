"""The rendered lab, brought up for real as separate hosts, one network namespace each, and
driven through the guide's own steps (docs/lab-deploy.md):

* the DNS host: the testbed's DNS (Knot behind Unbound) serves the rendered zone; every
  other host is linked to it by a veth pair (documentation addresses, RFC 5737, and a ULA)
  and it routes between them, as the internet would;
* the policy host: nginx reads the rendered conf.d site, and the TLS-RPT receiver and the
  live view run from the rendered systemd units' ExecStart;
* receivers A-F: each Postfix reads its rendered main.cf/master.cf on a host of its own;
* two sending hosts: a real enforcing sender (Postfix with postfix-mta-sts-resolver) and a
  real opportunistic one (Postfix), each the lab's own sender profile, from its own address.

``mtasts lab verify`` passes its checklist and names what is broken. The senders send two
rounds, to addresses the lab's live view issued to ``mtasts lab addresses --lab`` and
``mtasts lab watch --issue``, which then shows what arrived; the rendered ``collect-evidence.sh``
copies the evidence off every host; ``mtasts ingest`` reads it as section 7 says, and
``provider_behaviour`` has the local lab's rows (the committed sample's) for both senders.

Only a documented prefix differs from real hosts: the plan's directories point into the
test's folder (as in test_lab_render_runs.py), /usr/local/bin/ too; /etc/postfix-<x>, /var/spool/postfix-<x> and
/var/lib/postfix-<x> in the rendered Postfix files are moved under it too; the recorder's
account is ``nobody`` (section 3 creates ``mtastslab``, not made here); the sending hosts
ask a second Unbound of the DNS host (the first answers only on its loopback); and
collect-evidence.sh reaches each host by ``ip netns exec`` where it would use ssh, and the
hosts share one filesystem (so every host's folder of evidence holds every file)."""

from __future__ import annotations

import dataclasses
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from collectors.lab import configs
from collectors.lab.deploy import RECEIVER_LISTEN, RECEIVER_PORT, STATUS_PORT, DeployPlan, render_deployment
from collectors.lab.design import SERVERS, LabNames, LocalAddresses, QueueTimers, builtin_profile
from collectors.lab.dns import start_dns
from collectors.lab.postfix import PostfixInstance
from collectors.lab.processes import spawn, stop_pid
from collectors.lab.submit import Outgoing, new_message_id, submit
from collectors.lab.verify import PLAN_FILE, plan_json
from collectors.report import import_sample
from collectors.testbed import call_in
from collectors.testbed.netns import delete as lab_netns_delete
from collectors.testbed.pki import Pki
from support import REPO_ROOT, require_binaries
from test_lab_render_runs import _exec_start, _install, _listening

pytestmark = [pytest.mark.root, pytest.mark.servers, pytest.mark.slow]

BASE = "verify.test"   # under the testbed's test. zone, as the local lab's lab.test
HUB_V4, HUB_V6 = "192.0.2.1", "fd00:77::1"   # the DNS host's end of every link
ENFORCING, OPPORTUNISTIC = "postfix-mta-sts", "postfix-opportunistic"
SENDER_ADDRESSES = {ENFORCING: ("192.0.2.21", "fd00:77::21"), OPPORTUNISTIC: ("192.0.2.22", "fd00:77::22")}
ROUNDS = 2   # as the sample's lab run: two rounds per sender
RECORDER_USER = "nobody"


def _plan(root: Path, policy_id: str = "20261206") -> DeployPlan:
    return DeployPlan(base=BASE, receivers_v4={"a": "192.0.2.11", "b": "192.0.2.12", "d": "192.0.2.14",
                                              "e": "192.0.2.15", "f": "192.0.2.16"},
                      receiver_c_v6="fd00:77::13", policy_v4="192.0.2.10", policy_id=policy_id,
                      acme_live=str(root / "live"), log_directory=str(root / "log"),
                      data_directory=str(root / "data"), policy_directory=str(root / "policies"),
                      status_token_file=str(root / "status-token"), recorder_user=RECORDER_USER)


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


def _receivers(plan: DeployPlan, files: dict[str, str], root: Path) -> list[PostfixInstance]:
    """Receivers A-F from their rendered files, with the documented path prefix."""
    recorder = root / "bin" / "mtasts-recorder"   # the rendered program, where install.sh's /usr/local/bin/ is
    recorder.parent.mkdir()
    recorder.write_text(files["bin/mtasts-recorder"])
    recorder.chmod(0o755)
    instances = []
    for server in SERVERS:
        name = f"postfix-{server.label}"
        inst = PostfixInstance(name, root / "postfix" / server.label, Path(plan.log_directory) / f"{name}.log")
        moved = {f"/etc/{name}": str(inst.config_directory), f"/var/spool/{name}": str(inst.queue_directory),
                 f"/var/lib/{name}": str(inst.data_directory), "/usr/local/bin/mtasts-recorder": str(recorder)}
        config = {}
        for rel in ("main.cf", "master.cf", "aliases.regexp"):
            text = files[f"{name}/{rel}"]
            for old, new in moved.items():
                text = text.replace(old, new)
            config[rel] = text
        inst.write_config(config)
        if server.tls == "wrong_name":  # D's certificate, made by the guide's own command (section 2)
            done = subprocess.run(shlex.split(_guide_command("openssl req -x509").replace(
                f"/etc/{name}", str(inst.config_directory))), capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        instances.append(inst)
    return instances


def _guide_command(start: str) -> str:
    """The command of docs/lab-deploy.md that begins with ``start``, its continued lines joined."""
    guide = (REPO_ROOT / "docs" / "lab-deploy.md").read_text()
    text = start + guide.split(start, 1)[1].split("\n```", 1)[0]
    return text.replace("\\\n", " ")


def _sh(*argv: str) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"


def _host(hub: str, name: str, link: str, addresses: tuple[str, ...], nameserver: str = "127.0.0.1") -> None:
    """Namespace ``name``, a separate host with ``addresses`` on its eth0, linked to the hub
    namespace (the DNS host, which routes between its links) by a veth pair whose hub end
    is ``link``; the host's default routes go through the hub."""
    _sh("ip", "netns", "add", name)
    # Postfix looks each client's name up before its banner: a receiver's resolver that
    # answers nothing quickly (no one on its loopback) stands in for a real host's.
    etc = Path("/etc/netns") / name
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text(f"nameserver {nameserver}\noptions trust-ad\n")
    for ns in (hub, name):  # no duplicate address detection: usable at once
        _sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0")
    _sh("ip", "link", "add", link, "netns", hub, "type", "veth", "peer", "name", "eth0", "netns", name)
    for ns, dev in ((name, "eth0"), (hub, link)):
        _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "-n", ns, "link", "set", dev, "up")
    for family, hub_address in ((4, HUB_V4), (6, HUB_V6)):
        own = [a for a in addresses if (":" in a) == (family == 6)]
        plen, flag, extra = (128, ["-6"], ["nodad"]) if family == 6 else (32, [], [])
        if family == 6 or own:   # every host reaches the hub's IPv6 end (the link needs it for C)
            _sh("ip", "-n", hub, *flag, "addr", "replace", f"{hub_address}/{plen}", "dev", link, *extra)
            _sh("ip", "-n", name, *flag, "route", "add", f"{hub_address}/{plen}", "dev", "eth0")
        for address in own:
            _sh("ip", "-n", name, *flag, "addr", "add", f"{address}/{plen}", "dev", "eth0", *extra)
            _sh("ip", "-n", hub, *flag, "route", "add", f"{address}/{plen}", "dev", link)
        if own:
            _sh("ip", "-n", name, *flag, "route", "add", "default", "via", hub_address, "dev", "eth0")


def _hosts_resolver(hub: str, world, root: Path) -> subprocess.Popen:
    """A second Unbound on the DNS host, answering the other hosts on the hub's address:
    the world's own (same trust anchors, same Knot) listens on its loopback only."""
    conf = (Path(world.workdir) / "unbound" / "unbound.conf").read_text()
    ip, port = world.resolver
    conf = (conf.replace(f"interface: {ip}@{port}", f"interface: {HUB_V4}@53").replace(f"port: {port}\n", "port: 53\n")
            .replace("access-control: 127.0.0.0/8 allow", "access-control: 127.0.0.0/8 allow\n"
                     "    access-control: 192.0.2.0/24 allow")
            .replace("unbound.pid", "unbound-hosts.pid").replace("unbound.log", "unbound-hosts.log"))
    assert f"interface: {HUB_V4}@53" in conf
    path = root / "unbound-hosts.conf"
    path.write_text(conf)
    return subprocess.Popen(["ip", "netns", "exec", hub, "unbound", "-d", "-c", str(path)])


def _answers(host: str, name: str) -> bool:
    import dns.resolver

    def ask() -> bool:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.lifetime = [HUB_V4], 2
        try:
            return bool(resolver.resolve(name, "MX"))
        except Exception:   # not up yet
            return False
    return call_in(host, ask)


def _wait(what: str, check, timeout: float = 30.0, logs: tuple[Path, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tails = "".join(f"\n--- {log}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                            for log in logs if log.exists())
            raise AssertionError(f"not ready after {timeout:.0f} s: {what}{tails}")
        time.sleep(0.2)


@dataclass
class Sender:
    """A built-in sender profile on a host of its own, sending from that host's addresses."""

    profile_name: str
    host: str
    address: str
    postfix: PostfixInstance
    resolver_pid: int | None = None


@dataclass
class Deployment:
    hub: str
    world: object
    out: Path
    plan: DeployPlan
    root: Path
    hosts: dict[str, str]
    senders: dict[str, Sender] = field(default_factory=dict)


def _start_sender(d: Deployment, profile_name: str, link: str, stack) -> Sender:
    """The lab's own sender profile, rendered by the lab's own code for this host's address."""
    v4, v6 = SENDER_ADDRESSES[profile_name]
    profile = dataclasses.replace(builtin_profile(profile_name), address=v4, address6=v6)
    host = f"{d.hub}-{profile_name.split('-')[-1][:5]}"
    d.hosts[profile_name] = host
    _host(d.hub, host, link, (v4, v6), nameserver=HUB_V4)
    ca_file = Path(d.world.ca_bundle)
    sender = Sender(profile_name, host, v4, PostfixInstance(profile_name, d.root / "senders" / profile_name,
                                                            d.root / "senders" / f"{profile_name}.log"))
    if profile.enforces_mta_sts:
        conf = d.root / f"{profile_name}-mta-sts-daemon.yml"
        conf.write_text(configs.mta_sts_daemon_config(LocalAddresses(), profile.resolver_port))
        conf.chmod(0o644)
        log = d.root / f"{profile_name}-mta-sts-daemon.log"
        log.touch()
        os.chown(log, profile.resolver_uid, profile.resolver_uid)
        sender.resolver_pid = spawn(
            ["setpriv", f"--reuid={profile.resolver_uid}", f"--regid={profile.resolver_uid}", "--clear-groups",
             "mta-sts-daemon", "-c", str(conf), "-v", "debug", "-l", str(log)],
            netns=host, pid_file=d.root / "pids" / f"{profile_name}.pid", log_file=d.root / f"{profile_name}.out",
            env={"SSL_CERT_FILE": str(ca_file), "HOME": "/nonexistent"}, cwd=Path("/"))
        stack.append(lambda: stop_pid(sender.resolver_pid, netns=host, timeout=10))
    nobody = pwd.getpwnam(RECORDER_USER)
    mail_base = d.root / "mail" / profile_name
    mail_base.mkdir(parents=True)
    os.chown(mail_base, nobody.pw_uid, nobody.pw_gid)
    inst = sender.postfix
    inst.write_config(configs.sender_files(profile, LabNames(BASE), LocalAddresses(), inst.paths(), mail_base,
                                           nobody.pw_uid, nobody.pw_gid, ca_file, QueueTimers()))
    inst.start(host)
    stack.append(lambda: inst.stop(host))
    _wait(f"{profile_name} on {v4}:25", lambda: _listening(host, v4, 25))
    if profile.enforces_mta_sts:
        _wait(f"{profile_name}'s resolver", lambda: _listening(host, "127.0.0.1", profile.resolver_port))
    return sender


@pytest.fixture(scope="module")
def deployment():
    require_binaries("nginx", "postfix", "knotd", "unbound", "ip", "mta-sts-daemon", "rsync", "setpriv")
    root = Path(tempfile.mkdtemp(prefix="mtasts-hosts-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    plan = _plan(root)
    Path(plan.status_token_file).write_text("a-test-token-of-enough-length\n")
    files = render_deployment(plan)
    out = root / "rendered"
    for rel, text in {**files, PLAN_FILE: plan_json(plan)}.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, newline="")
    name = f"mtasts-hosts-t{os.getpid() % 100000}"
    world = start_dns(files[f"dns/audit.{BASE}.zone"], f"audit.{BASE}.", root / "testbed", name)
    d = Deployment(name, world, out, plan, root, {label: f"{name}-{label}" for label in [*(s.label for s in SERVERS), "p"]})
    stack: list = []   # what to stop, in reverse
    try:
        for sysctl in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
            _sh("ip", "netns", "exec", name, "sysctl", "-qw", sysctl)
        for label in [*(s.label for s in SERVERS), "p"]:
            address = plan.policy_v4 if label == "p" else (
                plan.receiver_c_v6 if label == "c" else plan.receivers_v4[label])
            _host(name, d.hosts[label], f"mth{os.getpid() % 10000}{label}", (address,))
        pki = Pki.open(Path(world.ca_bundle).parent)
        _certificates(plan, pki)
        _install(plan, files, root)
        conf = root / "nginx.conf"
        conf.write_text(f"daemon off;\npid {root}/nginx.pid;\nerror_log {root}/nginx-error.log;\nevents {{}}\n"
                        f"http {{\n    client_body_temp_path {root}/tmp-body;\n"
                        f"    proxy_temp_path {root}/tmp-proxy;\n    include {out}/nginx/mtasts-lab.conf;\n}}\n")
        procs = [subprocess.Popen(["ip", "netns", "exec", d.hosts["p"], "nginx", "-c", str(conf)])]
        for unit in ("mtasts-tlsrpt-receiver", "mtasts-lab-status"):
            procs.append(subprocess.Popen(["ip", "netns", "exec", d.hosts["p"],
                                           *_exec_start(files[f"systemd/{unit}.service"])],
                                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}))
        procs.append(_hosts_resolver(name, world, root))
        stack.append(lambda: [(p.terminate(), p.wait(timeout=10)) for p in procs])
        for inst in _receivers(plan, files, root):
            host = d.hosts[inst.name.removeprefix("postfix-")]
            inst.start(host)
            stack.append(lambda inst=inst, host=host: inst.stop(host))
        _wait("the hosts' resolver", lambda: _answers(name, f"a.audit.{BASE}"))
        _wait("the TLS-RPT receiver and the live view", lambda: all(
            _listening(d.hosts["p"], RECEIVER_LISTEN, port) for port in (RECEIVER_PORT, STATUS_PORT)))
        for number, profile_name in enumerate(SENDER_ADDRESSES):
            d.senders[profile_name] = _start_sender(d, profile_name, f"mth{os.getpid() % 10000}s{number}", stack)
        yield d
    finally:
        for stop in reversed(stack):
            try:
                stop()
            except Exception as exc:   # stop the rest all the same
                print(f"cleanup: {exc!r}", file=sys.stderr)
        for host in d.hosts.values():
            lab_netns_delete(host)
        world.down()
        shutil.rmtree(root, ignore_errors=True)


def _mtasts(*args: str, netns: str | None = None, **kw) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "collectors.cli", *args]
    return subprocess.run(["ip", "netns", "exec", netns, *argv] if netns else argv, capture_output=True,
                          text=True, timeout=kw.pop("timeout", 120), cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **kw.pop("env", {})}, **kw)


# -- section 6 and 7 of the guide: send, collect, ingest ------------------------------------------------

# The columns of provider_behaviour that say what a sender did, without its clock times and
# without what only the local lab records of its own profiles (evidence/senders.json).
BEHAVIOUR = ("provider, server_label, setup, under_enforce_policy, enforcing_sender_must, messages, "
             "delivered_messages, undelivered_messages, delivered, verdict, provider_verdict, tls_protocols, "
             "policy_fetched, policy_fetched_for_label, fetch_attribution")


def _behaviour(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT {BEHAVIOUR} FROM provider_behaviour WHERE provider IN (?, ?) "
                           "ORDER BY provider, server_label", [ENFORCING, OPPORTUNISTIC]).fetchall()


def _watch(d: Deployment, *args: str) -> subprocess.CompletedProcess:
    """``mtasts lab watch`` from the DNS host (the researcher's machine: it resolves the lab's
    names and reaches the policy host through the routed links)."""
    return _mtasts("lab", "watch", "--lab", f"https://tlsrpt.audit.{BASE}", "--ca-bundle", str(d.world.ca_bundle),
                   "--once", *args, netns=d.hub)


def _send_rounds(d: Deployment, ledger: Path) -> dict[str, list[list[str]]]:
    """Each sender, two rounds: the addresses of the first from ``mtasts lab addresses --lab``,
    of the second from ``mtasts lab watch --issue --ledger``, both issued by the lab's live view
    and recorded in the ledger (section 6); one message per address, submitted to the sender as its user's
    mail client would. Returns each sender's addresses, round by round."""
    sent: dict[str, list[list[str]]] = {name: [] for name in d.senders}
    for number in range(ROUNDS):
        for profile_name, sender in d.senders.items():
            account = builtin_profile(profile_name).from_address(LabNames(BASE))
            if number == 0:
                made = _mtasts("lab", "addresses", "--provider", profile_name, "--account", account,
                               "--lab-domain", f"audit.{BASE}", "--ledger", str(ledger), "--no-ingest",
                               "--lab", f"https://tlsrpt.audit.{BASE}", "--token-file", d.plan.status_token_file,
                               "--ca-bundle", str(d.world.ca_bundle), netns=d.hub)
                addresses = [line.split("\t")[1] for line in made.stdout.splitlines() if "\t" in line]
            else:
                made = _watch(d, "--issue", "--token-file", d.plan.status_token_file, "--provider", profile_name,
                              "--account", account, "--ledger", str(ledger))
                addresses = [line.strip() for line in made.stdout.splitlines() if line.startswith("  ") and "@" in line
                             and " " not in line.strip()]
            assert made.returncode == 0, made.stderr
            assert len(addresses) == 6, made.stdout
            items = [Outgoing(account, to, new_message_id(account.split("@")[1]), f"separate hosts, to {to[-20:]}")
                     for to in addresses]
            results = submit(sender.host, sender.address, 25, items)
            assert all(r.accepted for r in results), results
            sent[profile_name].append(addresses)
    return sent


def _collect(d: Deployment, evidence: Path, hosts: list[str]) -> subprocess.CompletedProcess:
    """``sh collect-evidence.sh DEST HOST...`` (section 7), with ``ip netns exec HOST sh -c``
    where ssh would run the remote side through the host's shell."""
    remote = d.root / "netns-ssh"
    remote.write_text('#!/bin/sh\nhost=$1\nshift\nexec ip netns exec "$host" sh -c "$*"\n')
    remote.chmod(0o755)
    return subprocess.run(["sh", str(d.out / "collect-evidence.sh"), str(evidence), *hosts],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "RSYNC_RSH": str(remote)})


def test_real_senders_on_their_own_hosts_give_the_local_labs_provider_behaviour(deployment, tmp_path) -> None:
    d = deployment
    researcher = tmp_path / "researcher"   # your own machine: the ledger, the evidence, the database
    ledger = researcher / "ledger.csv"
    # Pulled before anything arrived: what the lab has not written yet is named, not an error.
    policy_host = d.hosts["p"]
    early = _collect(d, researcher / "early", [policy_host])
    assert early.returncode == 0, early.stdout + early.stderr
    assert f"not on {policy_host} yet (nothing recorded so far): received.jsonl" in early.stderr
    assert (researcher / "early" / policy_host / "tlsrpt-posts.jsonl").read_bytes() == b""   # from its start
    addresses = _send_rounds(d, ledger)
    sent = sum(len(batch) for rounds in addresses.values() for batch in rounds)
    # Every message a sender may deliver arrives (the enforcing one refuses B and D, RFC 8461
    # section 5); each refused one has been tried and deferred at least once.
    received = Path(d.plan.data_directory) / "received.jsonl"
    deliverable = sent - 2 * ROUNDS   # all but the enforcing sender's B and D messages
    enforcing_log = d.senders[ENFORCING].postfix.log_file

    def settled() -> bool:
        lines = received.read_text().splitlines() if received.exists() else []
        refused = enforcing_log.read_text().count("status=deferred") if enforcing_log.exists() else 0
        return len(lines) >= deliverable and refused >= 2 * ROUNDS
    logs = tuple(s.postfix.log_file for s in d.senders.values()) + (
        d.root / f"{ENFORCING}-mta-sts-daemon.log", Path(d.plan.log_directory) / "postfix-a.log")
    _wait("every deliverable message received", settled, timeout=60, logs=logs)

    # The live view (section 6) shows each round of the enforcing sender as the evidence has
    # it: A, C, E (with TLS) and F arrived from its address, B and D nothing. Its resolver
    # fetched the five policies when the first round came (lazily, RFC 8461 section 5.1) and
    # had them cached for the second (max_age a day): no fetch since those were issued.
    enforcing = SENDER_ADDRESSES[ENFORCING][0]
    for number, batch in enumerate(addresses[ENFORCING]):
        watched = _watch(d, *batch)
        assert watched.returncode == 0, watched.stderr
        table = watched.stdout
        for label in "ACEF":
            assert f"  {label}  arrived " in table and f"[{enforcing}]" in table, table
        for label in "BD":
            assert f"  {label}  nothing arrived yet" in table, table
        assert " TLSv1.3 " in table
        fetches = [line for line in table.splitlines() if "policy fetched" in line]
        if number == 0:
            assert len(fetches) == 5 and all(f"by {enforcing}  status 200" in line for line in fetches), table
        else:
            assert fetches == [], table

    # Pulled from every host, as section 7 says for servers on hosts of their own. The hosts
    # here share one filesystem, so each host's folder holds every file: the ingest must read
    # each content once.
    evidence = researcher / "evidence"
    hosts = [d.hosts[s.label] for s in SERVERS] + [policy_host]
    collected = _collect(d, evidence, hosts)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    for host in hosts:
        assert sorted(p.name for p in (evidence / host / "postfix").iterdir()) == [
            f"postfix-{s.label}.log" for s in SERVERS]
        assert (evidence / host / "received.jsonl").read_bytes() == received.read_bytes()

    # Section 7's command, as printed there (no notices: none are due within the test).
    db = researcher / "observatory.duckdb"
    ingested = _mtasts("ingest", "--db", str(db), "--year", str(datetime.now(timezone.utc).year),
                       str(evidence), str(ledger))
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    assert "quarantined: 0\n" in ingested.stdout

    sample_db = tmp_path / "sample.duckdb"
    import_sample(sample_db, REPO_ROOT / "data" / "sample")
    ours, local_lab = _behaviour(db), _behaviour(sample_db)
    assert len(ours) == 12
    assert ours == local_lab
    by_label = {(row[0], row[1]): row for row in ours}
    assert by_label[(ENFORCING, "b")][9] == "enforces MTA-STS"
    assert by_label[(OPPORTUNISTIC, "b")][9] == "does not enforce MTA-STS"
    # The enforcing sender's fetches are told from its address on its own host.
    assert by_label[(ENFORCING, "a")][12:] == (True, True, "client address")


# -- the last section of the guide: the checklist -------------------------------------------------------

def _verify(d: Deployment, plan_file: Path) -> subprocess.CompletedProcess:
    ip, port = d.world.resolver
    return _mtasts("lab", "verify", str(plan_file), "--resolver", f"{ip}:{port}", "--ca-bundle",
                   str(d.world.ca_bundle), "--timeout", "5", netns=d.hub, timeout=60)


def test_verify_passes_on_the_deployment_as_rendered_and_names_what_is_broken(deployment) -> None:
    d = deployment
    good = _verify(d, d.out / PLAN_FILE)
    lines = good.stdout.splitlines()
    assert good.returncode == 0, good.stdout + good.stderr
    # six checks per server, and E's refusal of MAIL without STARTTLS; no PTR records here: advice
    assert sum(line.startswith("OK ") for line in lines) == 37, good.stdout
    assert "E TLS required     MAIL without STARTTLS answered 530 " in good.stdout
    assert sum(line.startswith("WARN") and " PTR " in line for line in lines) == 6, good.stdout
    assert "WARN A PTR              192.0.2.11: no PTR record (set it to mx.a.audit.verify.test)" in good.stdout
    assert lines[-1] == "37 of 37 checks passed; 6 warnings (advice)"
    assert "C AAAA, no A       fd00:77::13" in good.stdout
    assert "D SMTP TLS         STARTTLS, certificate refused (self_signed: " in good.stdout
    assert "for wrong-name.invalid" in good.stdout

    # A plan whose id the zone does not publish: exactly the five _mta-sts lines fail.
    other = d.out / "other-plan.json"
    other.write_text(plan_json(_plan(d.root, policy_id="20991231")))
    wrong_id = _verify(d, other)
    failed = [line for line in wrong_id.stdout.splitlines() if line.startswith("FAIL")]
    assert wrong_id.returncode == 1
    assert len(failed) == 5 and all("_mta-sts TXT" in line and "expected id=20991231" in line for line in failed)

    # One policy edited on the policy host: exactly that line fails.
    served = Path(d.plan.policy_directory) / "c" / "mta-sts.txt"
    original = served.read_bytes()
    served.write_bytes(original.replace(b"enforce", b"testing"))
    try:
        edited = _verify(d, d.out / PLAN_FILE)
    finally:
        served.write_bytes(original)
    failed = [line for line in edited.stdout.splitlines() if line.startswith("FAIL")]
    assert edited.returncode == 1
    assert failed == [next(line for line in failed if line.startswith("FAIL C policy"))], edited.stdout
    assert "not the rendered policy/c/mta-sts.txt" in failed[0]
