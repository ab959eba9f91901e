"""``mtasts ingest`` stores the same rows whichever reader reads the Postfix logs.

The compiled reader (``--reader compiled``, the default where it is built) against the
Python reader (``--reader python``, its reference), through the whole ingest: plain and
gzip files, garbage and non-UTF-8 lines, RFC 5424 with structured data, docker json-file
lines (one with a lone surrogate: quarantined), a half-written last line, a log that grows
between two runs, and what ``ingested_files`` records for the next resume.
"""

from __future__ import annotations

import gzip
import subprocess
import sys

import pytest

from collectors.lab_ingest import postfix_fast
from collectors.lab_ingest import IngestOptions, ingest
from collectors.lab_ingest.postfix_log import COUNTED_KINDS, OtherRow, PostfixLogReader
from collectors.store import open_store
from support import EXTERNAL_DIR, REPO_ROOT, require

TABLES = ("postfix_smtpd_sessions", "postfix_messages", "postfix_deliveries", "postfix_notices",
          "mta_sts_resolver_events", "postfix_other_lines", "postfix_other_line_counts")
PROVENANCE = {"run_id", "observed_at", "input_list", "tool_version"}


@pytest.fixture(autouse=True)
def _built() -> None:
    require(postfix_fast.AVAILABLE, "the compiled reader is not built (pip install -e . with a C compiler)")


def _log(tmp_path) -> bytes:
    from benchmarks.ingest_bench import REAL_LOGS, generate_log

    gen = tmp_path / "generated"
    generate_log(gen, 400_000)
    real = tmp_path / "real"          # an internet-facing server's lines (postscreen, amavis, ...): counted
    generate_log(real, 200_000, shape="real", stamps="iso")
    # the same content in RFC 5424 with structured data and in docker json-file lines, and with
    # UTF-8 text and invalid bytes (the benchmark's generated envelopes)
    enveloped = b""
    for label in ("real-rfc5424-sd", "real-docker-json", "real-utf8"):
        shape, stamps, envelope = REAL_LOGS[label]
        generate_log(tmp_path / label, 100_000, shape=shape, stamps=stamps, envelope=envelope)
        enveloped += (tmp_path / label).read_bytes()
    maillog = (EXTERNAL_DIR / "postfix" / "maillogger" / "maillog").read_bytes()
    odd = (b"this is not a log line\n"
           b"Mar  1 10:00:00 lab-a postfix/smtpd[9]: connect from caf\xe9.example[192.0.2.9]\n"
           b"Mar  1 10:00:01 lab-a postfix/smtpd[9]: disconnect from caf\xc3\xa9.example[192.0.2.9] commands=0\n"
           b"\n   \n"
           b"2024-03-01 10:00:02,123 INFO     STS: Lookup PERFORMED: domain = a.lab.example\n"
           b"Mar  1 10:00:03 lab-a postfix/qmgr[1]: 4ABCDE12345: removed\r\n"
           b'{"log":"Mar  1 10:00:04 lab-a postfix/qmgr[1]: 4ABCDE12345: removed\\ud800\\n"}\n'
           b'{"log":"Mar  1 10:00:04 lab-a postfix/smtpd[9]: connect from caf\\u00e9.example[192.0.2.9]\\n"}\n')
    return gen.read_bytes() + real.read_bytes() + enveloped + maillog[:maillog.rfind(b"\n") + 1] + odd


def _other_lines(data: bytes) -> int:
    """How many lines of ``data`` the Python reader keeps raw as other daemons' or programs' lines."""
    reader = PostfixLogReader(2024, keep_other_lines=True)
    lines = ((0, n, line.decode("utf-8", "replace").rstrip("\r")) for n, line in enumerate(data.split(b"\n"), 1))
    return sum(r.__class__ is OtherRow and r.kind in COUNTED_KINDS for r in reader.feed(lines))


def _rows(store, table: str) -> list[tuple]:
    cols = [c for c, *_ in store.con.execute(f"DESCRIBE {table}").fetchall() if c not in PROVENANCE]
    order = ", ".join(cols)
    return store.con.execute(f"SELECT {order} FROM {table} ORDER BY {order}").fetchall()


def _state(store) -> dict:
    out = {t: _rows(store, t) for t in TABLES}
    out["quarantine"] = store.con.execute(
        "SELECT source, position, raw, reason FROM quarantine ORDER BY position, reason").fetchall()
    out["files"] = store.con.execute(
        "SELECT source_name, format, status, start_offset, end_offset, resume_offset, resume_year,"
        " prefix_sha256, file_sha256, lines FROM ingested_files ORDER BY observed_at").fetchall()
    return out


def _ingest_both(tmp_path, steps, keep_other_lines: bool = False) -> tuple[dict, dict]:
    """Run ``steps`` (each: a function writing the input, then a list of paths) with each reader."""
    states = []
    for reader in ("python", "compiled"):
        store = open_store(tmp_path / f"{reader}-{keep_other_lines}.duckdb")
        for write, paths in steps:
            write()
            summary = ingest(store, paths, IngestOptions(year=2024, format="postfix", reader=reader,
                                                         keep_other_lines=keep_other_lines))
            assert all(f.status != "failed" for f in summary.files)
        states.append(_state(store))
        store.close()
    return states[0], states[1]


@pytest.mark.parametrize("keep_other_lines", [False, True])
def test_plain_gzip_garbage_and_a_half_written_line_store_the_same(tmp_path, keep_other_lines: bool) -> None:
    data = _log(tmp_path)
    plain, packed = tmp_path / "maillog", tmp_path / "maillog.1.gz"

    def write() -> None:
        plain.write_bytes(data + b"Mar  1 10:00:04 lab-a postfix/qmgr[1]: 4ABCDE1")   # no newline
        packed.write_bytes(gzip.compress(data, mtime=0))

    python, compiled = _ingest_both(tmp_path, [(write, [plain, packed])], keep_other_lines)
    assert python["postfix_deliveries"] and python["quarantine"]
    assert any(b"\\ud800" in q[2] for q in python["quarantine"])     # a lone surrogate: not I-JSON
    # the other lines: raw, or counted (once: the gzip copy reads the same lines, the same rows)
    assert bool(python["postfix_other_line_counts"]) != keep_other_lines
    # (the half-written last line is one of them; the gzip copy resumes where the plain file ended)
    assert sum(r[-2] for r in python["postfix_other_line_counts"]) == (
        0 if keep_other_lines else _other_lines(plain.read_bytes() + b"\n"))
    assert compiled == python


def test_a_grown_log_resumes_to_the_same_rows(tmp_path) -> None:
    lines = _log(tmp_path).split(b"\n")
    # a garbage line inside a session still open where the first run stops (inside a line):
    # the second run reads it again (from the oldest open state) and must not keep it twice
    middle = 21 * (len(lines) // 42) + 10
    lines.insert(middle, b"garbage inside an open session")
    data = b"\n".join(lines)
    cut = len(b"\n".join(lines[:middle + 3])) + 20
    log = tmp_path / "maillog"
    python, compiled = _ingest_both(tmp_path, [
        (lambda: log.write_bytes(data[:cut]), [log]),
        (lambda: log.write_bytes(data), [log]),
    ])
    assert [f[2] for f in python["files"]] == ["complete", "resumed"]
    assert python["files"][1][3] < cut                 # it did read some lines again
    assert sum(b"garbage inside" in q[2] for q in python["quarantine"]) == 1
    assert compiled == python
    # the lines read again were not counted again
    assert sum(r[-2] for r in python["postfix_other_line_counts"]) == _other_lines(data)


@pytest.mark.parametrize("reader", ["compiled", "python"])
def test_a_log_of_junk_is_quarantined_within_its_memory_budget(tmp_path, monkeypatch, reader: str) -> None:
    """Issue 14: the compiled reader held every quarantined line until 122,880 good rows were
    pending (10 GB from a 6.7 MB gzip of junk); the sink buffered 10,000 of them whatever their
    size. Both now hand them on at a byte budget."""
    from collectors.lab_ingest import readers, sink

    budget = 64 << 10
    monkeypatch.setattr(readers, "QUARANTINE_BATCH_BYTES", budget)
    monkeypatch.setattr(sink, "QUARANTINE_BATCH_BYTES", budget)
    held: list[int] = []
    take = postfix_fast.FastPostfixReader.take_quarantined
    monkeypatch.setattr(postfix_fast.FastPostfixReader, "take_quarantined",
                        lambda self: (held.append(self.pending_quarantined_bytes), take(self))[1])
    flush = sink.Sink._flush_table

    def flush_table(self, table: str) -> None:
        if table == "quarantine":
            held.append(sum(len(row[3]) for row in self._buffers[table][3]))  # raw bytes
        flush(self, table)

    monkeypatch.setattr(sink.Sink, "_flush_table", flush_table)
    junk = b"".join(b"junk line %d " % i + b"x" * 900 + b"\n" for i in range(6000))     # 5.5 MB
    log = tmp_path / "junk.gz"
    log.write_bytes(gzip.compress(junk, mtime=0))
    store = open_store(tmp_path / "db.duckdb")
    summary = ingest(store, [log], IngestOptions(year=2024, format="postfix", reader=reader))
    assert summary.files[0].quarantined == 6000
    assert store.con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 6000
    store.close()
    assert len(held) > 3 and max(held) <= budget + (2 << 20)      # at most a budget and one block


def test_the_cli_refuses_a_compiled_reader_with_pseudonymised_senders(tmp_path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(b"Mar  1 10:00:00 lab-a postfix/qmgr[1]: 4ABCDE12345: removed\n")
    done = subprocess.run([sys.executable, "-m", "collectors.cli", "ingest", "--db", str(tmp_path / "x.duckdb"),
                           "--reader", "compiled", "--pseudonymise", str(log)],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "--pseudonymise" in done.stderr


def test_the_cli_keeps_other_lines_raw_only_when_asked(tmp_path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(b"2024-03-01T10:00:00.5+01:00 mx postfix/postscreen[1]: PASS OLD [192.0.2.1]:25\n"
                    b"2024-03-01T10:00:01.5+01:00 mx postfix/postscreen[1]: warning: getpeername: not connected\n")
    for flag, raw, counted in (([], 1, 1), (["--keep-other-lines"], 2, 0)):
        db = tmp_path / f"x{len(flag)}.duckdb"
        done = subprocess.run([sys.executable, "-m", "collectors.cli", "ingest", "--db", str(db), *flag, str(log)],
                              capture_output=True, text=True, cwd=REPO_ROOT)
        assert done.returncode == 0, done.stderr
        store = open_store(db)
        assert store.con.execute("SELECT count(*) FROM postfix_other_lines").fetchone()[0] == raw
        assert store.con.execute("SELECT coalesce(sum(lines), 0) FROM postfix_other_line_counts").fetchone()[0] == counted
        store.close()
