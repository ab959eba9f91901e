"""The lab's process handling: Postfix's terminal-only errors are captured, a PID that is
not in the lab's namespace is never signalled, and the socketmap client speaks netstrings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from collectors.lab.processes import read_pid, run, spawn, stop_pid
from collectors.testbed.processes import running
from collectors.lab.submit import read_netstring, netstring, socketmap_query


def test_tty_stderr_reaches_programs_that_only_talk_to_terminals():
    probe = "import sys; sys.stderr.write('tty' if sys.stderr.isatty() else 'pipe')"
    assert run([sys.executable, "-c", probe]).output == "pipe"
    result = run([sys.executable, "-c", probe + "; sys.exit(3)"], tty_stderr=True)
    assert result.output == "tty" and result.returncode == 3


def test_run_reports_missing_programs_and_timeouts():
    assert run(["/nonexistent/program"]).returncode == 127
    assert run(["sleep", "5"], timeout=0.5).returncode == 124


def test_a_pid_outside_the_namespace_is_never_signalled(tmp_path):
    pid = spawn(["sleep", "30"], netns=None, pid_file=tmp_path / "sleep.pid", log_file=tmp_path / "sleep.log")
    try:
        assert read_pid(tmp_path / "sleep.pid") == pid and running(pid)
        # Claimed to belong to a namespace it is not in: left alone.
        assert stop_pid(pid, netns="mtasts-lab-no-such-namespace", timeout=1) is False
        assert running(pid)
        assert stop_pid(pid, netns=None, timeout=5) is True
        assert not running(pid)
    finally:
        if running(pid):
            os.kill(pid, 9)


def test_netstring_framing():
    assert netstring(b"postfix a.audit.lab.test") == b"24:postfix a.audit.lab.test,"
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"10:NOTFOUND x,")
        assert read_netstring(right) == b"NOTFOUND x"
        left.sendall(b"5:abcdeX")
        with pytest.raises(ValueError):
            read_netstring(right)


def test_socketmap_query_against_a_socketmap_server():
    """A minimal Postfix socketmap server (socketmap_table(5)) on loopback."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        with conn:
            for _ in range(2):
                request = read_netstring(conn).decode()
                name, _, key = request.partition(" ")
                answer = f"OK secure match=mx.{key}" if key.startswith("a.") else "NOTFOUND "
                conn.sendall(netstring(f"{answer}".encode()))

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        answers = socketmap_query(None, "127.0.0.1", port, ["a.example.test", "f.example.test"])
    finally:
        thread.join(5)
        server.close()
    assert answers == {"a.example.test": "OK secure match=mx.a.example.test", "f.example.test": "NOTFOUND "}


def test_postfix_instance_errors_are_one_line(tmp_path):
    """A Postfix command's fatal error, which it prints only to a terminal, is captured."""
    if subprocess.run(["which", "postfix"], capture_output=True).returncode != 0:
        pytest.skip("needs postfix")
    (tmp_path / "main.cf").write_text("queue_directory = /nonexistent/queue\n")
    result = run(["postfix", "-c", str(tmp_path), "status"], tty_stderr=True)
    assert result.returncode != 0
    assert "postfix" in result.last_line()
