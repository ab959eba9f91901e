"""Start the world's daemons detached, remember each by a PID file, stop exactly those.

A PID file holds the PID, the command line and the process's start time (from
/proc/PID/stat); ``stop`` signals a PID only while /proc shows that same start time, so a
recycled PID is never touched. Processes are never looked up by name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Daemon:
    name: str
    pid: int
    argv: tuple[str, ...]
    start_time: int  # clock ticks after boot (field 22 of /proc/PID/stat)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of a PID, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw.rsplit(") ", 1)[1].split()
    return rest[0], int(rest[19])


def alive(d: Daemon) -> bool:
    """True while the PID is the process we started (same start time) and not a zombie."""
    st = _stat(d.pid)
    return st is not None and st[0] != "Z" and st[1] == d.start_time


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


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(piddir: Path, timeout: float = 10.0) -> list[str]:
    """Stop every daemon of ``piddir`` (TERM, then KILL); returns the names that were running."""
    daemons = load(piddir)
    running = [d for d in daemons if alive(d)]
    for d in running:
        try:
            os.kill(d.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for d in running:
        while alive(d) and time.monotonic() < deadline:
            _reap(d.pid)
            time.sleep(0.05)
        if alive(d):
            try:
                os.kill(d.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for _ in range(100):
                _reap(d.pid)
                if not alive(d):
                    break
                time.sleep(0.02)
        _reap(d.pid)
    for d in daemons:
        (piddir / f"{d.name}.pid").unlink(missing_ok=True)
    return [d.name for d in running]
