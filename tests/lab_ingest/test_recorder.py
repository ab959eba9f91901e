"""Our lab's recorder: the standalone script run as Postfix would run it, and the
parser of the JSON lines it writes.

The messages fed to the script are HAND-WRITTEN: their Received headers copy the
format Postfix's smtpd(8) writes with ``smtpd_tls_received_header = yes``, and the
first lines are what local(8) prepends for command delivery (From_ line,
Return-Path, X-Original-To, Delivered-To). The environment is local(8)'s
"EXTERNAL COMMAND DELIVERY" set.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings, strategies as st

from collectors.lab_ingest.records import Quarantined
from collectors.lab_ingest.recorder import RecordedMessage, parse, sniff
from support import RECORDER_UUID as UUID, REPO_ROOT, recorder_line

SCRIPT = REPO_ROOT / "lab" / "recorder" / "mtasts-recorder"

TLS_MESSAGE = f"""\
From alice@sender.example  Mon Sep 30 12:00:00 2024
Return-Path: <alice@sender.example>
X-Original-To: {UUID}@a.lab.example.org
Delivered-To: recorder@a.lab.example.org
Received: from mail.sender.example (mail.sender.example [192.0.2.25])
\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256
\t client-signature ECDSA (P-256) client-digest SHA256)
\t(No client certificate requested)
\tby a.lab.example.org (Postfix) with ESMTPS id 4XHjQ72Lm7z9sWN
\tfor <{UUID}@a.lab.example.org>; Mon, 30 Sep 2024 12:00:00 +0000 (UTC)
Received: from localhost (localhost [127.0.0.1])
\t(using TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256 (128/128 bits))
\tby mail.sender.example (Postfix) with ESMTPSA id 3F2A41C0123
\tfor <{UUID}@a.lab.example.org>; Mon, 30 Sep 2024 11:59:59 +0000 (UTC)
Message-ID: <20240930115959.3F2A41C0123@mail.sender.example>
Subject: test message with a secret subject
From: alice@sender.example
To: {UUID}@a.lab.example.org

The body: never recorded.
From here on nothing is read into the record.
"""

PLAIN_MESSAGE = f"""\
From bob@sender.example  Mon Sep 30 12:00:00 2024
Return-Path: <bob@sender.example>
Received: from mail.sender.example (mail.sender.example [192.0.2.26])
\tby b.lab.example.org (Postfix) with ESMTP id 3F2A41C0AAA
\tfor <{UUID}@b.lab.example.org>; Mon, 30 Sep 2024 12:00:00 +0000 (UTC)
Message-ID: <plain-1@sender.example>

body
"""


def delivery_env(label_domain: str = "a.lab.example.org", **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent", "USER": "recorder", "LOGNAME": "recorder", "SHELL": "/bin/sh",
        "LOCAL": "recorder", "DOMAIN": label_domain,
        "RECIPIENT": f"recorder@{label_domain}",
        "ORIGINAL_RECIPIENT": f"{UUID}@{label_domain}",
        "SENDER": "alice@sender.example",
        "CLIENT_ADDRESS": "192.0.2.25",
        "CLIENT_HELO": "mail.sender.example",
        "CLIENT_HOSTNAME": "mail.sender.example",
        "CLIENT_PROTOCOL": "ESMTP",
    }
    env.update(extra)
    return env


def run_recorder(message: str, output: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run([sys.executable, str(SCRIPT), "--output", str(output), *args],
                          input=message.encode(), env=env if env is not None else delivery_env(),
                          capture_output=True, timeout=30)


def records(path: Path) -> list:
    with path.open("rb") as handle:
        return list(parse(handle))


def test_script_records_tls_details_from_the_received_header(tmp_path):
    output = tmp_path / "received.jsonl"
    before = datetime.now(timezone.utc)
    result = run_recorder(TLS_MESSAGE, output, "a")
    assert result.returncode == 0, result.stderr
    line = output.read_bytes()
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert b"secret" not in line and b"body" not in line.lower().replace(b"body_", b"")
    assert sniff(line)
    [record] = records(output)
    assert isinstance(record, RecordedMessage)
    assert record.server_label == "a"
    assert record.tls_protocol == "TLSv1.3"
    assert record.tls_cipher == "TLS_AES_256_GCM_SHA384"
    assert record.tls_bits == 256
    assert record.queue_id == "4XHjQ72Lm7z9sWN"  # the topmost Received, not the sender's
    assert record.received_with == "ESMTPS"
    assert record.message_id == "20240930115959.3F2A41C0123@mail.sender.example"
    assert record.original_recipient == f"{UUID}@a.lab.example.org"
    assert record.recipient == "recorder@a.lab.example.org"
    assert record.address_uuid == UUID
    assert record.sender == "alice@sender.example"
    assert record.client_address == "192.0.2.25"
    assert record.client_helo == "mail.sender.example"
    assert record.client_hostname == "mail.sender.example"
    assert record.client_protocol == "ESMTP"
    assert record.envid is None
    assert before - timedelta(seconds=1) <= record.received_at <= datetime.now(timezone.utc)


def test_script_without_tls_leaves_tls_fields_empty(tmp_path):
    output = tmp_path / "received.jsonl"
    result = run_recorder(PLAIN_MESSAGE, output, "b", env=delivery_env("b.lab.example.org"))
    assert result.returncode == 0, result.stderr
    [record] = records(output)
    assert (record.tls_protocol, record.tls_cipher, record.tls_bits) == (None, None, None)
    assert record.received_with == "ESMTP" and record.queue_id == "3F2A41C0AAA"
    assert record.server_label == "b"


def test_pipe_transport_options_override_the_environment(tmp_path):
    output = tmp_path / "received.jsonl"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MTASTS_RECORDER_LABEL": "e"}
    result = run_recorder(TLS_MESSAGE, output, "--original-recipient", f"{UUID}@e.lab.example.org",
                          "--client-address", "2001:db8::25", env=env)
    assert result.returncode == 0, result.stderr
    [record] = records(output)
    assert record.server_label == "e"
    assert record.client_address == "2001:db8::25"
    assert record.original_recipient == f"{UUID}@e.lab.example.org" and record.recipient is None


def test_concurrent_deliveries_never_interleave(tmp_path):
    output = tmp_path / "received.jsonl"
    big = TLS_MESSAGE + ("x" * 200 + "\n") * 2000  # long bodies keep writers busy together

    def deliver(number: int):
        env = delivery_env(ORIGINAL_RECIPIENT=f"{number:08d}-d9cb-469f-a165-70867728950e@a.lab.example.org")
        return run_recorder(big, output, "a", env=env).returncode

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(deliver, range(24)))
    assert codes == [0] * 24
    parsed = records(output)
    assert all(isinstance(r, RecordedMessage) for r in parsed)
    assert len({r.original_recipient for r in parsed}) == 24


def test_unwritable_output_defers_with_ex_tempfail(tmp_path):
    result = run_recorder(TLS_MESSAGE, tmp_path / "missing-dir" / "received.jsonl", "a")
    assert result.returncode == 75
    assert b"cannot record" in result.stderr


def test_missing_label_defers(tmp_path):
    result = run_recorder(TLS_MESSAGE, tmp_path / "r.jsonl")
    assert result.returncode == 75 and not (tmp_path / "r.jsonl").exists()


def test_partial_line_left_by_a_killed_writer(tmp_path):
    output = tmp_path / "received.jsonl"
    output.write_bytes(b'{"format":"mtasts-recorder/1","received_at":"2024-09-30T12:0')
    assert run_recorder(TLS_MESSAGE, output, "a").returncode == 0
    first, second = records(output)
    assert isinstance(first, Quarantined) and "not JSON" in first.reason
    assert isinstance(second, RecordedMessage)


good_line = recorder_line


def test_parser_quarantines_bad_lines_with_reasons():
    data = b"\n".join([
        good_line(),
        b"not json",
        good_line(format="other/1"),
        good_line(received_at="2024-09-30 12:00:00"),
        good_line(tls_bits="128"),
        good_line(recipient="nobody", original_recipient=None),
        b"[1, 2]",
        good_line()[:40],  # half-written last line, no newline
    ])
    results = list(parse(io.BytesIO(data)))
    assert isinstance(results[0], RecordedMessage)
    assert results[0].sender is None and results[0].message_id == "m1@x"
    reasons = [r.reason for r in results[1:]]
    assert all(isinstance(r, Quarantined) for r in results[1:])
    assert reasons[0].startswith("not JSON")
    assert "format" in reasons[1]
    assert "received_at" in reasons[2]
    assert "tls_bits" in reasons[3]
    assert "recipient" in reasons[4]
    assert "not a JSON object" in reasons[5]
    assert reasons[6].startswith("half-written last line")
    assert [r.position for r in results] == [f"line {n}" for n in range(1, 9)]


@settings(max_examples=200)
@given(st.lists(st.one_of(st.binary(max_size=80), st.just(good_line())), max_size=6))
def test_parser_never_raises(lines):
    for item in parse(io.BytesIO(b"\n".join(lines))):
        assert isinstance(item, (RecordedMessage, Quarantined))


def test_parse_path(tmp_path):
    from collectors.lab_ingest.recorder import parse_path

    path = tmp_path / "received.jsonl"
    path.write_bytes(good_line() + b"\n")
    [record] = parse_path(path)
    assert isinstance(record, RecordedMessage) and record.server_label == "c"


def test_folded_header_lines_are_capped_like_the_rest(tmp_path):
    """A header folded over 40 MB (Postfix accepts what its message_size_limit allows)
    costs the recorder no more memory than a normal message, and the record is whole."""
    head, _, rest = TLS_MESSAGE.partition("Received: from mail.sender.example")
    folded = "".join(f"\tcomment-{i:08d} {'x' * 60}\n" for i in range(600_000))
    hostile = head + "Received: from mail.sender.example" + rest.replace(
        "\t(No client certificate requested)\n", "\t(No client certificate requested)\n" + folded, 1)
    assert len(hostile) > 40_000_000
    output = tmp_path / "received.jsonl"
    probe = ("import resource, subprocess, sys\n"
             "done = subprocess.run(sys.argv[1:], stdin=sys.stdin)\n"
             "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    ran = subprocess.run([sys.executable, "-c", probe, sys.executable, str(SCRIPT), "--output", str(output), "a"],
                         input=hostile.encode(), env=delivery_env(), capture_output=True, timeout=60)
    code, max_rss_kib = map(int, ran.stdout.split())
    assert code == 0, ran.stderr
    assert max_rss_kib < 60 * 1024, max_rss_kib
    (record,) = records(output)
    assert isinstance(record, RecordedMessage)
    assert record.tls_protocol == "TLSv1.3" and record.tls_bits == 256
