"""The lab's live view (``mtasts lab serve-status`` and ``mtasts lab watch``), as a real
HTTP service on 127.0.0.1: it issues addresses only with the token, answers only for the
addresses it issued, shows arrivals and policy fetches from the very files `mtasts ingest`
reads, never content, and limits each client."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support import free_port, recorder_line

LAB = "audit.lab.test"


@pytest.fixture
def service(tmp_path: Path):
    token = secrets.token_hex(16)
    (tmp_path / "token").write_text(token + "\n")
    port = free_port()
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-m", "collectors.cli", "lab", "serve-status", "--lab-domain", LAB,
                             "--received", str(tmp_path / "received.jsonl"),
                             "--access-log", str(tmp_path / "policy-access.log"),
                             "--issued", str(tmp_path / "issued.jsonl"), "--token-file", str(tmp_path / "token"),
                             "--port", str(port), "--per-minute", "40", "--ready", str(ready)])
    try:
        for _ in range(200):
            if ready.exists():
                break
            time.sleep(0.05)
        assert ready.exists(), "status service did not start"
        yield f"http://127.0.0.1:{port}", token, tmp_path
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _issue(url: str, token: str) -> list[dict]:
    response = httpx.post(f"{url}/v1/addresses", headers={"Authorization": f"Bearer {token}", "X-Provider": "p"})
    assert response.status_code == 201, response.text
    return response.json()["addresses"]


def test_arrivals_and_fetches_for_issued_addresses_only(service) -> None:
    url, token, folder = service
    assert httpx.post(f"{url}/v1/addresses").status_code == 401
    assert httpx.post(f"{url}/v1/addresses", headers={"Authorization": "Bearer wrong"}).status_code == 401
    issued = _issue(url, token)
    assert [a["label"] for a in issued] == list("abcdef")
    a_address = issued[0]["address"]
    assert a_address.endswith(f"@a.{LAB}") and len(a_address.split("@")[0]) == 36

    nothing = httpx.get(f"{url}/v1/status/{a_address}").json()
    assert nothing["arrivals"] == [] and nothing["policy_fetches"] == []
    local = a_address.split("@")[0]
    (folder / "received.jsonl").write_bytes(recorder_line(
        server_label="a", received_at="2099-01-01T00:00:05Z", recipient="mtastslab@a.audit.lab.test",
        original_recipient=a_address, client_hostname="mx.sender.example", client_address="192.0.2.25") + b"\n")
    (folder / "policy-access.log").write_text(
        f'mta-sts.a.{LAB} 192.0.2.30 - - [01/Jan/2099:00:00:01 +0000] "GET /.well-known/mta-sts.txt HTTP/1.1" '
        '200 87 "-" "SenderMTA-STS/1.0"\n'
        f'mta-sts.b.{LAB} 192.0.2.31 - - [01/Jan/2099:00:00:02 +0000] "GET /.well-known/mta-sts.txt HTTP/1.1" '
        '200 87 "-" "Other/1.0"\n')
    status = httpx.get(f"{url}/v1/status/{a_address}").json()
    assert status["arrivals"] == [{"server": "a", "received_at": "2099-01-01T00:00:05Z",
                                   "client_address": "192.0.2.25", "client_hostname": "mx.sender.example",
                                   "tls_protocol": "TLSv1.3", "tls_cipher": "TLS_AES_128_GCM_SHA256"}]
    assert status["policy_fetches"] == [{"fetched_at": "2099-01-01T00:00:01Z", "client_address": "192.0.2.30",
                                         "user_agent": "SenderMTA-STS/1.0", "status": 200}]
    assert set(status) == {"address", "server", "issued_at", "arrivals", "policy_fetches"}  # no content
    assert local in (folder / "issued.jsonl").read_text()

    # The access log has whole seconds: a fetch in the very second the address was issued
    # counts, one a second earlier does not.
    from datetime import datetime, timedelta

    issued_at = datetime.fromisoformat(issued[0]["issued_at"].replace("Z", "+00:00"))
    nginx_time = "%d/%b/%Y:%H:%M:%S +0000"
    with (folder / "policy-access.log").open("a") as log:
        for moment, agent in ((issued_at - timedelta(seconds=1), "Before/1.0"), (issued_at, "SameSecond/1.0")):
            log.write(f'mta-sts.a.{LAB} 192.0.2.32 - - [{moment.strftime(nginx_time)}] '
                      f'"GET /.well-known/mta-sts.txt HTTP/1.1" 200 87 "-" "{agent}"\n')
    agents = [f["user_agent"] for f in httpx.get(f"{url}/v1/status/{a_address}").json()["policy_fetches"]]
    assert "SameSecond/1.0" in agents and "Before/1.0" not in agents

    # Addresses it did not issue, however well-formed, are unknown.
    assert httpx.get(f"{url}/v1/status/0f8fad5b-d9cb-469f-a165-70867728950e@a.{LAB}").status_code == 404
    assert httpx.get(f"{url}/v1/status/{local}@b.{LAB}").status_code == 404

    # `mtasts lab watch --once` prints the same.
    watched = subprocess.run([sys.executable, "-m", "collectors.cli", "lab", "watch", "--lab", url, "--once",
                              a_address], capture_output=True, text=True, timeout=60)
    assert watched.returncode == 0, watched.stderr
    assert "mx.sender.example [192.0.2.25]  TLSv1.3 TLS_AES_128_GCM_SHA256" in watched.stdout
    assert "agent SenderMTA-STS/1.0" in watched.stdout and "Other/1.0" not in watched.stdout


def test_watch_can_issue_and_each_client_is_rate_limited(service) -> None:
    url, token, folder = service
    ledger = folder / "ledger.csv"
    watched = subprocess.run([sys.executable, "-m", "collectors.cli", "lab", "watch", "--lab", url, "--once",
                              "--issue", "--token-file", str(folder / "token"), "--provider", "gmail",
                              "--account", "You@Gmail.com", "--ledger", str(ledger)],
                             capture_output=True, text=True, timeout=60)
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.count("nothing arrived yet") == 6
    # The issued addresses are in the ledger, as `mtasts lab addresses` records its own.
    rows = ledger.read_text().splitlines()
    assert rows[0] == "provider,sent_at,from,to,message_id" and len(rows) == 7
    issued = [line.strip() for line in watched.stdout.splitlines() if line.startswith("  ") and "@" in line
              and " " not in line.strip()]
    assert sorted(row.split(",")[3] for row in rows[1:]) == sorted(issued)
    assert all(row.startswith("gmail,") and ",you@gmail.com," in row for row in rows[1:])
    answers = [httpx.get(f"{url}/v1/status/x@a.{LAB}") for _ in range(45)]
    assert {a.status_code for a in answers} == {404, 429}
    refused = next(a for a in answers if a.status_code == 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 61   # when this client may ask again
    assert json.loads(httpx.get(f"{url}/v1/status/x").text)["error"].startswith("too many")
    ledger_alone = subprocess.run([sys.executable, "-m", "collectors.cli", "lab", "watch", "--lab", url, "--once",
                                   "--ledger", str(ledger), "x@a.lab.test"], capture_output=True, text=True, timeout=60)
    assert ledger_alone.returncode == 2 and "--ledger records issued addresses" in ledger_alone.stderr


def test_addresses_with_lab_are_issued_by_the_lab_and_recorded(service) -> None:
    url, token, folder = service
    ledger = folder / "addresses-ledger.csv"
    cli = [sys.executable, "-m", "collectors.cli", "lab", "addresses", "--provider", "gmail", "--account",
           "you@gmail.com", "--lab-domain", LAB, "--ledger", str(ledger), "--no-ingest", "--lab", url]
    no_token = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert no_token.returncode == 2 and "--lab needs --token-file" in no_token.stderr
    assert not ledger.exists()
    made = subprocess.run([*cli, "--token-file", str(folder / "token"), "--labels", "ab"],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    printed = [line.split("\t") for line in made.stdout.splitlines()]
    assert [label for label, _ in printed] == ["a", "b"]
    rows = ledger.read_text().splitlines()[1:]
    assert [row.split(",")[3] for row in rows] == [address for _, address in printed]
    for _, address in printed:   # the lab answers for them: it issued them
        assert httpx.get(f"{url}/v1/status/{address}").status_code == 200
    issued = [json.loads(line) for line in (folder / "issued.jsonl").read_text().splitlines()]
    assert {entry["provider"] for entry in issued} == {"gmail"}
