"""The crawl sharded on Dask distributed (docs/cluster.md).

:mod:`driver` splits a run's pending domains into shards, keeps a window of them on the
cluster (:class:`ShardScheduler`) and registers each committed shard once; :mod:`task` runs the crawler (``runner.crawl_pending``) on a worker and writes
the shard's Parquet partitions; :mod:`shardstore` lays them out, by run and shard, in any
fsspec location with an atomic commit per attempt; :mod:`cluster` connects to a
scheduler or starts a LocalCluster.
"""

from collectors.crawl.distributed.cluster import ClusterError, dashboard_link, open_client
from collectors.crawl.distributed.driver import (
    ClusterOutcome, HostFeed, ShardScheduler, auto_shard_size, crawl_distributed, polite_settings, register_shard,
    remove_orphans, run_distributed,
)
from collectors.crawl.distributed.shardstore import ShardStore, ShardStoreError
from collectors.crawl.distributed.task import ShardJob, ShardResult, crawl_shard

__all__ = [
    "ClusterError", "ClusterOutcome", "HostFeed", "ShardJob", "ShardResult", "ShardScheduler", "ShardStore",
    "ShardStoreError", "auto_shard_size", "crawl_distributed", "crawl_shard", "dashboard_link", "open_client",
    "polite_settings", "register_shard", "remove_orphans", "run_distributed",
]
