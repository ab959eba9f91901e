"""The lab's DNS, served by the testbed (Knot DNS behind the Unbound validating resolver).

The lab does not run DNS servers of its own: its zone file (``lab/dns/audit.zone``,
the one an operator also publishes on real hosts) becomes the extra records of a
testbed scenario with no domains of its own, and the testbed serves them in the lab's
namespace, with ``/etc/netns/<name>/resolv.conf`` pointing at its resolver.
"""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone

from collectors.testbed import Scenario, Testbed, World

SCENARIO_NAME = "mtasts-audit-lab"


def zone_records(zone_text: str, origin: str) -> tuple[str, ...]:
    """Zone-file lines with absolute owners (``owner TYPE rdata``) for every record of
    ``zone_text`` except the apex SOA and NS: the testbed serves the names inside its
    own ``test.`` zone, so the lab zone must not delegate itself."""
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
    return Scenario(name=SCENARIO_NAME, domains=(), records=zone_records(zone_text, origin),
                    description="DNS of the MTA-STS audit lab (collectors.lab)")


def start_dns(zone_text: str, origin: str, workdir: Path, netns: str) -> World:
    """Bring up the testbed's DNS for the lab zone in namespace ``netns`` (created by
    the testbed, with its resolv.conf and its CA as the namespace's trust store)."""
    return Testbed(lab_scenario(zone_text, origin), workdir, mode="netns", netns_name=netns).up()


def load_world(workdir: Path) -> World | None:
    return World.load(workdir)
