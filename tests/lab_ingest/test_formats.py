"""The format registry: one entry per kind of evidence (sniff, parse, tables), detection by
content in the registry's order, tables that exist and are the ones an ingest fills, and
parsers imported statically (a broken parser module fails loudly, never hides a format)."""

from __future__ import annotations

import ast
import gzip
import json
import shutil
from pathlib import Path

from collectors.lab_ingest import IngestOptions, ingest
from collectors.lab_ingest.formats import FOLDER, FORMATS, REGISTRY, detect_path
from support import EXTERNAL_DIR, REPO_ROOT

TLSRPT_MAIL = EXTERNAL_DIR / "tlsrpt" / "parsedmarc" / "google.com_smtp_tls_report.eml"
TLSRPT_JSON = EXTERNAL_DIR / "tlsrpt" / "parsedmarc" / "rfc8460.json"
MAILLOG = EXTERNAL_DIR / "postfix" / "maillogger" / "maillog"
NOTICE = (b"From: Mail Delivery System <MAILER-DAEMON@mx.example>\n"
          b"To: bob@sender.example\nSubject: Undelivered Mail Returned to Sender\n"
          b"Date: Sun, 03 Mar 2024 10:05:00 +0000\nMessage-ID: <n1@mx.example>\n\n"
          b"<x@b.lab.example>: TLS is required, but was not offered by host mx-b.lab.example\n")
RECORDER = json.dumps({"format": "mtasts-recorder/1", "received_at": "2024-03-03T10:00:01Z",
                       "server_label": "a", "recipient": "x@a.lab.example", "queue_id": "4Q"}) + "\n"
LEDGER = "provider,sent_at,from,to,message_id\np,2024-03-03T10:00:00Z,bob@sender.example,x@a.lab.example,m1@s\n"
HTTP = ('mta-sts.a.lab.example 127.0.0.2 - - [03/Mar/2024:09:59:50 +0000] '
        '"GET /.well-known/mta-sts.txt HTTP/1.1" 200 87 "-" "postfix-mta-sts-resolver"\n')


def _maildir(folder: Path, message: bytes) -> Path:
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True)
    (folder / "new" / "1.host").write_bytes(message)
    return folder


def _samples(tmp_path: Path) -> dict[str, Path]:
    """One input of every format (the postfix log gzipped: detection looks inside)."""
    files = {"recorder": ("rec.jsonl", RECORDER.encode()), "ledger": ("ledger.csv", LEDGER.encode()),
             "http": ("access.log", HTTP.encode()), "notifications": ("notice.eml", NOTICE),
             "postfix": ("maillog.gz", gzip.compress(MAILLOG.read_bytes())),
             "tlsrpt": ("report.json", TLSRPT_JSON.read_bytes())}
    out = {}
    for fmt, (name, data) in files.items():
        (tmp_path / name).write_bytes(data)
        out[fmt] = tmp_path / name
    return out


def test_every_format_has_one_entry_and_the_cli_offers_them_all() -> None:
    assert sorted(FORMATS) == sorted(REGISTRY) and len(FORMATS) == len(set(FORMATS))
    assert all(name == entry.name for name, entry in REGISTRY.items())
    # the generic formats are tried last: a mailbox of notices, then logs
    assert list(REGISTRY)[-3:] == ["notifications", "postfix", "http"]
    assert {n for n, f in REGISTRY.items() if f.reads_lines} == {"postfix", "http"}


def test_every_registered_table_exists(store) -> None:
    tables = {r[0] for r in store.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    for entry in REGISTRY.values():
        assert entry.tables and set(entry.tables) <= tables, entry.name


def test_files_are_detected_by_content_and_fill_only_their_formats_tables(store, tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    assert {fmt: detect_path(p) for fmt, p in samples.items()} == {fmt: fmt for fmt in samples}
    summary = ingest(store, list(samples.values()), IngestOptions(year=2024))
    assert {f.format for f in summary.files} == set(samples)
    format_of = {str(p): fmt for fmt, p in samples.items()}
    filled = set()
    for table in {t for entry in REGISTRY.values() for t in entry.tables}:
        for (source,) in store.con.execute(f"SELECT DISTINCT source_name FROM {table}").fetchall():
            assert table in REGISTRY[format_of[source]].tables, (table, source)
            filled.add(format_of[source])
    assert filled == set(samples)


def test_folders_are_one_source_or_walked(tmp_path: Path) -> None:
    assert detect_path(_maildir(tmp_path / "reports", TLSRPT_MAIL.read_bytes())) == "tlsrpt"
    assert detect_path(_maildir(tmp_path / "notices", NOTICE)) == "notifications"
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "1.meta.json").write_text("{}")
    assert detect_path(spool) == "tlsrpt"
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(TLSRPT_JSON, plain / "r.json")
    assert detect_path(plain) == FOLDER


def test_lab_ingest_imports_statically() -> None:
    """No import inside a function, no ``__import__``/``import_module``, no ``except
    ImportError``: every parser is there, or the package does not import."""
    offenders = []
    for path in sorted((REPO_ROOT / "collectors" / "lab_ingest").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            offenders += [(path.name, fn.name, "import") for n in ast.walk(fn)
                          if isinstance(n, (ast.Import, ast.ImportFrom))]
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                    "__import__", "import_module"):
                offenders.append((path.name, node.lineno, "dynamic import"))
            if isinstance(node, ast.ExceptHandler) and "ImportError" in ast.unparse(node.type or ast.Name("")):
                offenders.append((path.name, node.lineno, "except ImportError"))
    # The one optional part: the compiled reader, where pip could not build it (it says so:
    # postfix_fast.AVAILABLE, and --reader compiled refuses); the Python reader gives the same rows.
    assert [o for o in offenders if o[::2] != ("postfix_fast.py", "except ImportError")] == []
