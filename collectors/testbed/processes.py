"""Start the world's daemons detached, remember each by a PID file, stop exactly those.

A PID file holds the PID, the command line and the process's start time (from
/proc/PID/stat); ``stop`` signals a PID only while /proc shows that same start time, so a
recycled PID is never touched. Processes are never looked up by name.

The liveness check, the zombie reaper and the TERM-wait-KILL sequence (:func:`running`,
:func:`reap`, :func:`terminate`) are shared with the audit lab, which recognises its own
processes differently (by network namespace): how a caller tells that a PID is still its
process is the :class:`Owned` object's ``ours()``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, TypeVar


class Owned(Protocol):
    """A process we started, by PID, with the owner's own way of recognising it: a PID
    can be reused by another program once ours has ended, and that one is never ours."""

    @property
    def pid(self) -> int: ...

    def ours(self) -> bool:
        """True while ``pid`` still names the process we started."""
        ...


P = TypeVar("P", bound=Owned)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of a PID, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw.rsplit(") ", 1)[1].split()
    return rest[0], int(rest[19])


def running(pid: int) -> bool:
    """True while ``pid`` is a process and not a zombie (a zombie is dead for every purpose here)."""
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is an ended child of ours (else a zombie stays)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(procs: Sequence[P], timeout: float, interval: float = 0.05) -> list[P]:
    """Wait up to ``timeout`` seconds for ``procs`` to end, reaping them; those still running."""
    deadline = time.monotonic() + timeout
    while True:
        for p in procs:
            reap(p.pid)
        left = [p for p in procs if running(p.pid)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(interval)


def terminate(procs: Sequence[P], *, sig: int = signal.SIGTERM, timeout: float = 10.0,
              kill_wait: float = 5.0) -> list[P]:
    """Send ``sig`` to each of ``procs`` that runs and is ours, wait up to ``timeout``
    seconds for them all to end, then SIGKILL those still running (if still ours) and wait
    up to ``kill_wait`` more. Returns the ones that were signalled. ``ours()`` is asked
    before every signal, so a PID that is not ours (any more) is never signalled."""
    for p in procs:
        reap(p.pid)
    mine = [p for p in procs if running(p.pid) and p.ours()]
    for p in mine:
        _signal(p.pid, sig)
    stubborn = _wait_gone(mine, timeout)
    for p in stubborn:
        if p.ours():
            _signal(p.pid, signal.SIGKILL)
    _wait_gone(stubborn, kill_wait)
    for p in mine:
        reap(p.pid)
    return mine


@dataclass(frozen=True)
class Daemon:
    """A daemon of the world, recognised by its kernel start time."""

    name: str
    pid: int
    argv: tuple[str, ...]
    start_time: int  # clock ticks after boot (field 22 of /proc/PID/stat)

    def ours(self) -> bool:
        """True while /proc shows the start time recorded when we started it."""
        st = _stat(self.pid)
        return st is not None and st[1] == self.start_time

    def running(self) -> bool:
        """True while the PID is the process we started (same start time) and not a zombie."""
        return running(self.pid) and self.ours()


def start(name: str, argv: list[str], piddir: Path, logdir: Path, env: dict[str, str] | None = None) -> Daemon:
    piddir.mkdir(parents=True, exist_ok=True)
    logdir.mkdir(parents=True, exist_ok=True)
    with open(logdir / f"{name}.log", "wb") as log:  # one log per run of the world
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env)
    st = _stat(proc.pid)
    daemon = Daemon(name, proc.pid, tuple(argv), st[1] if st else -1)
    (piddir / f"{name}.pid").write_text(
        json.dumps({"pid": proc.pid, "argv": argv, "start_time": daemon.start_time}) + "\n")
    # Forget the Popen object without reaping it later: the daemon outlives this process.
    proc.returncode = 0
    return daemon


def load(piddir: Path) -> list[Daemon]:
    out = []
    for f in sorted(piddir.glob("*.pid")) if piddir.is_dir() else ():
        try:
            data = json.loads(f.read_text())
            out.append(Daemon(f.stem, int(data["pid"]), tuple(data["argv"]), int(data["start_time"])))
        except (OSError, ValueError, KeyError):
            continue
    return out


def stop(piddir: Path, timeout: float = 10.0) -> list[str]:
    """Stop every daemon of ``piddir`` (TERM, then KILL); returns the names that were running."""
    daemons = load(piddir)
    stopped = terminate(daemons, timeout=timeout, kill_wait=2.0)
    for d in daemons:
        (piddir / f"{d.name}.pid").unlink(missing_ok=True)
    return [d.name for d in stopped]
