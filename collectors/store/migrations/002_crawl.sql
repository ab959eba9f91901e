-- 002: raw observations of the crawler (collectors/crawl). Rows are facts as seen
-- (record strings, rcodes, policy bytes, certificate facts, timings) plus, beside them,
-- the output of the pure RFC parsers (collectors.rfc) on those facts; every
-- classification into the export vocabulary lives in views/010_crawl.sql.
-- Every row carries the provenance columns run_id, observed_at, input_list, tool_version.
-- Primary keys include run_id, so a resumed run can never write a domain twice.

-- The normalised input list of a run, written in one transaction before crawling.
CREATE TABLE crawl_domains (
    run_id        VARCHAR NOT NULL,
    observed_at   TIMESTAMPTZ NOT NULL,
    input_list    VARCHAR NOT NULL,
    tool_version  VARCHAR NOT NULL,
    position      BIGINT NOT NULL,           -- line number in the source list
    rank          BIGINT,                    -- the list's rank (plain lists: the entry's ordinal)
    domain        VARCHAR NOT NULL,          -- normalised A-label, no trailing dot
    PRIMARY KEY (run_id, domain)
);

-- One row per run once its input is fully in crawl_domains (the resume marker for input).
CREATE TABLE crawl_inputs (
    run_id        VARCHAR PRIMARY KEY,
    observed_at   TIMESTAMPTZ NOT NULL,
    input_list    VARCHAR NOT NULL,
    tool_version  VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,          -- the file read (or tranco:ID)
    entries       BIGINT NOT NULL,           -- entries read (after --top)
    accepted      BIGINT NOT NULL,           -- distinct valid domains
    quarantined   BIGINT NOT NULL            -- invalid or duplicate entries (see quarantine)
);

-- One row per domain: the DNS facts and the parsers' reading of them. The row is the
-- domain's completion marker: it is written in the same transaction as the domain's
-- crawl_mx and crawl_policy rows.
CREATE TABLE crawl_observations (
    run_id            VARCHAR NOT NULL,
    observed_at       TIMESTAMPTZ NOT NULL,
    input_list        VARCHAR NOT NULL,
    tool_version      VARCHAR NOT NULL,
    domain            VARCHAR NOT NULL,
    -- MX (RFC 5321 5.1, null MX RFC 7505); rcode or TIMEOUT/ERROR
    mx_rcode          VARCHAR NOT NULL,
    mx_ad             BOOLEAN,                -- AD bit of the MX answer (RFC 4035 3.2.3)
    mx_cd_rcode       VARCHAR,                -- rcode of the CD-bit retry after a SERVFAIL
    mx_preferences    INTEGER[],
    mx_exchanges      VARCHAR[],              -- '' is the root (null MX)
    mx_cname_chain    VARCHAR[],
    mx_detail         VARCHAR,
    -- _mta-sts TXT (RFC 8461 3.1), CNAMEs followed (8.2)
    sts_rcode         VARCHAR NOT NULL,
    sts_cname_chain   VARCHAR[],
    sts_txt           JSON,                   -- [[string, ...], ...] per TXT record, as seen
    sts_status        VARCHAR,                -- parse_sts_record: absent|valid|invalid|multiple
    sts_id            VARCHAR,
    sts_findings      JSON,                   -- [{code, severity, message}]
    -- _smtp._tls TXT (RFC 8460 3)
    tlsrpt_rcode      VARCHAR NOT NULL,
    tlsrpt_cname_chain VARCHAR[],
    tlsrpt_txt        JSON,
    tlsrpt_status     VARCHAR,
    tlsrpt_rua        VARCHAR[],
    tlsrpt_findings   JSON,
    duration_ms       DOUBLE,
    error             VARCHAR,                -- an internal failure while observing (kept, not raised)
    PRIMARY KEY (run_id, domain)
);

-- One row per (domain, MX record) with the MX coverage by the domain's policy (RFC 8461 4.1).
CREATE TABLE crawl_mx (
    run_id            VARCHAR NOT NULL,
    observed_at       TIMESTAMPTZ NOT NULL,
    input_list        VARCHAR NOT NULL,
    tool_version      VARCHAR NOT NULL,
    domain            VARCHAR NOT NULL,
    mx_host           VARCHAR NOT NULL,       -- '' for the null MX root
    preference        INTEGER,
    covered           BOOLEAN,                -- mx_matches(mx_host, policy mx); NULL without a valid policy
    mismatch_subclass VARCHAR,                -- classify_mismatch when not covered
    PRIMARY KEY (run_id, domain, mx_host)
);

-- The policy fetch (RFC 8461 3.3) for domains whose TXT record is valid.
CREATE TABLE crawl_policy (
    run_id            VARCHAR NOT NULL,
    observed_at       TIMESTAMPTZ NOT NULL,
    input_list        VARCHAR NOT NULL,
    tool_version      VARCHAR NOT NULL,
    domain            VARCHAR NOT NULL,
    policy_host       VARCHAR NOT NULL,       -- mta-sts.<domain>
    a_rcode           VARCHAR,
    aaaa_rcode        VARCHAR,
    addresses         VARCHAR[],              -- A then AAAA
    cname_chain       VARCHAR[],              -- CNAMEs from the policy host (third-party hosts)
    address           VARCHAR,                -- the address connected to
    port              INTEGER,
    outcome           VARCHAR NOT NULL,       -- dns_error|tcp_error|tls_error|http_error|redirect|too_large|timeout|ok
    phase             VARCHAR,                -- where it stopped: dns|connect|tls|request|response|body
    tls_subclass      VARCHAR,
    tls_verify_code   INTEGER,
    tls_version       VARCHAR,
    http_status       INTEGER,
    http_reason       VARCHAR,
    http_headers      JSON,                   -- [[name, value], ...] lower-cased names
    content_type      VARCHAR,
    body              BLOB,                   -- at most 65536 bytes
    body_bytes        BIGINT,
    body_truncated    BOOLEAN,
    detail            VARCHAR,
    t_dns_ms          DOUBLE,
    t_connect_ms      DOUBLE,
    t_tls_ms          DOUBLE,
    t_first_byte_ms   DOUBLE,
    t_total_ms        DOUBLE,
    fetch_findings    JSON,                   -- e.g. Content-Type not text/plain (warning)
    -- parse_sts_policy on the body (when outcome = ok)
    policy_ok         BOOLEAN,
    policy_version    VARCHAR,
    policy_mode       VARCHAR,
    policy_max_age    BIGINT,
    policy_mx         VARCHAR[],
    policy_line_ending VARCHAR,
    policy_findings   JSON,
    PRIMARY KEY (run_id, domain)
);

-- Per distinct MX host, once per run: TLSA at _25._tcp.<mx> (RFC 7672 2.2).
CREATE TABLE crawl_tlsa (
    run_id            VARCHAR NOT NULL,
    observed_at       TIMESTAMPTZ NOT NULL,
    input_list        VARCHAR NOT NULL,
    tool_version      VARCHAR NOT NULL,
    mx_host           VARCHAR NOT NULL,
    rcode             VARCHAR NOT NULL,
    ad                BOOLEAN,
    records           VARCHAR[],              -- 'usage selector mtype hexdata'
    PRIMARY KEY (run_id, mx_host)
);

-- Per distinct MX host, once per run, only with --probe-smtp: EHLO/STARTTLS/certificate.
CREATE TABLE crawl_smtp (
    run_id            VARCHAR NOT NULL,
    observed_at       TIMESTAMPTZ NOT NULL,
    input_list        VARCHAR NOT NULL,
    tool_version      VARCHAR NOT NULL,
    mx_host           VARCHAR NOT NULL,
    a_rcode           VARCHAR,
    address           VARCHAR,
    port              INTEGER,
    outcome           VARCHAR NOT NULL,       -- ok|no_starttls|cert_invalid|tcp_error
    banner            VARCHAR,
    ehlo              VARCHAR[],
    starttls_offered  BOOLEAN,
    tls_version       VARCHAR,
    tls_subclass      VARCHAR,
    verify_code       INTEGER,
    verify_error      VARCHAR,
    cert_subject      VARCHAR,
    cert_issuer       VARCHAR,
    cert_sans         VARCHAR[],
    cert_not_before   VARCHAR,
    cert_not_after    VARCHAR,
    detail            VARCHAR,
    t_connect_ms      DOUBLE,
    t_total_ms        DOUBLE,
    PRIMARY KEY (run_id, mx_host)
);
