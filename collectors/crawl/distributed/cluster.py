"""Connect to a Dask cluster: an existing scheduler by address, or a LocalCluster of N
worker processes (one thread each: the crawler is one event loop per shard)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator


class ClusterError(Exception):
    """The scheduler cannot be reached, or the local cluster did not start."""


@contextlib.contextmanager
def open_client(address: str | None = None, workers: int | None = None, *,
                threads_per_worker: int = 1, timeout: float = 10.0) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address`` (``tcp://host:8786``) or, without one, a
    LocalCluster of ``workers`` processes with its dashboard on a free port."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask is a dependency
        raise ClusterError("the distributed crawl needs dask[distributed]") from exc
    cluster = None
    try:
        if address:
            client = Client(address, timeout=timeout)
        else:
            cluster = LocalCluster(n_workers=workers or 1, threads_per_worker=threads_per_worker,
                                   processes=True, dashboard_address=":0",
                                   silence_logs=logging.ERROR)
            client = Client(cluster, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        where = address or f"a local cluster of {workers} workers"
        raise ClusterError(f"cannot reach the Dask scheduler at {where}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def dashboard_link(client: Any) -> str | None:
    """The Dask dashboard address, or None when it is not served (bokeh missing)."""
    try:
        import bokeh  # noqa: F401  (the dashboard needs it)
    except ImportError:
        return None
    return getattr(client, "dashboard_link", None)
