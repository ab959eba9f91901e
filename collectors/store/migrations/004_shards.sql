-- 004: bookkeeping of the distributed crawl (collectors/crawl/distributed, docs/cluster.md).
-- A distributed run splits its pending domains into shards; each shard is crawled on a
-- Dask worker, which writes Parquet partitions (one file per raw crawl table) into an
-- attempt folder of the shard store and commits it with a _SUCCESS marker. The driver
-- loads exactly one committed attempt per shard into the raw tables (crawl_observations,
-- crawl_mx, crawl_policy, crawl_tlsa, crawl_smtp) and records it here, in the same
-- transaction: the primary key makes a second registration of a shard impossible.

CREATE TABLE crawl_shards (
    run_id          VARCHAR NOT NULL,
    observed_at     TIMESTAMPTZ NOT NULL,     -- when the driver registered the shard
    input_list      VARCHAR NOT NULL,
    tool_version    VARCHAR NOT NULL,
    shard           INTEGER NOT NULL,         -- 1, 2, ... within the run (a resume continues)
    first_position  BIGINT NOT NULL,          -- crawl_domains.position range of the shard
    last_position   BIGINT NOT NULL,
    domains         BIGINT NOT NULL,
    location        VARCHAR NOT NULL,         -- the committed attempt folder (path or fsspec URL)
    attempt         VARCHAR NOT NULL,         -- the attempt's token (its folder name)
    submissions     INTEGER NOT NULL,         -- driver submissions (Dask's own retries not counted)
    worker          VARCHAR,                  -- the Dask worker address that committed it
    worker_host     VARCHAR,
    worker_pid      INTEGER,
    seconds         DOUBLE,                   -- wall time of the task on the worker
    cpu_seconds     DOUBLE,                   -- CPU of the worker process during the task
    dns_queries     BIGINT,
    policy_fetches  BIGINT,
    smtp_probes     BIGINT,
    PRIMARY KEY (run_id, shard)
);

-- The registered Parquet partitions: one row per (shard, raw table) of the committed attempt.
CREATE TABLE crawl_shard_files (
    run_id          VARCHAR NOT NULL,
    observed_at     TIMESTAMPTZ NOT NULL,
    input_list      VARCHAR NOT NULL,
    tool_version    VARCHAR NOT NULL,
    shard           INTEGER NOT NULL,
    table_name      VARCHAR NOT NULL,         -- crawl_observations, crawl_mx, ...
    path            VARCHAR NOT NULL,         -- the Parquet file (path or fsspec URL)
    rows            BIGINT NOT NULL,
    PRIMARY KEY (run_id, shard, table_name)
);
