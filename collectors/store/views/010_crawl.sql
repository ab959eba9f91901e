-- Views over the crawler's raw observations (migrations/002_crawl.sql). The one place
-- where observations become the export vocabulary of the posture export (documented in
-- docs/posture-export.md); tests, notebooks and `mtasts export posture` all read these.

-- Per (run, domain): its MX hosts joined to the per-host observations (TLSA, SMTP probe).
-- The root exchange of a null MX (RFC 7505, mx_host '') is no host: the WHERE drops it.
CREATE OR REPLACE VIEW crawl_domain_mx AS
SELECT
    m.run_id,
    m.domain,
    string_agg(m.mx_host, ';' ORDER BY m.preference, m.mx_host)  AS mx_hosts,
    count(*)                                                       AS n_mx,
    count(*) FILTER (WHERE m.covered)                              AS n_covered,
    count(*) FILTER (WHERE NOT m.covered)                          AS n_uncovered,
    string_agg(DISTINCT m.mismatch_subclass, ';' ORDER BY m.mismatch_subclass)
        FILTER (WHERE NOT m.covered)                               AS mismatch_subclass,
    bool_or(coalesce(len(t.records), 0) > 0)                      AS any_tlsa,
    count(s.mx_host)                                               AS n_probed,
    -- worst first: tcp_error > host_unresponsive > tls_error > cert_invalid > no_starttls
    -- > host_busy > ok (the contract's order; host_busy: not probed in the host's time, unknown)
    max(CASE s.outcome WHEN 'ok' THEN 0 WHEN 'host_busy' THEN 1 WHEN 'no_starttls' THEN 2
                       WHEN 'cert_invalid' THEN 3 WHEN 'tls_error' THEN 4
                       WHEN 'host_unresponsive' THEN 5 ELSE 6 END) AS worst_starttls,
    -- no PKIX-valid certificate after STARTTLS: one that fails verification, or a handshake
    -- the server broke off (tls_error) before presenting any (RFC 8461 4.2)
    bool_or(s.outcome IN ('cert_invalid', 'tls_error'))            AS any_cert_invalid,
    bool_or(s.outcome = 'no_starttls')                             AS any_no_starttls
FROM crawl_mx m
LEFT JOIN crawl_tlsa t ON t.run_id = m.run_id AND t.mx_host = m.mx_host
LEFT JOIN crawl_smtp s ON s.run_id = m.run_id AND s.mx_host = m.mx_host
WHERE m.mx_host <> ''
GROUP BY m.run_id, m.domain;

-- Step 1: the per-column verdicts (RFC 8461 / verdicts contract), one row per observed domain.
CREATE OR REPLACE VIEW crawl_verdicts AS
WITH base AS (
    SELECT
        o.run_id,
        o.domain,
        d.rank,
        d.position,
        -- mx_status: NXDOMAIN/NODATA -> none; a lone root exchange -> null_mx (RFC 7505 3)
        CASE
            WHEN o.mx_rcode = 'NXDOMAIN' THEN 'none'
            WHEN o.mx_rcode <> 'NOERROR' THEN 'dns_error'
            WHEN coalesce(len(o.mx_exchanges), 0) = 0 THEN 'none'
            WHEN len(list_filter(o.mx_exchanges, lambda x: x <> '')) = 0 THEN 'null_mx'
            ELSE 'ok'
        END AS mx_status,
        CASE WHEN o.sts_rcode IN ('NOERROR', 'NXDOMAIN') THEN o.sts_status ELSE 'dns_error' END AS sts_record,
        CASE WHEN o.tlsrpt_rcode IN ('NOERROR', 'NXDOMAIN') THEN o.tlsrpt_status ELSE 'dns_error' END AS tlsrpt_record,
        -- dnssec from the validating resolver's AD bit on the MX answer (RFC 4035 3.2.3);
        -- SERVFAIL that a CD retry answers is a validation failure: bogus (RFC 4035 5.5)
        CASE
            WHEN o.mx_ad THEN 'secure'
            WHEN o.mx_rcode = 'SERVFAIL' AND o.mx_cd_rcode IN ('NOERROR', 'NXDOMAIN') THEN 'bogus'
            WHEN o.mx_rcode IN ('NOERROR', 'NXDOMAIN') THEN 'insecure'
            ELSE 'unknown'
        END AS dnssec,
        o.sts_id,
        o.sts_findings,
        o.tlsrpt_findings,
        o.sts_cname_chain,
        p.outcome AS fetch_outcome,
        p.policy_ok,
        p.policy_mode AS parsed_mode,
        p.policy_max_age AS parsed_max_age,
        p.policy_mx AS parsed_mx,
        p.tls_subclass,
        p.cname_chain AS policy_cname_chain,
        p.fetch_findings,
        p.policy_findings,
        x.mx_hosts,
        coalesce(x.n_mx, 0) AS n_mx,
        coalesce(x.n_covered, 0) AS n_covered,
        coalesce(x.n_uncovered, 0) AS n_uncovered,
        x.mismatch_subclass AS mx_mismatch_subclass,
        coalesce(x.any_tlsa, false) AS any_tlsa,
        coalesce(x.n_probed, 0) AS n_probed,
        x.worst_starttls,
        coalesce(x.any_cert_invalid, false) AS any_cert_invalid,
        coalesce(x.any_no_starttls, false) AS any_no_starttls
    FROM crawl_observations o
    JOIN crawl_domains d ON d.run_id = o.run_id AND d.domain = o.domain
    LEFT JOIN crawl_policy p ON p.run_id = o.run_id AND p.domain = o.domain
    LEFT JOIN crawl_domain_mx x ON x.run_id = o.run_id AND x.domain = o.domain
),
fetched AS (
    SELECT *,
        -- RFC 8461 3.3: fetched only with a valid record; a 200 that does not parse is syntax_error
        CASE
            WHEN sts_record <> 'valid' OR fetch_outcome IS NULL THEN 'not_attempted'
            WHEN fetch_outcome = 'ok' AND NOT coalesce(policy_ok, false) THEN 'syntax_error'
            ELSE fetch_outcome
        END AS policy_fetch
    FROM base
),
matched AS (
    SELECT *,
        CASE
            WHEN policy_fetch <> 'ok' OR mx_status <> 'ok' OR n_mx = 0 THEN 'n/a'
            -- mode none may list no mx at all (RFC 8461 3.2): nothing to match against
            WHEN len(coalesce(parsed_mx, [])) = 0 THEN 'n/a'
            WHEN n_uncovered = 0 THEN 'all'
            WHEN n_covered = 0 THEN 'none'
            ELSE 'some'
        END AS mx_policy_match,
        CASE
            WHEN mx_status <> 'ok' OR n_mx = 0 THEN 'n/a'
            WHEN n_probed = 0 THEN 'not_probed'
            ELSE CASE worst_starttls WHEN 0 THEN 'ok' WHEN 1 THEN 'host_busy' WHEN 2 THEN 'no_starttls'
                                     WHEN 3 THEN 'cert_invalid' WHEN 4 THEN 'tls_error'
                                     WHEN 5 THEN 'host_unresponsive' ELSE 'tcp_error' END
        END AS mx_starttls
    FROM fetched
),
classed AS (
    SELECT *,
        list_filter([
            CASE WHEN sts_record IN ('invalid', 'multiple') THEN 'invalid_txt' END,
            -- host_busy is the crawl's own limit (no slot to the address in the domain's
            -- time), not the domain's fault: no class; host_unresponsive is a host that
            -- stopped answering (a circuit breaker verdict), a retrieval failure like timeout
            CASE WHEN sts_record = 'valid' AND policy_fetch NOT IN ('ok', 'not_attempted', 'host_busy')
                 THEN 'policy_retrieval' END,
            -- RFC 8461 4.2: the MX must offer STARTTLS with a PKIX-valid certificate;
            -- no STARTTLS means no certificate a sender could validate
            CASE WHEN sts_record = 'valid' AND mx_status = 'ok' AND (any_cert_invalid OR any_no_starttls)
                 THEN 'mx_cert_invalid' END,
            -- RFC 8461 5: only an active policy (enforce or testing) has its MX checked;
            -- under mode none a sender ignores the patterns, so a mismatch is no fault
            CASE WHEN mx_policy_match IN ('some', 'none') AND parsed_mode IN ('enforce', 'testing')
                 THEN 'mx_not_covered' END
        ], lambda c: c IS NOT NULL) AS classes
    FROM matched
)
SELECT
    run_id,
    domain,
    rank,
    position,
    mx_status,
    mx_hosts,
    sts_record,
    CASE WHEN sts_record = 'valid' THEN sts_id END AS sts_id,
    policy_fetch,
    CASE WHEN policy_fetch = 'ok' THEN parsed_mode END AS policy_mode,
    CASE WHEN policy_fetch = 'ok' THEN parsed_max_age END AS policy_max_age,
    CASE WHEN policy_fetch = 'ok' THEN array_to_string(parsed_mx, ';') END AS policy_mx,
    mx_policy_match,
    tlsrpt_record,
    dnssec,
    CASE WHEN mx_status <> 'ok' OR n_mx = 0 THEN 'n/a' WHEN any_tlsa THEN 'yes' ELSE 'no' END AS tlsa,
    mx_starttls,
    len(classes) > 0 AS misconfigured,
    -- an RFC 8461 sender in enforce mode would not deliver to some MX (RFC 8461 5)
    (policy_fetch = 'ok' AND parsed_mode = 'enforce'
        AND (mx_policy_match IN ('some', 'none')
             OR (mx_status = 'ok' AND (any_cert_invalid OR any_no_starttls)))) AS delivery_risk,
    nullif(array_to_string(list_concat(
        CASE WHEN sts_record IN ('absent', 'dns_error') THEN [] ELSE coalesce(json_extract_string(sts_findings, '$[*].code'), []) END,
        coalesce(json_extract_string(fetch_findings, '$[*].code'), []),
        coalesce(json_extract_string(policy_findings, '$[*].code'), []),
        CASE WHEN tlsrpt_record IN ('absent', 'dns_error') THEN [] ELSE coalesce(json_extract_string(tlsrpt_findings, '$[*].code'), []) END
    ), ';'), '') AS findings,
    nullif(array_to_string(classes, ';'), '') AS misconfig_classes,
    CASE WHEN mx_policy_match IN ('some', 'none') THEN mx_mismatch_subclass END AS mismatch_subclass,
    CASE WHEN policy_fetch = 'tls_error' THEN tls_subclass END AS policy_tls_subclass,
    policy_cname_chain[1] AS policy_host_cname,
    sts_cname_chain[1] AS sts_cname
FROM classed;

-- The posture export: exactly the documented columns (docs/posture-export.md), plus run_id
-- to select a run. `mtasts export posture` writes these columns without run_id.
CREATE OR REPLACE VIEW posture AS
SELECT run_id, domain, rank, mx_status, mx_hosts, sts_record, sts_id, policy_fetch,
       policy_mode, policy_max_age, policy_mx, mx_policy_match, tlsrpt_record, dnssec, tlsa,
       mx_starttls, misconfigured, delivery_risk, findings, misconfig_classes,
       mismatch_subclass, policy_tls_subclass, policy_host_cname, sts_cname
FROM crawl_verdicts;

-- Progress of a run: input size and how many domains are complete (for --resume and status).
CREATE OR REPLACE VIEW crawl_progress AS
SELECT i.run_id, i.entries, i.accepted, i.quarantined,
       (SELECT count(*) FROM crawl_observations o WHERE o.run_id = i.run_id) AS completed
FROM crawl_inputs i;

-- The data dictionary of these views (duckdb_columns().comment): one line per column,
-- re-applied with the views; tests/store/test_dictionary.py fails on a column without one.
COMMENT ON VIEW crawl_domain_mx IS 'Per crawl run and domain: its MX hosts summarised (coverage by the policy, TLSA, SMTP probe results).';
COMMENT ON COLUMN crawl_domain_mx.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN crawl_domain_mx.domain IS 'the domain (normalised A-label, lower case, no trailing dot)';
COMMENT ON COLUMN crawl_domain_mx.mx_hosts IS 'the MX hosts, by preference';
COMMENT ON COLUMN crawl_domain_mx.n_mx IS 'number of MX hosts';
COMMENT ON COLUMN crawl_domain_mx.n_covered IS 'MX hosts matched by the policy''s mx patterns';
COMMENT ON COLUMN crawl_domain_mx.n_uncovered IS 'MX hosts no pattern matches (RFC 8461 4.1)';
COMMENT ON COLUMN crawl_domain_mx.mismatch_subclass IS 'why the first uncovered MX is not covered';
COMMENT ON COLUMN crawl_domain_mx.any_tlsa IS 'any MX host has a TLSA record';
COMMENT ON COLUMN crawl_domain_mx.n_probed IS 'MX hosts probed over SMTP';
COMMENT ON COLUMN crawl_domain_mx.worst_starttls IS 'worst SMTP probe outcome over the MX hosts';
COMMENT ON COLUMN crawl_domain_mx.any_cert_invalid IS 'some MX host offered an invalid certificate';
COMMENT ON COLUMN crawl_domain_mx.any_no_starttls IS 'some MX host offered no STARTTLS';
COMMENT ON VIEW crawl_verdicts IS 'Per crawl run and domain: every verdict of the posture export, computed from the raw crawl tables.';
COMMENT ON COLUMN crawl_verdicts.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN crawl_verdicts.domain IS 'the domain (normalised A-label, lower case, no trailing dot)';
COMMENT ON COLUMN crawl_verdicts.rank IS 'the list''s rank of the domain (plain lists: the entry''s ordinal)';
COMMENT ON COLUMN crawl_verdicts.position IS 'line number in the source list';
COMMENT ON COLUMN crawl_verdicts.mx_status IS 'ok | none | null_mx | dns_error';
COMMENT ON COLUMN crawl_verdicts.mx_hosts IS 'the MX host names, '';''-joined, by preference';
COMMENT ON COLUMN crawl_verdicts.sts_record IS 'the _mta-sts TXT record: absent | valid | invalid | multiple | dns_error';
COMMENT ON COLUMN crawl_verdicts.sts_id IS 'the record''s id when valid';
COMMENT ON COLUMN crawl_verdicts.policy_fetch IS 'ok | not_attempted | dns_error | tcp_error | tls_error | http_error | redirect | too_large | timeout | syntax_error';
COMMENT ON COLUMN crawl_verdicts.policy_mode IS 'enforce | testing | none (valid policy only)';
COMMENT ON COLUMN crawl_verdicts.policy_max_age IS 'seconds (valid policy only)';
COMMENT ON COLUMN crawl_verdicts.policy_mx IS 'the policy''s mx patterns, '';''-joined';
COMMENT ON COLUMN crawl_verdicts.mx_policy_match IS 'all | some | none | n/a: MX hosts covered by the patterns (RFC 8461 4.1)';
COMMENT ON COLUMN crawl_verdicts.tlsrpt_record IS 'the _smtp._tls TXT record: absent | valid | invalid | multiple | dns_error';
COMMENT ON COLUMN crawl_verdicts.dnssec IS 'secure | insecure | bogus | unknown (AD bit on the MX answer)';
COMMENT ON COLUMN crawl_verdicts.tlsa IS 'yes | no | n/a: any TLSA record at _25._tcp.<mx>';
COMMENT ON COLUMN crawl_verdicts.mx_starttls IS 'worst over MX hosts of ok | no_starttls | cert_invalid | tcp_error; not_probed; n/a';
COMMENT ON COLUMN crawl_verdicts.misconfigured IS 'any of the four published classes';
COMMENT ON COLUMN crawl_verdicts.delivery_risk IS 'enforce mode and an MX a compliant sender must refuse';
COMMENT ON COLUMN crawl_verdicts.findings IS ''';''-joined finding codes of the record and policy parsers';
COMMENT ON COLUMN crawl_verdicts.misconfig_classes IS ''';''-joined: invalid_txt | policy_retrieval | mx_cert_invalid | mx_not_covered';
COMMENT ON COLUMN crawl_verdicts.mismatch_subclass IS 'why an MX is uncovered: wrong_tld | wrong_domain | extra_label | typo | mta_sts_in_pattern | other';
COMMENT ON COLUMN crawl_verdicts.policy_tls_subclass IS 'when policy_fetch = tls_error: name_mismatch | self_signed | expired | unknown_ca | no_certificate | other';
COMMENT ON COLUMN crawl_verdicts.policy_host_cname IS 'CNAME target of mta-sts.<domain> (third-party policy hosts)';
COMMENT ON COLUMN crawl_verdicts.sts_cname IS 'CNAME target of _mta-sts.<domain> when delegated';
COMMENT ON VIEW posture IS 'One row per domain per crawl run: the MTA-STS and TLS-RPT verdicts (exactly the columns of ''mtasts export posture'').';
COMMENT ON COLUMN posture.run_id IS 'the crawl run';
COMMENT ON COLUMN posture.domain IS 'the normalised list entry (A-label, lower case, no trailing dot)';
COMMENT ON COLUMN posture.rank IS 'the list''s rank of the domain (plain lists: the entry''s ordinal)';
COMMENT ON COLUMN posture.mx_status IS 'ok | none | null_mx | dns_error';
COMMENT ON COLUMN posture.mx_hosts IS 'the MX host names, '';''-joined, by preference';
COMMENT ON COLUMN posture.sts_record IS 'the _mta-sts TXT record: absent | valid | invalid | multiple | dns_error';
COMMENT ON COLUMN posture.sts_id IS 'the record''s id when valid';
COMMENT ON COLUMN posture.policy_fetch IS 'ok | not_attempted | dns_error | tcp_error | tls_error | http_error | redirect | too_large | timeout | host_unresponsive (the address stopped answering: circuit breaker) | host_busy (the domain''s time ran out waiting for the address) | syntax_error';
COMMENT ON COLUMN posture.policy_mode IS 'enforce | testing | none (valid policy only)';
COMMENT ON COLUMN posture.policy_max_age IS 'seconds (valid policy only)';
COMMENT ON COLUMN posture.policy_mx IS 'the policy''s mx patterns, '';''-joined';
COMMENT ON COLUMN posture.mx_policy_match IS 'all | some | none | n/a: MX hosts covered by the patterns (RFC 8461 4.1)';
COMMENT ON COLUMN posture.tlsrpt_record IS 'the _smtp._tls TXT record: absent | valid | invalid | multiple | dns_error';
COMMENT ON COLUMN posture.dnssec IS 'secure | insecure | bogus | unknown (AD bit on the MX answer)';
COMMENT ON COLUMN posture.tlsa IS 'yes | no | n/a: any TLSA record at _25._tcp.<mx>';
COMMENT ON COLUMN posture.mx_starttls IS 'worst over MX hosts of ok | host_busy | no_starttls | cert_invalid | tls_error | host_unresponsive | tcp_error; not_probed; n/a';
COMMENT ON COLUMN posture.misconfigured IS 'any of the four published classes';
COMMENT ON COLUMN posture.delivery_risk IS 'enforce mode and an MX a compliant sender must refuse';
COMMENT ON COLUMN posture.findings IS ''';''-joined finding codes of the record and policy parsers (docs/rfc-core.md)';
COMMENT ON COLUMN posture.misconfig_classes IS ''';''-joined: invalid_txt | policy_retrieval | mx_cert_invalid | mx_not_covered';
COMMENT ON COLUMN posture.mismatch_subclass IS 'why an MX is uncovered: wrong_tld | wrong_domain | extra_label | typo | mta_sts_in_pattern | other';
COMMENT ON COLUMN posture.policy_tls_subclass IS 'when policy_fetch = tls_error: name_mismatch | self_signed | expired | unknown_ca | no_certificate | other';
COMMENT ON COLUMN posture.policy_host_cname IS 'CNAME target of mta-sts.<domain> (third-party policy hosts)';
COMMENT ON COLUMN posture.sts_cname IS 'CNAME target of _mta-sts.<domain> when delegated';
COMMENT ON VIEW crawl_progress IS 'Per crawl run: entries accepted and domains completed so far (how far a killed run got).';
COMMENT ON COLUMN crawl_progress.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN crawl_progress.entries IS 'list entries read';
COMMENT ON COLUMN crawl_progress.accepted IS 'distinct valid domains to crawl';
COMMENT ON COLUMN crawl_progress.quarantined IS 'entries kept in quarantine (invalid or duplicate)';
COMMENT ON COLUMN crawl_progress.completed IS 'domains completed so far';
