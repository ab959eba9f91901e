-- 030: report-level views over the crawler's `posture` view (views/010_crawl.sql:
-- one row per domain per crawl run; mx_hosts, policy_mx, misconfig_classes and
-- mismatch_subclass are ';'-joined). Category definitions
-- (misconfigured, delivery_risk, classes, subclasses) belong to the crawler's
-- views and are only counted here; these views say how the report groups,
-- orders and compares them. Notebooks and tests read the same definitions.

-- Sampling weights (migration 007, `mtasts crawl --weights`): a domain stands for
-- `weight` domains of the population its stratum was sampled from (1 without a row).
-- Every count below that a rate is taken of is a weighted count, rounded: an estimate
-- of the population's count; unweighted runs give the plain counts.
CREATE OR REPLACE MACRO report_weighted(total) AS CAST(round(coalesce(total, 0)) AS BIGINT);
-- A weighted share's uncertainty is that of the sample, not of the weighted count. For a
-- share of all domains (the funnel, the trend) it is the stratified estimator's variance
-- (Cochran 1977, section 5A.5): sum over strata h of (W_h/W)^2 (1 - n_h/W_h) s_h^2 / n_h,
-- with W_h the domains stratum h stands for (its weights' sum), n_h those crawled, p_h the
-- share in the stratum (weighted: its weights are equal in a stratified design) and
-- s_h^2 = n_h p_h (1 - p_h) / (n_h - 1); a stratum crawled whole (weight 1)
-- adds nothing. Its effective sample size p (1 - p) / variance, never more than W (with no
-- variance: W, the census), is the n of the share's Wilson interval
-- (collectors/report/stats.py). Without weights every domain is its own census, n_eff = n.
-- A share of a subgroup (of record holders, of misconfigured domains) uses Kish's
-- effective sample size of the subgroup, (sum w)^2 / sum w^2 (Kish 1965, section 11.7).
CREATE OR REPLACE MACRO report_stratum_variance(w_h, n_h, y_w) AS
    CASE WHEN n_h > 1 AND w_h > n_h
         THEN w_h * w_h * (1 - n_h / w_h) * (coalesce(y_w, 0) / w_h) * (1 - coalesce(y_w, 0) / w_h) / (n_h - 1)
         ELSE 0 END;
CREATE OR REPLACE MACRO report_share_neff(w, y_w, variance_sum) AS
    CASE WHEN coalesce(w, 0) <= 0 THEN 0
         WHEN coalesce(variance_sum, 0) <= 0 THEN CAST(round(w) AS BIGINT)
         ELSE CAST(round(least(w, (y_w / w) * (1 - y_w / w) * w * w / variance_sum)) AS BIGINT) END;
CREATE OR REPLACE MACRO report_effective_n(sum_w, sum_w2) AS
    CAST(round(coalesce(sum_w, 0) * coalesce(sum_w, 0) / coalesce(nullif(sum_w2, 0), 1)) AS BIGINT);

CREATE OR REPLACE VIEW report_posture_weighted AS
SELECT p.*, coalesce(w.weight, 1.0) AS weight, coalesce(w.stratum, '') AS stratum
FROM posture p LEFT JOIN crawl_weights w ON w.run_id = p.run_id AND w.domain = p.domain;

-- Crawl runs in order, each with its month and the run before it.
CREATE OR REPLACE VIEW report_crawl_runs AS
SELECT run_id, started_at, finished_at, status, input_list, tool_version, parameters,
       strftime(started_at AT TIME ZONE 'UTC', '%Y-%m') AS month,
       row_number() OVER (ORDER BY started_at, run_id) AS run_order,
       lag(run_id) OVER (ORDER BY started_at, run_id) AS previous_run_id
FROM runs
WHERE kind = 'crawl' AND status = 'finished';

-- The adoption funnel's stages for one domain (RFC 8461 section 3: record,
-- then policy fetched over HTTPS, then a valid policy and its mode).
CREATE OR REPLACE VIEW report_domain_stages AS
SELECT run_id, domain, rank,
       mx_status = 'ok'                                   AS has_mx,
       sts_record IN ('valid', 'invalid', 'multiple')     AS has_record,
       sts_record = 'valid'                               AS valid_record,
       policy_fetch IN ('ok', 'syntax_error')             AS policy_fetched,
       policy_fetch = 'ok'                                AS valid_policy,
       policy_fetch = 'ok' AND policy_mode = 'enforce'    AS mode_enforce,
       policy_fetch = 'ok' AND policy_mode = 'testing'    AS mode_testing,
       policy_fetch = 'ok' AND policy_mode = 'none'       AS mode_none,
       tlsrpt_record = 'valid'                            AS tlsrpt_valid,
       dnssec = 'secure'                                  AS dnssec_secure,
       tlsa = 'yes'                                       AS dane_tlsa,
       misconfigured,
       delivery_risk,
       weight,
       stratum
FROM report_posture_weighted;

-- The funnel per run and per top-N bucket (cumulative: top 1k is inside top 10k).
-- A NULL bucket means the whole list. Counts are weighted (estimates for the population);
-- `<stage>_share_neff` is the effective sample size of the share `<stage>`/`domains`, and
-- `<stage>_neff` that of the stage's domains as the denominator of a subgroup's share.
CREATE OR REPLACE MACRO report_funnel(top_ns) AS TABLE
WITH strata AS (
    SELECT s.run_id, b.top_n, s.stratum, count(*) AS n_h, sum(s.weight) AS w_h, sum(s.weight * s.weight) AS w2_h,
           sum(s.weight) FILTER (WHERE s.has_mx) AS has_mx_w,
           sum(s.weight) FILTER (WHERE s.has_record) AS has_record_w,
           sum(s.weight) FILTER (WHERE s.valid_record) AS valid_record_w,
           sum(s.weight) FILTER (WHERE s.policy_fetched) AS policy_fetched_w,
           sum(s.weight) FILTER (WHERE s.valid_policy) AS valid_policy_w,
           sum(s.weight) FILTER (WHERE s.mode_enforce) AS mode_enforce_w,
           sum(s.weight) FILTER (WHERE s.mode_testing) AS mode_testing_w,
           sum(s.weight) FILTER (WHERE s.mode_none) AS mode_none_w,
           sum(s.weight) FILTER (WHERE s.tlsrpt_valid) AS tlsrpt_valid_w,
           sum(s.weight) FILTER (WHERE s.dnssec_secure) AS dnssec_secure_w,
           sum(s.weight) FILTER (WHERE s.dane_tlsa) AS dane_tlsa_w,
           sum(s.weight) FILTER (WHERE s.misconfigured) AS misconfigured_w,
           sum(s.weight) FILTER (WHERE s.delivery_risk) AS delivery_risk_w,
           sum(s.weight) FILTER (WHERE s.has_record AND s.tlsrpt_valid) AS record_and_tlsrpt_w,
           sum(s.weight * s.weight) FILTER (WHERE s.has_record) AS has_record_w2,
           sum(s.weight * s.weight) FILTER (WHERE s.valid_record) AS valid_record_w2,
           sum(s.weight * s.weight) FILTER (WHERE s.mode_enforce) AS mode_enforce_w2,
           sum(s.weight * s.weight) FILTER (WHERE s.misconfigured) AS misconfigured_w2
    FROM report_domain_stages s
    JOIN (SELECT unnest(top_ns) AS top_n) b ON b.top_n IS NULL OR s.rank <= b.top_n
    GROUP BY s.run_id, b.top_n, s.stratum)
SELECT run_id, top_n,
       report_weighted(sum(w_h)) AS domains,
       report_weighted(sum(has_mx_w)) AS has_mx,
       report_weighted(sum(has_record_w)) AS has_record,
       report_weighted(sum(valid_record_w)) AS valid_record,
       report_weighted(sum(policy_fetched_w)) AS policy_fetched,
       report_weighted(sum(valid_policy_w)) AS valid_policy,
       report_weighted(sum(mode_enforce_w)) AS mode_enforce,
       report_weighted(sum(mode_testing_w)) AS mode_testing,
       report_weighted(sum(mode_none_w)) AS mode_none,
       report_weighted(sum(tlsrpt_valid_w)) AS tlsrpt_valid,
       report_weighted(sum(dnssec_secure_w)) AS dnssec_secure,
       report_weighted(sum(dane_tlsa_w)) AS dane_tlsa,
       report_weighted(sum(misconfigured_w)) AS misconfigured,
       report_weighted(sum(delivery_risk_w)) AS delivery_risk,
       report_weighted(sum(record_and_tlsrpt_w)) AS record_and_tlsrpt,
       sum(n_h) AS sampled_domains,
       report_effective_n(sum(w_h), sum(w2_h)) AS domains_neff,
       report_effective_n(sum(has_record_w), sum(has_record_w2)) AS has_record_neff,
       report_effective_n(sum(valid_record_w), sum(valid_record_w2)) AS valid_record_neff,
       report_effective_n(sum(mode_enforce_w), sum(mode_enforce_w2)) AS mode_enforce_neff,
       report_effective_n(sum(misconfigured_w), sum(misconfigured_w2)) AS misconfigured_neff,
       report_share_neff(sum(w_h), coalesce(sum(has_mx_w), 0), sum(report_stratum_variance(w_h, n_h, has_mx_w))) AS has_mx_share_neff,
       report_share_neff(sum(w_h), coalesce(sum(has_record_w), 0), sum(report_stratum_variance(w_h, n_h, has_record_w))) AS has_record_share_neff,
       report_share_neff(sum(w_h), coalesce(sum(valid_record_w), 0), sum(report_stratum_variance(w_h, n_h, valid_record_w))) AS valid_record_share_neff,
       report_share_neff(sum(w_h), coalesce(sum(policy_fetched_w), 0), sum(report_stratum_variance(w_h, n_h, policy_fetched_w))) AS policy_fetched_share_neff,
       report_share_neff(sum(w_h), coalesce(sum(valid_policy_w), 0), sum(report_stratum_variance(w_h, n_h, valid_policy_w))) AS valid_policy_share_neff,
       report_share_neff(sum(w_h), coalesce(sum(mode_enforce_w), 0), sum(report_stratum_variance(w_h, n_h, mode_enforce_w))) AS mode_enforce_share_neff,
       report_share_neff(sum(w_h), coalesce(sum(mode_testing_w), 0), sum(report_stratum_variance(w_h, n_h, mode_testing_w))) AS mode_testing_share_neff,
       report_share_neff(sum(w_h), coalesce(sum(mode_none_w), 0), sum(report_stratum_variance(w_h, n_h, mode_none_w))) AS mode_none_share_neff,
       report_share_neff(sum(w_h), coalesce(sum(tlsrpt_valid_w), 0), sum(report_stratum_variance(w_h, n_h, tlsrpt_valid_w))) AS tlsrpt_valid_share_neff,
       report_share_neff(sum(w_h), coalesce(sum(dnssec_secure_w), 0), sum(report_stratum_variance(w_h, n_h, dnssec_secure_w))) AS dnssec_secure_share_neff,
       report_share_neff(sum(w_h), coalesce(sum(dane_tlsa_w), 0), sum(report_stratum_variance(w_h, n_h, dane_tlsa_w))) AS dane_tlsa_share_neff,
       report_share_neff(sum(w_h), coalesce(sum(misconfigured_w), 0), sum(report_stratum_variance(w_h, n_h, misconfigured_w))) AS misconfigured_share_neff,
       report_share_neff(sum(w_h), coalesce(sum(delivery_risk_w), 0), sum(report_stratum_variance(w_h, n_h, delivery_risk_w))) AS delivery_risk_share_neff
FROM strata
GROUP BY run_id, top_n;

-- One line per run for the month-over-month trend: the funnel's whole-list counts.
CREATE OR REPLACE VIEW report_run_summary AS
SELECT r.run_id, r.month, r.started_at, r.run_order,
       f.domains, f.has_record, f.valid_record, f.valid_policy, f.mode_enforce,
       f.mode_testing, f.mode_none, f.tlsrpt_valid, f.misconfigured, f.delivery_risk,
       f.has_record_share_neff, f.valid_policy_share_neff, f.mode_enforce_share_neff, f.misconfigured_share_neff
FROM report_crawl_runs r JOIN report_funnel([NULL::BIGINT]) f USING (run_id);

-- Misconfiguration classes (they overlap: a domain counts once in each of its classes).
CREATE OR REPLACE VIEW report_misconfig_classes AS
SELECT run_id, class, report_weighted(sum(weight)) AS domains
FROM (SELECT run_id, weight, unnest(string_split(misconfig_classes, ';')) AS class
      FROM report_posture_weighted WHERE coalesce(misconfig_classes, '') <> '')
GROUP BY ALL;

-- Where the policy fetch stopped, for domains whose record is valid (RFC 8461 section 3.3):
-- the crawler's policy_retrieval class.
CREATE OR REPLACE VIEW report_failure_stages AS
SELECT run_id, policy_fetch AS stage,
       CASE WHEN policy_fetch = 'tls_error' THEN coalesce(nullif(policy_tls_subclass, ''), 'other') END AS tls_subclass,
       report_weighted(sum(weight)) AS domains
FROM report_posture_weighted
WHERE list_contains(string_split(misconfig_classes, ';'), 'policy_retrieval')
GROUP BY ALL;

-- Why an MX is not covered by the policy's mx patterns (RFC 8461 section 4.1): the
-- crawler's mx_not_covered class.
CREATE OR REPLACE VIEW report_mismatch_subclasses AS
SELECT run_id, subclass, report_weighted(sum(weight)) AS domains,
       report_weighted(sum(weight) FILTER (WHERE policy_mode = 'enforce')) AS in_enforce_mode
FROM (SELECT run_id, policy_mode, weight,
             unnest(string_split(coalesce(nullif(mismatch_subclass, ''), 'other'), ';')) AS subclass
      FROM report_posture_weighted WHERE list_contains(string_split(misconfig_classes, ';'), 'mx_not_covered'))
GROUP BY ALL;

-- Domains an RFC-compliant sender would not deliver to (the crawler's delivery_risk).
CREATE OR REPLACE VIEW report_delivery_risk AS
SELECT run_id, domain, rank, policy_mode, policy_max_age, mx_policy_match,
       coalesce(mismatch_subclass, '') AS mismatch_subclass, mx_starttls,
       mx_hosts, policy_mx, misconfig_classes, weight
FROM report_posture_weighted
WHERE delivery_risk;

-- The organisation behind a host name: its last two labels, or three under a
-- two-letter ccTLD with a generic second level (example.co.uk). An
-- approximation of the registrable domain good enough to count providers.
CREATE OR REPLACE MACRO report_host_org(host) AS
CASE
  WHEN host IS NULL OR host = '' THEN NULL
  WHEN regexp_matches(rtrim(lower(host), '.'), '\.(co|com|net|org|ac|gov|edu|ne|or)\.[a-z]{2}$')
    THEN regexp_extract(rtrim(lower(host), '.'), '[^.]+\.[^.]+\.[^.]+$')
  ELSE regexp_extract(rtrim(lower(host), '.'), '[^.]+\.[^.]+$')
END;

-- Who serves the policies: the CNAME target's organisation of mta-sts.<domain>
-- (third party), or the domain itself when there is no CNAME (self-hosted).
CREATE OR REPLACE VIEW report_policy_hosts AS
WITH hosts AS (
  SELECT run_id, domain, weight,
         CASE WHEN coalesce(policy_host_cname, '') = '' THEN '(self-hosted)'
              WHEN report_host_org(policy_host_cname) = report_host_org(domain) THEN '(self-hosted)'
              ELSE report_host_org(policy_host_cname) END AS policy_host_org
  FROM report_posture_weighted WHERE sts_record = 'valid')
SELECT run_id, policy_host_org, report_weighted(domains) AS domains,
       domains / sum(domains) OVER (PARTITION BY run_id) AS share
FROM (SELECT run_id, policy_host_org, sum(weight) AS domains FROM hosts GROUP BY run_id, policy_host_org);

-- Which organisations run the MX hosts of MTA-STS domains (each domain counted
-- once per organisation).
CREATE OR REPLACE VIEW report_mx_providers AS
WITH orgs AS (
  SELECT DISTINCT run_id, domain, weight, report_host_org(unnest(string_split(mx_hosts, ';'))) AS mx_org
  FROM report_posture_weighted WHERE sts_record = 'valid' AND mx_status = 'ok')
SELECT o.run_id, o.mx_org, report_weighted(o.domains) AS domains, o.domains / t.domains AS share
FROM (SELECT run_id, mx_org, sum(weight) AS domains FROM orgs GROUP BY run_id, mx_org) o
JOIN (SELECT run_id, sum(weight) AS domains
      FROM (SELECT DISTINCT run_id, domain, weight FROM orgs) GROUP BY run_id) t USING (run_id);

-- Lifecycle events between consecutive crawl runs, per domain in both runs (a domain
-- may have several events between two runs: one row each).
--   policy_changed_same_id: the policy's mode, max_age or mx changed but the
--     record's id did not, so senders with a cached policy never refetch
--     (RFC 8461 section 3.1: the id must change whenever the policy changes);
--   id_changed_same_policy: a new id for an unchanged policy (harmless, costs refetches);
--   removed_without_mode_none: a record with an enforce/testing policy vanished
--     without a mode "none" policy first (RFC 8461 section 8.3), so cached
--     policies stay in force for up to max_age;
--   removed_after_mode_none: removed as section 8.3 says; published: new record;
--   mode_changed: the mode changed and the id did too;
--   policy_host_moved: mta-sts.<domain> became a CNAME to another host (a hosting provider);
--   policy_cert_expired / policy_cert_renewed: the policy fetch failed on an expired
--     certificate after it had worked / worked again after failing so;
--   mx_cert_lapsed / mx_cert_renewed: a record holder's MX went from STARTTLS with a valid
--     certificate to an invalid one / back (the probe sees validity, not its cause);
--   mx_migrated_uncovered: the MX hosts changed, the policy did not, and the new MX are
--     not covered by it (a migration that left the policy's mx stale, RFC 8461 4.1);
--   tlsrpt_added: a valid TLS-RPT record appeared (RFC 8460 3).
-- Seen at the crawl interval: a short "none" phase between two runs is missed.
CREATE OR REPLACE VIEW report_lifecycle_events AS
WITH pairs AS (
  SELECT r.run_id, r.previous_run_id, r.month,
         c.domain, c.weight,
         p.sts_record AS before_record, c.sts_record AS after_record,
         p.sts_id AS before_id, c.sts_id AS after_id,
         p.policy_fetch = 'ok' AS before_policy_ok, c.policy_fetch = 'ok' AS after_policy_ok,
         p.policy_fetch = 'tls_error' AND p.policy_tls_subclass = 'expired' AS before_cert_expired,
         c.policy_fetch = 'tls_error' AND c.policy_tls_subclass = 'expired' AS after_cert_expired,
         p.policy_mode AS before_mode, c.policy_mode AS after_mode,
         p.policy_max_age AS before_max_age, c.policy_max_age AS after_max_age,
         list_sort(string_split(p.policy_mx, ';')) AS before_mx,
         list_sort(string_split(c.policy_mx, ';')) AS after_mx,
         coalesce(p.policy_host_cname, '') AS before_cname, coalesce(c.policy_host_cname, '') AS after_cname,
         p.mx_starttls AS before_starttls, c.mx_starttls AS after_starttls,
         p.mx_hosts AS before_mx_hosts, c.mx_hosts AS after_mx_hosts,
         p.mx_policy_match AS before_match, c.mx_policy_match AS after_match,
         p.tlsrpt_record AS before_tlsrpt, c.tlsrpt_record AS after_tlsrpt
  FROM report_crawl_runs r
  JOIN report_posture_weighted c ON c.run_id = r.run_id
  JOIN report_posture_weighted p ON p.run_id = r.previous_run_id AND p.domain = c.domain
  WHERE r.previous_run_id IS NOT NULL),
classified AS (
  SELECT *, unnest(list_filter([
    CASE
      WHEN before_record = 'valid' AND after_record = 'valid' AND before_policy_ok AND after_policy_ok
           AND before_id = after_id
           AND (before_mode IS DISTINCT FROM after_mode OR before_max_age IS DISTINCT FROM after_max_age
                OR before_mx IS DISTINCT FROM after_mx)
        THEN 'policy_changed_same_id'
      WHEN before_record = 'valid' AND after_record = 'valid' AND before_policy_ok AND after_policy_ok
           AND before_id <> after_id AND before_mode = after_mode
           AND before_max_age IS NOT DISTINCT FROM after_max_age AND before_mx IS NOT DISTINCT FROM after_mx
        THEN 'id_changed_same_policy'
      WHEN before_record = 'valid' AND before_policy_ok AND before_mode IN ('enforce', 'testing')
           AND after_record = 'absent'
        THEN 'removed_without_mode_none'
      WHEN before_record = 'valid' AND before_policy_ok AND before_mode = 'none' AND after_record = 'absent'
        THEN 'removed_after_mode_none'
      WHEN before_record = 'absent' AND after_record = 'valid'
        THEN 'published'
      WHEN before_policy_ok AND after_policy_ok AND before_mode <> after_mode AND before_id <> after_id
        THEN 'mode_changed'
    END,
    CASE WHEN before_record = 'valid' AND after_record = 'valid' AND before_cname = '' AND after_cname <> ''
         THEN 'policy_host_moved' END,
    CASE WHEN after_record = 'valid' AND before_policy_ok AND after_cert_expired THEN 'policy_cert_expired'
         WHEN before_record = 'valid' AND before_cert_expired AND after_policy_ok THEN 'policy_cert_renewed' END,
    CASE WHEN before_record = 'valid' AND after_record = 'valid'
              AND before_starttls = 'ok' AND after_starttls = 'cert_invalid' THEN 'mx_cert_lapsed'
         WHEN before_record = 'valid' AND after_record = 'valid'
              AND before_starttls = 'cert_invalid' AND after_starttls = 'ok' THEN 'mx_cert_renewed' END,
    CASE WHEN before_policy_ok AND after_policy_ok AND before_match = 'all' AND after_match IN ('some', 'none')
              AND before_mx_hosts IS DISTINCT FROM after_mx_hosts AND before_mx IS NOT DISTINCT FROM after_mx
         THEN 'mx_migrated_uncovered' END,
    CASE WHEN before_tlsrpt = 'absent' AND after_tlsrpt = 'valid' THEN 'tlsrpt_added' END
  ], lambda e: e IS NOT NULL)) AS event
  FROM pairs)
SELECT run_id, previous_run_id, month, domain, event,
       event IN ('policy_changed_same_id', 'removed_without_mode_none') AS violates_rfc,
       CASE event WHEN 'policy_changed_same_id' THEN 'RFC 8461 3.1'
                  WHEN 'removed_without_mode_none' THEN 'RFC 8461 8.3' END AS rfc_section,
       before_id, after_id, before_mode, after_mode, before_max_age, after_max_age,
       array_to_string(before_mx, ';') AS before_mx, array_to_string(after_mx, ';') AS after_mx,
       weight
FROM classified;

-- The policy text as served (capped at 64 KiB by the crawler; a body that is not
-- UTF-8 is shown with its bytes as \xNN), for the domains a report quotes:
-- delivery risk and syntax errors.
CREATE OR REPLACE VIEW report_policy_texts AS
SELECT p.run_id, p.domain, p.rank, p.policy_fetch, p.delivery_risk, p.policy_mode,
       coalesce(try(decode(c.body)), CAST(c.body AS VARCHAR)) AS policy_text
FROM posture p
JOIN crawl_policy c ON c.run_id = p.run_id AND c.domain = p.domain
WHERE c.body IS NOT NULL AND (p.delivery_risk OR p.policy_fetch = 'syntax_error');

-- Each notice a sending user got about an undelivered lab test message, with its
-- text (remote text: escape it when shown). The match (recipient address or the
-- original Message-ID) is the one notification_timing (views/020_lab.sql) uses.
CREATE OR REPLACE VIEW report_lab_notices AS
SELECT d.provider, d.server_label, d.address, d.sent_at, n.received_at, n.kind,
       n.mentions_tls, n.mentions_mta_sts, n.subject, n.notice_from, n.text,
       date_diff('second', d.sent_at, n.received_at) AS after_s
FROM lab_deliveries d
JOIN notifications n
  ON list_contains(n.recipients, d.address)
  OR (d.message_id IS NOT NULL AND list_contains(n.original_message_ids, d.message_id))
WHERE NOT d.delivered;

-- The data dictionary of these views (duckdb_columns().comment): one line per column,
-- re-applied with the views; tests/store/test_dictionary.py fails on a column without one.
COMMENT ON VIEW report_crawl_runs IS 'Crawl runs in order, with their month and the run before them of the same list.';
COMMENT ON COLUMN report_crawl_runs.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN report_crawl_runs.started_at IS 'when the run started (UTC)';
COMMENT ON COLUMN report_crawl_runs.finished_at IS 'when the run ended (NULL while running or after a kill)';
COMMENT ON COLUMN report_crawl_runs.status IS 'running, finished or failed';
COMMENT ON COLUMN report_crawl_runs.input_list IS 'the run''s input as a person names it (list name or files read)';
COMMENT ON COLUMN report_crawl_runs.tool_version IS 'version of the observatory that wrote the row';
COMMENT ON COLUMN report_crawl_runs.parameters IS 'the run''s flags and settings (JSON)';
COMMENT ON COLUMN report_crawl_runs.month IS 'the month (YYYY-MM, UTC) of the run''s start';
COMMENT ON COLUMN report_crawl_runs.run_order IS '1 for the list''s first run, then 2, 3, ...';
COMMENT ON COLUMN report_crawl_runs.previous_run_id IS 'the crawl run of the same list before this one';
COMMENT ON VIEW report_domain_stages IS 'Per crawl run and domain: one boolean per stage of the MTA-STS funnel.';
COMMENT ON COLUMN report_domain_stages.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN report_domain_stages.domain IS 'the domain (normalised A-label, lower case, no trailing dot)';
COMMENT ON COLUMN report_domain_stages.rank IS 'the list''s rank of the domain (plain lists: the entry''s ordinal)';
COMMENT ON COLUMN report_domain_stages.has_mx IS 'the domain has MX records';
COMMENT ON COLUMN report_domain_stages.has_record IS 'a _mta-sts TXT record starting v=STSv1';
COMMENT ON COLUMN report_domain_stages.valid_record IS 'the record is valid (RFC 8461 3.1)';
COMMENT ON COLUMN report_domain_stages.policy_fetched IS 'the policy was fetched (HTTP 200 within the size cap)';
COMMENT ON COLUMN report_domain_stages.valid_policy IS 'the policy parsed as valid (RFC 8461 3.2)';
COMMENT ON COLUMN report_domain_stages.mode_enforce IS 'policy mode enforce';
COMMENT ON COLUMN report_domain_stages.mode_testing IS 'policy mode testing';
COMMENT ON COLUMN report_domain_stages.mode_none IS 'policy mode none';
COMMENT ON COLUMN report_domain_stages.tlsrpt_valid IS 'a valid TLS-RPT record (RFC 8460 3)';
COMMENT ON COLUMN report_domain_stages.dnssec_secure IS 'the MX answer was DNSSEC-validated';
COMMENT ON COLUMN report_domain_stages.dane_tlsa IS 'an MX host has TLSA records (DANE)';
COMMENT ON COLUMN report_domain_stages.misconfigured IS 'any of the four published classes';
COMMENT ON COLUMN report_domain_stages.delivery_risk IS 'enforce mode and an MX a compliant sender must refuse';
COMMENT ON VIEW report_run_summary IS 'One line per crawl run with the funnel counts, for the trend.';
COMMENT ON COLUMN report_run_summary.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN report_run_summary.month IS 'the month (YYYY-MM, UTC) of the run''s start';
COMMENT ON COLUMN report_run_summary.started_at IS 'when the run started';
COMMENT ON COLUMN report_run_summary.run_order IS '1 for the list''s first run, then 2, 3, ...';
COMMENT ON COLUMN report_run_summary.domains IS 'number of domains';
COMMENT ON COLUMN report_run_summary.has_record_share_neff IS 'effective sample size of the share of domains with a record (stratified design; the n of its interval)';
COMMENT ON COLUMN report_run_summary.valid_policy_share_neff IS 'effective sample size of the share with a valid policy (stratified design)';
COMMENT ON COLUMN report_run_summary.mode_enforce_share_neff IS 'effective sample size of the share in enforce mode (stratified design)';
COMMENT ON COLUMN report_run_summary.misconfigured_share_neff IS 'effective sample size of the share misconfigured (stratified design)';
COMMENT ON COLUMN report_domain_stages.stratum IS 'the sampling stratum the domain was drawn from ('''' without weights)';
COMMENT ON COLUMN report_run_summary.has_record IS 'domains with a _mta-sts record';
COMMENT ON COLUMN report_run_summary.valid_record IS 'domains with a valid record';
COMMENT ON COLUMN report_run_summary.valid_policy IS 'domains with a valid policy';
COMMENT ON COLUMN report_run_summary.mode_enforce IS 'domains in enforce mode';
COMMENT ON COLUMN report_run_summary.mode_testing IS 'domains in testing mode';
COMMENT ON COLUMN report_run_summary.mode_none IS 'domains in mode none';
COMMENT ON COLUMN report_run_summary.tlsrpt_valid IS 'domains with a valid TLS-RPT record';
COMMENT ON COLUMN report_run_summary.misconfigured IS 'misconfigured domains';
COMMENT ON COLUMN report_run_summary.delivery_risk IS 'domains at delivery risk';
COMMENT ON VIEW report_misconfig_classes IS 'Domains per misconfiguration class and crawl run (a domain can be in several classes).';
COMMENT ON COLUMN report_misconfig_classes.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN report_misconfig_classes.class IS 'invalid_txt | policy_retrieval | mx_cert_invalid | mx_not_covered';
COMMENT ON COLUMN report_misconfig_classes.domains IS 'number of domains';
COMMENT ON VIEW report_failure_stages IS 'Per crawl run: where policy fetches failed (stage, and TLS subclass) and how many domains.';
COMMENT ON COLUMN report_failure_stages.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN report_failure_stages.stage IS 'the policy fetch outcome (dns_error, tcp_error, tls_error, http_error, ...)';
COMMENT ON COLUMN report_failure_stages.tls_subclass IS 'for tls_error: why the certificate was refused';
COMMENT ON COLUMN report_failure_stages.domains IS 'number of domains';
COMMENT ON VIEW report_mismatch_subclasses IS 'Per crawl run: why MX hosts were not covered by the policy, and how many in enforce mode.';
COMMENT ON COLUMN report_mismatch_subclasses.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN report_mismatch_subclasses.subclass IS 'wrong_tld | wrong_domain | extra_label | typo | mta_sts_in_pattern | other';
COMMENT ON COLUMN report_mismatch_subclasses.domains IS 'number of domains';
COMMENT ON COLUMN report_mismatch_subclasses.in_enforce_mode IS 'of those domains, in enforce mode';
COMMENT ON VIEW report_delivery_risk IS 'Enforce-mode domains an RFC 8461 compliant sender would not deliver to (an MX it must refuse).';
COMMENT ON COLUMN report_delivery_risk.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN report_delivery_risk.domain IS 'the domain (normalised A-label, lower case, no trailing dot)';
COMMENT ON COLUMN report_delivery_risk.rank IS 'the list''s rank of the domain (plain lists: the entry''s ordinal)';
COMMENT ON COLUMN report_delivery_risk.policy_mode IS 'enforce | testing | none (valid policy only)';
COMMENT ON COLUMN report_delivery_risk.policy_max_age IS 'seconds (valid policy only)';
COMMENT ON COLUMN report_delivery_risk.mx_policy_match IS 'all | some | none | n/a: MX hosts covered by the patterns (RFC 8461 4.1)';
COMMENT ON COLUMN report_delivery_risk.mismatch_subclass IS 'why an MX is uncovered: wrong_tld | wrong_domain | extra_label | typo | mta_sts_in_pattern | other';
COMMENT ON COLUMN report_delivery_risk.mx_starttls IS 'worst over MX hosts of ok | no_starttls | cert_invalid | tcp_error; not_probed; n/a';
COMMENT ON COLUMN report_delivery_risk.mx_hosts IS 'the MX host names, '';''-joined, by preference';
COMMENT ON COLUMN report_delivery_risk.policy_mx IS 'the policy''s mx patterns, '';''-joined';
COMMENT ON COLUMN report_delivery_risk.misconfig_classes IS ''';''-joined: invalid_txt | policy_retrieval | mx_cert_invalid | mx_not_covered';
COMMENT ON VIEW report_policy_hosts IS 'Per crawl run: which organisations serve the policies (mta-sts.<domain> CNAME target).';
COMMENT ON COLUMN report_policy_hosts.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN report_policy_hosts.policy_host_org IS 'registered domain of the policy host''s CNAME target, or self-hosted';
COMMENT ON COLUMN report_policy_hosts.domains IS 'number of domains';
COMMENT ON COLUMN report_policy_hosts.share IS 'share of the run''s domains (0 to 1)';
COMMENT ON VIEW report_mx_providers IS 'Per crawl run: which organisations run the MX hosts of MTA-STS domains.';
COMMENT ON COLUMN report_mx_providers.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN report_mx_providers.mx_org IS 'registered domain of the MX host (the operator)';
COMMENT ON COLUMN report_mx_providers.domains IS 'number of domains';
COMMENT ON COLUMN report_mx_providers.share IS 'share of the run''s domains (0 to 1)';
COMMENT ON VIEW report_lifecycle_events IS 'Policy changes between consecutive crawl runs of a list, flagged when they break RFC 8461 (3.1, 8.3).';
COMMENT ON COLUMN report_lifecycle_events.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN report_lifecycle_events.previous_run_id IS 'the crawl run of the same list before this one';
COMMENT ON COLUMN report_lifecycle_events.month IS 'the month (YYYY-MM, UTC) of the run''s start';
COMMENT ON COLUMN report_lifecycle_events.domain IS 'the domain (normalised A-label, lower case, no trailing dot)';
COMMENT ON COLUMN report_lifecycle_events.event IS 'the change: new_policy, id_changed, mode_changed, max_age_changed, mx_changed, removed, ...';
COMMENT ON COLUMN report_lifecycle_events.violates_rfc IS 'the change breaks RFC 8461 (e.g. policy changed without a new id)';
COMMENT ON COLUMN report_lifecycle_events.rfc_section IS 'the RFC 8461 section the change is judged by';
COMMENT ON COLUMN report_lifecycle_events.before_id IS 'record id in the previous run';
COMMENT ON COLUMN report_lifecycle_events.after_id IS 'record id in this run';
COMMENT ON COLUMN report_lifecycle_events.before_mode IS 'policy mode in the previous run';
COMMENT ON COLUMN report_lifecycle_events.after_mode IS 'policy mode in this run';
COMMENT ON COLUMN report_lifecycle_events.before_max_age IS 'max_age in the previous run';
COMMENT ON COLUMN report_lifecycle_events.after_max_age IS 'max_age in this run';
COMMENT ON COLUMN report_lifecycle_events.before_mx IS 'mx patterns in the previous run';
COMMENT ON COLUMN report_lifecycle_events.after_mx IS 'mx patterns in this run';
COMMENT ON VIEW report_policy_texts IS 'The policy bodies of domains whose policy is invalid or puts delivery at risk, for quoting.';
COMMENT ON COLUMN report_policy_texts.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN report_policy_texts.domain IS 'the domain (normalised A-label, lower case, no trailing dot)';
COMMENT ON COLUMN report_policy_texts.rank IS 'the list''s rank of the domain (plain lists: the entry''s ordinal)';
COMMENT ON COLUMN report_policy_texts.policy_fetch IS 'the policy fetch outcome';
COMMENT ON COLUMN report_policy_texts.delivery_risk IS 'the domain is at delivery risk';
COMMENT ON COLUMN report_policy_texts.policy_mode IS 'the policy''s mode: enforce | testing | none (RFC 8461 3.2)';
COMMENT ON COLUMN report_policy_texts.policy_text IS 'the policy body as served (remote text: escape before display)';
COMMENT ON VIEW report_lab_notices IS 'Every notice a lab sender''s user received, with the time since sending.';
COMMENT ON COLUMN report_lab_notices.provider IS 'the sending mail provider under test (e.g. gmail)';
COMMENT ON COLUMN report_lab_notices.server_label IS 'the lab server (a to f) a test address belongs to';
COMMENT ON COLUMN report_lab_notices.address IS 'the test address (<uuid>@<label>.<lab domain>)';
COMMENT ON COLUMN report_lab_notices.sent_at IS 'when the test message was sent (UTC)';
COMMENT ON COLUMN report_lab_notices.received_at IS 'when the notice arrived';
COMMENT ON COLUMN report_lab_notices.kind IS 'delay, failure, success or unknown';
COMMENT ON COLUMN report_lab_notices.mentions_tls IS 'the notice''s text mentions TLS';
COMMENT ON COLUMN report_lab_notices.mentions_mta_sts IS 'the notice''s text mentions MTA-STS';
COMMENT ON COLUMN report_lab_notices.subject IS 'Subject header';
COMMENT ON COLUMN report_lab_notices.notice_from IS 'From header of the notice';
COMMENT ON COLUMN report_lab_notices.text IS 'the notice''s text (remote text: escape before display)';
COMMENT ON COLUMN report_lab_notices.after_s IS 'seconds from sending to this notice';

-- report_posture_weighted: the posture columns mean what they mean in posture.
COMMENT ON VIEW report_posture_weighted IS 'The posture view with each domain''s sampling weight (crawl_weights; 1 when the run has none) and stratum: what every weighted rate of the report counts.';
COMMENT ON COLUMN report_posture_weighted.run_id IS 'the crawl run';
COMMENT ON COLUMN report_posture_weighted.domain IS 'the normalised list entry (A-label, lower case, no trailing dot)';
COMMENT ON COLUMN report_posture_weighted.rank IS 'the list''s rank of the domain (plain lists: the entry''s ordinal)';
COMMENT ON COLUMN report_posture_weighted.mx_status IS 'ok | none | null_mx | dns_error';
COMMENT ON COLUMN report_posture_weighted.mx_hosts IS 'the MX host names, '';''-joined, by preference';
COMMENT ON COLUMN report_posture_weighted.sts_record IS 'the _mta-sts TXT record: absent | valid | invalid | multiple | dns_error';
COMMENT ON COLUMN report_posture_weighted.sts_id IS 'the record''s id when valid';
COMMENT ON COLUMN report_posture_weighted.policy_fetch IS 'ok | not_attempted | dns_error | tcp_error | tls_error | http_error | redirect | too_large | timeout | syntax_error';
COMMENT ON COLUMN report_posture_weighted.policy_mode IS 'enforce | testing | none (valid policy only)';
COMMENT ON COLUMN report_posture_weighted.policy_max_age IS 'seconds (valid policy only)';
COMMENT ON COLUMN report_posture_weighted.policy_mx IS 'the policy''s mx patterns, '';''-joined';
COMMENT ON COLUMN report_posture_weighted.mx_policy_match IS 'all | some | none | n/a: MX hosts covered by the patterns (RFC 8461 4.1)';
COMMENT ON COLUMN report_posture_weighted.tlsrpt_record IS 'the _smtp._tls TXT record: absent | valid | invalid | multiple | dns_error';
COMMENT ON COLUMN report_posture_weighted.dnssec IS 'secure | insecure | bogus | unknown (AD bit on the MX answer)';
COMMENT ON COLUMN report_posture_weighted.tlsa IS 'yes | no | n/a: any TLSA record at _25._tcp.<mx>';
COMMENT ON COLUMN report_posture_weighted.mx_starttls IS 'worst over MX hosts of ok | no_starttls | cert_invalid | tcp_error; not_probed; n/a';
COMMENT ON COLUMN report_posture_weighted.misconfigured IS 'any of the four published classes';
COMMENT ON COLUMN report_posture_weighted.delivery_risk IS 'enforce mode and an MX a compliant sender must refuse';
COMMENT ON COLUMN report_posture_weighted.findings IS ''';''-joined finding codes of the record and policy parsers (docs/rfc-core.md)';
COMMENT ON COLUMN report_posture_weighted.misconfig_classes IS ''';''-joined: invalid_txt | policy_retrieval | mx_cert_invalid | mx_not_covered';
COMMENT ON COLUMN report_posture_weighted.mismatch_subclass IS 'why an MX is uncovered: wrong_tld | wrong_domain | extra_label | typo | mta_sts_in_pattern | other';
COMMENT ON COLUMN report_posture_weighted.policy_tls_subclass IS 'when policy_fetch = tls_error: name_mismatch | self_signed | expired | unknown_ca | no_certificate | other';
COMMENT ON COLUMN report_posture_weighted.policy_host_cname IS 'CNAME target of mta-sts.<domain> (third-party policy hosts)';
COMMENT ON COLUMN report_posture_weighted.sts_cname IS 'CNAME target of _mta-sts.<domain> when delegated';
COMMENT ON COLUMN report_posture_weighted.weight IS 'how many domains of the population this domain stands for (crawl_weights.weight; 1 without weights)';
COMMENT ON COLUMN report_posture_weighted.stratum IS 'the sampling stratum (crawl_weights.stratum; NULL without weights)';
COMMENT ON COLUMN report_delivery_risk.weight IS 'the domain''s sampling weight (how many domains it stands for; 1 without weights)';
COMMENT ON COLUMN report_domain_stages.weight IS 'the domain''s sampling weight (how many domains it stands for; 1 without weights)';
COMMENT ON COLUMN report_lifecycle_events.weight IS 'the domain''s sampling weight (how many domains it stands for; 1 without weights)';
