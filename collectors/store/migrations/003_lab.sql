-- 003: the audit lab's evidence (issue 5): Postfix logs, policy-server HTTP logs, received
-- messages (our recorder, the published lab), TLS-RPT reports, the send ledger, users'
-- notifications. Every row carries the provenance columns (run_id, observed_at,
-- input_list, tool_version) and the file it came from (source_name) with its position.
-- Every table has a key computed from what identifies the observation, so re-ingesting a
-- file (or an overlapping one) never adds a row twice. The record tables enforce it with a
-- PRIMARY KEY. The high-volume log tables (postfix_*, mta_sts_resolver_events,
-- policy_fetches_http) have no index: an index on tens of millions of rows costs memory
-- that grows with the log; the ingest dedups instead with an anti join on the key within
-- the batch's time window (the key covers the row's time, so a duplicate has the same time,
-- and DuckDB's per-row-group min/max statistics skip the rest of the table).
-- Derived views over these tables live in views/020_lab.sql.

-- Per-database settings; the HMAC salt of --pseudonymise lives here (never leaves the file).
CREATE TABLE lab_settings (
    key           VARCHAR PRIMARY KEY,
    value         VARCHAR NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

-- Lab domains named with --lab-domain: test addresses are <uuid>@<label>.<lab domain>.
CREATE TABLE lab_domains (
    domain        VARCHAR PRIMARY KEY,
    run_id        VARCHAR NOT NULL,
    added_at      TIMESTAMPTZ NOT NULL
);

-- One row per file (or folder) read by a run: the content fingerprint and how far it was read.
-- A log that grew resumes at resume_offset when its first end_offset bytes still hash to prefix_sha256.
CREATE TABLE ingested_files (
    run_id        VARCHAR NOT NULL,
    observed_at   TIMESTAMPTZ NOT NULL,
    input_list    VARCHAR NOT NULL,
    tool_version  VARCHAR NOT NULL,
    source_name   VARCHAR NOT NULL,
    format        VARCHAR NOT NULL,          -- postfix | http | recorder | published_lab | ledger | notifications | tlsrpt
    compressed    BOOLEAN NOT NULL,
    file_sha256   VARCHAR NOT NULL,          -- of the file as stored (compressed bytes for .gz)
    file_bytes    BIGINT NOT NULL,
    head_sha256   VARCHAR,                   -- of the first 4 KiB of the decoded stream (finds a grown/rotated copy)
    prefix_sha256 VARCHAR,                   -- of decoded bytes [0, end_offset)
    start_offset  BIGINT NOT NULL,           -- decoded byte offset this run started at
    end_offset    BIGINT NOT NULL,           -- decoded byte offset this run read up to
    resume_offset BIGINT NOT NULL,           -- where the next run re-reads from (open sessions)
    resume_year   INTEGER,                   -- classic syslog: the year at resume_offset
    status        VARCHAR NOT NULL,          -- complete | skipped (already ingested) | truncated | failed
    lines         BIGINT NOT NULL,
    records       BIGINT NOT NULL,
    quarantined   BIGINT NOT NULL,
    note          VARCHAR
);

-- ---------------------------------------------------------------- Postfix logs
-- A receiving smtpd session (connect .. disconnect) with the TLS it negotiated.
CREATE TABLE postfix_smtpd_sessions (
    session_key   BIGINT NOT NULL,          -- unique per observation (no index: see the header)
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_line BIGINT,
    host          VARCHAR,
    instance      VARCHAR NOT NULL,          -- syslog name prefix: postfix, postfix-a, ...
    program       VARCHAR NOT NULL,          -- postfix/smtpd, postfix/submission/smtpd, ...
    pid           INTEGER,
    connect_at    TIMESTAMPTZ,
    disconnect_at TIMESTAMPTZ,
    first_seen_at TIMESTAMPTZ NOT NULL,
    client_name   VARCHAR,
    client_addr   VARCHAR,
    client_port   INTEGER,
    tls_trust     VARCHAR,                   -- Anonymous | Untrusted | Trusted | Verified; NULL: no TLS logged
    tls_protocol  VARCHAR,
    tls_cipher    VARCHAR,
    tls_cipher_bits VARCHAR,
    tls_key_exchange VARCHAR,
    tls_server_signature VARCHAR,
    tls_problem   VARCHAR,                   -- SSL_accept error ...
    queue_ids     VARCHAR[] NOT NULL,
    rejects       VARCHAR[] NOT NULL,
    end_problem   VARCHAR,                   -- "lost connection after DATA", "timeout after CONNECT", ...
    commands      VARCHAR,                   -- disconnect counters: ehlo=2 starttls=1 ... commands=7
    complete      BOOLEAN NOT NULL           -- both connect and disconnect were seen
);

-- A queue file: where it came from (and the TLS of that session), Message-ID, sender, size.
CREATE TABLE postfix_messages (
    message_key   BIGINT NOT NULL,          -- unique per observation (no index: see the header)
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_line BIGINT,
    host          VARCHAR,
    instance      VARCHAR NOT NULL,
    queue_id      VARCHAR NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    queued_at     TIMESTAMPTZ,               -- qmgr: queue active
    removed_at    TIMESTAMPTZ,
    origin        VARCHAR NOT NULL,          -- smtpd | pickup | bounce | unknown
    session_key   BIGINT,
    client_name   VARCHAR,
    client_addr   VARCHAR,
    tls_trust     VARCHAR,
    tls_protocol  VARCHAR,
    tls_cipher    VARCHAR,
    message_id    VARCHAR,
    sender        VARCHAR,                   -- envelope sender ('' = null sender); local part hashed with --pseudonymise
    size          BIGINT,
    nrcpt         INTEGER,
    notice_for_queue_id VARCHAR,             -- a bounce(8) notice about that queue file
    expired       BOOLEAN NOT NULL,          -- qmgr: status=expired, returned to sender
    complete      BOOLEAN NOT NULL           -- "removed" was seen
);

-- One delivery attempt (any delivery agent: smtp, lmtp, local, virtual, pipe, error, ...).
CREATE TABLE postfix_deliveries (
    delivery_key  BIGINT NOT NULL,          -- unique per observation (no index: see the header)
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_line BIGINT,
    logged_at     TIMESTAMPTZ NOT NULL,
    host          VARCHAR,
    instance      VARCHAR NOT NULL,
    program       VARCHAR NOT NULL,
    daemon        VARCHAR NOT NULL,          -- smtp | lmtp | local | virtual | pipe | error | ...
    pid           INTEGER,
    queue_id      VARCHAR NOT NULL,
    message_key   BIGINT,
    sender        VARCHAR,
    message_id    VARCHAR,
    recipient     VARCHAR NOT NULL,
    orig_recipient VARCHAR,
    relay         VARCHAR NOT NULL,
    relay_host    VARCHAR,
    relay_addr    VARCHAR,
    relay_port    INTEGER,
    conn_use      INTEGER,
    delay         DOUBLE,
    delay_before_qmgr DOUBLE,
    delay_in_qmgr DOUBLE,
    delay_conn_setup DOUBLE,
    delay_transmission DOUBLE,
    tls_feature   VARCHAR,                   -- Postfix >= 3.10 tls= field, verbatim
    dsn           VARCHAR NOT NULL,          -- RFC 3463 enhanced status code
    status        VARCHAR NOT NULL,          -- sent | deferred | bounced | expired | ...
    reason        VARCHAR NOT NULL,          -- e.g. "TLS is required, but was not offered by host ..."
    tls_trust     VARCHAR,                   -- of the smtp connection: Anonymous | Untrusted | Trusted | Verified
    tls_protocol  VARCHAR,
    tls_cipher    VARCHAR,
    tls_cipher_bits VARCHAR,
    tls_problem   VARCHAR                    -- "certificate verification failed: ..." logged for that peer
);

-- bounce(8): QID: sender non-delivery | delay | delivery status | success notification: NQID
CREATE TABLE postfix_notices (
    notice_key    BIGINT NOT NULL,          -- unique per observation (no index: see the header)
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_line BIGINT,
    logged_at     TIMESTAMPTZ NOT NULL,
    host          VARCHAR,
    instance      VARCHAR NOT NULL,
    queue_id      VARCHAR NOT NULL,
    message_key   BIGINT,
    notice_recipient VARCHAR NOT NULL,       -- sender | postmaster
    notice_kind   VARCHAR NOT NULL,          -- non-delivery | delay | delivery status | success
    notice_queue_id VARCHAR NOT NULL
);

-- postfix-mta-sts-resolver (run with -v debug): policy lookups per domain.
CREATE TABLE mta_sts_resolver_events (
    event_key     BIGINT NOT NULL,          -- unique per observation (no index: see the header)
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_line BIGINT,
    logged_at     TIMESTAMPTZ NOT NULL,
    host          VARCHAR,
    program       VARCHAR NOT NULL,
    pid           INTEGER,
    level         VARCHAR,
    logger        VARCHAR,
    event         VARCHAR NOT NULL,          -- fetch | cached | fetch_failed | resolve_request | policy_parsed | no_valid_policy | other
    domain        VARCHAR,
    detail        VARCHAR NOT NULL
);

-- Valid log lines not reconstructed above (diagnostics, rejects, other daemons, other programs): kept raw.
CREATE TABLE postfix_other_lines (
    line_key      BIGINT NOT NULL,          -- unique per observation (no index: see the header)
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_line BIGINT,
    logged_at     TIMESTAMPTZ NOT NULL,
    host          VARCHAR,
    program       VARCHAR NOT NULL,
    pid           INTEGER,
    daemon        VARCHAR,
    queue_id      VARCHAR,
    kind          VARCHAR NOT NULL,          -- uninterpreted | not postfix | warning | reject | remote problem | ...
    message       VARCHAR NOT NULL
);

-- ---------------------------------------------------------------- policy fetches
-- Every request in a policy server's access log (is_policy_fetch: GET /.well-known/mta-sts.txt),
-- and the published lab's HTTPS blocks. host NULL: the log format carries no host (lab as a whole).
CREATE TABLE policy_fetches_http (
    fetch_key     BIGINT NOT NULL,          -- unique per observation (no index: see the header)
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_position VARCHAR,
    source        VARCHAR NOT NULL,          -- http_log | published_lab
    log_format    VARCHAR NOT NULL,          -- lab_host_combined | vhost_combined | combined | json | published_lab
    fetched_at    TIMESTAMPTZ NOT NULL,
    client_addr   VARCHAR,
    host          VARCHAR,                   -- Host: mta-sts.<policy domain>
    policy_domain VARCHAR,                   -- host without the mta-sts. prefix (RFC 8461 3.3)
    server_label  VARCHAR,                   -- first label of the policy domain (a..f)
    method        VARCHAR,
    path          VARCHAR,
    protocol      VARCHAR,
    status        INTEGER,
    bytes_sent    BIGINT,
    referer       VARCHAR,
    user_agent    VARCHAR,
    forwarded_for VARCHAR,
    is_policy_fetch BOOLEAN NOT NULL
);

-- ---------------------------------------------------------------- received messages
-- A message that reached a lab server: our recorder's JSON lines, or the published lab's records.
CREATE TABLE received_messages (
    received_key  BIGINT PRIMARY KEY,
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_position VARCHAR,
    source        VARCHAR NOT NULL,          -- recorder | published_lab
    received_at   TIMESTAMPTZ,
    server_label  VARCHAR,
    recipient     VARCHAR,
    original_recipient VARCHAR,
    address_uuid  VARCHAR,
    sender        VARCHAR,
    client_address VARCHAR,
    client_helo   VARCHAR,
    client_hostname VARCHAR,
    client_protocol VARCHAR,
    envid         VARCHAR,
    message_id    VARCHAR,
    queue_id      VARCHAR,
    received_with VARCHAR,                   -- ESMTPS, ESMTP, ...
    tls_protocol  VARCHAR,
    tls_cipher    VARCHAR,
    tls_bits      INTEGER,
    row_id        BIGINT                     -- published lab: log_lines.id
);

-- ---------------------------------------------------------------- TLS-RPT
CREATE TABLE tlsrpt_reports (
    report_key    BIGINT PRIMARY KEY,        -- of the report JSON
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_position VARCHAR,
    source_kind   VARCHAR NOT NULL,          -- file | email | mbox | maildir | https-post | published_lab
    received_at   TIMESTAMPTZ,
    organization_name VARCHAR,
    report_id     VARCHAR,
    contact_info  VARCHAR,
    date_range_start TIMESTAMPTZ,
    date_range_end TIMESTAMPTZ,
    policy_domains VARCHAR[],
    total_successful_session_count BIGINT,
    total_failure_session_count BIGINT,
    remote_addr   VARCHAR,
    content_type  VARCHAR,
    email_from    VARCHAR,
    email_message_id VARCHAR,
    report_domain VARCHAR,
    report_submitter VARCHAR,
    raw_json      VARCHAR NOT NULL
);

CREATE TABLE tlsrpt_policies (
    policy_key    BIGINT PRIMARY KEY,
    report_key    BIGINT NOT NULL,
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL,
    policy_index  INTEGER NOT NULL,
    policy_type   VARCHAR,
    policy_domain VARCHAR,
    policy_string VARCHAR[],
    mx_host       VARCHAR[],
    total_successful_session_count BIGINT,
    total_failure_session_count BIGINT
);

CREATE TABLE tlsrpt_failures (
    failure_key   BIGINT PRIMARY KEY,
    report_key    BIGINT NOT NULL,
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL,
    policy_index  INTEGER NOT NULL,
    failure_index INTEGER NOT NULL,
    policy_type   VARCHAR,
    policy_domain VARCHAR,
    result_type   VARCHAR,                   -- RFC 8460 4.3: starttls-not-supported, certificate-host-mismatch, ...
    sending_mta_ip VARCHAR,
    receiving_mx_hostname VARCHAR,
    receiving_mx_helo VARCHAR,
    receiving_ip  VARCHAR,
    failed_session_count BIGINT,
    additional_information VARCHAR,
    failure_reason_code VARCHAR
);

-- ---------------------------------------------------------------- the send ledger
CREATE TABLE ledger (
    entry_key     BIGINT PRIMARY KEY,        -- of (to_addr, provider, sent_at)
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_position VARCHAR,
    provider      VARCHAR NOT NULL,
    account       VARCHAR,
    sent_at       TIMESTAMPTZ NOT NULL,
    from_addr     VARCHAR,
    to_addr       VARCHAR NOT NULL,
    message_id    VARCHAR,
    server_label  VARCHAR,
    address_uuid  VARCHAR,
    entry_source  VARCHAR NOT NULL           -- addresses | csv | manual
);

-- ---------------------------------------------------------------- users' notifications
CREATE TABLE notifications (
    notice_key    BIGINT PRIMARY KEY,        -- of the notice's Message-ID, else of its content
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_position VARCHAR,
    received_at   TIMESTAMPTZ,
    received_at_source VARCHAR,              -- date | envelope
    notice_from   VARCHAR,
    notice_to     VARCHAR,
    subject       VARCHAR,
    kind          VARCHAR NOT NULL,          -- delay | failure | success | unknown
    structure     VARCHAR NOT NULL,          -- dsn (RFC 3464) | plain
    recipients    VARCHAR[] NOT NULL,
    original_message_ids VARCHAR[] NOT NULL,
    status_codes  VARCHAR[] NOT NULL,
    diagnostics   VARCHAR[] NOT NULL,
    mentions_tls  BOOLEAN NOT NULL,
    mentions_mta_sts BOOLEAN NOT NULL,
    reporting_mta VARCHAR,
    arrival_date  TIMESTAMPTZ,
    notice_message_id VARCHAR,
    dsn_recipients JSON,
    text          VARCHAR NOT NULL           -- the notice's human-readable part (not the original message)
);
