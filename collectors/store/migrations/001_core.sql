-- 001: the core of every database: runs and the quarantine.
-- Every raw-observation table carries the provenance columns
-- run_id, observed_at, input_list, tool_version (see docs in README).

CREATE TABLE runs (
    run_id        VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL,          -- crawl | ingest | lab | testbed | sample ...
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    status        VARCHAR NOT NULL,          -- running | finished | failed
    input_list    VARCHAR NOT NULL,          -- human description of the input (list name, files)
    inputs        JSON NOT NULL,             -- [{"name":..., "sha256":..., "bytes":...}, ...]
    tool_version  VARCHAR NOT NULL,
    parameters    JSON NOT NULL,
    summary       JSON                       -- counts written at the end of the run
);

-- Anything that could not be parsed: kept with its raw bytes and the reason, never dropped.
CREATE TABLE quarantine (
    run_id        VARCHAR NOT NULL,
    observed_at   TIMESTAMPTZ NOT NULL,
    input_list    VARCHAR NOT NULL,
    tool_version  VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,          -- e.g. crawl_input, postfix_log, tlsrpt_report
    source_name   VARCHAR NOT NULL,          -- file name or list name
    position      VARCHAR NOT NULL,          -- line number, byte offset or record index
    raw           BLOB NOT NULL,
    reason        VARCHAR NOT NULL
);
