"""Testbed (a scenario plus where and how to run it) and World (the running servers).

``Testbed(scenario, workdir).up()`` writes every configuration into ``workdir``, starts
Knot, Unbound, nginx, the SMTP/stalling helper (and dnsdist in latency mode), waits until
each answers, and returns a :class:`World`. ``World.down()`` stops exactly those
processes (PID files) and removes the namespace. ``up`` is idempotent: a world already
running the same scenario with the same settings is returned as it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import shutil
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from collectors import REPO_ROOT
from collectors.testbed import netns, processes
from collectors.testbed import plan as addr
from collectors.testbed.pki import Pki
from collectors.testbed.plan import make_plan
from collectors.testbed.resolver import dnsdist_conf, trust_anchors, unbound_conf
from collectors.testbed.scenario import Scenario
from collectors.testbed.web import nginx_conf, site_for, write_site
from collectors.testbed.zones import build_zones, knot_conf, write_zones

T = TypeVar("T")
DEFAULT_NETNS = "mtasts-testbed"
BINARIES = ("knotd", "unbound", "nginx", "ip")
STARTUP_TIMEOUT = 170.0


class TestbedError(RuntimeError):
    """A world could not be brought up (a server failed to start; see its log)."""

    __test__ = False  # not a pytest test class, despite the name


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin", "/usr/bin"):
        if Path(d, name).exists():
            return str(Path(d, name))
    return None


def missing_binaries(latency: bool = False) -> list[str]:
    names = BINARIES + (("dnsdist",) if latency else ())
    return [n for n in names if _which(n) is None]


@dataclass
class World:
    """A running world: where its servers are and how a client reaches them."""

    workdir: Path
    mode: str
    netns: str | None
    resolver: tuple[str, int]
    https_port: int
    smtp_port: int
    dns_port: int
    latency_ms: int
    ca_bundle: Path
    scenario_name: str = ""
    fingerprint: str = ""
    domains: int = 0
    started_at: float = 0.0
    startup_seconds: float = 0.0

    # -- the contract with the crawler --------------------------------------------------
    def crawler_args(self) -> list[str]:
        """Exactly the ``mtasts crawl`` flags a crawl of this world needs."""
        args = ["--ca-bundle", str(self.ca_bundle)]
        if self.mode == "loopback":
            ip, port = self.resolver
            args += ["--resolver", f"{ip}:{port}", "--https-port", str(self.https_port),
                     "--smtp-port", str(self.smtp_port)]
        return args

    def exec_prefix(self) -> list[str]:
        """Prefix a command with this to run it where the world is (``ip netns exec``)."""
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in the world's network namespace (in this one for loopback worlds)."""
        return netns.call_in(self.netns, fn, *args, **kwargs)

    # -- state ----------------------------------------------------------------------------
    def save(self) -> None:
        data = asdict(self)
        data["workdir"] = str(self.workdir)
        data["ca_bundle"] = str(self.ca_bundle)
        (self.workdir / "state.json").write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, workdir: Path) -> "World | None":
        try:
            data = json.loads((Path(workdir) / "state.json").read_text())
        except (OSError, ValueError):
            return None
        data["workdir"] = Path(data["workdir"])
        data["ca_bundle"] = Path(data["ca_bundle"])
        data["resolver"] = tuple(data["resolver"])
        return cls(**data)

    def daemons(self) -> list[processes.Daemon]:
        return processes.load(self.workdir / "pids")

    def is_running(self) -> bool:
        ds = self.daemons()
        return bool(ds) and all(d.running() for d in ds) and \
            (self.netns is None or netns.exists(self.netns))

    def status(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir), "mode": self.mode, "netns": self.netns,
            "scenario": self.scenario_name, "domains": self.domains,
            "resolver": f"{self.resolver[0]}:{self.resolver[1]}", "https_port": self.https_port,
            "smtp_port": self.smtp_port, "latency_ms": self.latency_ms, "ca_bundle": str(self.ca_bundle),
            "processes": {d.name: {"pid": d.pid, "running": d.running()} for d in self.daemons()},
            "crawler_args": self.crawler_args(), "startup_seconds": round(self.startup_seconds, 1),
        }

    def down(self) -> None:
        """Stop the processes ``up`` started, delete the namespace and its /etc/netns files."""
        with _workdir_lock(self.workdir):
            self._down()

    def _down(self) -> None:
        processes.stop(self.workdir / "pids")
        if self.netns:
            netns.delete(self.netns)
        (self.workdir / "state.json").unlink(missing_ok=True)

    def __enter__(self) -> "World":
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


@contextlib.contextmanager
def _workdir_lock(workdir: Path) -> Iterator[None]:
    """An exclusive lock on a workdir while a world in it starts or stops."""
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _port_free(port: int) -> bool:
    """Free on every address: a wildcard bind fails if any 127.x socket holds the port."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def _free_ports(count: int, rng: random.Random) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        p = rng.randrange(20000, 32000)  # below the Linux ephemeral range
        if p not in ports and _port_free(p):
            ports.append(p)
    return ports


@dataclass
class Testbed:
    """A scenario and how to run it: ``Testbed(scenario, workdir).up()`` gives a World."""

    __test__ = False  # not a pytest test class, despite the name

    scenario: Scenario
    workdir: Path | str
    mode: str = "netns"
    latency_ms: int = 0
    netns_name: str | None = None
    python: str = field(default=sys.executable)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        if self.mode not in ("netns", "loopback"):
            raise ValueError("mode must be 'netns' or 'loopback'")
        if self.mode == "netns" and self.netns_name is None:
            self.netns_name = DEFAULT_NETNS

    def __enter__(self) -> World:
        self._world = self.up()
        return self._world

    def __exit__(self, *exc: object) -> None:
        self._world.down()

    # ------------------------------------------------------------------------------------
    def up(self) -> World:
        workdir = Path(self.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        fingerprint = self.scenario.fingerprint()
        with _workdir_lock(workdir):  # two 'up's on one workdir would fight over its files
            return self._up(workdir, fingerprint)

    def _up(self, workdir: Path, fingerprint: str) -> World:
        current = World.load(workdir)
        if current is not None:
            same = (current.fingerprint == fingerprint and current.mode == self.mode
                    and current.latency_ms == self.latency_ms
                    and (self.mode == "loopback" or current.netns == self.netns_name))
            if same and current.is_running():
                return current
            current._down()
        else:
            processes.stop(workdir / "pids")  # leftovers of an interrupted 'up'
        if self.mode == "netns":
            if os.geteuid() != 0:
                raise TestbedError("netns mode needs root; use mode='loopback' (--mode loopback)")
            assert self.netns_name
            if netns.exists(self.netns_name) and netns.pids(self.netns_name):
                raise TestbedError(f"namespace {self.netns_name} is in use by processes this workdir "
                                   "did not start; pick another name or stop them")
        missing = missing_binaries(self.latency_ms > 0)
        if missing:
            raise TestbedError(f"missing server binaries: {', '.join(missing)} "
                               "(run: sudo scripts/install-system-deps)")
        try:
            return self._start(fingerprint)
        except BaseException:
            self._cleanup()
            raise

    def _cleanup(self) -> None:
        processes.stop(Path(self.workdir) / "pids")
        if self.mode == "netns" and self.netns_name:
            netns.delete(self.netns_name)

    def _start(self, fingerprint: str) -> World:
        t0 = time.monotonic()
        w = Path(self.workdir)
        for sub in ("logs", "pids", "knot/run", "knot/db", "knot/zones", "unbound", "nginx", "helpers", "dnsdist"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        (w / "helpers" / "ready").unlink(missing_ok=True)
        if self.mode == "netns":
            dns_port, https_port, smtp_port = 53, 443, 25
            assert self.netns_name
            netns.create(self.netns_name)
        else:
            rng = random.Random(os.getpid() ^ time.monotonic_ns())
            dns_port, https_port, smtp_port = _free_ports(3, rng)
        prefix = ["ip", "netns", "exec", self.netns_name] if self.mode == "netns" else []
        ns = self.netns_name if self.mode == "netns" else None

        scenario = self.scenario
        pki = Pki.open(w / "pki")
        plan = make_plan(scenario)
        zs = build_zones(scenario, plan, pki)
        write_zones(zs, w / "knot" / "zones")
        (w / "knot" / "knot.conf").write_text(knot_conf(zs, w, f"{addr.AUTHORITATIVE}@{dns_port}"))
        daemons = [processes.start("knot", prefix + [_which("knotd") or "knotd", "-c", str(w / "knot" / "knot.conf")],
                                   w / "pids", w / "logs")]

        site = site_for(scenario)
        write_site(site, w, pki)
        (w / "nginx" / "nginx.conf").write_text(nginx_conf(
            site, w, [f"[{a}]:{https_port}" if ":" in a else f"{a}:{https_port}" for a in plan.web_addresses], f"{addr.STALL}:{https_port}"))
        daemons.append(processes.start("nginx", prefix + [_which("nginx") or "nginx", "-c", str(w / "nginx" / "nginx.conf"),
                                                          "-e", str(w / "logs" / "nginx-error.log")],
                                       w / "pids", w / "logs"))
        helper_conf = w / "helpers" / "config.json"
        helper_conf.write_text(json.dumps({
            "pki": str(w / "pki"), "smtp_port": smtp_port, "https_port": https_port,
            "smtp": [asdict(l) for l in plan.smtp_listeners], "stall": plan.stall_addresses,
        }, indent=1))
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        daemons.append(processes.start("helpers", prefix + [self.python, "-m", "collectors.testbed.serve", str(helper_conf)],
                                       w / "pids", w / "logs", env=env))

        # Knot first: its keys become the resolver's trust anchors.
        signed = list(zs.signed) + list(zs.bogus)
        dnskeys = netns.call_in(ns, _wait_for_knot, (addr.AUTHORITATIVE, dns_port), signed, daemons[0],
                                w / "logs" / "knot.log")
        (w / "unbound" / "anchors.ds").write_text(trust_anchors(dnskeys, zs.bogus))
        tlds = [z for z in zs.zones if z != "." and z.count(".") == 1]
        (w / "unbound" / "unbound.conf").write_text(unbound_conf(w, (addr.RESOLVER, dns_port),
                                                                 (addr.AUTHORITATIVE, dns_port), tlds))
        daemons.append(processes.start("unbound", prefix + [_which("unbound") or "unbound", "-d", "-c",
                                                            str(w / "unbound" / "unbound.conf")],
                                       w / "pids", w / "logs"))
        resolver = (addr.RESOLVER, dns_port)
        if self.latency_ms > 0:
            (w / "dnsdist" / "dnsdist.conf").write_text(
                dnsdist_conf((addr.DELAY, dns_port), resolver, self.latency_ms))
            daemons.append(processes.start("dnsdist", prefix + [_which("dnsdist") or "dnsdist", "--supervised",
                                                                "--disable-syslog", "-C", str(w / "dnsdist" / "dnsdist.conf")],
                                           w / "pids", w / "logs"))
            resolver = (addr.DELAY, dns_port)

        if self.mode == "netns":
            assert self.netns_name
            netns.write_etc(self.netns_name, resolver[0], pki.ca_bundle.read_bytes())
        netns.call_in(ns, _wait_ready, daemons, w, resolver, plan.web_addresses[0], https_port,
                      time.monotonic() + STARTUP_TIMEOUT)
        world = World(
            workdir=w, mode=self.mode, netns=ns, resolver=resolver, https_port=https_port,
            smtp_port=smtp_port, dns_port=dns_port, latency_ms=self.latency_ms, ca_bundle=pki.ca_bundle,
            scenario_name=scenario.name, fingerprint=fingerprint, domains=len(scenario.domains),
            started_at=time.time(), startup_seconds=time.monotonic() - t0,
        )
        world.save()
        return world


# -- readiness (run inside the world's namespace) ---------------------------------------------

def _check_alive(daemon: processes.Daemon, log: Path) -> None:
    if not daemon.running():
        tail = ""
        try:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
        except OSError:
            pass
        raise TestbedError(f"{daemon.name} exited during startup: {tail or 'no log output'} (log: {log})")


def _query(server: tuple[str, int], name: str, rdtype: str, timeout: float = 1.0, want_dnssec: bool = False):
    q = dns.message.make_query(name, rdtype, want_dnssec=want_dnssec)
    return dns.query.udp(q, server[0], port=server[1], timeout=timeout)


def _check_zones_loaded(log: Path) -> None:
    """Raise if Knot's log shows a zone file it refused (a scenario's raw record with a
    syntax error, say)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return
    errors = [l for l in lines if " error: " in l and ("zone loader" in l or "failed" in l)]
    if errors:
        raise TestbedError("knot could not load the zones: " + " | ".join(errors[:3]))


def _wait_for_knot(server: tuple[str, int], signed: list[str], daemon: processes.Daemon, log: Path):
    """Wait for Knot to serve (and sign) every zone; return each signed zone's DNSKEY RRset."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        _check_alive(daemon, log)
        _check_zones_loaded(log)
        try:
            r = _query(server, "test.", "SOA")
            if r.rcode() == dns.rcode.NOERROR and r.answer:
                break
        except (OSError, dns.exception.DNSException):
            pass
        if time.monotonic() > deadline:
            raise TestbedError(f"knot did not answer within {STARTUP_TIMEOUT:.0f}s (log: {log})")
        time.sleep(0.1)
    keys = {}
    pending = list(signed)
    while pending:
        _check_alive(daemon, log)
        _check_zones_loaded(log)
        still = []
        for zone in pending:
            try:
                r = _query(server, zone, "DNSKEY", want_dnssec=True)
                rrset = next((a for a in r.answer if a.rdtype == dns.rdatatype.DNSKEY), None)
                has_sig = any(a.rdtype == dns.rdatatype.RRSIG for a in r.answer)
                if rrset is not None and has_sig:
                    keys[zone] = rrset
                    continue
            except (OSError, dns.exception.DNSException):
                pass
            still.append(zone)
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise TestbedError(f"knot did not sign {len(pending)} zones, e.g. {pending[0]} (log: {log})")
            time.sleep(0.2)
    return keys


def _wait_ready(daemons: list[processes.Daemon], w: Path, resolver: tuple[str, int], web_ip: str,
                https_port: int, deadline: float) -> None:
    logs = {d.name: w / "logs" / f"{d.name}.log" for d in daemons}
    checks: dict[str, Callable[[], bool]] = {
        "resolver": lambda: _query(resolver, "test.", "SOA", timeout=0.5).rcode() == dns.rcode.NOERROR,
        "nginx": lambda: _tcp_open(web_ip, https_port),
        "helpers": lambda: (w / "helpers" / "ready").exists(),
    }
    pending = dict(checks)
    while pending:
        for d in daemons:
            _check_alive(d, logs[d.name])
        for name, check in list(pending.items()):
            try:
                if check():
                    del pending[name]
            except (OSError, dns.exception.DNSException):
                pass
        if pending:
            if time.monotonic() > deadline:
                raise TestbedError(f"not ready in time: {', '.join(pending)} (logs in {w / 'logs'})")
            time.sleep(0.1)


def _tcp_open(ip: str, port: int) -> bool:
    with socket.create_connection((ip, port), timeout=0.5):
        return True
