"""One Postfix instance of the lab: its own config, queue and data directories under the
lab's work directory, started and stopped with ``postfix -c`` inside the namespace.

Postfix's instances share nothing but the binaries: each master(8) locks its own
``data_directory`` and writes its PID to ``<queue_directory>/pid/master.pid``, which is
what ``stop`` reads.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from collectors.lab.processes import LabError, read_pid, run, stop_pid, wait_until
from collectors.testbed import processes


@dataclass(frozen=True, slots=True)
class PostfixInstance:
    """Paths of one instance (``name`` is a receiver label or a sender profile)."""

    name: str
    root: Path          # <workdir>/postfix/<name>
    log_file: Path      # its maillog_file (evidence)

    @property
    def config_directory(self) -> Path:
        return self.root / "etc"

    @property
    def queue_directory(self) -> Path:
        return self.root / "spool"

    @property
    def data_directory(self) -> Path:
        return self.root / "data"

    @property
    def pid_file(self) -> Path:
        return self.queue_directory / "pid" / "master.pid"

    def paths(self) -> dict[str, str]:
        """Template values for the instance's directories."""
        return {
            "config_directory": str(self.config_directory),
            "queue_directory": str(self.queue_directory),
            "data_directory": str(self.data_directory),
            "maillog_file": str(self.log_file),
            "maillog_file_prefixes": str(self.log_file.parent),
        }

    def write_config(self, files: dict[str, str]) -> None:
        """Write main.cf, master.cf and any map files into the config directory, and
        create the directories Postfix needs with the owners it insists on."""
        self.config_directory.mkdir(parents=True, exist_ok=True)
        # Postfix waits (about a second, per program start) before reading a table or
        # main.cf changed within the last second, lest it read a half-written file;
        # these are complete, so they are dated a minute back.
        past = time.time() - 60
        for name, text in files.items():
            path = self.config_directory / name
            path.write_text(text)
            os.utime(path, (past, past))
        self.queue_directory.mkdir(parents=True, exist_ok=True)
        self.data_directory.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        owner = pwd.getpwnam("postfix")
        shutil.chown(self.data_directory, owner.pw_uid, owner.pw_gid)

    def master_pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if pid is not None and processes.running(pid) else None

    def postfix(self, netns: str, *args: str, timeout: float = 60):
        return run(["postfix", "-c", str(self.config_directory), *args], netns=netns,
                   timeout=timeout, tty_stderr=True)

    def check(self, netns: str) -> None:
        result = self.postfix(netns, "check")
        if not result.ok:
            raise LabError(f"Postfix {self.name}: configuration check failed: {result.last_line()}")

    def start(self, netns: str) -> int:
        """Start the instance; its master PID once it runs."""
        result = self.postfix(netns, "start")
        if not result.ok:
            raise LabError(f"Postfix {self.name} did not start: {_reason(result.output)}")
        if not wait_until(lambda: self.master_pid() is not None, 15):
            raise LabError(f"Postfix {self.name}: no master process after start (see {self.log_file})")
        return self.master_pid()  # type: ignore[return-value]

    def stop(self, netns: str | None) -> bool:
        """Stop the instance by its master's PID file (master ends its children). True
        when no master is left."""
        pid = read_pid(self.pid_file)
        if pid is None or not processes.running(pid):
            return True
        return stop_pid(pid, netns=netns, timeout=15)

    def flush(self, netns: str) -> None:
        """Ask the queue manager to retry every deferred message now (``postqueue -f``)."""
        run(["postqueue", "-c", str(self.config_directory), "-f"], netns=netns, timeout=30)

    def queue(self, netns: str) -> list[dict]:
        """The queue as ``postqueue -j`` reports it: one dict per message."""
        result = run(["postqueue", "-c", str(self.config_directory), "-j"], netns=netns, timeout=30)
        items = []
        for line in result.output.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    items.append(json.loads(line))
                except ValueError:
                    continue
        return items


def _reason(output: str) -> str:
    """The most telling line of a failed ``postfix start``: the first fatal one."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "fatal:" in line:
            return line
    return lines[-1] if lines else "no output"
