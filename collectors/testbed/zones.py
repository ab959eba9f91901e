"""DNS data of a world: zone files and the Knot DNS configuration that serves them.

Layout (chosen so 100,000 domains load in seconds): one unsigned zone per top-level
label (``test.``) holds every unsigned domain as plain records; each DNSSEC-signed (or
deliberately bogus) domain is its own child zone, delegated from its TLD zone and signed
by Knot (``dnssec-signing: on``). A tiny root zone delegates the TLDs, so a resolver
answers NXDOMAIN for names outside the world instead of timing out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from collectors.testbed import plan as addr
from collectors.testbed.pki import Pki
from collectors.testbed.plan import Plan
from collectors.testbed.scenario import Domain, Scenario

TTL = 300
NS_NAME = "ns.testbed-dns.test."   # the one name server of every zone (Knot)


def quote_txt(s: str) -> str:
    """One TXT character-string in zone-file syntax (RFC 1035 5.1 escapes)."""
    out = []
    for b in s.encode():
        if b in (0x22, 0x5C):
            out.append("\\" + chr(b))
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return '"' + "".join(out) + '"'


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


@dataclass(frozen=True)
class ZoneSet:
    """Zone name -> zone-file lines, plus which zones Knot must sign."""

    zones: dict[str, list[str]]
    signed: tuple[str, ...]     # zones signed normally (their DS becomes a trust anchor)
    bogus: tuple[str, ...]      # signed zones whose trust anchor deliberately mismatches


def _address_type(address: str) -> str:
    """A for IPv4, AAAA for IPv6 (``::1``: a host reachable over IPv6 only)."""
    return "AAAA" if ":" in address else "A"


def domain_records(d: Domain, plan: Plan) -> list[str]:
    """The zone-file lines one domain publishes (owners absolute)."""
    o = _fqdn(d.name)
    lines: list[str] = []
    if not d.exists:
        return lines
    lines.append(f"{o} A {addr.SITE}")
    if d.null_mx:
        lines.append(f"{o} MX 0 .")  # RFC 7505
    for m in d.mx:
        lines.append(f"{o} MX {m.preference} {_fqdn(m.host)}")
    if d.sts_cname:
        lines.append(f"_mta-sts.{o} CNAME {_fqdn(d.sts_cname)}")
    for rec in d.sts:
        lines.append(f"_mta-sts.{o} TXT " + " ".join(quote_txt(s) for s in rec))
    if d.tlsrpt_cname:
        lines.append(f"_smtp._tls.{o} CNAME {_fqdn(d.tlsrpt_cname)}")
    for rec in d.tlsrpt:
        lines.append(f"_smtp._tls.{o} TXT " + " ".join(quote_txt(s) for s in rec))
    ph = d.policy_host
    if ph is not None:
        if ph.cname:
            lines.append(f"mta-sts.{o} CNAME {_fqdn(ph.cname)}")
        else:
            a = plan.policy_address(ph.http, ph.address)
            if a:
                lines.append(f"mta-sts.{o} {_address_type(a)} {a}")
    lines.extend(d.records)
    return lines


def scenario_records(scenario: Scenario, plan: Plan, pki: Pki | None) -> list[str]:
    lines: list[str] = []
    for d in scenario.domains:
        lines.extend(domain_records(d, plan))
    for host in scenario.mx_hosts:
        a = plan.mx_addresses[host.name]
        lines.append(f"{_fqdn(host.name)} {_address_type(a)} {a}")
        for t in host.tlsa:
            if t == "auto":
                if pki is None:
                    continue
                t = f"3 1 1 {pki.tlsa_spki_sha256()}"
            lines.append(f"_25._tcp.{_fqdn(host.name)} TLSA {t}")
    for h in scenario.https_hosts:
        lines.append(f"{_fqdn(h)} A {addr.WEB}")
    lines.extend(scenario.records)
    return lines


def _owner(line: str) -> str:
    return line.split(None, 1)[0].lower()


def build_zones(scenario: Scenario, plan: Plan, pki: Pki | None) -> ZoneSet:
    signed = sorted(d.name + "." for d in scenario.domains if d.dnssec == "signed")
    bogus = sorted(d.name + "." for d in scenario.domains if d.dnssec == "bogus")
    children = set(signed) | set(bogus)
    zones: dict[str, list[str]] = {".": []}
    for z in children:
        zones[z] = []
    lines = scenario_records(scenario, plan, pki)
    tlds = sorted({_owner(l).rstrip(".").rsplit(".", 1)[-1] + "." for l in lines} | {"test."})
    for t in tlds:
        zones.setdefault(t, [])
    for line in lines:
        owner = _owner(line)
        zone = _zone_of(owner, children)
        zones[zone].append(line)
    # Delegations: root -> TLDs, TLD -> signed children (NS only: the parent is unsigned,
    # the resolver holds each child's trust anchor; see docs/testbed.md).
    for t in tlds:
        zones["."].append(f"{t} NS {NS_NAME}")
    zones["."].append(f"{NS_NAME} A {addr.AUTHORITATIVE}")
    zones["test."].append(f"{NS_NAME} A {addr.AUTHORITATIVE}")
    for z in children:
        parent = z.split(".", 1)[1] if z.count(".") > 1 else "."
        zones[_zone_of(parent, children - {z}) if parent != "." else "."].append(f"{z} NS {NS_NAME}")
    serial = int(time.time())
    for z, zl in zones.items():
        head = [f"$TTL {TTL}",
                f"{z} SOA {NS_NAME} hostmaster.testbed-dns.test. {serial} 3600 600 86400 60",
                f"{z} NS {NS_NAME}"]
        zones[z] = head + zl
    return ZoneSet(zones, tuple(signed), tuple(bogus))


def _zone_of(owner: str, children: set[str]) -> str:
    """The most specific zone holding ``owner``: a signed child zone or its TLD zone."""
    if children:
        name = owner
        while name and name != ".":
            if name in children:
                return name
            name = name.split(".", 1)[1] if "." in name[:-1] else "."
    if owner == ".":
        return "."
    return owner.rstrip(".").rsplit(".", 1)[-1] + "."


def zone_file_name(zone: str) -> str:
    return "root.zone" if zone == "." else f"{zone.rstrip('.')}.zone"


def write_zones(zs: ZoneSet, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.zone"):
        old.unlink()
    for zone, lines in zs.zones.items():
        (directory / zone_file_name(zone)).write_text("\n".join(lines) + "\n")


def knot_conf(zs: ZoneSet, workdir: Path, listen: str) -> str:
    """knot.conf for the world: every zone from its file, signed ones with automatic signing."""
    kd = workdir / "knot"
    out = [
        "# Generated by collectors.testbed; rewritten on every 'up'.",
        "server:",
        f"    rundir: {kd / 'run'}",
        f"    pidfile: {kd / 'run' / 'knot.pid'}",
        f"    listen: {listen}",
        "    udp-workers: 2",
        "    tcp-workers: 2",
        "    background-workers: 2",
        "database:",
        f"    storage: {kd / 'db'}",
        "log:",
        "  - target: stderr",
        "    any: warning",
        "policy:",
        "  - id: testbed",
        "    algorithm: ecdsap256sha256",
        "    single-type-signing: on",
        "    ksk-lifetime: 0",
        "    zsk-lifetime: 0",
        "    propagation-delay: 0",
        "    dnskey-ttl: 300",
        "    zone-max-ttl: 300",
        "    nsec3: off",
        "template:",
        "  - id: default",
        f"    storage: {kd / 'zones'}",
        "    file: %s.zone",
        "    zonefile-sync: -1",
        "    zonefile-load: whole",
        "    journal-content: none",
        "zone:",
    ]
    for zone in zs.zones:
        out.append(f"  - domain: \"{zone}\"")
        out.append(f"    file: {zone_file_name(zone)}")
        if zone in zs.signed or zone in zs.bogus:
            out.append("    dnssec-signing: on")
            out.append("    dnssec-policy: testbed")
    return "\n".join(out) + "\n"
