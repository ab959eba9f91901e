"""Network namespaces, for the testbed's worlds and the audit lab alike: create one with
``lo`` up, give ``lo`` addresses, route by uid, tell which processes live in it, remove it,
and run Python code inside it.

In a fresh namespace only ``lo`` exists, so nothing run there can reach (or be reached
from) any other network. ``call_in(name, fn)`` runs ``fn`` on a fresh thread that has
joined the namespace (setns(2) affects only the calling thread); sockets created there
stay in the namespace, so tests can use plain clients (dnspython, httpx, ssl, smtplib).
Every failure of ``ip`` is a :class:`NetnsError` whose message names the step.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/run/netns")
NETNS_ETC_DIR = Path("/etc/netns")


class NetnsError(RuntimeError):
    """An ``ip`` command on a namespace failed; the message says which and why, in one line."""


def _ip(argv: Sequence[str], what: str, netns: str | None = None) -> str:
    """Run ``ip`` (inside ``netns`` when given) and return its output; NetnsError on failure."""
    full = ["ip", "netns", "exec", netns, "ip", *argv] if netns else ["ip", *argv]
    done = subprocess.run(full, capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        raise NetnsError(f"{what}: {lines[-1] if lines else f'exit status {done.returncode}'}")
    return done.stdout


def exists(name: str) -> bool:
    """True when namespace ``name`` exists (``ip netns add`` made its file)."""
    return (NETNS_RUN_DIR / name).exists()


def create(name: str) -> None:
    """Namespace ``name`` with ``lo`` up (the whole 127.0.0.0/8 is then local); an existing
    one is kept (the caller checks first that no process of someone else is in it)."""
    if not exists(name):
        _ip(["netns", "add", name], f"cannot create network namespace {name}")
    _ip(["link", "set", "lo", "up"], f"cannot bring lo up in {name}", netns=name)


def delete(name: str) -> None:
    """Remove the namespace and its ``/etc/netns/<name>`` directory (resolv.conf, CA)."""
    if exists(name):
        _ip(["netns", "delete", name], f"cannot delete network namespace {name}")
    etc = NETNS_ETC_DIR / name
    if etc.is_dir():
        shutil.rmtree(etc)


def pids(name: str) -> list[int]:
    """Every process whose network namespace is ``name`` (``ip netns pids``)."""
    if not exists(name):
        return []
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False, timeout=60)
    return [int(w) for w in out.stdout.split() if w.isdigit()]


def holds(name: str, pid: int) -> bool:
    """True when process ``pid`` lives in namespace ``name`` (same namespace inode)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(NETNS_RUN_DIR / name).st_ino
    except OSError:
        return False


def add_addresses(name: str, addresses: list[str]) -> None:
    """Add each address to ``lo`` (127/8 ones would answer anyway, but Postfix only binds
    addresses an interface lists; IPv6 ones are ``nodad`` to be usable at once)."""
    present = set(addresses_on_lo(name))
    for address in addresses:
        if address in present:
            continue
        ip = ipaddress.ip_address(address)
        argv = ["addr", "add", f"{address}/{ip.max_prefixlen}", "dev", "lo"] + (["nodad"] if ip.version == 6 else [])
        _ip(argv, f"cannot add {address} to lo in {name}", netns=name)


def addresses_on_lo(name: str) -> list[str]:
    """The addresses ``lo`` has in namespace ``name``."""
    found = []
    for line in _ip(["-o", "addr", "show", "dev", "lo"], f"cannot list addresses in {name}", netns=name).splitlines():
        words = line.split()
        for key in ("inet", "inet6"):
            if key in words:
                found.append(words[words.index(key) + 1].split("/")[0])
    return found


def route_uid_from(name: str, uid: int, destination: str, source: str, table: int) -> None:
    """Make connections that processes of ``uid`` open to ``destination`` (a prefix of
    local addresses) come from ``source`` instead of the destination address itself.

    Policy routing (``ip rule uidrange``) inside the namespace: the local table's rule
    moves behind the uid rule, whose table holds the same local route with ``src``
    ``source``. The lab runs a sender's MTA-STS resolver under its own uid, so its
    policy fetches come from the sender's address, as a provider's fetches come from
    its own network; the policy server's log then names the fetching sender.
    """
    rules = _ip(["rule", "show"], f"cannot list the rules in {name}", netns=name)
    steps = []
    if "1000:\tfrom all lookup local" not in rules:
        steps += [["rule", "add", "pref", "1000", "lookup", "local"], ["rule", "del", "pref", "0", "lookup", "local"]]
    steps += [["rule", "add", "pref", "100", "uidrange", f"{uid}-{uid}", "lookup", str(table)],
              ["route", "add", "local", destination, "dev", "lo", "table", str(table), "src", source]]
    for argv in steps:
        _ip(argv, f"policy routing in {name}: {' '.join(argv)}", netns=name)


def write_etc(name: str, resolver_ip: str, ca_pem: bytes) -> Path:
    """/etc/netns/<name>/: a resolv.conf for the world's resolver and an /etc/ssl that
    trusts the world's CA, bind-mounted by ``ip netns exec`` over the real ones."""
    etc = NETNS_ETC_DIR / name
    (etc / "ssl" / "certs").mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text(f"# testbed world {name}\nnameserver {resolver_ip}\noptions edns0\n")
    (etc / "ssl" / "certs" / "ca-certificates.crt").write_bytes(ca_pem)
    system_cnf = Path("/etc/ssl/openssl.cnf")
    if system_cnf.exists():
        shutil.copyfile(system_cnf, etc / "ssl" / "openssl.cnf")
    return etc


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def call_in(name: str | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` inside namespace ``name`` (directly when None)."""
    if name is None:
        return fn(*args, **kwargs)
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            fd = os.open(NETNS_RUN_DIR / name, os.O_RDONLY)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=runner, name=f"netns-{name}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
