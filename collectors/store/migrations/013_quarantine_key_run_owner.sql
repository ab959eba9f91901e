-- 013: a quarantine that is idempotent like every table, and runs that know their process
-- (issue 14).
--
-- A kill -9 in the middle of an ingest, then a re-ingest, doubled the quarantine rows: they
-- had no key. The ingest now keys each one by where it was read and what it holds (source,
-- file, position, reason, raw bytes) and adds a key only once. Rows without a key (the
-- crawl's, and those stored before this migration) stay as they were.
ALTER TABLE quarantine ADD COLUMN quarantine_key BIGINT;
COMMENT ON COLUMN quarantine.quarantine_key IS 'identifies the quarantined item (source, file, position, reason, raw bytes) so a re-read adds it once; NULL for crawl rows and rows stored before schema 13';

-- A run killed with -9 stayed ''running'' for ever. The process that runs a run is recorded:
-- host name, boot id, pid and the process start time (clock ticks since boot), so a run whose
-- process is gone is recognised as ''interrupted'' (Store.mark_interrupted_runs).
ALTER TABLE runs ADD COLUMN owner JSON;
COMMENT ON COLUMN runs.owner IS 'the process running the run: {"host", "boot_id", "pid", "start_ticks"}; a running run whose process is gone is marked interrupted';
COMMENT ON COLUMN runs.status IS 'running | finished | failed | interrupted (a running run whose process is gone)';
