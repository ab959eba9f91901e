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
