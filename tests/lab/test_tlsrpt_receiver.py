"""The lab's https TLS-RPT endpoint (RFC 8460 section 5.4) against a real client: what
it stores is what `mtasts ingest` reads back, and it refuses what a reporter never
sends. Runs on 127.0.0.1 with a high port; no root."""

from __future__ import annotations

import base64
import gzip
import io
import json
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from collectors.lab.certs import issue_files
from collectors.lab.templates import template_path
from collectors.lab_ingest import parse_post_log
from collectors.testbed.pki import Pki
from support import free_port

pytestmark = pytest.mark.servers

REPORT = {
    "organization-name": "Example Sender",
    "date-range": {"start-datetime": "2024-09-29T00:00:00Z", "end-datetime": "2024-09-29T23:59:59Z"},
    "contact-info": "tlsrpt@sender.example",
    "report-id": "2024-09-29T00:00:00Z_b.audit.lab.test",
    "policies": [{
        "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce",
                                                         "mx: mx.b.audit.lab.test", "max_age: 86400"],
                   "policy-domain": "b.audit.lab.test", "mx-host": ["mx.b.audit.lab.test"]},
        "summary": {"total-successful-session-count": 0, "total-failure-session-count": 1},
        "failure-details": [{"result-type": "starttls-not-supported", "sending-mta-ip": "127.77.2.1",
                             "receiving-mx-hostname": "mx.b.audit.lab.test", "failed-session-count": 1}],
    }],
}


def start_receiver(tmp: Path, *extra: str):
    """Start the receiver on a free port with ``extra`` options; (process, url, CA bundle, output)."""
    pki = Pki.open(tmp / "pki")
    tls = issue_files(pki, tmp / "certs", "tlsrpt", "tlsrpt.audit.lab.test")
    port = free_port()
    output, ready = tmp / "posts.jsonl", tmp / "ready"
    proc = subprocess.Popen([sys.executable, str(template_path("tlsrpt/mtasts-tlsrpt-receiver")),
                             "--listen", "127.0.0.1", "--port", str(port), "--cert", str(tls.cert_file),
                             "--key", str(tls.key_file), "--output", str(output), "--ready", str(ready),
                             *extra])
    for _ in range(100):
        if ready.exists():
            break
        time.sleep(0.05)
    if not ready.exists():
        proc.kill()
        raise AssertionError("receiver did not start")
    return proc, f"https://127.0.0.1:{port}/v1/report", pki.ca_bundle, output


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    proc, url, ca, output = start_receiver(tmp_path_factory.mktemp("tlsrpt"), "--max-connections-per-client", "3")
    try:
        yield url, ca, output
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _context(ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False  # the URL names 127.0.0.1; the chain is still verified
    return context


def _post(url: str, ca: Path, body: bytes, content_type: str) -> httpx.Response:
    with httpx.Client(verify=_context(ca), timeout=10) as client:
        return client.post(url, content=body, headers={"Content-Type": content_type,
                                                        "Host": "tlsrpt.audit.lab.test"})


def test_gzip_and_json_reports_are_stored_and_ingestable(receiver):
    url, ca, output = receiver
    before = output.read_bytes().count(b"\n") if output.exists() else 0
    gz = gzip.compress(json.dumps(REPORT).encode())
    assert _post(url, ca, gz, "application/tlsrpt+gzip").status_code == 201
    assert _post(url, ca, json.dumps(REPORT).encode(), "application/tlsrpt+json").status_code == 201
    lines = output.read_bytes().splitlines()[before:]
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert record["format"] == "mtasts-tlsrpt-post/1"
    assert record["remote_addr"] == "127.0.0.1" and record["path"] == "/v1/report"
    assert record["host"] == "tlsrpt.audit.lab.test"
    evidence = [e for e in parse_post_log(io.BytesIO(b"\n".join(lines) + b"\n"))]
    assert [type(e).__name__ for e in evidence] == ["TlsRptEvidence", "TlsRptEvidence"]
    assert evidence[0].content_type == "application/tlsrpt+gzip"
    assert evidence[0].report.policies[0].failure_details[0].result_type == "starttls-not-supported"
    assert evidence[1].report.report_id == REPORT["report-id"]


def test_chunked_body_is_reassembled(receiver):
    url, ca, output = receiver
    body = gzip.compress(json.dumps(REPORT).encode())

    def chunks():
        for i in range(0, len(body), 7):
            yield body[i:i + 7]

    with httpx.Client(verify=_context(ca), timeout=10) as client:
        response = client.post(url, content=chunks(), headers={"Content-Type": "application/tlsrpt+gzip"})
    assert response.status_code == 201
    last = json.loads(output.read_bytes().splitlines()[-1])
    assert base64.b64decode(last["body_base64"]) == body


def test_what_a_reporter_never_sends_is_refused_and_not_stored(receiver):
    url, ca, output = receiver
    size = output.stat().st_size if output.exists() else 0
    with httpx.Client(verify=_context(ca), timeout=30) as client:
        assert client.get(url).status_code == 405
        too_big = client.post(url, content=b"x" * (8 * 1024 * 1024 + 1),
                              headers={"Content-Type": "application/tlsrpt+json"})
        assert too_big.status_code == 413
    assert (output.stat().st_size if output.exists() else 0) == size


def _size(output: Path) -> int:
    return output.stat().st_size if output.exists() else 0


def test_a_body_that_is_neither_gzip_nor_json_is_refused_with_415(receiver):
    url, ca, output = receiver
    size = _size(output)
    for body in (b"hello", b"<html></html>", b"\x00" * 100, b"[1, 2]"):
        assert _post(url, ca, body, "application/tlsrpt+json").status_code == 415
    assert _size(output) == size
    assert _post(url, ca, b"\xef\xbb\xbf " + json.dumps(REPORT).encode(), "application/json").status_code == 201


def _stalled_connection(url: str, ca: Path) -> ssl.SSLSocket:
    """A TLS connection that sends half a request head and then waits (a slowloris)."""
    port = int(url.split(":")[2].split("/")[0])
    sock = _context(ca).wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
    sock.sendall(b"POST /v1/report HTTP/1.1\r\nHost: x\r\n")
    return sock


def test_one_client_cannot_hold_more_than_its_connections(receiver):
    url, ca, output = receiver
    stalled = [_stalled_connection(url, ca) for _ in range(3)]
    try:
        time.sleep(0.2)
        assert _post(url, ca, json.dumps(REPORT).encode(), "application/tlsrpt+json").status_code == 429
    finally:
        for sock in stalled:
            sock.close()
    for _ in range(50):  # the server notices the closed connections
        response = _post(url, ca, json.dumps(REPORT).encode(), "application/tlsrpt+json")
        if response.status_code != 429:
            break
        time.sleep(0.1)
    assert response.status_code == 201


def test_the_output_never_grows_past_its_budget(tmp_path):
    proc, url, ca, output = start_receiver(tmp_path, "--max-output-bytes", "4000")
    try:
        body = json.dumps(REPORT).encode()  # about 1.3 kB as a base64 line
        answers = [_post(url, ca, body, "application/tlsrpt+json").status_code for _ in range(6)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert answers[0] == 201 and answers[-1] == 507, answers
    assert answers == sorted(answers)  # once full, full
    assert 0 < _size(output) <= 4000
    assert len(list(parse_post_log(io.BytesIO(output.read_bytes())))) == answers.count(201)


def test_behind_a_proxy_it_speaks_plain_http_and_takes_the_proxy_s_client_address(tmp_path):
    port = free_port()
    output, ready = tmp_path / "posts.jsonl", tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, str(template_path("tlsrpt/mtasts-tlsrpt-receiver")),
                             "--listen", "127.0.0.1", "--port", str(port), "--plain",
                             "--output", str(output), "--ready", str(ready)])
    try:
        for _ in range(100):
            if ready.exists():
                break
            time.sleep(0.05)
        response = httpx.post(f"http://127.0.0.1:{port}/v1/report", content=json.dumps(REPORT).encode(),
                              headers={"Content-Type": "application/tlsrpt+json", "X-Real-IP": "192.0.2.9"})
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert response.status_code == 201
    assert json.loads(output.read_bytes())["remote_addr"] == "192.0.2.9"
