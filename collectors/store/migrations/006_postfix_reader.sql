-- 006: the Postfix reader on real servers' logs (issues 14 and 15).
--
-- One smtpd process that serves two clients within one time stamp gave one session (the key
-- was host, program, pid and connect time): session_seq numbers the sessions a process begins
-- at the same time (0 for the first, whose key is unchanged; n joins the key of the others).
ALTER TABLE postfix_smtpd_sessions ADD COLUMN session_seq INTEGER DEFAULT 0;

-- A delivery line cut by syslog's line limit (often 1024 bytes) has no closing ")": the
-- delivery is kept, its reason marked truncated.
ALTER TABLE postfix_deliveries ADD COLUMN reason_truncated BOOLEAN DEFAULT false;

-- The lines of daemons without a parser (postscreen, dnsblog, tlsproxy, anvil, scache, ...) and
-- of other programs (amavis, dovecot, ...) are about 70 % of an internet-facing server's log
-- and carry nothing the study reconstructs: they are counted here per host, program, daemon,
-- kind (uninterpreted | not postfix) and hour, unless `mtasts ingest --keep-other-lines`
-- keeps them raw in postfix_other_lines as before. Diagnostics (warning, error, ...), rejects
-- and remote problems are always kept raw. One row covers the group's lines from source_line
-- on until the hour changed (complete) or the input ended (not complete: the file may grow;
-- a resumed log counts only the lines the earlier run had not read, in new rows). The key is
-- the first line's own key (and line number): reading the same lines again gives the same
-- row, and a complete reading replaces an incomplete one. Sum `lines` per group.
CREATE TABLE postfix_other_line_counts (
    count_key       BIGINT NOT NULL,          -- unique per observation (no index: see 003)
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_line BIGINT,
    hour            TIMESTAMPTZ NOT NULL,     -- the hour of the log the lines were written in
    host            VARCHAR,
    program         VARCHAR NOT NULL,         -- postfix/postscreen, amavis, ...
    daemon          VARCHAR,                  -- the Postfix daemon; NULL for another program
    kind            VARCHAR NOT NULL,         -- uninterpreted | not postfix
    first_logged_at TIMESTAMPTZ NOT NULL,
    last_logged_at  TIMESTAMPTZ NOT NULL,
    lines           BIGINT NOT NULL,
    complete        BOOLEAN NOT NULL
);

COMMENT ON COLUMN postfix_smtpd_sessions.session_seq IS 'which of the sessions one smtpd process began at the same time stamp this is (0: the first; issue 14)';
COMMENT ON COLUMN postfix_deliveries.reason_truncated IS 'true when the delivery line was cut short (syslog''s line limit) inside its reason: the reason is what was logged';
COMMENT ON TABLE postfix_other_line_counts IS 'Lines of Postfix daemons without a parser (postscreen, dnsblog, tlsproxy, anvil, ...) and of other programs, counted per host, program, daemon, kind and hour (kept raw in postfix_other_lines instead with --keep-other-lines).';
COMMENT ON COLUMN postfix_other_line_counts.count_key IS 'identifies the group (the key of its first line and its line number): a re-read gives the same row';
COMMENT ON COLUMN postfix_other_line_counts.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN postfix_other_line_counts.observed_at IS 'when this row was written (UTC)';
COMMENT ON COLUMN postfix_other_line_counts.input_list IS 'the run''s input list, as given';
COMMENT ON COLUMN postfix_other_line_counts.tool_version IS 'version of mtasts-observatory that wrote the row';
COMMENT ON COLUMN postfix_other_line_counts.source_name IS 'the log file the lines were read from';
COMMENT ON COLUMN postfix_other_line_counts.source_line IS 'line number of the group''s first line';
COMMENT ON COLUMN postfix_other_line_counts.hour IS 'the hour of the log the lines were written in';
COMMENT ON COLUMN postfix_other_line_counts.host IS 'the host name of the log lines';
COMMENT ON COLUMN postfix_other_line_counts.program IS 'the syslog program, e.g. postfix/postscreen or amavis';
COMMENT ON COLUMN postfix_other_line_counts.daemon IS 'the Postfix daemon (NULL for another program)';
COMMENT ON COLUMN postfix_other_line_counts.kind IS 'uninterpreted (a Postfix daemon without a parser) | not postfix (another program)';
COMMENT ON COLUMN postfix_other_line_counts.first_logged_at IS 'time stamp of the group''s first line';
COMMENT ON COLUMN postfix_other_line_counts.last_logged_at IS 'time stamp of the group''s last line';
COMMENT ON COLUMN postfix_other_line_counts.lines IS 'number of lines in the group (sum per group for a total)';
COMMENT ON COLUMN postfix_other_line_counts.complete IS 'true when the hour ended within the file (false: the input ended; a grown log adds rows)';
