"""The monthly job fails safely: a month crawled through a resolver that answers NXDOMAIN
for everything is stopped by the sanity gate before anything is published; errors give
the right advice; two runs on one database never overlap."""

from __future__ import annotations

import fcntl
import socket
import subprocess
import sys
import threading
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import duckdb
import pytest

from collectors.crawl.sanity import Canary

MTASTS = str(Path(sys.executable).parent / "mtasts")


@pytest.fixture
def nxdomain_resolver():
    """A DNS server on loopback (UDP) that answers NXDOMAIN to every question: a broken
    upstream as a crawl would meet it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except (TimeoutError, socket.timeout):
                continue
            response = dns.message.make_response(dns.message.from_wire(wire))
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.flags |= dns.flags.RA
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join()
    sock.close()


def _monthly(tmp_path: Path, listing: Path, crawl_args: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([MTASTS, "monthly", "--list", str(listing), "--db", str(tmp_path / "m.duckdb"),
                           "--out", str(tmp_path / "reports"), "--crawl-args", crawl_args, *extra],
                          capture_output=True, text=True, timeout=300)


def test_gate_stops_a_month_crawled_through_an_nxdomain_resolver(tmp_path, nxdomain_resolver):
    listing = tmp_path / "top.csv"
    listing.write_text("1,gmail.com\n2,google.com\n3,one.example\n4,two.example\n")
    args = f"--resolver {nxdomain_resolver} --dns-timeout 1 --no-progress"
    done = _monthly(tmp_path, listing, args)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "failed the sanity gate; nothing was ingested or published" in done.stderr
    assert "canary gmail.com: mx_status is 'none', expected 'ok'" in done.stderr
    assert "4 of the top 4 domains (100%) got no MX answer" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "reports").exists()                     # nothing published
    con = duckdb.connect(str(tmp_path / "m.duckdb"), read_only=True)
    assert con.execute("SELECT status FROM runs WHERE kind = 'crawl'").fetchall() == [("failed",)]
    con.close()
    again = _monthly(tmp_path, listing, args)                     # crawls again, not "already finished"
    assert again.returncode == 3 and "crawling the list again" in again.stdout


def test_named_canaries_must_be_in_the_list_and_bad_ones_are_refused(tmp_path, nxdomain_resolver):
    listing = tmp_path / "list.txt"
    listing.write_text("one.example\n")
    done = _monthly(tmp_path, listing, f"--resolver {nxdomain_resolver} --no-progress",
                    "--canary", "gmail.com:mx_status=ok", "--max-dns-failure-share", "1")
    assert done.returncode == 3 and "canary gmail.com is not in the crawled list" in done.stderr
    bad = _monthly(tmp_path, listing, "", "--canary", "gmail.com")
    assert bad.returncode == 2 and "DOMAIN:COLUMN=VALUE" in bad.stderr
    assert Canary.parse("Gmail.com.:mx_status=ok") == Canary("gmail.com", "mx_status", "ok")


def test_no_resume_advice_when_no_crawl_was_started(tmp_path):
    done = _monthly(tmp_path, tmp_path / "missing.txt", "")
    assert done.returncode == 2
    assert "no crawl was started" in done.stderr and "to resume" not in done.stderr


def test_two_monthly_runs_cannot_overlap(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("one.example\n")
    with open(tmp_path / ".m.duckdb.monthly.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 1, started 2026-12-01T03:00:00Z\n")
        held.flush()
        done = _monthly(tmp_path, listing, "")
    assert done.returncode == 75
    assert "another 'mtasts monthly' is running" in done.stderr and "pid 1" in done.stderr
    assert not (tmp_path / "m.duckdb").exists()                   # it did nothing


def test_an_offline_tranco_error_is_shortened_at_a_word(tmp_path, monkeypatch):
    """Without the internet the download fails with a long message: the error keeps whole
    words (it used to stop mid-word) and says what to do."""
    import tranco

    from collectors.crawl.inputs import InputError, resolve_tranco

    long = ("HTTPSConnectionPool(host='tranco-list.eu', port=443): Max retries exceeded with url: "
            "/api/lists/date/latest (Caused by NameResolutionError(\"<urllib3.connection."
            "HTTPSConnection object at 0x7f>: Failed to resolve 'tranco-list.eu' ([Errno -3] "
            "Temporary failure in name resolution)\"))")

    class Offline:
        def __init__(self, *a, **k) -> None:
            raise ConnectionError(long)

    monkeypatch.setattr(tranco, "Tranco", Offline)
    with pytest.raises(InputError) as err:
        resolve_tranco("tranco:latest", tmp_path)
    message = str(err.value)
    assert message.endswith("pass a local CSV instead")
    detail = message.split("the download failed: ", 1)[1].rsplit("); pass a local CSV", 1)[0]
    assert detail.endswith(" ...") and long.startswith(detail[: -len(" ...")])
    assert long[len(detail) - len(" ...")] == " "              # cut between words
