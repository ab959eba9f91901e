"""One Exim instance of the lab (a sender profile): its configuration file, spool and logs
under the lab's work directory, the daemon started in the namespace, its queue read and
flushed with Exim's own commands.

Exim comes from Debian's ``exim4-daemon-heavy``, which conflicts with the ``postfix``
package (both provide ``mail-transport-agent``), so ``scripts/install-system-deps``
unpacks it (``dpkg-deb -x``) into its own prefix instead of installing it; the binary is
found through ``$MTASTS_EXIM``, ``PATH`` or that prefix. Started as root with a
configuration file of its own (``-C``), Exim drops root for its user ``Debian-exim``.
"""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from collectors.lab.processes import LabError, read_pid, run, spawn, stop_pid
from collectors.testbed import processes

EXIM_PREFIX = Path("/opt/mtasts-exim4")   # where scripts/install-system-deps unpacks the package
EXIM_USER = "Debian-exim"                 # compiled into Debian's binary


def exim_binary() -> Path | None:
    """The Exim binary: ``$MTASTS_EXIM``, ``exim4`` on PATH, or the unpacked package
    (under ``$MTASTS_EXIM_PREFIX``, as for the install script, default EXIM_PREFIX)."""
    for candidate in (os.environ.get("MTASTS_EXIM"), shutil.which("exim4"),
                      str(Path(os.environ.get("MTASTS_EXIM_PREFIX", EXIM_PREFIX)) / "usr" / "sbin" / "exim4")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@dataclass(frozen=True, slots=True)
class EximInstance:
    """Paths of one Exim sender profile: ``<workdir>/exim/<name>``, logs in the evidence."""

    name: str
    root: Path          # <workdir>/exim/<name>
    log_directory: Path  # evidence/exim/<name>: mainlog, rejectlog, paniclog

    @property
    def config_file(self) -> Path:
        return self.root / "exim4.conf"

    @property
    def spool_directory(self) -> Path:
        return self.root / "spool"

    @property
    def pid_file(self) -> Path:
        return self.spool_directory / "exim-daemon.pid"

    def paths(self, binary: Path) -> dict[str, str]:
        """Template values for the instance's files."""
        return {
            "exim_path": str(binary),
            "spool_directory": str(self.spool_directory),
            "log_directory": str(self.log_directory),
            "pid_file": str(self.pid_file),
            "exim_user": EXIM_USER,
        }

    def write_config(self, text: str) -> None:
        """Write the configuration (root's, not writable by others: Exim insists) and
        create the spool and log directories for Exim's user."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(text)
        self.config_file.chmod(0o644)
        owner = pwd.getpwnam(EXIM_USER)
        for directory in (self.spool_directory, self.log_directory):
            directory.mkdir(parents=True, exist_ok=True)
            shutil.chown(directory, owner.pw_uid, owner.pw_gid)

    def _exim(self, binary: Path, netns: str, *args: str, timeout: float = 30):
        return run([str(binary), "-C", str(self.config_file), *args], netns=netns, timeout=timeout)

    def check(self, binary: Path, netns: str) -> None:
        result = self._exim(binary, netns, "-bV")
        if not result.ok:
            raise LabError(f"Exim {self.name}: configuration check failed: {result.last_line()}")

    def start(self, binary: Path, netns: str, queue_interval: str, pid_file: Path, log_file: Path) -> int:
        """Run the daemon in the foreground (``-bdf``) with a queue run every
        ``queue_interval`` (``-q``); ``pid_file`` is the lab's record of it. Whether it
        listens is checked with the lab's other servers."""
        self.check(binary, netns)
        return spawn([str(binary), "-C", str(self.config_file), "-bdf", f"-q{queue_interval}"],
                     netns=netns, pid_file=pid_file, log_file=log_file, cwd=Path("/"))

    @staticmethod
    def stop(pid_file: Path, netns: str | None) -> bool:
        pid = read_pid(pid_file)
        if pid is None or not processes.running(pid):
            return True
        return stop_pid(pid, netns=netns, timeout=15)

    def flush(self, binary: Path, netns: str) -> None:
        """Try every queued message now, retry times notwithstanding (``-qf``)."""
        self._exim(binary, netns, "-qf", timeout=60)

    def queued(self, binary: Path, netns: str) -> int:
        """Messages in the queue (``-bpc``)."""
        result = self._exim(binary, netns, "-bpc")
        last = result.last_line()
        if not result.ok or not last.isdigit():
            raise LabError(f"Exim {self.name}: cannot read the queue: {last}")
        return int(last)
