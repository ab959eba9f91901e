"""The local audit lab: ``up`` brings every server into one network namespace, ``send``
submits test messages through a sender profile, ``status`` says what runs and what
evidence exists, ``down`` stops exactly what ``up`` started.

Work directory layout (all evidence under ``evidence/``, what ``mtasts ingest`` reads):

    lab.json                  the running lab's state (PIDs are in the PID files)
    testbed/                  the testbed world serving the lab's DNS (and the CA)
    certs/ bin/ pids/ logs/   certificates, the recorder copy, PID files, daemon output
    postfix/<name>/           etc/ spool/ data/ of each Postfix instance
    exim/<profile>/           exim4.conf and spool of each Exim sender
    policy/                   nginx.conf and one policy file per lab domain
    evidence/postfix/<name>.log      each instance's maillog_file
    evidence/mta-sts-daemon*.log     each MTA-STS resolver's lookups and fetches (debug)
    evidence/exim/<profile>/mainlog  each Exim sender's own log (kept, not ingested)
    evidence/senders.json            each sender profile: software, version, TLS policy, timers
    evidence/received.jsonl          the recorder's lines (mtasts-recorder/1)
    evidence/policy-access.log       the policy server's access log (host first)
    evidence/tlsrpt-posts.jsonl      TLS-RPT POSTs (mtasts-tlsrpt-post/1)
    evidence/mail/<profile>/<account>/  each sending account's Maildir (notices)
    evidence/ledger.csv              provider,sent_at,from,to,message_id
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from collectors.lab import certs, configs
from collectors.lab.design import (
    BUILTIN_PROFILES, SERVERS, LabNames, LocalAddresses, QueueTimers, SenderProfile, builtin_profile,
)
from collectors.lab.exim import EXIM_USER, EximInstance, exim_binary
from collectors.lab.dns import load_world, start_dns, tlsa_association
from collectors.lab.postfix import PostfixInstance
from collectors.lab.processes import LabError, read_pid, run, spawn, stop_pid, wait_until
from collectors.lab.submit import Outgoing, SubmitResult, new_message_id, socketmap_query, submit
from collectors.lab.templates import template_path
from collectors.lab_ingest import LedgerEntry, address_uuid, append_ledger_csv, lab_label, make_addresses
from collectors.testbed import AUTHORITATIVE, Pki, call_in, netns, processes

DEFAULT_NETNS = "mtasts-lab"
DEFAULT_WORKDIR = Path("data/runs/lab")
RECORDER_USER = "nobody"          # local(8) runs mailbox_command as the recipient, never root
RESOLVER_ROUTE_TABLE = 7761       # the policy-routing table of the resolver on port 8461 (+1 a port)
STATE_FILE = "lab.json"
# A primed cache is filled this long before the first message: the policy server's access
# log has whole seconds, so a fetch and a message within one second could not be ordered
# (provider_behaviour.policy_fetched_before_first_send allows 1.5 s).
PRIME_LEAD_SECONDS = 2.0
BINARIES = ("postfix", "postqueue", "mta-sts-daemon", "nginx", "knotd", "unbound", "ip", "setpriv")



@dataclass(frozen=True, slots=True)
class EvidencePaths:
    """Where a lab's evidence is; every path is an input of ``mtasts ingest``."""

    root: Path

    @property
    def postfix_logs(self) -> Path:
        return self.root / "postfix"

    @property
    def received(self) -> Path:
        return self.root / "received.jsonl"

    @property
    def policy_access_log(self) -> Path:
        return self.root / "policy-access.log"

    @property
    def tlsrpt_posts(self) -> Path:
        return self.root / "tlsrpt-posts.jsonl"

    def resolver_log(self, profile: str = "postfix-mta-sts") -> Path:
        """The log of a profile's mta-sts-daemon (the first profile's keeps the plain name)."""
        suffix = "" if profile == "postfix-mta-sts" else f"-{profile}"
        return self.root / f"mta-sts-daemon{suffix}.log"

    @property
    def senders(self) -> Path:
        return self.root / "senders.json"

    def exim_logs(self, profile: str) -> Path:
        return self.root / "exim" / profile

    @property
    def mail(self) -> Path:
        return self.root / "mail"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.csv"

    def maildir(self, profile: str, account: str) -> Path:
        return self.mail / profile / account

    def ingest_inputs(self) -> list[Path]:
        """The files and Maildirs to pass to ``mtasts ingest`` (those that exist)."""
        found: list[Path] = []
        if self.postfix_logs.is_dir():
            found.extend(sorted(self.postfix_logs.glob("*.log")))
        for path in (*sorted(self.root.glob("mta-sts-daemon*.log")), self.received,
                     self.policy_access_log, self.tlsrpt_posts, self.ledger, self.senders):
            if path.exists() and path.stat().st_size > 0:
                found.append(path)
        if self.mail.is_dir():
            found.extend(sorted(p for p in self.mail.glob("*/*") if (p / "cur").is_dir()))
        return found


@dataclass
class LabState:
    """What ``up`` started, saved as ``lab.json`` (read by send, status and down)."""

    workdir: str
    netns: str
    base: str
    policy_id: str
    profiles: list[str]
    timers: dict[str, str]
    started_at: str
    ca_bundle: str
    startup_seconds: float = 0.0
    instances: list[str] = field(default_factory=list)   # Postfix instance names, start order
    daemons: list[str] = field(default_factory=list)     # PID-file names under pids/
    exim: list[str] = field(default_factory=list)        # Exim sender profiles (PID files exim-<name>)
    senders: dict[str, Any] = field(default_factory=dict)  # profile -> provenance (senders.json)

    @classmethod
    def load(cls, workdir: Path) -> "LabState | None":
        try:
            data = json.loads((workdir / STATE_FILE).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def save(self) -> None:
        path = Path(self.workdir) / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")


class Lab:
    """One local lab in ``workdir``, in network namespace ``netns_name``."""

    def __init__(self, workdir: Path | str = DEFAULT_WORKDIR, *, netns_name: str = DEFAULT_NETNS,
                 base: str | None = None, timers: QueueTimers | None = None,
                 profiles: tuple[str, ...] | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.netns = netns_name
        state = LabState.load(self.workdir)
        self.names = LabNames(base or (state.base if state else LabNames().base))
        self.timers = timers or (QueueTimers(**state.timers) if state else QueueTimers())
        self.profile_names = profiles or (tuple(state.profiles) if state else tuple(p.name for p in BUILTIN_PROFILES))
        self.addresses = LocalAddresses()
        self.evidence = EvidencePaths(self.workdir / "evidence")

    # -- paths ------------------------------------------------------------------------------
    @property
    def state(self) -> LabState | None:
        return LabState.load(self.workdir)

    def instance(self, name: str) -> PostfixInstance:
        return PostfixInstance(name, self.workdir / "postfix" / name,
                               self.evidence.postfix_logs / f"{name}.log")

    def exim(self, name: str) -> EximInstance:
        return EximInstance(name, self.workdir / "exim" / name, self.evidence.exim_logs(name))

    def profiles(self) -> list[SenderProfile]:
        found = []
        for name in self.profile_names:
            profile = builtin_profile(name)
            if profile is None:
                raise LabError(f"unknown sender profile {name!r} "
                               f"(built in: {', '.join(p.name for p in BUILTIN_PROFILES)})")
            found.append(profile)
        return found

    def _pid_file(self, name: str) -> Path:
        return self.workdir / "pids" / f"{name}.pid"

    # -- up ----------------------------------------------------------------------------------
    def up(self) -> LabState:
        """Start the whole lab; on any failure, stop what was started and raise LabError."""
        if os.geteuid() != 0:
            raise LabError("the local lab needs root (network namespace, ports 25 and 443)")
        missing = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
        if any(p.mta == "exim" for p in self.profiles()) and exim_binary() is None:
            missing.append("exim4 (Debian's exim4-daemon-heavy, unpacked by scripts/install-system-deps)")
        if missing:
            raise LabError(f"missing programs: {', '.join(missing)} (run: sudo scripts/install-system-deps)")
        current = self.state
        if current is not None:
            if netns.exists(current.netns):
                raise LabError(f"a lab is already up in {self.workdir} (namespace {current.netns}); "
                               "'mtasts lab down' first")
            (self.workdir / STATE_FILE).unlink()
        if netns.exists(self.netns):
            raise LabError(f"network namespace {self.netns} exists already; another lab or world uses it")
        self.profiles()  # unknown names fail before anything starts
        t0 = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        _require_traversable(self.workdir, RECORDER_USER)
        state = LabState(
            workdir=str(self.workdir), netns=self.netns, base=self.names.base,
            policy_id=datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S"),
            profiles=list(self.profile_names), timers=asdict(self.timers),
            started_at=datetime.now(timezone.utc).isoformat(), ca_bundle="",
        )
        try:
            self._start(state)
        except BaseException:
            self._stop_everything(state)
            raise
        state.startup_seconds = round(time.monotonic() - t0, 1)
        state.save()
        return state

    def _start(self, state: LabState) -> None:
        w = self.workdir
        for sub in ("pids", "logs", "certs", "bin", "policy/run/tmp", "policy/policies"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        self._prepare_evidence()
        state.save()  # from here on, 'down' can clean up an interrupted 'up'

        # 1. DNS (and the namespace, its resolv.conf and its trust store) from the testbed.
        zone = configs.zone_text(self.names, self.addresses, state.policy_id, int(time.time()),
                                 AUTHORITATIVE, tlsa_association(w / "testbed"))
        (w / "audit.zone").write_text(zone)
        world = start_dns(zone, self.names.zone + ".", w / "testbed", self.netns)
        state.ca_bundle = str(world.ca_bundle)
        state.save()
        netns.add_addresses(self.netns, self.addresses.all_v4() + self.addresses.all_v6())
        pki = Pki.open(Path(world.ca_bundle).parent)
        ca_file = Path(world.ca_bundle)

        # 2. The policy server (nginx) and the TLS-RPT endpoint.
        self._start_policy_server(pki, state)
        self._start_tlsrpt_receiver(pki, state)

        # 3. Receiving servers A-F.
        recorder = self._install_recorder()
        for server in SERVERS:
            inst = self.instance(server.label)
            tls = certs.server_certificate(pki, w / "certs", server.label,
                                           self.names.mx_host(server.label), server.tls)
            command = f"{recorder} --output {self.evidence.received} {server.label}"
            inst.write_config(configs.receiver_files(server, self.names, self.addresses, inst.paths(),
                                                     command, RECORDER_USER, tls))
            state.instances.append(inst.name)
        state.save()

        # 4. Senders (each MTA-STS profile with its own resolver daemon).
        for profile in self.profiles():
            if profile.enforces_mta_sts:
                self._start_mta_sts_daemon(profile, ca_file, state)
            if profile.mta == "exim":
                self._start_exim(profile, ca_file, state)
                continue
            nobody = pwd.getpwnam(RECORDER_USER)
            inst = self.instance(profile.name)
            mail_base = self._mail_base(profile, RECORDER_USER)
            inst.write_config(configs.sender_files(profile, self.names, self.addresses, inst.paths(),
                                                   mail_base, nobody.pw_uid, nobody.pw_gid,
                                                   ca_file, self.timers))
            state.instances.append(inst.name)
        self._record_senders(state)
        self._start_instances(state.instances)

        # 5. Everything answers.
        endpoints = [(self.addresses.receiver(s.label), 25) for s in SERVERS]
        endpoints += [(p.address, p.submit_port) for p in self.profiles()]
        endpoints += [(self.addresses.policy_server, 443), (self.addresses.tlsrpt_server, 443)]
        endpoints += [(self.addresses.resolver_daemon, p.resolver_port) for p in self.profiles()
                      if p.enforces_mta_sts]
        waiting = call_in(self.netns, _wait_for_ports, endpoints, 30.0)
        if waiting:
            raise LabError(f"not listening after 30 s: {', '.join(f'{h}:{p}' for h, p in waiting)} "
                           f"(logs in {w / 'logs'} and {self.evidence.postfix_logs})")

    def _mail_base(self, profile: SenderProfile, owner: str) -> Path:
        """The profile's Maildir base under the evidence, owned by the user that delivers."""
        account = pwd.getpwnam(owner)
        mail_base = self.evidence.mail / profile.name
        mail_base.mkdir(parents=True, exist_ok=True)
        os.chown(mail_base, account.pw_uid, account.pw_gid)
        return mail_base

    def _start_exim(self, profile: SenderProfile, ca_file: Path, state: LabState) -> None:
        binary = exim_binary()
        assert binary is not None  # checked by up()
        inst = self.exim(profile.name)
        mail_base = self._mail_base(profile, EXIM_USER)
        inst.write_config(configs.exim_files(profile, self.names, inst.paths(binary), mail_base,
                                             ca_file, self.timers)["exim4.conf"])
        state.exim.append(profile.name)
        state.daemons.append(f"exim-{profile.name}")
        state.save()
        inst.start(binary, self.netns, self.timers.queue_run_delay, self._pid_file(f"exim-{profile.name}"),
                   self.workdir / "logs" / f"exim-{profile.name}.out")

    def _record_senders(self, state: LabState) -> None:
        """Each profile's software, version, TLS policy and timers: the run's provenance,
        in lab.json and in evidence/senders.json (which `mtasts ingest` reads)."""
        versions = {"postfix": _postfix_version(self.netns), "exim": _exim_version(self.netns)}
        state.senders = {
            p.name: {
                "description": p.description, "mta": p.mta, "version": versions[p.mta],
                "mta_sts": p.enforces_mta_sts, "policy_cache": ("primed" if p.prime_policies else "lazy")
                if p.enforces_mta_sts else None, "dane": p.dane, "notices": p.notices,
                "timers": p.notice_settings(self.timers), "address": p.address, "address6": p.address6,
            } for p in self.profiles()}
        state.save()
        self.evidence.senders.write_text(json.dumps(
            {"format": "mtasts-lab-senders/1", "lab_started_at": state.started_at, "base": state.base,
             "tlsa_labels": [s.label for s in SERVERS if s.sts_policy], "profiles": state.senders},
            indent=2) + "\n")

    def _start_instances(self, names: list[str]) -> None:
        """Start the Postfix instances side by side (each start is mostly waiting)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(self.instance(name).start, self.netns) for name in names]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]

    def _prepare_evidence(self) -> None:
        nobody = pwd.getpwnam(RECORDER_USER)
        for directory in (self.evidence.root, self.evidence.postfix_logs, self.evidence.mail):
            directory.mkdir(parents=True, exist_ok=True)
        self.evidence.root.chmod(0o755)
        # The recorder runs as RECORDER_USER and appends to this file.
        self.evidence.received.touch()
        os.chown(self.evidence.received, nobody.pw_uid, nobody.pw_gid)
        self.evidence.received.chmod(0o644)
        if not self.evidence.ledger.exists():
            append_ledger_csv(self.evidence.ledger, [])

    def _install_recorder(self) -> Path:
        """A copy of lab/recorder/mtasts-recorder that the unprivileged recorder user can run."""
        source = template_path("recorder/mtasts-recorder")
        if not source.exists():
            raise LabError(f"the recorder is missing: {source}")
        target = self.workdir / "bin" / "mtasts-recorder"
        shutil.copyfile(source, target)
        target.chmod(0o755)
        (self.workdir / "bin").chmod(0o755)
        return target

    def _start_policy_server(self, pki: Pki, state: LabState) -> None:
        w = self.workdir
        tls, policy_files = {}, {}
        for server in configs.policy_servers():
            tls[server.label] = certs.issue_files(pki, w / "certs", f"policy-{server.label}",
                                                  self.names.policy_host(server.label))
            path = w / "policy" / "policies" / server.label / "mta-sts.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(configs.policy_text(self.names, server.label))
            policy_files[server.label] = path
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (w / "policy" / "run" / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        conf = w / "policy" / "nginx.conf"
        conf.write_text(configs.nginx_config(
            self.names, self.addresses.policy_server, w / "policy" / "run", w / "logs",
            self.evidence.policy_access_log, policy_files, tls))
        test = run(["nginx", "-t", "-c", str(conf), "-e", str(w / "logs" / "policy-error.log")],
                   netns=self.netns)
        if not test.ok:
            raise LabError(f"policy server configuration: {test.last_line()}")
        spawn(["nginx", "-c", str(conf), "-e", str(w / "logs" / "policy-error.log")], netns=self.netns,
              pid_file=self._pid_file("policy-server"), log_file=w / "logs" / "policy-server.log")
        state.daemons.append("policy-server")
        state.save()

    def _start_tlsrpt_receiver(self, pki: Pki, state: LabState) -> None:
        w = self.workdir
        tls = certs.issue_files(pki, w / "certs", "tlsrpt", self.names.tlsrpt_host)
        script = template_path("tlsrpt/mtasts-tlsrpt-receiver")
        spawn([sys.executable, str(script), "--listen", self.addresses.tlsrpt_server, "--port", "443",
               "--cert", str(tls.cert_file), "--key", str(tls.key_file),
               "--output", str(self.evidence.tlsrpt_posts)],
              netns=self.netns, pid_file=self._pid_file("tlsrpt-receiver"),
              log_file=w / "logs" / "tlsrpt-receiver.log")
        state.daemons.append("tlsrpt-receiver")
        state.save()

    def _start_mta_sts_daemon(self, profile: SenderProfile, ca_file: Path, state: LabState) -> None:
        """postfix-mta-sts-resolver for ``profile``, as its own unprivileged uid, whose
        connections to the policy server come from the profile's address."""
        w = self.workdir
        name = "mta-sts-daemon" if profile.name == "postfix-mta-sts" else f"mta-sts-daemon-{profile.name}"
        conf = w / f"{name}.yml"
        conf.write_text(configs.mta_sts_daemon_config(self.addresses, profile.resolver_port))
        conf.chmod(0o644)
        uid = profile.resolver_uid
        netns.route_uid_from(self.netns, uid, f"{self.addresses.policy_server}/32", profile.address,
                             RESOLVER_ROUTE_TABLE + profile.resolver_port - 8461)
        log = self.evidence.resolver_log(profile.name)
        log.touch()
        os.chown(log, uid, uid)
        # -v debug: the log then names every lookup, cache hit and fetch (evidence).
        # aiohttp verifies with Python's default context, which honours SSL_CERT_FILE.
        spawn(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
               "mta-sts-daemon", "-c", str(conf), "-v", "debug", "-l", str(log)],
              netns=self.netns, pid_file=self._pid_file(name),
              log_file=w / "logs" / f"{name}.out",
              env={"SSL_CERT_FILE": str(ca_file), "HOME": "/nonexistent"}, cwd=Path("/"))
        state.daemons.append(name)
        state.save()

    # -- down --------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop what ``up`` started (PID files only), then remove the namespace. Returns
        problems (empty when everything is gone)."""
        state = self.state
        if state is None:
            if netns.exists(self.netns):
                return [f"no lab state in {self.workdir}, but namespace {self.netns} exists; "
                        "not touching what this work directory did not start"]
            return []
        problems = self._stop_everything(state)
        if not problems:
            (self.workdir / STATE_FILE).unlink(missing_ok=True)
        return problems

    def _stop_everything(self, state: LabState) -> list[str]:
        problems = []
        ns = state.netns
        for name in reversed(state.instances):
            if not self.instance(name).stop(ns):
                problems.append(f"Postfix {name} did not stop")
        for name in reversed(state.daemons):
            pid = read_pid(self._pid_file(name))
            if pid is not None and not stop_pid(pid, netns=ns, timeout=10):
                problems.append(f"{name} (pid {pid}) did not stop")
            self._pid_file(name).unlink(missing_ok=True)
        testbed_dir = self.workdir / "testbed"
        processes.stop(testbed_dir / "pids")  # the DNS servers, by their PID files
        # Children (nginx workers, Postfix daemons) end with their masters; give them a moment.
        wait_until(lambda: not [p for p in netns.pids(ns) if processes.running(p)], 10)
        leftover = [p for p in netns.pids(ns) if processes.running(p)]
        if leftover:
            # Never removed blindly: the namespace stays so the processes can be inspected.
            problems.append(f"processes the lab did not stop are still in namespace {ns}: {leftover}")
            return problems
        world = load_world(testbed_dir)
        if world is not None:
            world.down()  # removes its state; its processes are gone already
        netns.delete(ns)
        return problems

    # -- send ----------------------------------------------------------------------------------
    def send(self, profile_name: str, rounds: int = 1, *, prime_cache: bool = False,
             submit_to: tuple[str, int] | None = None, provider: str | None = None,
             from_addr: str | None = None, interval: float = 0.0,
             labels: str = "abcdef") -> list[SubmitResult]:
        """Send ``rounds`` rounds of one fresh test message per lab server through a
        sender profile and record each accepted one in the ledger."""
        state = self._require_up()
        profile = builtin_profile(profile_name)
        if profile is not None:
            if profile.name not in state.profiles:
                raise LabError(f"profile {profile.name} is not running in this lab")
            host, port = profile.address, profile.submit_port
            provider = provider or profile.name
            prime_cache = prime_cache or profile.prime_policies
            sender = from_addr or profile.from_address(self.names)
        elif profile_name == "external":
            if submit_to is None:
                raise LabError("the external profile needs --via HOST:PORT (its SMTP submission address)")
            if prime_cache:
                raise LabError("cannot prime an external sender's policy cache")
            host, port = submit_to
            provider = provider or f"external-{host}"
            sender = from_addr or f"tester@{provider}.senders.{self.names.base}"
        else:
            raise LabError(f"unknown profile {profile_name!r} "
                           f"(built in: {', '.join(p.name for p in BUILTIN_PROFILES)}, or external)")
        if rounds < 1:
            raise LabError("--rounds must be at least 1")
        if prime_cache:
            self.prime_cache(profile.name if profile is not None else "postfix-mta-sts")
            time.sleep(PRIME_LEAD_SECONDS)
        results: list[SubmitResult] = []
        sender_domain = sender.rsplit("@", 1)[-1]
        for number in range(1, rounds + 1):
            entries = make_addresses(provider, sender, self.names.zone, labels)
            items = [Outgoing(sender, e.to_addr, new_message_id(sender_domain),
                              f"MTA-STS audit lab, round {number}, server {e.server_label}")
                     for e in entries]
            done = submit(state.netns, host, port, items, round_number=number)
            self._append_ledger(provider, sender, [r for r in done if r.accepted])
            results.extend(done)
            if number < rounds and interval > 0:
                time.sleep(interval)
        return results

    def prime_cache(self, profile_name: str = "postfix-mta-sts") -> dict[str, str]:
        """Make a profile's MTA-STS resolver fetch and cache every lab domain's policy now."""
        state = self._require_up()
        profile = builtin_profile(profile_name)
        if profile is None or not profile.enforces_mta_sts or profile.name not in state.profiles:
            raise LabError(f"no MTA-STS resolver of profile {profile_name} runs in this lab")
        domains = [self.names.domain(s.label) for s in SERVERS]
        return socketmap_query(state.netns, self.addresses.resolver_daemon, profile.resolver_port, domains)

    def _append_ledger(self, provider: str, sender: str, accepted: list[SubmitResult]) -> None:
        append_ledger_csv(self.evidence.ledger, [
            LedgerEntry(provider=provider, account=sender, sent_at=r.submitted_at, from_addr=sender,
                        to_addr=r.to_addr, message_id=r.message_id, server_label=lab_label(r.to_addr),
                        address_uuid=address_uuid(r.to_addr), source="manual")
            for r in accepted])

    def _require_up(self) -> LabState:
        state = self.state
        if state is None or not netns.exists(state.netns):
            raise LabError(f"no lab is up in {self.workdir} ('mtasts lab up' first)")
        return state

    # -- status ----------------------------------------------------------------------------------
    def flush(self) -> None:
        """Retry every deferred message of every sender now."""
        state = self._require_up()
        for name in state.instances:
            if builtin_profile(name) is not None:
                self.instance(name).flush(state.netns)
        binary = exim_binary()
        for name in state.exim:
            self.exim(name).flush(binary, state.netns)  # type: ignore[arg-type]

    def queued(self) -> dict[str, int]:
        """Messages still in each sender's queue."""
        state = self._require_up()
        binary = exim_binary()
        return {name: self.exim(name).queued(binary, state.netns) if name in state.exim  # type: ignore[arg-type]
                else len(self.instance(name).queue(state.netns)) for name in state.profiles}

    def wait_until_settled(self, timeout: float, poll: float = 5.0) -> bool:
        """Wait until every sender's queue is empty (each message delivered or bounced)."""
        deadline = time.monotonic() + timeout
        while True:
            if not any(self.queued().values()):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(poll)

    def status(self) -> dict[str, Any]:
        state = self.state
        if state is None:
            return {"workdir": str(self.workdir), "up": False}
        ns_up = netns.exists(state.netns)
        procs: dict[str, Any] = {}
        for name in state.instances:
            pid = self.instance(name).master_pid()
            procs[f"postfix-{name}"] = {"pid": pid, "running": pid is not None}
        for name in state.daemons:
            pid = read_pid(self._pid_file(name))
            procs[name] = {"pid": pid, "running": bool(pid and processes.running(pid))}
        world = load_world(self.workdir / "testbed")
        if world is not None:
            for name, info in world.status()["processes"].items():
                procs[f"testbed-{name}"] = info
        out: dict[str, Any] = {
            "workdir": str(self.workdir), "up": ns_up, "netns": state.netns, "base": state.base,
            "started_at": state.started_at, "startup_seconds": state.startup_seconds,
            "profiles": state.profiles, "timers": state.timers, "processes": procs,
            "evidence": self.evidence_summary(),
            "ingest": [str(p) for p in self.evidence.ingest_inputs()],
        }
        if ns_up:
            out["queued"] = self.queued()
        return out

    def evidence_summary(self) -> dict[str, int]:
        ev = self.evidence

        def lines(path: Path) -> int:
            try:
                with open(path, "rb") as fh:
                    return sum(1 for _ in fh)
            except OSError:
                return 0

        notices = sum(1 for p in ev.mail.glob("*/*/*/*") if p.is_file() and p.parent.name in ("new", "cur")) \
            if ev.mail.is_dir() else 0
        return {
            "received_messages": lines(ev.received),
            "policy_fetches": lines(ev.policy_access_log),
            "tlsrpt_posts": lines(ev.tlsrpt_posts),
            "ledger_rows": max(0, lines(ev.ledger) - 1),
            "sender_notices": notices,
        }


def _wait_for_ports(endpoints: list[tuple[str, int]], timeout: float) -> list[tuple[str, int]]:
    """The endpoints that do not accept TCP within ``timeout`` (run inside the namespace)."""
    pending = list(endpoints)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        still = []
        for host, port in pending:
            try:
                with socket.create_connection((host, port), timeout=1.0):
                    pass
            except OSError:
                still.append((host, port))
        pending = still
        if pending:
            time.sleep(0.2)
    return pending


def _require_traversable(path: Path, user: str) -> None:
    """The recorder runs as ``user``: every directory above the work directory must let
    others through (x bit), or Postfix cannot run it and defers every message."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise LabError(f"{parent} is not searchable by other users; the recorder runs as "
                           f"'{user}' and needs it (use a work directory elsewhere, e.g. under /var/tmp)")


def _postfix_version(netns_name: str) -> str | None:
    """Postfix's version (``postconf -d mail_version``), or None."""
    result = run(["postconf", "-d", "-h", "mail_version"], netns=netns_name)
    return result.last_line() if result.ok else None


def _exim_version(netns_name: str) -> str | None:
    """Exim's version from ``exim -bV`` ("Exim version 4.96 #2 ..."), or None."""
    binary = exim_binary()
    if binary is None:
        return None
    result = run([str(binary), "-C", "/dev/null", "-bV"], netns=netns_name)
    for line in result.output.splitlines():
        if line.startswith("Exim version "):
            return line.split()[2]
    return None
