"""The embedded sample (``data/sample/``): a whole database, labelled a local simulation.

Layout: ``data/sample/metadata.json`` (what it is and how it was produced) and
``data/sample/export/`` (DuckDB ``EXPORT DATABASE`` in Parquet: ``schema.sql``,
``load.sql`` and one Parquet file per table). ``make sample`` writes it with
:func:`write_sample`; ``mtasts report`` without ``--db`` reads it back with
:func:`import_sample` into a temporary database, migrated to this tool's schema.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from collectors import REPO_ROOT, __version__
from collectors.store import file_fingerprint, open_store

SAMPLE_DIR = REPO_ROOT / "data" / "sample"
METADATA = "metadata.json"
EXPORT = "export"


class SampleError(RuntimeError):
    """The sample folder is missing or unusable (the message says which and why)."""


def _sql_string(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


_COPY = re.compile(r"^COPY (?P<table>\S+) FROM '(?P<path>(?:[^']|'')*)' (?P<options>\(.*\));\s*$")


@dataclass(frozen=True)
class _Copy:
    """One ``COPY <table> FROM '<file>' (<options>);`` line of an export's load.sql."""

    table: str
    file: str      # the Parquet file's name, without the folder the export named it in
    options: str

    def sql(self, folder: Path) -> str:
        """The statement (no ``;``) with the file named in ``folder``."""
        return f"COPY {self.table} FROM {_sql_string(folder / self.file)} {self.options}"


def _load_lines(sql: str) -> list[_Copy | str]:
    """load.sql's non-blank lines in order: each COPY parsed, any other line as written."""
    out: list[_Copy | str] = []
    for line in sql.splitlines():
        m = _COPY.match(line)
        if m:
            out.append(_Copy(m["table"], Path(m["path"].replace("''", "'")).name, m["options"]))
        elif line.strip():
            out.append(line)
    return out


def _statements(sql: str) -> list[str]:
    """schema.sql as statements: each begins on a line starting with CREATE."""
    out: list[str] = []
    for line in sql.splitlines():
        if line.startswith("CREATE ") or not out:
            out.append(line)
        else:
            out[-1] += "\n" + line
    return [s for s in out if s.strip()]


def _keep_data_only(export: Path) -> None:
    """Views and macros are code (re-created by migrate), not data: drop them from
    schema.sql; and make load.sql name its files relative to the export folder."""
    schema = export / "schema.sql"
    kept = [s for s in _statements(schema.read_text(encoding="utf-8"))
            if not re.match(r"CREATE (OR REPLACE )?(TEMP |TEMPORARY )?(VIEW|MACRO|FUNCTION)\b", s)]
    schema.write_text("\n".join(kept) + "\n", encoding="utf-8")
    load = export / "load.sql"
    lines = [item.sql(Path()) + ";" if isinstance(item, _Copy) else item
             for item in _load_lines(load.read_text(encoding="utf-8"))]
    load.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_sample(
    db_path: str | os.PathLike[str],
    sample_dir: str | os.PathLike[str] = SAMPLE_DIR,
    *,
    produced_by: str,
    description: str,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the database at ``db_path`` as the sample and label it a local simulation.

    ``produced_by`` is the command that made the data (e.g. ``make sample``),
    ``description`` one sentence on what was simulated; ``details`` any further
    facts (lab id, testbed scenario, sender profiles). Returns the metadata.
    The previous sample is replaced only once the new export is complete.
    """
    sample_dir = Path(sample_dir)
    sample_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=sample_dir))
    try:
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            con.execute(f"EXPORT DATABASE {_sql_string(staging)} (FORMAT parquet)")
            _keep_data_only(staging)
            version = con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
            runs = [
                dict(zip(("run_id", "kind", "started_at", "status", "input_list", "tool_version"), r))
                for r in con.execute(
                    "SELECT run_id, kind, started_at, status, input_list, tool_version"
                    " FROM runs ORDER BY started_at, run_id").fetchall()
            ]
            tables = {
                name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
                for (name,) in con.execute(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = 'main' AND table_type = 'BASE TABLE'"
                    " ORDER BY table_name").fetchall()
            }
        finally:
            con.close()
        files = {}
        for f in sorted(staging.iterdir()):
            digest, size = file_fingerprint(f)
            files[f.name] = {"sha256": digest, "bytes": size}
        metadata = {
            "local_simulation": True,
            "label": "local simulation",
            "description": description,
            "produced_by": produced_by,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "tool_version": __version__,
            "schema_version": version,
            "runs": runs,
            "tables": tables,
            "files": files,
            "details": details or {},
        }
        target = sample_dir / EXPORT
        old = sample_dir / ".export-old"
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        if old.exists():
            shutil.rmtree(old)
        (sample_dir / METADATA).write_text(
            json.dumps(metadata, indent=2, default=str) + "\n", encoding="utf-8")
        return metadata
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def read_metadata(sample_dir: str | os.PathLike[str] = SAMPLE_DIR) -> dict[str, Any]:
    """The sample's metadata, or :class:`SampleError` saying what is missing."""
    path = Path(sample_dir) / METADATA
    if not path.is_file() or not (Path(sample_dir) / EXPORT / "schema.sql").is_file():
        raise SampleError(
            f"no embedded sample in {sample_dir} (it is produced by 'make sample'; "
            "or pass --db PATH to report on your own database)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SampleError(f"unreadable sample metadata {path}: {exc}") from exc


def import_sample(
    db_path: str | os.PathLike[str],
    sample_dir: str | os.PathLike[str] = SAMPLE_DIR,
) -> dict[str, Any]:
    """Load the sample into a new database at ``db_path`` and migrate it; returns the metadata."""
    metadata = read_metadata(sample_dir)
    if Path(db_path).exists():
        raise SampleError(f"{db_path} exists; the sample is imported into a new database only")
    export = Path(sample_dir).resolve() / EXPORT
    con = duckdb.connect(str(db_path))
    try:
        con.execute("BEGIN TRANSACTION")
        for statement in _statements((export / "schema.sql").read_text(encoding="utf-8")):
            con.execute(statement)
        for item in _load_lines((export / "load.sql").read_text(encoding="utf-8")):
            if not isinstance(item, _Copy):
                raise SampleError(f"unexpected line in {export / 'load.sql'}: {item[:80]}")
            con.execute(item.sql(export))
        con.execute("COMMIT")
    except duckdb.Error as exc:
        raise SampleError(f"cannot import the sample from {sample_dir}: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
    open_store(db_path).close()  # forward migrations and this version's views
    _record_sample_run(db_path, metadata)
    return metadata


def _record_sample_run(db_path: str | os.PathLike[str], metadata: dict[str, Any]) -> None:
    """A ``runs`` row of kind ``sample`` carrying the sample's metadata (simulation label, lab
    timers, files and their SHA-256), so the database itself says where it came from."""
    created = str(metadata.get("created_at") or "1970-01-01T00:00:00+00:00")
    run_id = "sample-" + re.sub(r"[^0-9TZ]", "", created.replace("+00:00", "Z"))
    params = {k: metadata.get(k) for k in ("local_simulation", "label", "description", "produced_by",
                                           "schema_version", "details")}
    inputs = [{"name": f"data/sample/export/{name}", **info}
              for name, info in sorted(metadata.get("files", {}).items())]
    con = duckdb.connect(str(db_path))
    try:
        con.execute(
            "INSERT INTO runs (run_id, kind, started_at, finished_at, status, input_list, inputs,"
            " tool_version, parameters) VALUES (?, 'sample', ?, ?, 'finished', 'data/sample', ?, ?, ?)",
            [run_id, created, created, json.dumps(inputs), str(metadata.get("tool_version", "")),
             json.dumps(params, default=str)])
    finally:
        con.close()
