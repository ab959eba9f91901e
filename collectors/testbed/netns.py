"""Network namespaces: create and delete a world's namespace, and run Python code inside it.

``call_in(name, fn)`` runs ``fn`` on a fresh thread that has joined the namespace
(setns(2) affects only the calling thread); sockets created there stay in the namespace,
so tests can use plain clients (dnspython, httpx, ssl, smtplib) against a netns world.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/var/run/netns")
NETNS_ETC_DIR = Path("/etc/netns")


def exists(name: str) -> bool:
    return (NETNS_RUN_DIR / name).exists()


def create(name: str) -> None:
    """``ip netns add`` plus a loopback that is up (the whole 127.0.0.0/8 is then local)."""
    if not exists(name):
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True, capture_output=True)


def delete(name: str) -> None:
    if exists(name):
        subprocess.run(["ip", "netns", "delete", name], check=True, capture_output=True)
    etc = NETNS_ETC_DIR / name
    if etc.is_dir():
        shutil.rmtree(etc)


def pids_inside(name: str) -> list[int]:
    """PIDs of processes whose network namespace is ``name`` (``ip netns pids``)."""
    if not exists(name):
        return []
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


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


_libc = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
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
