"""Where shards land: Parquet partitions by run and shard in any fsspec location (a local
path, ``file://``, ``s3://``...), committed atomically per attempt.

Layout under the store's root::

    <root>/<run_id>/shard=000042/attempt=<token>/crawl_observations.parquet
                                                /crawl_mx.parquet ... /_SUCCESS

Each execution of a shard task writes into a fresh attempt folder, so two executions of
one shard (a retry after a lost worker, a zombie that finished late) never touch each
other's files. The attempt is committed by its ``_SUCCESS`` marker (JSON: the row count
of every file), written last; on a local file system it is written under a temporary
name and renamed (atomic), on an object store a single PUT is atomic already. Readers
trust only committed attempts.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

MARKER = "_SUCCESS"


class ShardStoreError(Exception):
    """An attempt folder is missing, uncommitted, or does not match its marker."""


@dataclass(frozen=True, slots=True)
class ShardStore:
    """A root location; ``url`` is a local path (made absolute) or any fsspec URL."""

    url: str

    @classmethod
    def at(cls, location: str | os.PathLike[str]) -> "ShardStore":
        text = os.fspath(location)
        if "://" not in text:  # every worker must see the same absolute path
            text = os.path.abspath(text)
        return cls(text.rstrip("/"))

    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, root = fsspec.core.url_to_fs(self.url)
        return fs, root.rstrip("/")

    @property
    def is_local(self) -> bool:
        return "file" in _protocols(self._fs()[0])

    def shard_url(self, run_id: str, shard: int) -> str:
        return f"{self.url}/{run_id}/shard={shard:06d}"

    def new_attempt(self, run_id: str, shard: int) -> str:
        """A fresh attempt folder URL for one execution of a shard task."""
        return f"{self.shard_url(run_id, shard)}/attempt={secrets.token_hex(6)}"

    # -- writing (on a worker) --------------------------------------------------------------
    def write_table(self, attempt: str, table: str, data: pa.Table) -> str:
        fs, path = fsspec.core.url_to_fs(f"{attempt}/{table}.parquet")
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(path, "wb") as fh:
            pq.write_table(data, fh, compression="zstd")
        return f"{attempt}/{table}.parquet"

    def commit(self, attempt: str, manifest: dict[str, Any]) -> None:
        """Write the marker last; atomic by rename on a local file system."""
        fs, path = fsspec.core.url_to_fs(f"{attempt}/{MARKER}")
        body = json.dumps(manifest, sort_keys=True).encode()
        if "file" in _protocols(fs):
            tmp = f"{path}.tmp-{secrets.token_hex(4)}"
            with fs.open(tmp, "wb") as fh:
                fh.write(body)
            os.replace(tmp, path)
        else:
            fs.pipe_file(path, body)

    # -- reading (on the driver) ------------------------------------------------------------
    def manifest(self, attempt: str) -> dict[str, Any]:
        fs, path = fsspec.core.url_to_fs(f"{attempt}/{MARKER}")
        try:
            return json.loads(fs.cat_file(path))
        except FileNotFoundError as exc:
            raise ShardStoreError(f"attempt {attempt} is not committed (no {MARKER})") from exc
        except ValueError as exc:
            raise ShardStoreError(f"attempt {attempt} has a broken {MARKER}: {exc}") from exc

    def read_table(self, attempt: str, table: str) -> pa.Table:
        fs, path = fsspec.core.url_to_fs(f"{attempt}/{table}.parquet")
        try:
            data = fs.cat_file(path)
        except FileNotFoundError as exc:
            raise ShardStoreError(f"attempt {attempt} has no {table}.parquet") from exc
        return pq.read_table(io.BytesIO(data))

    def attempts(self, run_id: str, shard: int) -> list[str]:
        """Every attempt folder of a shard, committed or not."""
        fs, _ = self._fs()
        _, shard_path = fsspec.core.url_to_fs(self.shard_url(run_id, shard))
        try:
            entries = fs.ls(shard_path, detail=False)
        except FileNotFoundError:
            return []
        base = self.shard_url(run_id, shard)
        return sorted(f"{base}/{e.rstrip('/').rsplit('/', 1)[-1]}" for e in entries
                      if e.rstrip("/").rsplit("/", 1)[-1].startswith("attempt="))

    def shards(self, run_id: str) -> list[int]:
        """The shard numbers that have a folder under the run."""
        fs, _ = self._fs()
        _, run_path = fsspec.core.url_to_fs(f"{self.url}/{run_id}")
        try:
            entries = fs.ls(run_path, detail=False)
        except FileNotFoundError:
            return []
        names = (e.rstrip("/").rsplit("/", 1)[-1] for e in entries)
        return sorted(int(n[6:]) for n in names if n.startswith("shard=") and n[6:].isdigit())

    def remove(self, attempt: str) -> None:
        """Delete an attempt folder that was not registered (best effort)."""
        fs, path = fsspec.core.url_to_fs(attempt)
        try:
            fs.rm(path, recursive=True)
        except (FileNotFoundError, OSError):
            pass


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
