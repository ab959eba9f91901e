"""Stopping what we started, and nothing else: the shared liveness check, reaper and
TERM-wait-KILL sequence of collectors.testbed.processes (the lab uses them too), with
each owner's way of recognising its own processes (here the testbed's start time)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from collectors.testbed import processes
from collectors.testbed.processes import Daemon, reap, running, terminate

IGNORES_TERM = ("import signal, sys, time\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "print('ready', flush=True)\n"
                "time.sleep(60)\n")


def _wait_for(predicate, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _start_ignoring_term(tmp_path: Path, name: str = "stubborn") -> Daemon:
    d = processes.start(name, [sys.executable, "-c", IGNORES_TERM], tmp_path / "pids", tmp_path / "logs")
    assert _wait_for(lambda: b"ready" in (tmp_path / "logs" / f"{name}.log").read_bytes())
    return d


def _kill(pid: int) -> None:
    if running(pid):
        os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: (reap(pid), not running(pid))[1], 5)


@dataclass
class Claimed:
    """A PID and a scripted answer to 'is it still ours?' (one answer a question)."""

    pid: int
    answers: list[bool]
    asked: int = field(default=0)

    def ours(self) -> bool:
        self.asked += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_a_zombie_is_not_running_and_reaping_removes_it():
    child = subprocess.Popen(["true"])
    path = Path(f"/proc/{child.pid}")
    assert _wait_for(lambda: path.exists() and not running(child.pid))  # exited, not yet waited for
    assert path.exists()
    reap(child.pid)
    assert not path.exists()
    child.returncode = 0  # already reaped: Popen must not wait for it again
    reap(child.pid)  # not (any more) a child of ours: nothing happens


def test_a_recycled_pid_is_never_signalled(tmp_path):
    d = processes.start("sleeper", ["sleep", "30"], tmp_path / "pids", tmp_path / "logs")
    try:
        assert d.running()
        # The PID file now tells of another process with this PID (as after a reboot or
        # PID reuse): the start time differs, so it is not ours.
        pid_file = tmp_path / "pids" / "sleeper.pid"
        pid_file.write_text(json.dumps({"pid": d.pid, "argv": ["sleep", "30"],
                                        "start_time": d.start_time + 1}) + "\n")
        assert processes.stop(tmp_path / "pids", timeout=1) == []
        assert running(d.pid) and d.running()
        assert not pid_file.exists()
        assert terminate([d], timeout=5) == [d]
        assert not running(d.pid)
    finally:
        _kill(d.pid)


def test_stop_kills_a_daemon_that_ignores_term(tmp_path):
    d = _start_ignoring_term(tmp_path)
    try:
        assert processes.stop(tmp_path / "pids", timeout=0.5) == ["stubborn"]
        assert not d.running() and not running(d.pid)
        assert processes.load(tmp_path / "pids") == []
    finally:
        _kill(d.pid)


def test_terminate_never_signals_what_is_not_ours(tmp_path):
    d = _start_ignoring_term(tmp_path)
    try:
        stranger = Claimed(d.pid, [False])
        assert terminate([stranger], sig=signal.SIGKILL, timeout=0.2) == []
        assert running(d.pid)
        # Ours when TERM is sent, no longer ours by the time KILL would be: not killed.
        changed = Claimed(d.pid, [True, False])
        assert terminate([changed], timeout=0.3, kill_wait=0.3) == [changed]
        assert running(d.pid) and changed.asked == 2
    finally:
        _kill(d.pid)
