"""Helpers shared by tests: repo paths, the read-only ../shared data, and the rule for
tests that need root or real servers: skipped with a reason on a laptop, but a failure
under CI (CI=true), where .ci/run installs everything. Import with ``from support import ...``
(``conftest`` is not importable by name: several folders have one)."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
EXTERNAL_DIR = SHARED_DIR / "external"
IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, reason: str) -> None:
    """Skip the calling test when ``condition`` is false, except under CI, where it fails."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (network namespaces, ports below 1024)")


def require_binaries(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None
               and not Path("/usr/sbin", n).exists() and not Path("/sbin", n).exists()]
    require(not missing, f"needs {', '.join(missing)} (run: sudo scripts/install-system-deps)")


def require_testbed_servers(latency: bool = False) -> None:
    """Skip (fail under CI) unless Knot, Unbound, nginx (and dnsdist for latency) exist."""
    from collectors.testbed.world import missing_binaries

    missing = missing_binaries(latency)
    require(not missing, f"needs {', '.join(missing)} (run: sudo scripts/install-system-deps)")


def export_text(value: object) -> str:
    """A value as the posture export's CSV writes it (NULL empty, booleans true/false), so a
    database row and a catalogue expectation compare as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


RECORDER_UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def recorder_line(**changes: object) -> bytes:
    """One good ``mtasts-recorder/1`` line (no newline), with ``changes`` applied."""
    value = {"format": "mtasts-recorder/1", "received_at": "2024-09-30T12:00:00Z", "server_label": "c",
             "recipient": f"{RECORDER_UUID}@c.lab.example.org", "original_recipient": None, "sender": "",
             "client_address": "2001:db8::1", "client_helo": None, "client_hostname": None,
             "client_protocol": "ESMTP", "envid": None, "message_id": "<m1@x>", "received_with": "ESMTPS",
             "queue_id": "4Xyz", "tls_protocol": "TLSv1.3", "tls_cipher": "TLS_AES_128_GCM_SHA256",
             "tls_bits": 128}
    value.update(changes)
    return json.dumps(value).encode()


def readme_table(heading: str) -> list[list[str]]:
    """The rows of the first Markdown table under ``heading`` in README.md, as stripped
    cells (header and separator rows left out): tests read the README's rules from it."""
    section = (REPO_ROOT / "README.md").read_text().split(heading, 1)[1].split("\n#", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.lstrip().startswith("|")]
    return rows[2:]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
