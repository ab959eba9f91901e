"""The lab's network namespace: its loopback addresses, the processes in it, removal.

In a fresh namespace only ``lo`` exists; every lab address is added to it, so nothing
the lab does can reach (or be reached from) any other network.
"""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path

from collectors.lab.processes import NETNS_RUN_DIR, LabError, run


def exists(name: str) -> bool:
    return (NETNS_RUN_DIR / name).exists()


def create(name: str) -> None:
    """Create namespace ``name`` with ``lo`` up (an error if it exists already)."""
    if exists(name):
        raise LabError(f"network namespace {name} exists already (is a lab up? 'mtasts lab down')")
    result = run(["ip", "netns", "add", name])
    if not result.ok:
        raise LabError(f"cannot create network namespace {name}: {result.last_line()}")
    up = run(["ip", "link", "set", "lo", "up"], netns=name)
    if not up.ok:
        raise LabError(f"cannot bring lo up in {name}: {up.last_line()}")


def add_addresses(name: str, addresses: list[str]) -> None:
    """Add each address to ``lo`` (127/8 ones would answer anyway, but Postfix only
    binds addresses an interface lists; IPv6 ones are ``nodad`` to be usable at once)."""
    present = set(addresses_on_lo(name))
    for address in addresses:
        if address in present:
            continue
        ip = ipaddress.ip_address(address)
        argv = ["ip", "addr", "add", f"{address}/{ip.max_prefixlen}", "dev", "lo"]
        if ip.version == 6:
            argv.append("nodad")
        result = run(argv, netns=name)
        if not result.ok:
            raise LabError(f"cannot add {address} to lo in {name}: {result.last_line()}")


def addresses_on_lo(name: str) -> list[str]:
    result = run(["ip", "-o", "addr", "show", "dev", "lo"], netns=name)
    found = []
    for line in result.output.splitlines():
        words = line.split()
        for key in ("inet", "inet6"):
            if key in words:
                found.append(words[words.index(key) + 1].split("/")[0])
    return found


def pids(name: str) -> list[int]:
    """Every process in the namespace (``ip netns pids``)."""
    if not exists(name):
        return []
    result = run(["ip", "netns", "pids", name])
    return [int(w) for w in result.output.split() if w.isdigit()]


def delete(name: str) -> None:
    """Remove the namespace and its ``/etc/netns/<name>`` directory (resolv.conf)."""
    if exists(name):
        result = run(["ip", "netns", "del", name])
        if not result.ok:
            raise LabError(f"cannot delete network namespace {name}: {result.last_line()}")
    etc = Path("/etc/netns") / name
    if etc.is_dir():
        shutil.rmtree(etc)


def route_uid_from(name: str, uid: int, destination: str, source: str, table: int) -> None:
    """Make connections that processes of ``uid`` open to ``destination`` (a prefix of
    local addresses) come from ``source`` instead of the destination address itself.

    Policy routing (``ip rule uidrange``) inside the namespace: the local table's rule
    moves behind the uid rule, whose table holds the same local route with ``src``
    ``source``. The lab runs a sender's MTA-STS resolver under its own uid, so its
    policy fetches come from the sender's address, as a provider's fetches come from
    its own network; the policy server's log then names the fetching sender.
    """
    rules = run(["ip", "rule", "show"], netns=name).output
    steps = []
    if "1000:\tfrom all lookup local" not in rules:
        steps += [["ip", "rule", "add", "pref", "1000", "lookup", "local"],
                  ["ip", "rule", "del", "pref", "0", "lookup", "local"]]
    steps += [["ip", "rule", "add", "pref", "100", "uidrange", f"{uid}-{uid}", "lookup", str(table)],
              ["ip", "route", "add", "local", destination, "dev", "lo", "table", str(table), "src", source]]
    for argv in steps:
        result = run(argv, netns=name)
        if not result.ok:
            raise LabError(f"policy routing in {name}: {' '.join(argv[1:])}: {result.last_line()}")
