"""Which database a notebook opens when it is given none, resolved from the repository.

A notebook started in JupyterLab (working directory ``notebooks/``) or by papermill
without ``db_path`` gets :func:`default_database`: ``$MTASTS_DB`` if set, else the
repository's ``data/observatory.duckdb`` if it exists, else the embedded sample
materialised as ``data/sample.duckdb`` (rebuilt when ``data/sample/`` or the schema
changes). One place, so every notebook and ``make lab`` agree.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from collectors import REPO_ROOT
from collectors.report.sample import SAMPLE_DIR, import_sample, read_metadata

OBSERVATORY_DB = REPO_ROOT / "data" / "observatory.duckdb"
SAMPLE_DB = REPO_ROOT / "data" / "sample.duckdb"
# Files whose change makes a materialised sample stale: its data and this tool's schema.
_SCHEMA_DIRS = (REPO_ROOT / "collectors" / "store" / "migrations",
                REPO_ROOT / "collectors" / "store" / "views")


@dataclass(frozen=True)
class DefaultDatabase:
    """The database a notebook opens by default, and whether it is the simulated sample."""

    path: Path
    local_simulation: bool
    data_note: str


def _newest_mtime(folders: tuple[Path, ...]) -> float:
    return max((f.stat().st_mtime for d in folders if d.is_dir() for f in d.rglob("*")
                if f.is_file()), default=0.0)


def sample_note(sample_dir: Path = SAMPLE_DIR) -> str:
    """The sentence every page on the sample shows: what was simulated, by what, when."""
    meta = read_metadata(sample_dir)
    return (f"{meta.get('description', '')} Produced by {meta.get('produced_by', '?')}"
            f" on {meta.get('created_at', '?')}.").strip()


def materialise_sample(db: Path = SAMPLE_DB, sample_dir: Path = SAMPLE_DIR) -> bool:
    """Import ``sample_dir`` into ``db`` unless ``db`` is newer than the sample and the schema.

    Returns True when it (re)built the file. The new database is written beside
    ``db`` and renamed over it, under a lock, so two notebooks starting at once
    neither race nor ever see half a database. Raises ``SampleError`` without a sample.
    """
    db, sample_dir = Path(db), Path(sample_dir)
    read_metadata(sample_dir)  # a clear SampleError when there is no sample
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(f".{db.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        newest = _newest_mtime((sample_dir, *_SCHEMA_DIRS))
        if db.is_file() and db.stat().st_mtime >= newest:
            return False
        staging = db.with_name(f".{db.name}.{os.getpid()}.new")
        for leftover in (staging, Path(f"{staging}.wal")):
            leftover.unlink(missing_ok=True)
        try:
            import_sample(staging, sample_dir)
            os.replace(staging, db)
        finally:
            staging.unlink(missing_ok=True)
            Path(f"{staging}.wal").unlink(missing_ok=True)
        return True


def default_database(env: Mapping[str, str] = os.environ) -> DefaultDatabase:
    """``$MTASTS_DB`` (a relative path is taken from the repository), else the
    repository's ``data/observatory.duckdb`` when it exists, else the sample."""
    named = env.get("MTASTS_DB", "")
    if named:
        return DefaultDatabase(REPO_ROOT / named, False, "")
    if OBSERVATORY_DB.is_file():
        return DefaultDatabase(OBSERVATORY_DB, False, "")
    materialise_sample()
    return DefaultDatabase(SAMPLE_DB, True, sample_note())
