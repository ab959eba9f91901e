"""The lab's DNS, served by the testbed (Knot DNS behind the Unbound validating resolver).

The lab does not run DNS servers of its own: its zone file (``lab/dns/audit.zone``,
the one an operator also publishes on real hosts) becomes one DNSSEC-signed domain of a
testbed scenario (Knot signs it, Unbound validates it with its trust anchor), so the
TLSA records of the lab's MX hosts are usable for DANE (RFC 7672 section 2.2). The
testbed serves it in the lab's namespace, with ``/etc/netns/<name>/resolv.conf``
pointing at its resolver.
"""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone

from collectors.testbed import Domain, Scenario, Testbed, World
from collectors.testbed import Pki

SCENARIO_NAME = "mtasts-audit-lab"


def zone_records(zone_text: str, origin: str) -> tuple[str, ...]:
    """Zone-file lines with absolute owners (``owner TYPE rdata``) for every record of
    ``zone_text`` except the apex SOA and NS, which the testbed writes itself for the
    signed zone it makes of the lab's domain."""
    zone = dns.zone.from_text(zone_text, origin=origin, relativize=False, check_origin=True)
    apex = dns.name.from_text(origin)
    lines = []
    for name, node in sorted(zone.nodes.items()):
        for rdataset in node.rdatasets:
            if name == apex and rdataset.rdtype in (dns.rdatatype.SOA, dns.rdatatype.NS):
                continue
            for rdata in rdataset:
                lines.append(f"{name.to_text()} {dns.rdatatype.to_text(rdataset.rdtype)} {rdata.to_text()}")
    return tuple(lines)


def lab_scenario(zone_text: str, origin: str) -> Scenario:
    """The lab zone as one signed testbed domain (its own child zone, signed by Knot)."""
    zone = Domain(name=origin.rstrip("."), case="audit-lab", description="the audit lab's zone",
                  dnssec="signed", records=zone_records(zone_text, origin))
    return Scenario(name=SCENARIO_NAME, domains=(zone,),
                    description="DNS of the MTA-STS audit lab (collectors.lab)")


def start_dns(zone_text: str, origin: str, workdir: Path, netns: str) -> World:
    """Bring up the testbed's DNS for the lab zone in namespace ``netns`` (created by
    the testbed, with its resolv.conf and its CA as the namespace's trust store)."""
    world = Testbed(lab_scenario(zone_text, origin), workdir, mode="netns", netns_name=netns).up()
    trust_ad(Path("/etc/netns") / netns / "resolv.conf")
    return world


def trust_ad(resolv_conf: Path) -> None:
    """Add ``options trust-ad``: glibc (2.31 on) clears the AD bit of its answers unless
    resolv.conf trusts the resolver, and Postfix and Exim need it for DANE (RFC 7672
    section 2.2: only DNSSEC-validated TLSA records count). The resolver here is the
    namespace's own validating Unbound."""
    text = resolv_conf.read_text()
    if "trust-ad" not in text:
        resolv_conf.write_text(text.rstrip("\n") + "\noptions trust-ad\n")


def tlsa_association(testbed_workdir: Path) -> str:
    """TLSA ``3 1 1`` data (DANE-EE, SPKI, SHA-256) of the key every lab certificate is
    issued for: the testbed's PKI in ``<testbed workdir>/pki``, created here before the
    testbed starts (it reuses an existing one)."""
    return Pki.open(testbed_workdir / "pki").tlsa_spki_sha256()


def load_world(workdir: Path) -> World | None:
    return World.load(workdir)
