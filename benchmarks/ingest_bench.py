r"""Benchmark: ingest >= 1 GB generated Postfix logs; compare with pflogsumm in the same run.

Two shapes of log, generated into a temporary folder (never the repository):

* ``lab``: classic syslog, realistic sessions of the audit lab repeated (receiving smtpd
  sessions with TLS, local delivery to the recorder; sending smtp attempts: Verified TLS,
  deferred "TLS is required", bounced with a non-delivery notice): all fast path;
* ``real``: an internet-facing server, from real line shapes (the grok-pattern messages of
  ../shared/external/postfix): 70 % postscreen and dnsblog, then smtpd, tlsproxy, anvil,
  amavis and pipe, once with ISO 8601 stamps (microseconds and an offset, as rsyslog's
  high-precision template and ``journalctl -o short-iso-precise`` write them) and once with
  classic ones (``--real-mb``, default as big as the lab log; 0 skips them);
* the same real-shaped content in the envelopes users meet (generated envelopes, reported as
  such: only the envelope is rewritten): ``real-rfc5424-sd`` (rsyslog's RFC 5424 template
  with structured data, escaped ``\"``, ``\]``, ``\\`` in a value), ``real-docker-json``
  (docker's json-file driver: ``{"log": "...\n", "stream": ..., "time": ...}``, ``<``/``>``
  as ``\u003c``/``\u003e`` as Go writes them) and ``real-utf8`` (ISO lines with SMTPUTF8
  senders, a UTF-8 Subject and Latin-1 bytes from a client); ``--real-shapes`` picks some.
  For each, the share of lines the compiled reader hands to the Python parsers (its first
  32 MiB, in process) and its throughput against ``real-iso``'s of the same run.

For each it then:

* times ``pflogsumm`` (Debian package) on the file,
* times ``mtasts ingest`` (in a child process, so its peak RSS is its own),

back to back, ``--repeat`` times at each of two sizes (alternating which tool goes first:
the machine may be loaded by others), and prints lines/s for both, the ratio of each pair,
the ingester's peak RSS at the two sizes with its slope, and its RSS sampled through each
run (the drift: the last third of the big run against its middle third, in MiB per GiB
read). Then a third log, twice the big one, is ingested once for memory alone: memory is
flat when the peaks at the big and at the twice-as-big size differ by less than 50 MiB per
GiB (below about 1 GB the reader's capped maps, DuckDB's bounded buffer pool and the
writer's queue are still filling, so the small size shows warm-up, not growth).
The real-shaped logs are measured at one size, ``--repeat`` pairs each. Results go to
``benchmarks/results/ingest_bench.json``.

Run:  .venv/bin/python -m benchmarks.ingest_bench [--size-mb 1100] [--small-mb 110] [--flat-mb 2200]
      [--real-mb 1100] [--real-shapes real-iso,real-docker-json] [--skip-lab] [--repeat 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CIPHER = ("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
           "server-signature RSA-PSS (2048 bits) server-digest SHA256")


def _qid(n: int) -> str:
    """A Postfix long queue id (enable_long_queue_ids=yes) derived from a counter."""
    alphabet = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"
    out = []
    n = n * 7919 + 104729
    for _ in range(10):
        n, r = divmod(n, len(alphabet))
        out.append(alphabet[r])
    return "4" + "".join(out) + "z" + alphabet[n % 51]


def _session_block(i: int, when: str) -> str:
    """One round of realistic lines: a receiving session and three sending attempts."""
    q_in, q_out, q_b, q_bn = _qid(4 * i), _qid(4 * i + 1), _qid(4 * i + 2), _qid(4 * i + 3)
    pid = 2000 + (i % 30000)
    uid = f"{i:08x}-1f0e-4c1a-9b7e-{(i * 2654435761) % (1 << 48):012x}"
    client = f"mail-{i % 97}.sender{i % 13}.example.net[192.0.2.{i % 250 + 1}]"
    return (
        f"{when} lab-a postfix-a/smtpd[{pid}]: connect from {client}\n"
        f"{when} lab-a postfix-a/smtpd[{pid}]: Anonymous TLS connection established from {client}: {_CIPHER}\n"
        f"{when} lab-a postfix-a/smtpd[{pid}]: {q_in}: client={client}\n"
        f"{when} lab-a postfix-a/cleanup[{pid + 1}]: {q_in}: message-id=<{uid}@sender{i % 13}.example.net>\n"
        f"{when} lab-a postfix-a/qmgr[1990]: {q_in}: from=<alice{i % 50}@sender{i % 13}.example.net>, size={1200 + i % 900}, nrcpt=1 (queue active)\n"
        f"{when} lab-a postfix-a/local[{pid + 2}]: {q_in}: to=<{uid}@a.lab.example>, relay=local, delay=0.12, delays=0.05/0.01/0/0.06, dsn=2.0.0, status=sent (delivered to command: /usr/local/bin/mtasts-recorder)\n"
        f"{when} lab-a postfix-a/qmgr[1990]: {q_in}: removed\n"
        f"{when} lab-a postfix-a/smtpd[{pid}]: disconnect from {client} ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7\n"
        f"{when} sender postfix/pickup[310]: {q_out}: uid=0 from=<bob>\n"
        f"{when} sender postfix/cleanup[311]: {q_out}: message-id=<{uid}.a@sender.example>\n"
        f"{when} sender postfix/qmgr[312]: {q_out}: from=<bob@sender.example>, size=612, nrcpt=1 (queue active)\n"
        f"{when} sender postfix/smtp[{pid + 3}]: Verified TLS connection established to mx-a.lab.example[127.0.0.11]:25: {_CIPHER}\n"
        f"{when} sender postfix/smtp[{pid + 3}]: {q_out}: to=<{uid}@a.lab.example>, relay=mx-a.lab.example[127.0.0.11]:25, delay=0.41, delays=0.02/0.01/0.3/0.08, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {q_in})\n"
        f"{when} sender postfix/qmgr[312]: {q_out}: removed\n"
        f"{when} sender postfix/cleanup[311]: {q_b}: message-id=<{uid}.b@sender.example>\n"
        f"{when} sender postfix/qmgr[312]: {q_b}: from=<bob@sender.example>, size=640, nrcpt=2 (queue active)\n"
        f"{when} sender postfix/smtp[{pid + 4}]: {q_b}: to=<{uid}@b.lab.example>, relay=mx-b.lab.example[127.0.0.12]:25, delay=0.2, delays=0.02/0/0.17/0, dsn=4.7.4, status=deferred (TLS is required, but was not offered by host mx-b.lab.example[127.0.0.12])\n"
        f"{when} sender postfix/smtp[{pid + 5}]: Untrusted TLS connection established to mx-d.lab.example[127.0.0.14]:25: {_CIPHER}\n"
        f"{when} sender postfix/smtp[{pid + 5}]: {q_b}: to=<{uid}@d.lab.example>, relay=mx-d.lab.example[127.0.0.14]:25, delay=301, delays=300/0.01/0.5/0, dsn=5.7.5, status=bounced (Server certificate not trusted)\n"
        f"{when} sender postfix/bounce[{pid + 6}]: {q_b}: sender non-delivery notification: {q_bn}\n"
        f"{when} sender postfix/qmgr[312]: {q_b}: removed\n"
    )


_SERVER_TLS = ("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
               "server-signature RSA-PSS (2048 bits) server-digest SHA256")
_DNSBLS = ("zen.spamhaus.org", "b.barracudacentral.org", "bl.spamcop.net", "psbl.surriel.com")


def _ip(n: int) -> str:
    """A documentation-range IPv4 address (RFC 5737) from a counter."""
    return f"{(192, 198, 203)[n % 3]}.{(0, 51, 0)[n % 3]}.{(2, 100, 113)[n % 3]}.{n * 37 % 254 + 1}"


def _real_block(i: int, when: str) -> str:
    """One round of an internet-facing server's log, in real line shapes (the grok-pattern
    messages of ../shared/external/postfix): 70 % postscreen and dnsblog (zombies turned away,
    clients passed to smtpd), then smtpd (one message accepted over TLS, a reject, a dropped
    client), tlsproxy, anvil, amavis (the content filter) and pipe (delivery to dovecot)."""
    bad, good, drop = _ip(6 * i), _ip(6 * i + 1), _ip(6 * i + 2)
    port = 1024 + i * 7 % 60000
    pid = 3000 + i % 40          # smtpd processes serve many clients each
    q_in, q_re = _qid(2 * i), _qid(2 * i + 1)
    rcpt = f"user{i % 500}@example.org"
    sender = f"news{i % 71}@list{i % 17}.example.com"
    zombies = "".join(
        f"{when} mx1 postfix/postscreen[1201]: CONNECT from [{_ip(6 * i + 3 + k)}]:{port + k} to [198.51.100.25]:25\n"
        f"{when} mx1 postfix/dnsblog[{1300 + k}]: addr {_ip(6 * i + 3 + k)} listed by domain {_DNSBLS[(i + k) % 4]} as 127.0.0.{2 + k}\n"
        f"{when} mx1 postfix/dnsblog[{1303 + k}]: addr {_ip(6 * i + 3 + k)} listed by domain {_DNSBLS[(i + k + 1) % 4]} as 127.0.0.2\n"
        f"{when} mx1 postfix/postscreen[1201]: DNSBL rank {3 + k} for [{_ip(6 * i + 3 + k)}]:{port + k}\n"
        f"{when} mx1 postfix/postscreen[1201]: PREGREET 11 after 0.{k + 1}4 from [{_ip(6 * i + 3 + k)}]:{port + k}: EHLO ylmf-pc\\r\\n\n"
        f"{when} mx1 postfix/postscreen[1201]: NOQUEUE: reject: RCPT from [{_ip(6 * i + 3 + k)}]:{port + k}: 550 5.7.1 "
        f"Service unavailable; client [{_ip(6 * i + 3 + k)}] blocked using {_DNSBLS[(i + k) % 4]}; from=<{sender}>, "
        f"to=<{rcpt}>, proto=ESMTP, helo=<ylmf-pc>\n"
        f"{when} mx1 postfix/postscreen[1201]: HANGUP after 1.{k}2 from [{_ip(6 * i + 3 + k)}]:{port + k} in tests after SMTP handshake\n"
        f"{when} mx1 postfix/postscreen[1201]: DISCONNECT [{_ip(6 * i + 3 + k)}]:{port + k}\n"
        for k in range(3))
    return (
        zombies
        + f"{when} mx1 postfix/postscreen[1201]: CONNECT from [{good}]:{port} to [198.51.100.25]:25\n"
        f"{when} mx1 postfix/dnsblog[1302]: addr {good} listed by domain list.dnswl.org as 127.0.5.1\n"
        f"{when} mx1 postfix/postscreen[1201]: PASS OLD [{good}]:{port}\n"
        f"{when} mx1 postfix/postscreen[1201]: CONNECT from [{drop}]:{port + 5} to [198.51.100.25]:25\n"
        f"{when} mx1 postfix/postscreen[1201]: PASS NEW [{drop}]:{port + 5}\n"
        f"{when} mx1 postfix/postscreen[1201]: CONNECT from [{bad}]:{port + 9} to [198.51.100.25]:25\n"
        f"{when} mx1 postfix/postscreen[1201]: COMMAND TIME LIMIT from [{bad}]:{port + 9} after CONNECT\n"
        f"{when} mx1 postfix/postscreen[1201]: DISCONNECT [{bad}]:{port + 9}\n"
        f"{when} mx1 postfix/postscreen[1201]: WHITELISTED [{good}]:{port}\n"
        f"{when} mx1 postfix/smtpd[{pid}]: connect from mail{i % 97}.example.com[{good}]\n"
        f"{when} mx1 postfix/tlsproxy[1400]: CONNECT from [{good}]:{port}\n"
        f"{when} mx1 postfix/smtpd[{pid}]: Anonymous TLS connection established from mail{i % 97}.example.com[{good}]: {_SERVER_TLS}\n"
        f"{when} mx1 postfix/smtpd[{pid}]: {q_in}: client=mail{i % 97}.example.com[{good}]\n"
        f"{when} mx1 postfix/cleanup[1500]: {q_in}: message-id=<{i}.{port}@list{i % 17}.example.com>\n"
        f"{when} mx1 postfix/qmgr[1100]: {q_in}: from=<{sender}>, size={2000 + i % 9000}, nrcpt=1 (queue active)\n"
        f"{when} mx1 postfix/smtpd[{pid}]: disconnect from mail{i % 97}.example.com[{good}] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7\n"
        f"{when} mx1 postfix/tlsproxy[1400]: DISCONNECT [{good}]:{port}\n"
        f"{when} mx1 postfix/smtpd[{pid + 40}]: connect from unknown[{drop}]\n"
        f"{when} mx1 postfix/smtpd[{pid + 40}]: lost connection after AUTH from unknown[{drop}]\n"
        f"{when} mx1 postfix/smtpd[{pid + 40}]: disconnect from unknown[{drop}] ehlo=1 auth=0/1 commands=1/2\n"
        f"{when} mx1 amavis[2{i % 8}00]: ({i % 99999:05d}-01) Passed CLEAN {{RelayedInbound}}, [{good}]:{port} [{good}] "
        f"<{sender}> -> <{rcpt}>, Queue-ID: {q_in}, Message-ID: <{i}.{port}@list{i % 17}.example.com>, "
        f"mail_id: a{i:011d}, Hits: -1.{i % 10}, size: {2000 + i % 9000}, queued_as: {q_re}, {40 + i % 900} ms\n"
        f"{when} mx1 postfix/smtp[1600]: {q_in}: to=<{rcpt}>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.9, "
        f"delays=0.2/0/0/0.7, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as {q_re})\n"
        f"{when} mx1 postfix/qmgr[1100]: {q_in}: removed\n"
        f"{when} mx1 postfix/pipe[1700]: {q_re}: to=<{rcpt}>, relay=dovecot, delay=0.05, delays=0/0/0/0.05, dsn=2.0.0, "
        f"status=sent (delivered via dovecot service)\n"
        + (f"{when} mx1 postfix/anvil[1800]: statistics: max connection rate 2/60s for (smtpd:{good}) at Mar  1 10:00:00\n"
           if i % 4 == 0 else
           f"{when} mx1 postfix/dnsblog[1301]: addr {bad} listed by domain {_DNSBLS[i % 4]} as 127.0.0.4\n")
    )


def _classic_stamps(sec: int, n: int) -> list[str]:
    """Classic syslog time stamps (RFC 3164 4.1.2): second resolution, no year, no zone."""
    day, rest = divmod(sec, 86400)
    month = (day // 28) % 12
    stamp = f"{_MONTHS[month]} {day % 28 + 1:2d} {rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return [stamp] * n


def _iso_stamps(sec: int, n: int) -> list[str]:
    """rsyslog's high-precision / ``journalctl -o short-iso-precise`` stamps: microseconds and
    an offset, one distinct stamp per line (as a busy server's log has)."""
    day, rest = divmod(sec, 86400)
    month = (day // 28) % 12
    head = f"2024-{month + 1:02d}-{day % 28 + 1:02d}T{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    step = 1_000_000 // (n + 1)
    return [f"{head}.{k * step:06d}+01:00" for k in range(n)]


def _real_utf8_block(i: int, when: str) -> str:
    """The internet-facing server's round with non-ASCII text, as such a server logs it: every
    other round's sender an SMTPUTF8 address (RFC 6531: Cyrillic local part, Chinese domain),
    a header_checks warning with a UTF-8 Subject, and every fourth round a client that sent
    Latin-1 bytes (invalid UTF-8: the readers store U+FFFD)."""
    text = _real_block(i, when)
    if i % 2 == 0:
        text = text.replace(f"news{i % 71}@list{i % 17}.example.com", f"новости{i % 71}@例子{i % 17}.广告")
    q = _qid(2 * i)
    text += (f"{when} mx1 postfix/cleanup[1500]: {q}: warning: header Subject: Prüfung – Bericht Nr. {i} "
             f"from mail{i % 97}.example.com[{_ip(6 * i + 1)}]; from=<news{i % 71}@list{i % 17}.example.com> "
             f"to=<user{i % 500}@example.org> proto=ESMTP helo=<mail{i % 97}.example.com>\n")
    if i % 4 == 1:
        text += (f"{when} mx1 postfix/smtpd[{3000 + i % 40}]: warning: Illegal address syntax from "
                 f"unknown[{_ip(6 * i + 2)}] in MAIL command: <jos\udce9@caf\udce9.example>\n")
    return text


SHAPES = {"lab": (_session_block, 20), "real": (_real_block, 8), "real-utf8": (_real_utf8_block, 8)}
STAMPS = {"classic": _classic_stamps, "iso": _iso_stamps}
# Envelopes a line can be rewritten into (the content stays the generated real-shaped log's).
ENVELOPES = ("plain", "rfc5424-sd", "docker-json")
# pflogsumm reads none of these (0 messages received, delivered, rejected)
UNREAD_BY_PFLOGSUMM = frozenset({"rfc5424-sd", "docker-json"})
# The real-shaped logs of the benchmark: label -> (shape, stamps, envelope)
REAL_LOGS = {"real-iso": ("real", "iso", "plain"), "real-classic": ("real", "classic", "plain"),
             "real-rfc5424-sd": ("real", "iso", "rfc5424-sd"), "real-docker-json": ("real", "iso", "docker-json"),
             "real-utf8": ("real-utf8", "iso", "plain")}


def _rfc5424_sd(line: str, k: int) -> str:
    """An ISO line as rsyslog's RFC 5424 template writes it with structured data (RFC 5424
    section 6.3: two SD elements, one PARAM-VALUE with the escaped ``\\"``, ``\\]`` and ``\\\\``)."""
    stamp, host, rest = line.split(" ", 2)
    tag, _, msg = rest.partition(": ")
    prog, _, pid = tag.partition("[")
    sd = (f'[timeQuality tzKnown="1" isSynced="1" syncAccuracy="{k}"]'
          f'[meta@32473 sequenceId="{k}" note="a \\"quoted\\" \\] value \\\\"]')
    return f"<22>1 {stamp} {host} {prog} {pid.rstrip(']') or '-'} - {sd} {msg}"


def _docker_json(line: str) -> str:
    """An ISO line as docker's json-file driver stores a container's stderr: one JSON object,
    the line and its newline in ``log`` (Go's encoder: ``<``, ``>``, ``&`` as \\u escapes,
    other non-ASCII raw), the time in UTC nanoseconds."""
    at = dt.datetime.fromisoformat(line.split(" ", 1)[0]).astimezone(dt.timezone.utc)
    log = json.dumps(line + "\n", ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return ('{"log":' + log.replace("&", "\\u0026") + ',"stream":"stderr","time":"'
            + at.strftime("%Y-%m-%dT%H:%M:%S.%f") + '123Z"}')


def reenvelope(line: str, envelope: str, k: int) -> str:
    """``line`` (an ISO 8601 syslog line) in another envelope; ``k`` numbers it."""
    if envelope == "rfc5424-sd":
        return _rfc5424_sd(line, k)
    if envelope == "docker-json":
        return _docker_json(line)
    return line


def generate_log(path: Path, size_bytes: int, shape: str = "lab", stamps: str = "classic",
                 envelope: str = "plain") -> int:
    """Write at least ``size_bytes`` of log to ``path``; returns the number of lines.
    ``shape``: ``lab`` (the audit lab's sessions), ``real`` (an internet-facing server) or
    ``real-utf8`` (the same with non-ASCII text and invalid bytes); ``stamps``: ``classic`` or
    ``iso``; ``envelope``: ``plain`` or one of :data:`ENVELOPES` (the lines' content unchanged)."""
    block_of, per_second = SHAPES[shape]
    stamp_of = STAMPS[stamps]
    lines = 0
    written = 0
    i = 0
    with open(path, "w", encoding="utf-8", errors="surrogateescape", buffering=1 << 22) as fh:
        while written < size_bytes:
            body = block_of(i, "\0").split("\n")[:-1]
            when = stamp_of(i // per_second, len(body))
            block = "".join(reenvelope(w + line[1:], envelope, lines + k) + "\n"
                            for k, (w, line) in enumerate(zip(when, body)))
            fh.write(block)
            written += len(block.encode("utf-8", "surrogateescape"))
            lines += len(body)
            i += 1
    return lines


def fallback_share(log: Path, sample_bytes: int = 32 << 20) -> dict:
    """How the compiled reader reads the first ``sample_bytes`` of ``log``: lines, and the share
    it hands one at a time to the Python parsers (the slow path)."""
    try:
        from collectors.lab_ingest import COMPILED_READER_AVAILABLE, compiled_reader_counters
    except ImportError:       # an older checkout measured for comparison: no counters
        return {}
    if not COMPILED_READER_AVAILABLE:
        return {}
    with open(log, "rb") as fh:
        data = fh.read(sample_bytes)
    c = compiled_reader_counters(data[:data.rfind(b"\n") + 1], 2024)
    return {"sample_lines": c["lines"], "slow_lines": c["slow"], "slow_share": round(c["slow"] / max(1, c["lines"]), 4)}


def _peak_rss_child(cmd: list[str]) -> tuple[float, float, int, str, list[float], float]:
    """Run a command in its own process: wall seconds, its own peak RSS (MiB), exit code, output,
    its RSS (MiB) sampled every quarter second (to see whether memory grows over a run), and its
    CPU seconds (user + system: what a loaded, shared machine changes least)."""
    wrapper = (
        "import resource,subprocess,sys,time,json\n"
        "t=time.perf_counter();p=subprocess.Popen(sys.argv[1:],stdout=subprocess.PIPE,stderr=subprocess.PIPE)\n"
        "import threading;o={}\n"
        "def rd(k,f): o[k]=f.read()\n"
        "ts=[threading.Thread(target=rd,args=(k,f)) for k,f in (('out',p.stdout),('err',p.stderr))]\n"
        "[x.start() for x in ts];s=[]\n"
        "while p.poll() is None:\n"
        "    try:\n"
        "        s+=[int(l.split()[1])/1024 for l in open(f'/proc/{p.pid}/status') if l.startswith('VmRSS')]\n"
        "    except OSError: pass\n"
        "    time.sleep(0.25)\n"
        "[x.join() for x in ts];w=time.perf_counter()-t\n"
        "ru=resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'wall':w,'rss':ru.ru_maxrss/1024,'cpu':ru.ru_utime+ru.ru_stime,"
        "'rc':p.returncode,'out':o['out'].decode(errors='replace')[-3000:],"
        "'err':o['err'].decode(errors='replace')[-3000:],'samples':s}))\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, check=True)
    res = json.loads(out.stdout)
    return res["wall"], res["rss"], res["rc"], res["out"] + res["err"], res["samples"], res["cpu"]


def rss_drift(samples: list[float], input_bytes: int) -> float | None:
    """How much memory grows while a file is read, in MiB per GiB of input: the median RSS of
    the last third of the run against that of the middle third (the first third is start-up
    and warm-up). A flat ingest gives about zero; one that keeps state per line grows."""
    n = len(samples)
    if n < 9 or input_bytes <= 0:
        return None
    middle, last = samples[n // 3: 2 * n // 3], samples[2 * n // 3:]
    gib_between = input_bytes / (1 << 30) / 3      # a third of the input lies between the two
    return (_median(last) - _median(middle)) / gib_between


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def measure(log: Path, n_lines: int, work: Path, label: str, repeat: int, with_pflogsumm: bool) -> dict:
    """Time pflogsumm and ``mtasts ingest`` back to back on the same file, ``repeat`` times
    (alternating which goes first), so both see the same machine load."""
    mtasts = [sys.executable, "-m", "collectors.cli"]
    ours: list[dict] = []
    peer: list[dict] = []
    out = ""
    for i in range(repeat):
        order = ("pflogsumm", "mtasts") if i % 2 == 0 else ("mtasts", "pflogsumm")
        for tool in order:
            if tool == "pflogsumm":
                if not with_pflogsumm:
                    continue
                load = _load()
                pw, prss, prc, _, _s, pcpu = _peak_rss_child(["pflogsumm", "--smtpd-stats", str(log)])
                peer.append({"s": round(pw, 2), "cpu_s": round(pcpu, 2), "lines_per_s": round(n_lines / pw),
                             "peak_rss_mib": round(prss), "exit": prc, "load_before": load})
                print(f"[{label}#{i + 1}] pflogsumm:     {pw:6.1f}s {n_lines / pw:>10,.0f} lines/s "
                      f"(CPU {pcpu:.1f}s) peak RSS {prss:,.0f} MiB (load {load})", flush=True)
            else:
                db = work / f"bench-{label}.duckdb"
                for p in work.glob(f"bench-{label}.duckdb*"):
                    p.unlink()
                load = _load()
                cmd = [*mtasts, "ingest", "--db", str(db), "--year", "2024", "--format", "postfix", str(log)]
                wall, rss, rc, out, samples, cpu = _peak_rss_child(cmd)
                drift = rss_drift(samples, log.stat().st_size)
                ours.append({"s": round(wall, 2), "cpu_s": round(cpu, 2), "lines_per_s": round(n_lines / wall),
                             "peak_rss_mib": round(rss),
                             "rss_drift_mib_per_gib": None if drift is None else round(drift, 1),
                             "rss_samples_mib": [round(x) for x in samples[::max(1, len(samples) // 200)]],
                             "exit": rc, "load_before": load})
                print(f"[{label}#{i + 1}] mtasts ingest: {wall:6.1f}s {n_lines / wall:>10,.0f} lines/s "
                      f"(CPU {cpu:.1f}s) peak RSS {rss:,.0f} MiB, drift {'n/a' if drift is None else f'{drift:+.1f}'} MiB/GiB "
                      f"(load {load}), exit {rc}", flush=True)
                if rc != 0:
                    print(out)
    entry: dict = {"bytes": log.stat().st_size, "lines": n_lines, "mtasts_ingest": ours,
                   "ingest_lines_per_s": _median([r["lines_per_s"] for r in ours]),
                   "ingest_lines_per_cpu_s": round(n_lines / _median([r["cpu_s"] for r in ours])),
                   "ingest_peak_rss_mib": max(r["peak_rss_mib"] for r in ours),
                   "ingest_exit": max(r["exit"] for r in ours), "ingest_summary_tail": out.strip().splitlines()[-8:]}
    if peer:
        entry["pflogsumm"] = peer
        entry["pflogsumm_lines_per_s"] = _median([r["lines_per_s"] for r in peer])
        # the ratio of each back-to-back pair, then their median
        pairs = [o["lines_per_s"] / p["lines_per_s"] for o, p in zip(ours, peer)]
        entry["ratio_per_pair"] = [round(x, 3) for x in pairs]
        entry["ratio"] = round(_median(pairs), 3)
        print(f"[{label}] throughput ratio ingest/pflogsumm (median of pairs): {entry['ratio']:.2f}x "
              f"(goal >= {GOAL_RATIO:.0f}x)", flush=True)
    return entry


GOAL_RATIO = 3.0
RESULTS = Path(__file__).resolve().parent / "results" / "ingest_bench.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1100, help="size of the big log (default 1100 MiB)")
    ap.add_argument("--small-mb", type=int, default=110, help="size of the small log for the memory comparison")
    ap.add_argument("--flat-mb", type=int, default=None,
                    help="size of a third log, ingested once for memory only (default: twice --size-mb; 0: skip)")
    ap.add_argument("--real-mb", type=int, default=None,
                    help="size of the real-shaped logs, ISO and classic (default: --size-mb; 0: skip)")
    ap.add_argument("--skip-lab", action="store_true", help="only the real-shaped logs")
    ap.add_argument("--real-shapes", default=",".join(REAL_LOGS),
                    help=f"comma-separated real-shaped logs to measure (default all: {', '.join(REAL_LOGS)})")
    ap.add_argument("--repeat", type=int, default=2, help="back-to-back pairs per size (default 2)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep the files")
    ap.add_argument("--skip-pflogsumm", action="store_true")
    ap.add_argument("--no-results", action="store_true", help=f"do not write {RESULTS.name}")
    args = ap.parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mtasts-ingest-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    with_peer = not args.skip_pflogsumm and shutil.which("pflogsumm") is not None
    results: dict[str, object] = {
        "command": "python -m benchmarks.ingest_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
        "goal_ratio": GOAL_RATIO}
    try:
        real_mb = args.size_mb if args.real_mb is None else args.real_mb
        real_labels = [x for x in args.real_shapes.split(",") if x] if real_mb else []
        for label in real_labels:
            shape, stamps, envelope = REAL_LOGS[label]
            log = work / f"maillog-{label}"
            n_lines = generate_log(log, real_mb * (1 << 20), shape=shape, stamps=stamps, envelope=envelope)
            share = fallback_share(log)
            print(f"[{label}] generated {log.stat().st_size / (1 << 20):,.0f} MiB, {n_lines:,} lines "
                  f"({'generated envelope over the real-shaped content' if envelope != 'plain' else shape}); "
                  f"compiled reader's slow path: {share.get('slow_share', float('nan')):.2%} of the lines", flush=True)
            results[label] = {"shape": shape, "stamps": stamps, "envelope": envelope, "generated": True,
                              **measure(log, n_lines, work, label, max(1, args.repeat), with_peer), **share}
            if not args.keep:
                log.unlink()
        _ratio_to_iso(results, real_labels)
        real_ok = all(results[x].get("ratio" if results[x].get("pflogsumm_reads_envelope", True)
                                     else "ratio_to_pflogsumm_on_real_iso", 0) >= GOAL_RATIO
                      and results[x]["ingest_peak_rss_mib"] < 1024 for x in real_labels)
        if args.skip_lab:
            results["ok"] = real_ok
            _write(results, args.no_results)
            return 0
        for label, mb in (("small", args.small_mb), ("big", args.size_mb)):
            log = work / f"maillog-{label}"
            t0 = time.perf_counter()
            n_lines = generate_log(log, mb * (1 << 20))
            size = log.stat().st_size
            print(f"[{label}] generated {size / (1 << 20):,.0f} MiB, {n_lines:,} lines "
                  f"in {time.perf_counter() - t0:.1f}s: {log}", flush=True)
            results[label] = measure(log, n_lines, work, label, max(1, args.repeat), with_peer)
            if not args.keep:
                log.unlink()
        flat_mb = 2 * args.size_mb if args.flat_mb is None else args.flat_mb
        if flat_mb:
            log = work / "maillog-flat"
            n_lines = generate_log(log, flat_mb * (1 << 20))
            print(f"[flat] generated {log.stat().st_size / (1 << 20):,.0f} MiB, {n_lines:,} lines (memory only)",
                  flush=True)
            results["flat"] = measure(log, n_lines, work, "flat", 1, False)
            if not args.keep:
                log.unlink()
        small, big = results["small"], results["big"]
        assert isinstance(small, dict) and isinstance(big, dict)
        slope = (big["ingest_peak_rss_mib"] - small["ingest_peak_rss_mib"]) / (
            (big["bytes"] - small["bytes"]) / (1 << 30))
        results["rss_slope_mib_per_gib"] = round(slope, 1)
        drifts = [r["rss_drift_mib_per_gib"] for r in big["mtasts_ingest"] if r["rss_drift_mib_per_gib"] is not None]
        drift = _median(drifts) if drifts else None
        results["rss_drift_mib_per_gib"] = drift
        print(f"peak RSS {small['ingest_peak_rss_mib']} MiB at {small['bytes'] / (1 << 20):,.0f} MiB, "
              f"{big['ingest_peak_rss_mib']} MiB at {big['bytes'] / (1 << 20):,.0f} MiB: "
              f"{slope:+.1f} MiB per GiB of log; within the big run RSS drifts "
              f"{'n/a' if drift is None else f'{drift:+.1f}'} MiB per GiB read", flush=True)
        # Flat: past its warm-up (the reader's open-state maps filling to their caps, DuckDB's
        # buffer pool to its limit, the writer's queue: all bounded, and not yet full at
        # 110 MiB) memory does not grow with the log: the peaks at the big size and at the
        # "flat" size (twice as big) differ by less than 50 MiB per GiB.
        flat = results.get("flat")
        if isinstance(flat, dict):
            flat_slope = (flat["ingest_peak_rss_mib"] - big["ingest_peak_rss_mib"]) / (
                (flat["bytes"] - big["bytes"]) / (1 << 30))
            results["rss_slope_big_to_flat_mib_per_gib"] = round(flat_slope, 1)
            results["memory_flat"] = abs(flat_slope) < 50
            print(f"peak RSS {flat['ingest_peak_rss_mib']} MiB at {flat['bytes'] / (1 << 20):,.0f} MiB: "
                  f"{flat_slope:+.1f} MiB per GiB from the big size (flat: under 50)", flush=True)
        else:
            results["memory_flat"] = None
        results["ok"] = bool(big.get("ratio", 0) >= GOAL_RATIO and results["memory_flat"] and real_ok)
        print("\n".join(big["ingest_summary_tail"]))
        _write(results, args.no_results)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _ratio_to_iso(results: dict, labels: list[str]) -> None:
    """Each real-shaped log's ingest throughput against the ISO log's of the same run (what a
    user whose log has that envelope gets compared with the headline number), in lines and in
    bytes (an RFC 5424 or json-file line is longer). pflogsumm reads no line of an RFC 5424 or
    json-file log (it reports 0 messages: its time there is a skim): those are compared with
    its time on the ISO log of the same content."""
    iso = results.get("real-iso")
    if not isinstance(iso, dict):
        return
    for label in labels:
        entry = results[label]
        mib_s = entry["bytes"] / (1 << 20) / (entry["lines"] / entry["ingest_lines_per_s"])
        entry["ingest_mib_per_s"] = round(mib_s, 1)
        entry["ratio_to_real_iso"] = round(entry["ingest_lines_per_s"] / iso["ingest_lines_per_s"], 3)
        entry["cpu_ratio_to_real_iso"] = round(entry["ingest_lines_per_cpu_s"] / iso["ingest_lines_per_cpu_s"], 3)
        iso_mib_s = iso["bytes"] / (1 << 20) / (iso["lines"] / iso["ingest_lines_per_s"])
        entry["bytes_ratio_to_real_iso"] = round(mib_s / iso_mib_s, 3)
        entry["pflogsumm_reads_envelope"] = entry.get("envelope", "plain") not in UNREAD_BY_PFLOGSUMM
        if not entry["pflogsumm_reads_envelope"] and "pflogsumm_lines_per_s" in iso:
            entry["ratio_to_pflogsumm_on_real_iso"] = round(entry["ingest_lines_per_s"] / iso["pflogsumm_lines_per_s"], 3)
        versus = (f"ratio to pflogsumm {entry.get('ratio', float('nan')):.2f}x" if entry["pflogsumm_reads_envelope"] else
                  f"pflogsumm reads none of its lines; ratio to pflogsumm on the ISO log "
                  f"{entry.get('ratio_to_pflogsumm_on_real_iso', float('nan')):.2f}x")
        print(f"[{label}] ingest {entry['ingest_lines_per_s']:,} lines/s, {mib_s:.1f} MiB/s = "
              f"{entry['ratio_to_real_iso']:.2f}x the ISO log's lines/s, {entry['bytes_ratio_to_real_iso']:.2f}x its "
              f"bytes/s (per CPU second {entry['cpu_ratio_to_real_iso']:.2f}x its lines); {versus}; "
              f"peak RSS {entry['ingest_peak_rss_mib']} MiB", flush=True)


def _write(results: dict, skip: bool) -> None:
    if not skip:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results: {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
