"""`mtasts lab` without a running lab: a user's mistake is one line and a non-zero exit,
never a traceback; no server is started."""

from __future__ import annotations

import subprocess
import sys

from support import REPO_ROOT


def _mtasts(*args: str, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collectors.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_lab_commands_are_listed():
    out = _mtasts("lab", "--help")
    assert out.returncode == 0
    for name in ("up", "send", "status", "down", "sample"):
        assert name in out.stdout


def test_send_without_a_lab_is_one_clear_line(tmp_path):
    out = _mtasts("lab", "send", "--workdir", str(tmp_path / "none"), "--profile", "postfix-mta-sts")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "no lab is up" in out.stderr and "Traceback" not in out.stderr


def test_status_and_down_without_a_lab(tmp_path):
    status = _mtasts("lab", "status", "--workdir", str(tmp_path))
    assert status.returncode == 1 and "no lab is up" in status.stdout
    down = _mtasts("lab", "down", "--workdir", str(tmp_path))
    assert down.returncode == 0 and "lab down" in down.stdout


def test_bad_via_is_a_usage_error(tmp_path):
    out = _mtasts("lab", "send", "--workdir", str(tmp_path), "--profile", "external", "--via", "nohostport")
    assert out.returncode == 2 and "expected HOST:PORT" in out.stderr


def test_cli_names_every_built_in_profile():
    from collectors.cli.lab import PROFILE_NAMES
    from collectors.lab import BUILTIN_PROFILES

    assert set(PROFILE_NAMES) == {p.name for p in BUILTIN_PROFILES}
