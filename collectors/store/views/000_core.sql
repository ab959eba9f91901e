-- Views over the core tables. Every file in this folder is re-applied on migrate
-- (CREATE OR REPLACE), so a view has exactly one definition.

CREATE OR REPLACE VIEW quarantine_summary AS
SELECT run_id, source, reason, count(*) AS n
FROM quarantine
GROUP BY ALL
ORDER BY run_id, source, n DESC;

CREATE OR REPLACE VIEW run_overview AS
SELECT r.run_id, r.kind, r.status, r.started_at, r.finished_at,
       r.input_list, r.tool_version,
       (SELECT count(*) FROM quarantine q WHERE q.run_id = r.run_id) AS quarantined
FROM runs r
ORDER BY r.started_at;

-- The data dictionary of these views (duckdb_columns().comment): one line per column,
-- re-applied with the views; tests/store/test_dictionary.py fails on a column without one.
COMMENT ON VIEW quarantine_summary IS 'Quarantined items counted per run, source and reason.';
COMMENT ON COLUMN quarantine_summary.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN quarantine_summary.source IS 'what was being read (crawl_input, postfix_log, tlsrpt_report, ...)';
COMMENT ON COLUMN quarantine_summary.reason IS 'why it was quarantined';
COMMENT ON COLUMN quarantine_summary.n IS 'items';
COMMENT ON VIEW run_overview IS 'One line per run with its quarantined count: the first thing to look at after a run.';
COMMENT ON COLUMN run_overview.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN run_overview.kind IS 'crawl, ingest, lab, ...';
COMMENT ON COLUMN run_overview.status IS 'running, finished or failed';
COMMENT ON COLUMN run_overview.started_at IS 'when the run started (UTC)';
COMMENT ON COLUMN run_overview.finished_at IS 'when the run ended (NULL while running or after a kill)';
COMMENT ON COLUMN run_overview.input_list IS 'the run''s input as a person names it (list name or files read)';
COMMENT ON COLUMN run_overview.tool_version IS 'version of the observatory that wrote the row';
COMMENT ON COLUMN run_overview.quarantined IS 'items the run quarantined';
