"""Open, migrate and describe the DuckDB store; record runs and quarantined input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import duckdb
import pyarrow as pa

from collectors import __version__

DEFAULT_DB_PATH = Path("data") / "observatory.duckdb"

_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class SchemaError(RuntimeError):
    """The database's schema is newer than this tool, or a migration failed."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """The forward migrations shipped with this version, in order."""
    found = []
    for entry in resources.files("collectors.store").joinpath("migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise SchemaError(f"duplicate migration numbers: {versions}")
    return found


def _view_scripts() -> list[tuple[str, str]]:
    files = resources.files("collectors.store").joinpath("views")
    return sorted(
        (e.name, e.read_text("utf-8")) for e in files.iterdir() if e.name.endswith(".sql")
    )


def file_fingerprint(path: str | os.PathLike[str], chunk: int = 1 << 20) -> tuple[str, int]:
    """SHA-256 and size of a file, read in chunks (memory does not grow with size)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


@contextmanager
def transaction(con: Any) -> Iterator[Any]:
    """``BEGIN`` ... ``COMMIT``; on any exception (an interrupt too) ``ROLLBACK`` and re-raise:
    a batch of rows is stored whole or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.TransactionException:
            pass  # DuckDB already ended it (a fatal error, e.g. out of memory): the cause is raised
        raise


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (proc(5), stat field 22): a pid
    reused by another process has another."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def process_owner() -> dict[str, Any]:
    """This process, as a run records its owner."""
    return {"host": socket.gethostname(), "boot_id": _boot_id(), "pid": os.getpid(),
            "start_ticks": _start_ticks(os.getpid())}


def process_gone(owner: dict[str, Any]) -> bool:
    """Whether the process an ``owner`` record names has ended (False when this machine
    cannot tell: another host, or no /proc)."""
    if owner.get("host") != socket.gethostname() or owner.get("boot_id") is None:
        return False
    if owner["boot_id"] != _boot_id():
        return True  # the machine rebooted since
    ticks = _start_ticks(int(owner.get("pid") or 0))
    return ticks is None or ticks != owner.get("start_ticks")


def utcnow() -> dt.datetime:
    """Now, timezone-aware in UTC: the ``observed_at`` of every row."""
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True, slots=True)
class Run:
    """A run's identity and the provenance every row it writes carries."""

    run_id: str
    kind: str
    input_list: str
    tool_version: str
    started_at: dt.datetime
    parameters: dict[str, Any] = field(default_factory=dict)

    def provenance(self, observed_at: dt.datetime | None = None) -> dict[str, Any]:
        """The provenance columns for one row."""
        return {
            "run_id": self.run_id,
            "observed_at": observed_at or utcnow(),
            "input_list": self.input_list,
            "tool_version": self.tool_version,
        }


_RUN_COLUMNS = "run_id, kind, input_list, tool_version, started_at, parameters"
_STATE_COLUMNS = "run_id, kind, status, started_at, input_list"


def _run_of(row: Any) -> Run | None:
    if row is None:
        return None
    return Run(row[0], row[1], row[2], row[3], row[4], json.loads(row[5] or "{}"))


@dataclass(frozen=True, slots=True)
class RunState:
    """A run as listed: who it is and how it stands (``running``, ``finished``, ``failed``, or
    ``interrupted``: its process is gone without finishing it)."""

    run_id: str
    kind: str
    status: str
    started_at: dt.datetime
    input_list: str


@dataclass(frozen=True, slots=True)
class IngestedFile:
    """What one run read of one input, as ``ingested_files`` keeps it (003_lab.sql): the file
    (name, format, gzip or not, SHA-256 and size as stored), the decoded stream's head and
    prefix hashes, the decoded offsets it started at, read to and where a later run resumes
    (with the classic-syslog year there), its status and counts."""

    source_name: str
    format: str
    compressed: bool
    file_sha256: str
    file_bytes: int
    status: str                        # complete | resumed | skipped | truncated | failed
    head_sha256: str | None = None
    prefix_sha256: str | None = None
    start_offset: int = 0
    end_offset: int = 0
    resume_offset: int = 0
    resume_year: int | None = None
    lines: int = 0
    records: int = 0
    quarantined: int = 0
    note: str | None = None


class Store:
    """A DuckDB database with the observatory schema. Use :func:`open_store`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str) -> None:
        self.con = con
        self.path = path

    # -- schema -----------------------------------------------------------
    def schema_version(self) -> int:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchone()[0]
        if not exists:
            return 0
        row = self.con.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def applied_versions(self) -> set[int]:
        if self.schema_version() == 0:
            return set()
        return {int(v) for (v,) in self.con.execute("SELECT version FROM schema_migrations").fetchall()}

    def pending_migrations(self) -> list[Migration]:
        """Migrations not applied yet, also below the newest applied one (branches merged
        later may bring a lower number than a database already has)."""
        applied = self.applied_versions()
        return [m for m in available_migrations() if m.version not in applied]

    def migrate(self) -> list[Migration]:
        """Apply pending migrations (each in a transaction), then re-create every view."""
        migrations = available_migrations()
        current = self.schema_version()
        newest = migrations[-1].version if migrations else 0
        if current > newest:
            raise SchemaError(
                f"database schema version {current} is newer than this tool knows ({newest}); "
                "upgrade the tool"
            )
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL, tool_version VARCHAR NOT NULL)"
        )
        applied = []
        done = self.applied_versions()
        for mig in migrations:
            if mig.version in done:
                continue
            self.con.execute("BEGIN TRANSACTION")
            try:
                self.con.execute(mig.sql)
                self.con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
                    [mig.version, mig.name, utcnow(), __version__],
                )
                self.con.execute("COMMIT")
            except duckdb.Error as exc:
                self.con.execute("ROLLBACK")
                raise SchemaError(f"migration {mig.version:03d}_{mig.name} failed: {exc}") from exc
            applied.append(mig)
        # All view scripts in one transaction: a failing script leaves every view as it was.
        self.con.execute("BEGIN TRANSACTION")
        for name, sql in _view_scripts():
            try:
                self.con.execute(sql)
            except duckdb.Error as exc:
                self.con.execute("ROLLBACK")
                raise SchemaError(f"view script {name} failed: {exc}") from exc
        self.con.execute("COMMIT")
        return applied

    # -- runs -------------------------------------------------------------
    # The ``runs`` table is written here only: every collector starts, resumes and finishes
    # its runs through these operations.
    def start_run(
        self,
        kind: str,
        input_list: str,
        inputs: Sequence[dict[str, Any]] = (),
        parameters: dict[str, Any] | None = None,
        run_id: str | None = None,
        started_at: dt.datetime | None = None,
    ) -> Run:
        """Record a new run as ``running`` and return it (dated ``started_at``, default now),
        first marking ``interrupted`` the runs whose process is gone."""
        self.mark_interrupted_runs()
        started = started_at or utcnow()
        run_id = run_id or f"{kind}-{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        params = parameters or {}
        self.con.execute(
            "INSERT INTO runs (run_id, kind, started_at, status, input_list, inputs,"
            " tool_version, parameters, owner) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
            [run_id, kind, started, input_list, json.dumps(list(inputs)), __version__,
             json.dumps(params, default=str), json.dumps(process_owner())],
        )
        return Run(run_id, kind, input_list, __version__, started, params)

    def resume_run(self, run: Run, parameters: dict[str, Any]) -> Run:
        """Mark an interrupted run ``running`` again, with the parameters the rest of it uses
        (kept for a later resume)."""
        self.con.execute("UPDATE runs SET status = 'running', parameters = ?, owner = ? WHERE run_id = ?",
                         [json.dumps(parameters, default=str), json.dumps(process_owner()), run.run_id])
        return dataclasses.replace(run, parameters=dict(parameters))

    def set_run_inputs(self, run_id: str, inputs: Sequence[dict[str, Any]]) -> None:
        """Replace the run's record of its inputs (e.g. with their hashes, once read)."""
        self.con.execute("UPDATE runs SET inputs = ? WHERE run_id = ?", [json.dumps(list(inputs)), run_id])

    def run_inputs(self, run_id: str) -> list[dict[str, Any]]:
        """The run's recorded inputs (name, sha256, bytes, ...); empty for an unknown run."""
        row = self.con.execute("SELECT inputs FROM runs WHERE run_id = ?", [run_id]).fetchone()
        return list(json.loads(row[0]) or []) if row and row[0] else []

    def get_run(self, run_id: str, kind: str | None = None) -> Run | None:
        """A run by id, or the newest run (of ``kind`` if given) for ``latest``."""
        if run_id == "latest":
            return self.latest_run(kind)
        row = self.con.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", [run_id]).fetchone()
        return _run_of(row)

    def latest_run(self, kind: str | None = None) -> Run | None:
        """The newest run, of ``kind`` if given."""
        where, args = (" WHERE kind = ?", [kind]) if kind else ("", [])
        row = self.con.execute(f"SELECT {_RUN_COLUMNS} FROM runs{where}"
                               " ORDER BY started_at DESC, run_id DESC LIMIT 1", args).fetchone()
        return _run_of(row)

    def mark_interrupted_runs(self) -> list[str]:
        """Mark ``interrupted`` every ``running`` run of this machine whose process is gone
        (killed, crashed, the machine rebooted); their ids. A run of another machine is left
        alone: only its own machine can tell."""
        gone = [run_id for run_id, owner in self.con.execute(
            "SELECT run_id, owner FROM runs WHERE status = 'running' AND owner IS NOT NULL").fetchall()
            if process_gone(json.loads(owner))]
        for run_id in gone:
            try:
                self.con.execute("UPDATE runs SET status = 'interrupted' WHERE run_id = ? AND status = 'running'",
                                 [run_id])
            except duckdb.Error:
                pass  # a read-only store: the listing still says interrupted
        return gone

    def list_runs(self, limit: int = 10, kind: str | None = None) -> list[RunState]:
        """The newest runs (of ``kind`` if given), newest first, with their status."""
        gone = set(self.mark_interrupted_runs())
        where, args = (" WHERE kind = ?", [kind]) if kind else ("", [])
        rows = self.con.execute(f"SELECT {_STATE_COLUMNS} FROM runs{where}"
                                " ORDER BY started_at DESC, run_id DESC LIMIT ?", [*args, limit]).fetchall()
        return [RunState(r[0], r[1], "interrupted" if r[0] in gone else r[2], *r[3:]) for r in rows]

    def run_of_month(self, kind: str, input_list: str, month: str) -> RunState | None:
        """The newest run of ``kind`` over ``input_list`` started in ``month`` (YYYY-MM, UTC)."""
        self.mark_interrupted_runs()
        row = self.con.execute(
            f"SELECT {_STATE_COLUMNS} FROM runs WHERE kind = ? AND input_list = ?"
            " AND strftime(started_at AT TIME ZONE 'UTC', '%Y-%m') = ?"
            " ORDER BY started_at DESC LIMIT 1", [kind, input_list, month]).fetchone()
        return RunState(*row) if row else None

    def finish_run(self, run_id: str, status: str = "finished", summary: dict[str, Any] | None = None) -> None:
        self.con.execute(
            "UPDATE runs SET status = ?, finished_at = ?, summary = ? WHERE run_id = ?",
            [status, utcnow(), json.dumps(summary or {}, default=str), run_id],
        )

    # -- ingested files ---------------------------------------------------
    def record_ingested_file(self, run: Run, file: IngestedFile) -> None:
        """One ``ingested_files`` row: what a run read of one input (see :class:`IngestedFile`)."""
        values = {"run_id": run.run_id, "observed_at": utcnow(), "input_list": run.input_list,
                  "tool_version": run.tool_version, **dataclasses.asdict(file)}
        self.con.execute(f"INSERT INTO ingested_files ({', '.join(values)})"
                         f" VALUES ({', '.join('?' * len(values))})", list(values.values()))

    # -- quarantine -------------------------------------------------------
    def quarantine(
        self,
        run: Run,
        source: str,
        source_name: str,
        items: Iterable[tuple[str | int, bytes | str, str]],
    ) -> int:
        """Keep unparseable input: ``items`` are (position, raw, reason). Returns the count."""
        positions, raws, reasons = [], [], []
        for pos, raw, reason in items:
            positions.append(str(pos))
            raws.append(raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw))
            reasons.append(reason)
        n = len(positions)
        if n:
            # one bulk insert through Arrow (row-by-row executemany is slow in DuckDB)
            rows = pa.table({
                "run_id": pa.array([run.run_id] * n, pa.string()),
                "observed_at": pa.array([utcnow()] * n, pa.timestamp("us", tz="UTC")),
                "input_list": pa.array([run.input_list] * n, pa.string()),
                "tool_version": pa.array([run.tool_version] * n, pa.string()),
                "source": pa.array([source] * n, pa.string()),
                "source_name": pa.array([source_name] * n, pa.string()),
                "position": pa.array(positions, pa.string()),
                "raw": pa.array(raws, pa.binary()),
                "reason": pa.array(reasons, pa.string()),
            })
            self.con.register("_quarantine_rows", rows)
            try:
                self.con.execute("INSERT INTO quarantine BY NAME SELECT * FROM _quarantine_rows")
            finally:
                self.con.unregister("_quarantine_rows")
        return n

    # -- description ------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Schema version, tables with row counts, views, and the newest runs."""
        tables = self.con.execute(
            "SELECT table_name, table_type FROM information_schema.tables"
            " WHERE table_schema = 'main' ORDER BY table_name"
        ).fetchall()
        counts = {}
        views = []
        for name, ttype in tables:
            if ttype == "VIEW":
                views.append(name)
            else:
                counts[name] = self.con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        runs = [dataclasses.asdict(r) for r in self.list_runs(10)] if "runs" in counts else []
        return {
            "path": self.path,
            "schema_version": self.schema_version(),
            "newest_known_version": available_migrations()[-1].version,
            "tables": counts,
            "views": views,
            "runs": runs,
        }

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(
    path: str | os.PathLike[str] = DEFAULT_DB_PATH,
    *,
    migrate: bool = True,
    read_only: bool = False,
) -> Store:
    """Open (creating the file and its folder if needed) and, by default, migrate."""
    path = str(path)
    if path != ":memory:" and not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(path, read_only=read_only)
    store = Store(con, path)
    if migrate and not read_only:
        store.migrate()
    return store
