"""The address plan: which 127.x.y.z address every server and host of a world gets.

The same plan serves both modes. In netns mode the servers listen on the standard ports
(53, 443, 25) inside the world's namespace; in loopback mode on high ports in the root
namespace. Every address of 127.0.0.0/8 is local on Linux without configuration.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from collectors.testbed.scenario import MxHost, Scenario, ScenarioError

RESOLVER = "127.53.0.1"       # Unbound, the validating resolver clients use
AUTHORITATIVE = "127.53.0.2"  # Knot DNS, every zone of the world
DELAY = "127.53.0.3"          # dnsdist in latency mode (then the clients' resolver)
WEB = "127.80.0.1"            # nginx: every policy host, certificate chosen by SNI
STALL = "127.81.0.1"          # accepts TCP, never answers
REFUSED = "127.81.0.2"        # nothing listens: connections are refused
SITE = "127.10.0.1"           # each domain's own A record (no server: only makes the name exist)
MX_NET = ipaddress.ip_network("127.25.0.0/16")   # MX hosts without an explicit address
POOL_NET = ipaddress.ip_network("127.26.0.0/24")  # shared MX addresses, one per behaviour
IPV6_LOOPBACK = "::1"          # IPv6-only policy or MX hosts (AAAA records, no A)
SPECIAL = {RESOLVER, AUTHORITATIVE, DELAY, WEB, STALL, REFUSED, SITE}


def _address_key(address: str) -> tuple[int, int]:
    """Sort IPv4 before IPv6 (ipaddress objects of both versions do not compare)."""
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)


def pool_address(smtp: str, certificate: str) -> str:
    """The shared address of every population MX host with this behaviour (SNI picks the name)."""
    from collectors.testbed.scenario import CERT_KINDS, SMTP_BEHAVIOURS

    index = SMTP_BEHAVIOURS.index(smtp) * len(CERT_KINDS) + CERT_KINDS.index(certificate) + 1
    return str(POOL_NET.network_address + index)


@dataclass(frozen=True)
class SmtpListener:
    address: str
    names: tuple[str, ...]   # host names served there (the first is the greeting name)
    smtp: str
    certificate: str


@dataclass
class Plan:
    """Addresses of a scenario's hosts and the listeners each server needs."""

    mx_addresses: dict[str, str] = field(default_factory=dict)   # MX host -> address
    web_addresses: list[str] = field(default_factory=list)       # nginx listens here
    stall_addresses: list[str] = field(default_factory=list)     # the staller listens here
    smtp_listeners: list[SmtpListener] = field(default_factory=list)

    def policy_address(self, http: str, explicit: str | None) -> str | None:
        """Where mta-sts.<domain> points for an HTTP behaviour (None: no address record)."""
        if http == "unresolvable":
            return None
        if explicit:
            return explicit
        return {"refused": REFUSED, "stall": STALL}.get(http, WEB)


def make_plan(scenario: Scenario) -> Plan:
    plan = Plan()
    free = (str(a) for a in MX_NET.hosts() if int(a) & 0xFF not in (0, 255))
    used = {h.address for h in scenario.mx_hosts if h.address}
    by_address: dict[str, list[MxHost]] = {}
    for host in scenario.mx_hosts:  # sorted by name: the assignment is deterministic
        addr = host.address
        if addr is None:
            addr = next(a for a in free if a not in used)
        plan.mx_addresses[host.name] = addr
        by_address.setdefault(addr, []).append(host)
    for addr, hosts in sorted(by_address.items(), key=lambda kv: _address_key(kv[0])):
        kinds = {(h.smtp, h.certificate) for h in hosts}
        if len(kinds) > 1:
            raise ScenarioError(f"MX hosts at {addr} disagree on behaviour: {sorted(kinds)}")
        smtp, cert = kinds.pop()
        if addr in SPECIAL:
            raise ScenarioError(f"MX address {addr} is reserved by the address plan")
        if smtp != "refused":
            plan.smtp_listeners.append(SmtpListener(addr, tuple(h.name for h in hosts), smtp, cert))
    web = {WEB}
    stall = {STALL}
    for d in scenario.domains:
        ph = d.policy_host
        if ph is None or ph.cname or not ph.address:
            continue
        if ph.http == "stall":
            stall.add(ph.address)
        elif ph.http not in ("refused", "unresolvable"):
            web.add(ph.address)
    if web & stall:
        raise ScenarioError(f"addresses both web and stalling: {sorted(web & stall)}")
    # ::1 is the only IPv6 loopback address: IPv6-only policy and MX hosts share it (443 vs 25).
    if ((web | stall) & set(plan.mx_addresses.values())) - {IPV6_LOOPBACK}:
        raise ScenarioError("a policy host address is also an MX address")
    plan.web_addresses = sorted(web, key=_address_key)   # IPv4 first: WEB is the readiness probe
    plan.stall_addresses = sorted(stall, key=_address_key)
    return plan
