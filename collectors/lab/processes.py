"""Run commands in the lab's network namespace and manage the daemons it starts.

Every daemon the lab starts leaves a PID file; stopping reads the PID file and signals
that PID only, and only when the process still lives in the lab's namespace (a PID
reused by some other program since is never touched). Nothing is ever found or killed
by name. Liveness, reaping and the TERM-wait-KILL sequence are the testbed's
(:mod:`collectors.testbed.processes`); the lab's part is how it recognises its own
processes: by their network namespace (:class:`InNetns`).
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from collectors.testbed import netns, processes


class LabError(RuntimeError):
    """The lab could not do what was asked; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    output: str   # stdout and stderr together (stderr through a terminal, see run())

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def last_line(self) -> str:
        lines = [line for line in self.output.splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"exit status {self.returncode}"


def in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    """``argv`` prefixed to run inside ``netns`` (``ip netns exec`` also bind-mounts
    ``/etc/netns/<name>/resolv.conf`` over ``/etc/resolv.conf``)."""
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def run(argv: Sequence[str], *, netns: str | None = None, timeout: float = 60,
        env: Mapping[str, str] | None = None, input_text: str | None = None,
        tty_stderr: bool = False) -> CommandResult:
    """Run a command to completion (bounded by ``timeout``) and capture its output.

    With ``tty_stderr`` the command's stderr is a pseudo-terminal: Postfix's commands
    print their fatal errors only to a terminal (else only to syslog, which a namespace
    does not have), and this is how the lab gets the reason a Postfix command failed.
    """
    full = in_netns(netns, argv)
    merged_env = {**os.environ, **(env or {})}
    if not tty_stderr:
        try:
            done = subprocess.run(full, input=input_text, capture_output=True, text=True,
                                  timeout=timeout, env=merged_env, check=False)
        except subprocess.TimeoutExpired:
            return CommandResult(tuple(full), 124, f"timed out after {timeout:g} s")
        except FileNotFoundError as exc:
            return CommandResult(tuple(full), 127, f"not found: {exc.filename}")
        return CommandResult(tuple(full), done.returncode, (done.stdout or "") + (done.stderr or ""))
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                env=merged_env, close_fds=True)
    except FileNotFoundError as exc:
        os.close(master)
        os.close(slave)
        return CommandResult(tuple(full), 127, f"not found: {exc.filename}")
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not data:
                break
            chunks.append(data)
            if time.monotonic() > deadline:
                break
        try:
            code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = 124
    finally:
        os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return CommandResult(tuple(full), code, text)


def spawn(argv: Sequence[str], *, netns: str | None, pid_file: Path, log_file: Path,
          env: Mapping[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start a long-running daemon in the foreground of its own session, output to
    ``log_file``; write its PID (``ip netns exec`` execs, so it is the daemon's own)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(in_netns(netns, argv), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                cwd=cwd, start_new_session=True, close_fds=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().strip().split()[0]
        return int(text)
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class InNetns:
    """A PID the lab started, recognised as its own while it lives in ``netns`` (with no
    namespace given, the PID is taken as ours)."""

    pid: int
    netns: str | None

    def ours(self) -> bool:
        return self.netns is None or netns.holds(self.netns, self.pid)


def stop_pid(pid: int, *, netns: str | None, sig: int = signal.SIGTERM, timeout: float = 10) -> bool:
    """Signal ``pid`` (only if it is in ``netns`` when one is given), wait up to
    ``timeout`` seconds, then SIGKILL it. True when it is gone."""
    processes.terminate([InNetns(pid, netns)], sig=sig, timeout=timeout, kill_wait=5.0)
    return not processes.running(pid)


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
