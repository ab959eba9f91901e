-- Derived views over the audit lab's evidence (tables in migrations/003_lab.sql). Re-applied on
-- every migrate, so each view has exactly this one definition (shared by notebooks and tests).
--
-- The lab (issue 5/6): servers A valid certificate, B no TLS, C IPv6 only, D untrusted
-- certificate with the wrong name, E TLS required, F no TLS and no MTA-STS record; all but F
-- under an enforce-mode policy. Test addresses are <uuid>@<label>.<lab domain> (the published
-- lab: <uuid>@<label>.audit.<domain>): the server label is the first label of the domain.

-- What each server label is and what an MTA-STS-enforcing sender must do there (RFC 8461 4.2, 5),
-- and what a DANE sender must do (RFC 7672) in a lab whose MX hosts A-E publish TLSA 3 1 1 of the
-- key they serve (our local lab; lab_sender_profiles.tlsa_labels says which did): B offers no
-- STARTTLS (refuse, RFC 7672 2.2), D serves that key in a self-signed certificate for the wrong
-- name (deliver: DANE-EE checks neither name nor issuer, RFC 7672 3.1.1), F has no TLSA record
-- (deliver, unless DANE is required of every host). The store knows no collector, so this is a
-- copy of the lab's design (collectors/lab/design.py, SERVERS); tests/lab/test_design.py holds
-- the two equal.
CREATE OR REPLACE VIEW lab_servers AS
SELECT * FROM (VALUES
    ('a', 'valid certificate',                           TRUE,  'deliver', 'deliver'),
    ('b', 'no TLS',                                      TRUE,  'refuse',  'refuse'),
    ('c', 'IPv6 only, valid certificate',                TRUE,  'deliver', 'deliver'),
    ('d', 'untrusted certificate with the wrong name',   TRUE,  'refuse',  'deliver'),
    ('e', 'TLS required, valid certificate',             TRUE,  'deliver', 'deliver'),
    ('f', 'no TLS and no MTA-STS record (control)',      FALSE, 'deliver', 'deliver')
) AS t(server_label, setup, under_enforce_policy, enforcing_sender_must, dane_sender_must);

-- Each sender profile of the local lab as last started (evidence/senders.json): its MTA, TLS
-- policy and notice timers (the MTA's own parameter names), printed beside timing comparisons.
CREATE OR REPLACE VIEW lab_sender_profile_latest AS
SELECT provider, arg_max(mta, lab_started_at) AS mta, arg_max(mta_version, lab_started_at) AS mta_version,
       arg_max(mta_sts, lab_started_at) AS mta_sts, arg_max(policy_cache, lab_started_at) AS policy_cache,
       arg_max(dane, lab_started_at) AS dane, arg_max(notices, lab_started_at) AS notices,
       arg_max(timers, lab_started_at) AS notice_timers, arg_max(tlsa_labels, lab_started_at) AS tlsa_labels,
       max(lab_started_at) AS lab_started_at
FROM lab_sender_profiles GROUP BY provider;

-- Every test address seen anywhere: the ledger, messages received at the lab, Postfix deliveries.
-- With --lab-domain given, addresses under those domains; otherwise UUID local parts (and the ledger's).
CREATE OR REPLACE VIEW lab_addresses AS
WITH seen AS (
    SELECT lower(to_addr) AS address FROM ledger
    UNION SELECT lower(coalesce(original_recipient, recipient)) FROM received_messages
    UNION SELECT lower(coalesce(orig_recipient, recipient)) FROM postfix_deliveries
), parts AS (
    SELECT address, split_part(address, '@', 1) AS local_part, split_part(address, '@', 2) AS domain
    FROM seen WHERE address LIKE '%_@_%'
)
SELECT address, local_part, domain, split_part(domain, '.', 1) AS server_label
FROM parts
WHERE address IN (SELECT lower(to_addr) FROM ledger)
   OR ((SELECT count(*) FROM lab_domains) > 0
       AND EXISTS (SELECT 1 FROM lab_domains d
                   WHERE parts.domain = d.domain OR parts.domain LIKE '%.' || d.domain))
   OR ((SELECT count(*) FROM lab_domains) = 0
       AND regexp_matches(local_part, '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$'));

-- Evidence that a test message reached a lab server: the recorder / published lab, or a
-- receiving Postfix's local delivery (with the client and TLS of the smtpd session).
CREATE OR REPLACE VIEW lab_receptions AS
SELECT lower(coalesce(r.original_recipient, r.recipient)) AS address, r.received_at,
       r.client_address, r.tls_protocol, r.tls_cipher, r.sender, r.message_id, r.source AS evidence
FROM received_messages r
UNION ALL
SELECT lower(coalesce(d.orig_recipient, d.recipient)), d.logged_at, m.client_addr, m.tls_protocol,
       m.tls_cipher, coalesce(m.sender, d.sender), coalesce(m.message_id, d.message_id), 'postfix_log'
FROM postfix_deliveries d
JOIN postfix_messages m ON m.message_key = d.message_key
WHERE d.status = 'sent' AND d.daemon IN ('local', 'virtual', 'pipe', 'lmtp') AND m.origin = 'smtpd';

-- A sending Postfix's attempts at a test address (smtp client side), with the TLS it used.
CREATE OR REPLACE VIEW lab_send_attempts AS
SELECT lower(coalesce(d.orig_recipient, d.recipient)) AS address, d.logged_at, d.queue_id, d.message_key,
       d.sender, d.message_id, d.relay_host, d.relay_addr, d.status, d.dsn, d.reason,
       d.tls_trust, d.tls_protocol, d.tls_cipher, d.tls_problem, d.host AS sending_host,
       m.queued_at, m.first_seen_at
FROM postfix_deliveries d
LEFT JOIN postfix_messages m ON m.message_key = d.message_key
WHERE d.daemon IN ('smtp', 'relay') OR d.program LIKE '%/smtp';

-- Per test address: provider, server label, sent at, delivered or not, received at, TLS, client.
CREATE OR REPLACE VIEW lab_deliveries AS
WITH led AS (
    -- An address may have several ledger rows: 'mtasts lab addresses' records it when it is
    -- made, 'mtasts lab sent' when the message went out. The send is the latest row; the
    -- Message-ID the latest one known.
    SELECT lower(to_addr) AS address, arg_max(provider, sent_at) AS provider, max(sent_at) AS sent_at,
           arg_max(from_addr, sent_at) AS from_addr,
           arg_max(message_id, sent_at) FILTER (WHERE message_id IS NOT NULL) AS message_id
    FROM ledger GROUP BY 1
), rec AS (
    SELECT address, min(received_at) AS received_at,
           arg_min(client_address, received_at) AS client_address,
           arg_min(tls_protocol, received_at) AS tls_protocol,
           arg_min(tls_cipher, received_at) AS tls_cipher,
           arg_min(sender, received_at) AS sender,
           arg_min(message_id, received_at) AS message_id,
           string_agg(DISTINCT evidence, ',') AS evidence,
           count(*) AS receptions
    FROM lab_receptions GROUP BY 1
), att AS (
    SELECT address, count(*) AS attempts,
           min(coalesce(queued_at, first_seen_at, logged_at)) AS first_queued_at,
           min(logged_at) FILTER (WHERE status = 'sent') AS sent_ok_at,
           arg_min(tls_protocol, logged_at) FILTER (WHERE status = 'sent') AS sent_tls_protocol,
           arg_min(tls_cipher, logged_at) FILTER (WHERE status = 'sent') AS sent_tls_cipher,
           arg_min(tls_trust, logged_at) FILTER (WHERE status = 'sent') AS sent_tls_trust,
           arg_max(status, logged_at) AS last_status,
           arg_max(reason, logged_at) AS last_reason,
           arg_max(dsn, logged_at) AS last_dsn,
           arg_min(sender, logged_at) AS sender,
           arg_min(message_id, logged_at) AS message_id
    FROM lab_send_attempts GROUP BY 1
)
SELECT a.address,
       coalesce(led.provider, nullif(split_part(coalesce(led.from_addr, rec.sender, att.sender), '@', 2), ''))
           AS provider,
       a.server_label,
       coalesce(led.sent_at, att.first_queued_at) AS sent_at,
       (rec.address IS NOT NULL OR att.sent_ok_at IS NOT NULL) AS delivered,
       coalesce(rec.received_at, att.sent_ok_at) AS received_at,
       coalesce(rec.tls_protocol, att.sent_tls_protocol) AS tls_protocol,
       coalesce(rec.tls_cipher, att.sent_tls_cipher) AS tls_cipher,
       att.sent_tls_trust AS sender_tls_trust,
       rec.client_address,
       coalesce(led.from_addr, rec.sender, att.sender) AS sender,
       coalesce(led.message_id, rec.message_id, att.message_id) AS message_id,
       att.attempts AS send_attempts,
       att.last_status AS sender_last_status,
       att.last_dsn AS sender_last_dsn,
       att.last_reason AS sender_last_reason,
       CASE WHEN rec.address IS NOT NULL THEN rec.evidence
            WHEN att.sent_ok_at IS NOT NULL THEN 'sender_log' END AS delivery_evidence,
       led.address IS NOT NULL AS in_ledger
FROM lab_addresses a
LEFT JOIN led ON led.address = a.address
LEFT JOIN rec ON rec.address = a.address
LEFT JOIN att ON att.address = a.address;

-- Per provider and server label: delivered or not, a verdict, policy fetches, TLS-RPT reports.
CREATE OR REPLACE VIEW provider_behaviour AS
WITH per AS (
    SELECT provider, server_label, count(*) AS messages,
           count(*) FILTER (WHERE delivered) AS delivered_messages,
           count(*) FILTER (WHERE NOT delivered) AS undelivered_messages,
           min(sent_at) AS first_sent_at,
           max(sent_at) FILTER (WHERE delivered) AS last_delivered_sent_at,
           min(sent_at) FILTER (WHERE NOT delivered) AS first_refused_sent_at,
           list(DISTINCT tls_protocol) FILTER (WHERE tls_protocol IS NOT NULL) AS tls_protocols
    FROM lab_deliveries WHERE provider IS NOT NULL GROUP BY ALL
), prov AS (
    SELECT provider, min(coalesce(sent_at, received_at)) AS provider_first_sent_at, max(coalesce(received_at, sent_at)) AS provider_last_at,
           list(DISTINCT client_address) FILTER (WHERE client_address IS NOT NULL) AS client_addresses
    FROM lab_deliveries WHERE provider IS NOT NULL GROUP BY 1
), fetch_candidates AS (
    -- A fetch counts for a provider when it came from an address that delivered its messages.
    -- Only a fetch that no provider claims by address falls back to the time window (within an
    -- hour of the provider's sends), and only when exactly one provider's window holds it:
    -- an ambiguous fetch is attributed to nobody rather than to everybody.
    SELECT p.provider, f.fetch_key, f.fetched_at, f.server_label AS fetched_label, f.client_addr,
           list_contains(p.client_addresses, f.client_addr) AS by_address
    FROM prov p JOIN policy_fetches_http f
      ON f.is_policy_fetch
     AND (list_contains(p.client_addresses, f.client_addr)
          OR f.fetched_at BETWEEN p.provider_first_sent_at - INTERVAL 1 HOUR AND p.provider_last_at + INTERVAL 1 HOUR)
), fetches AS (
    SELECT c.* EXCLUDE (fetch_key)
    FROM fetch_candidates c
    QUALIFY c.by_address
         OR (NOT bool_or(c.by_address) OVER (PARTITION BY c.fetch_key)
             AND count(*) OVER (PARTITION BY c.fetch_key) = 1)
), fetch_sum AS (
    SELECT provider, count(*) AS policy_fetches, min(fetched_at) AS first_policy_fetch_at,
           list(DISTINCT fetched_label) FILTER (WHERE fetched_label IS NOT NULL) AS fetched_labels,
           count(*) FILTER (WHERE fetched_label IS NULL) AS fetches_without_host,
           bool_or(by_address) AS attributed_by_address
    FROM fetches GROUP BY 1
), rpt AS (
    SELECT p.provider, count(DISTINCT r.report_key) AS tlsrpt_reports,
           list(DISTINCT fl.result_type) FILTER (WHERE fl.result_type IS NOT NULL) AS tlsrpt_failure_types,
           sum(fl.failed_session_count) AS tlsrpt_failed_sessions
    FROM prov p
    JOIN tlsrpt_reports r
      ON lower(coalesce(r.organization_name, '')) LIKE '%' || lower(split_part(p.provider, '.', 1)) || '%'
      OR lower(coalesce(r.email_from, '')) LIKE '%' || lower(p.provider)
      OR lower(coalesce(r.contact_info, '')) LIKE '%' || lower(p.provider) || '%'
    LEFT JOIN tlsrpt_failures fl ON fl.report_key = r.report_key
    GROUP BY 1
), dane AS (
    -- The DANE verdict, only where the lab published TLSA records (for the profile, or, for a
    -- provider without a profile row, in the lab last started). Every host DANE must refuse was
    -- refused and every TLSA host it must deliver to got mail (D tells DANE from MTA-STS and
    -- PKIX, which refuse it); "required" when the hosts without TLSA were refused too.
    SELECT per.provider,
           bool_and(per.delivered_messages = 0) FILTER (WHERE s.dane_sender_must = 'refuse') AS refused_all,
           bool_or(per.delivered_messages > 0) FILTER (WHERE s.dane_sender_must = 'refuse') AS delivered_any,
           bool_and(per.undelivered_messages = 0)
               FILTER (WHERE s.dane_sender_must = 'deliver' AND list_contains(t.tlsa_labels, per.server_label))
               AS delivered_tlsa_hosts,
           bool_and(per.delivered_messages = 0) FILTER (WHERE NOT list_contains(t.tlsa_labels, per.server_label))
               AS refused_hosts_without_tlsa
    FROM per
    JOIN lab_servers s ON s.server_label = per.server_label
    JOIN (SELECT p.provider, coalesce(lp.tlsa_labels,
                                      (SELECT arg_max(tlsa_labels, lab_started_at) FROM lab_sender_profile_latest))
                                 AS tlsa_labels
          FROM prov p LEFT JOIN lab_sender_profile_latest lp ON lp.provider = p.provider) t
      ON t.provider = per.provider AND t.tlsa_labels IS NOT NULL AND len(t.tlsa_labels) > 0
    GROUP BY per.provider
), dane_verdict AS (
    SELECT provider,
           CASE WHEN refused_all AND delivered_tlsa_hosts AND refused_hosts_without_tlsa THEN 'requires DANE'
                WHEN refused_all AND delivered_tlsa_hosts THEN 'enforces DANE'
                WHEN delivered_any THEN 'does not enforce DANE'
                ELSE 'no DANE evidence'
           END AS dane_verdict
    FROM dane
), judged AS (
    SELECT per.*, s.setup, s.under_enforce_policy, s.enforcing_sender_must,
           CASE
             WHEN s.server_label IS NULL THEN NULL
             WHEN NOT s.under_enforce_policy THEN 'control (no MTA-STS policy)'
             WHEN s.enforcing_sender_must = 'refuse' AND per.delivered_messages = 0 THEN 'enforces MTA-STS'
             WHEN s.enforcing_sender_must = 'refuse' AND per.undelivered_messages = 0 THEN 'does not enforce MTA-STS'
             WHEN s.enforcing_sender_must = 'refuse'
                  AND per.last_delivered_sent_at < per.first_refused_sent_at
               THEN 'partial: only later messages refused (lazy policy caching, RFC 8461 5.1)'
             WHEN s.enforcing_sender_must = 'refuse' THEN 'partial'
             WHEN per.undelivered_messages = 0 THEN 'delivered'
             WHEN per.delivered_messages = 0 THEN 'not delivered'
             ELSE 'partially delivered'
           END AS verdict
    FROM per LEFT JOIN lab_servers s ON s.server_label = per.server_label
)
SELECT j.provider, j.server_label, j.setup, j.under_enforce_policy, j.enforcing_sender_must,
       j.messages, j.delivered_messages, j.undelivered_messages,
       j.delivered_messages > 0 AS delivered,
       j.verdict,
       CASE
         WHEN count(*) FILTER (WHERE j.enforcing_sender_must = 'refuse') OVER w = 0 THEN NULL
         WHEN bool_and(j.verdict = 'enforces MTA-STS' OR j.enforcing_sender_must IS DISTINCT FROM 'refuse') OVER w
           THEN 'enforces MTA-STS'
         WHEN bool_and(j.verdict = 'does not enforce MTA-STS' OR j.enforcing_sender_must IS DISTINCT FROM 'refuse') OVER w
           THEN 'does not enforce MTA-STS'
         ELSE 'partial'
       END AS provider_verdict,
       j.tls_protocols,
       j.first_sent_at,
       coalesce(fs.policy_fetches, 0) > 0 AS policy_fetched,
       coalesce(fs.policy_fetches, 0) AS policy_fetches,
       fs.first_policy_fetch_at,
       date_diff('second', pv.provider_first_sent_at, fs.first_policy_fetch_at) AS first_fetch_after_first_send_s,
       -- A primed cache: the policies fetched before the first message (RFC 8461 3.3 lets a
       -- sender fetch ahead); a lazy one fetches when the first message needs it, within
       -- milliseconds of it. Access logs have whole seconds: a fetch counts as before when its
       -- logged second ended at least half a second before the first send.
       fs.first_policy_fetch_at + INTERVAL 1500 MILLISECOND <= pv.provider_first_sent_at
           AS policy_fetched_before_first_send,
       list_contains(coalesce(fs.fetched_labels, []), j.server_label) OR coalesce(fs.fetches_without_host, 0) > 0
           AS policy_fetched_for_label,
       CASE WHEN fs.provider IS NULL THEN NULL WHEN fs.attributed_by_address THEN 'client address'
            ELSE 'time window' END AS fetch_attribution,
       coalesce(r.tlsrpt_reports, 0) > 0 AS tlsrpt_received,
       coalesce(r.tlsrpt_reports, 0) AS tlsrpt_reports,
       r.tlsrpt_failure_types,
       r.tlsrpt_failed_sessions,
       dv.dane_verdict,
       dv.dane_verdict IN ('enforces DANE', 'requires DANE') AS dane_enforced,
       lp.mta, lp.mta_version, lp.notices, lp.notice_timers
FROM judged j
JOIN prov pv ON pv.provider = j.provider
LEFT JOIN fetch_sum fs ON fs.provider = j.provider
LEFT JOIN rpt r ON r.provider = j.provider
LEFT JOIN dane_verdict dv ON dv.provider = j.provider
LEFT JOIN lab_sender_profile_latest lp ON lp.provider = j.provider
WINDOW w AS (PARTITION BY j.provider)
ORDER BY j.provider, j.server_label;

-- Per undelivered test message: the notices its sender got (users' mailboxes, and the sending
-- Postfix's bounce(8) notices), how long until the first and until the final (failure) one.
CREATE OR REPLACE VIEW notification_timing AS
WITH und AS (
    SELECT * FROM lab_deliveries WHERE NOT delivered
), user_notices AS (
    SELECT u.address, n.received_at AS notice_at, n.kind, n.mentions_tls, n.mentions_mta_sts,
           'mailbox' AS notice_source
    FROM und u JOIN notifications n
      ON list_contains(n.recipients, u.address)
      OR (u.message_id IS NOT NULL AND list_contains(n.original_message_ids, u.message_id))
), postfix_notice AS (
    -- One row per notice, however many attempts of its message it joins: it mentions TLS or
    -- MTA-STS when any of those attempts' reasons did.
    SELECT a.address, pn.logged_at AS notice_at,
           CASE pn.notice_kind WHEN 'delay' THEN 'delay' WHEN 'non-delivery' THEN 'failure'
                               WHEN 'success' THEN 'success' ELSE 'unknown' END AS kind,
           bool_or(regexp_matches(coalesce(a.reason, ''), '(?i)tls|ssl|certificate|starttls')) AS mentions_tls,
           bool_or(regexp_matches(coalesce(a.reason, ''), '(?i)mta-?sts|sts policy')) AS mentions_mta_sts,
           'postfix_log' AS notice_source
    FROM und u
    JOIN lab_send_attempts a ON a.address = u.address
    JOIN postfix_notices pn
      ON (pn.message_key = a.message_key OR (pn.message_key IS NULL AND pn.queue_id = a.queue_id
                                             AND pn.host IS NOT DISTINCT FROM a.sending_host))
     AND pn.notice_recipient = 'sender'
    GROUP BY a.address, pn.notice_key, pn.logged_at, pn.notice_kind
), notices AS (
    -- The sending Postfix logs each notice it sends, and the user's mailbox holds the same
    -- notice: one event seen twice. What the user got wins; the log's notices of a kind count
    -- only for a message whose mailbox holds no notice of that kind.
    SELECT * FROM user_notices
    UNION ALL
    SELECT p.* FROM postfix_notice p
    WHERE NOT EXISTS (SELECT 1 FROM user_notices m WHERE m.address = p.address AND m.kind = p.kind)
)
SELECT u.address, u.provider, u.server_label, u.sent_at,
       count(n.notice_at) AS notices,
       count(n.notice_at) FILTER (WHERE n.kind = 'delay') AS delay_notices,
       count(n.notice_at) FILTER (WHERE n.kind = 'failure') AS failure_notices,
       min(n.notice_at) AS first_notice_at,
       date_diff('second', u.sent_at, min(n.notice_at)) AS time_to_first_notice_s,
       arg_min(n.kind, n.notice_at) AS first_notice_kind,
       min(n.notice_at) FILTER (WHERE n.kind = 'failure') AS final_notice_at,
       date_diff('second', u.sent_at, min(n.notice_at) FILTER (WHERE n.kind = 'failure')) AS time_to_final_notice_s,
       coalesce(bool_or(n.mentions_tls), FALSE) AS tls_mentioned,
       coalesce(bool_or(n.mentions_mta_sts), FALSE) AS mta_sts_mentioned,
       list(DISTINCT n.notice_source) FILTER (WHERE n.notice_source IS NOT NULL) AS notice_sources,
       u.sender_last_status, u.sender_last_reason,
       -- The sender's own timers (lab profiles), to print beside every timing comparison.
       any_value(lp.notices) AS notice_style, any_value(lp.notice_timers) AS notice_timers
FROM und u LEFT JOIN notices n ON n.address = u.address
LEFT JOIN lab_sender_profile_latest lp ON lp.provider = u.provider
GROUP BY u.address, u.provider, u.server_label, u.sent_at, u.sender_last_status, u.sender_last_reason
ORDER BY u.provider, u.server_label, u.sent_at;

-- The data dictionary of these views (duckdb_columns().comment): one line per column,
-- re-applied with the views; tests/store/test_dictionary.py fails on a column without one.
COMMENT ON VIEW lab_servers IS 'The six lab servers (a to f): their setup and what an MTA-STS-enforcing sender must do there (RFC 8461 4.2, 5).';
COMMENT ON COLUMN lab_servers.server_label IS 'the lab server (a to f) a test address belongs to';
COMMENT ON COLUMN lab_servers.setup IS 'the server''s setup (valid certificate, no TLS, IPv6 only, ...)';
COMMENT ON COLUMN lab_servers.under_enforce_policy IS 'the server''s domain publishes an enforce-mode policy';
COMMENT ON COLUMN lab_servers.enforcing_sender_must IS 'what an MTA-STS-enforcing sender must do: deliver or refuse';
COMMENT ON VIEW lab_addresses IS 'Every lab test address seen anywhere (ledger, received messages, Postfix deliveries) with its server label.';
COMMENT ON COLUMN lab_addresses.address IS 'the test address (<uuid>@<label>.<lab domain>)';
COMMENT ON COLUMN lab_addresses.local_part IS 'the address''s local part (the uuid for lab addresses)';
COMMENT ON COLUMN lab_addresses.domain IS 'the address''s domain (<label>.<lab domain>)';
COMMENT ON COLUMN lab_addresses.server_label IS 'the lab server (a to f) a test address belongs to';
COMMENT ON VIEW lab_receptions IS 'Every reception of a test message at a lab server, from the recorder or the receiving Postfix.';
COMMENT ON COLUMN lab_receptions.address IS 'the test address (<uuid>@<label>.<lab domain>)';
COMMENT ON COLUMN lab_receptions.received_at IS 'when the message reached the lab''s mailbox (UTC)';
COMMENT ON COLUMN lab_receptions.client_address IS 'address of the sending MTA';
COMMENT ON COLUMN lab_receptions.tls_protocol IS 'negotiated TLS version (e.g. TLSv1.3)';
COMMENT ON COLUMN lab_receptions.tls_cipher IS 'negotiated TLS cipher suite';
COMMENT ON COLUMN lab_receptions.sender IS 'envelope sender (MAIL FROM)';
COMMENT ON COLUMN lab_receptions.message_id IS 'the Message-ID header';
COMMENT ON COLUMN lab_receptions.evidence IS 'where the reception was seen: recorder or receiving Postfix';
COMMENT ON VIEW lab_send_attempts IS 'Every delivery attempt the sending Postfix logged for a test address.';
COMMENT ON COLUMN lab_send_attempts.address IS 'the test address (<uuid>@<label>.<lab domain>)';
COMMENT ON COLUMN lab_send_attempts.logged_at IS 'timestamp of the log line (UTC)';
COMMENT ON COLUMN lab_send_attempts.queue_id IS 'the Postfix queue id of the message';
COMMENT ON COLUMN lab_send_attempts.message_key IS 'key of the queue file in postfix_messages (joins a delivery to its message)';
COMMENT ON COLUMN lab_send_attempts.sender IS 'envelope sender (MAIL FROM)';
COMMENT ON COLUMN lab_send_attempts.message_id IS 'the Message-ID header';
COMMENT ON COLUMN lab_send_attempts.relay_host IS 'host name of the relay';
COMMENT ON COLUMN lab_send_attempts.relay_addr IS 'IP address of the relay';
COMMENT ON COLUMN lab_send_attempts.status IS 'sent, deferred or bounced';
COMMENT ON COLUMN lab_send_attempts.dsn IS 'DSN code of the attempt';
COMMENT ON COLUMN lab_send_attempts.reason IS 'the reason text of the attempt (e.g. TLS or MTA-STS failure)';
COMMENT ON COLUMN lab_send_attempts.tls_trust IS 'Postfix TLS trust level: Verified, Trusted, Untrusted or Anonymous';
COMMENT ON COLUMN lab_send_attempts.tls_protocol IS 'negotiated TLS version (e.g. TLSv1.3)';
COMMENT ON COLUMN lab_send_attempts.tls_cipher IS 'negotiated TLS cipher suite';
COMMENT ON COLUMN lab_send_attempts.tls_problem IS 'the TLS failure Postfix logged, if any';
COMMENT ON COLUMN lab_send_attempts.sending_host IS 'the sending Postfix host';
COMMENT ON COLUMN lab_send_attempts.queued_at IS 'when the message entered the sender''s queue';
COMMENT ON COLUMN lab_send_attempts.first_seen_at IS 'first log line mentioning it';
COMMENT ON VIEW lab_deliveries IS 'Per lab test address: provider, server, when sent, delivered or not, with which TLS.';
COMMENT ON COLUMN lab_deliveries.address IS 'the test address (<uuid>@<label>.<lab domain>)';
COMMENT ON COLUMN lab_deliveries.provider IS 'the sending mail provider under test (e.g. gmail)';
COMMENT ON COLUMN lab_deliveries.server_label IS 'the lab server (a to f) a test address belongs to';
COMMENT ON COLUMN lab_deliveries.sent_at IS 'when the test message was sent (UTC)';
COMMENT ON COLUMN lab_deliveries.delivered IS 'true when the message reached the lab server';
COMMENT ON COLUMN lab_deliveries.received_at IS 'first reception at the lab server';
COMMENT ON COLUMN lab_deliveries.tls_protocol IS 'negotiated TLS version (e.g. TLSv1.3)';
COMMENT ON COLUMN lab_deliveries.tls_cipher IS 'negotiated TLS cipher suite';
COMMENT ON COLUMN lab_deliveries.sender_tls_trust IS 'TLS trust level the sending Postfix logged for the delivery';
COMMENT ON COLUMN lab_deliveries.client_address IS 'address of the MTA that delivered it';
COMMENT ON COLUMN lab_deliveries.sender IS 'envelope sender (MAIL FROM)';
COMMENT ON COLUMN lab_deliveries.message_id IS 'the Message-ID header';
COMMENT ON COLUMN lab_deliveries.send_attempts IS 'delivery attempts the sending Postfix logged';
COMMENT ON COLUMN lab_deliveries.sender_last_status IS 'status of the sender''s last attempt (sent, deferred, bounced)';
COMMENT ON COLUMN lab_deliveries.sender_last_dsn IS 'DSN code of the sender''s last attempt';
COMMENT ON COLUMN lab_deliveries.sender_last_reason IS 'reason text of the sender''s last attempt';
COMMENT ON COLUMN lab_deliveries.delivery_evidence IS 'what shows the delivery: recorder, receiving Postfix, or both';
COMMENT ON COLUMN lab_deliveries.in_ledger IS 'the address is in the send ledger';
COMMENT ON VIEW provider_behaviour IS 'Per provider and lab server: delivered or not, the verdict, policy fetches and TLS-RPT reports.';
COMMENT ON COLUMN provider_behaviour.provider IS 'the sending mail provider under test (e.g. gmail)';
COMMENT ON COLUMN provider_behaviour.server_label IS 'the lab server (a to f) a test address belongs to';
COMMENT ON COLUMN provider_behaviour.setup IS 'the lab server''s setup';
COMMENT ON COLUMN provider_behaviour.under_enforce_policy IS 'the server''s domain publishes an enforce-mode policy';
COMMENT ON COLUMN provider_behaviour.enforcing_sender_must IS 'what an MTA-STS-enforcing sender must do: deliver or refuse';
COMMENT ON COLUMN provider_behaviour.messages IS 'test messages the provider sent to this server';
COMMENT ON COLUMN provider_behaviour.delivered_messages IS 'of those, delivered';
COMMENT ON COLUMN provider_behaviour.undelivered_messages IS 'of those, not delivered';
COMMENT ON COLUMN provider_behaviour.delivered IS 'at least one message was delivered';
COMMENT ON COLUMN provider_behaviour.verdict IS 'what this server shows: delivered, enforces MTA-STS, does not enforce MTA-STS, or control';
COMMENT ON COLUMN provider_behaviour.provider_verdict IS 'the provider''s verdict over all servers: enforces MTA-STS or not';
COMMENT ON COLUMN provider_behaviour.tls_protocols IS 'TLS versions of the deliveries';
COMMENT ON COLUMN provider_behaviour.first_sent_at IS 'first test message to this server';
COMMENT ON COLUMN provider_behaviour.policy_fetched IS 'the provider fetched the lab''s MTA-STS policy';
COMMENT ON COLUMN provider_behaviour.policy_fetches IS 'policy fetches attributed to the provider';
COMMENT ON COLUMN provider_behaviour.first_policy_fetch_at IS 'first such fetch';
COMMENT ON COLUMN provider_behaviour.first_fetch_after_first_send_s IS 'seconds from the provider''s first send to its first policy fetch';
COMMENT ON COLUMN provider_behaviour.policy_fetched_for_label IS 'a fetch was for this server''s policy host';
COMMENT ON COLUMN provider_behaviour.fetch_attribution IS 'how fetches were attributed: by address, time window, or none';
COMMENT ON COLUMN provider_behaviour.tlsrpt_received IS 'the provider sent TLS-RPT reports';
COMMENT ON COLUMN provider_behaviour.tlsrpt_reports IS 'TLS-RPT reports from the provider';
COMMENT ON COLUMN provider_behaviour.tlsrpt_failure_types IS 'failure types in those reports';
COMMENT ON COLUMN provider_behaviour.tlsrpt_failed_sessions IS 'failed sessions in those reports';
COMMENT ON VIEW notification_timing IS 'Per undelivered test message: the notices its sender gave the user and how long until the first and final one.';
COMMENT ON COLUMN notification_timing.address IS 'the test address (<uuid>@<label>.<lab domain>)';
COMMENT ON COLUMN notification_timing.provider IS 'the sending mail provider under test (e.g. gmail)';
COMMENT ON COLUMN notification_timing.server_label IS 'the lab server (a to f) a test address belongs to';
COMMENT ON COLUMN notification_timing.sent_at IS 'when the test message was sent (UTC)';
COMMENT ON COLUMN notification_timing.notices IS 'notices the user got about this message';
COMMENT ON COLUMN notification_timing.delay_notices IS 'of those, delay warnings';
COMMENT ON COLUMN notification_timing.failure_notices IS 'of those, failure (non-delivery) notices';
COMMENT ON COLUMN notification_timing.first_notice_at IS 'when the first notice arrived';
COMMENT ON COLUMN notification_timing.time_to_first_notice_s IS 'seconds from sending to the first notice';
COMMENT ON COLUMN notification_timing.first_notice_kind IS 'kind of the first notice: delay or failure';
COMMENT ON COLUMN notification_timing.final_notice_at IS 'when the first failure notice arrived';
COMMENT ON COLUMN notification_timing.time_to_final_notice_s IS 'seconds from sending to the failure notice';
COMMENT ON COLUMN notification_timing.tls_mentioned IS 'a notice mentions TLS';
COMMENT ON COLUMN notification_timing.mta_sts_mentioned IS 'a notice mentions MTA-STS';
COMMENT ON COLUMN notification_timing.notice_sources IS 'where the notices were seen: mailbox, postfix_log';
COMMENT ON COLUMN notification_timing.sender_last_status IS 'status of the sender''s last attempt';
COMMENT ON COLUMN notification_timing.sender_last_reason IS 'reason text of the sender''s last attempt';

COMMENT ON COLUMN lab_servers.dane_sender_must IS 'deliver | refuse: what a DANE sender (RFC 7672) must do at this server in a lab whose MX hosts A-E publish TLSA 3 1 1';
COMMENT ON VIEW lab_sender_profile_latest IS 'Each lab sender profile as last started: MTA, TLS policy and notice timers (printed beside timing comparisons).';
COMMENT ON COLUMN lab_sender_profile_latest.provider IS 'the profile, as the ledger''s provider names it';
COMMENT ON COLUMN lab_sender_profile_latest.mta IS 'postfix | exim';
COMMENT ON COLUMN lab_sender_profile_latest.mta_version IS 'the MTA''s version as it reports it';
COMMENT ON COLUMN lab_sender_profile_latest.mta_sts IS 'whether it looks MTA-STS policies up (RFC 8461)';
COMMENT ON COLUMN lab_sender_profile_latest.policy_cache IS 'lazy | primed; NULL without MTA-STS';
COMMENT ON COLUMN lab_sender_profile_latest.dane IS 'none | opportunistic | required (RFC 7672)';
COMMENT ON COLUMN lab_sender_profile_latest.notices IS 'delay+failure | failure-only | quick+updates';
COMMENT ON COLUMN lab_sender_profile_latest.notice_timers IS 'JSON object: the MTA''s own timer parameters and values';
COMMENT ON COLUMN lab_sender_profile_latest.tlsa_labels IS 'lab servers whose MX host published TLSA records';
COMMENT ON COLUMN lab_sender_profile_latest.lab_started_at IS 'when the lab that last ran this profile started';
COMMENT ON COLUMN provider_behaviour.policy_fetched_before_first_send IS 'whether the provider fetched the lab domain''s policy before its first message was sent (a primed cache)';
COMMENT ON COLUMN provider_behaviour.dane_verdict IS 'requires DANE | enforces DANE | does not enforce DANE | no DANE evidence: from deliveries to servers B, D and F against lab_servers.dane_sender_must';
COMMENT ON COLUMN provider_behaviour.dane_enforced IS 'whether its deliveries followed DANE (RFC 7672) where the lab published TLSA records';
COMMENT ON COLUMN provider_behaviour.mta IS 'the sender''s MTA when the lab ran it (lab_sender_profiles), else NULL';
COMMENT ON COLUMN provider_behaviour.mta_version IS 'the sender''s MTA version (lab profiles only)';
COMMENT ON COLUMN provider_behaviour.notices IS 'delay+failure | failure-only | quick+updates (lab profiles only)';
COMMENT ON COLUMN provider_behaviour.notice_timers IS 'JSON object: the sender''s own notice timers (lab profiles only)';
COMMENT ON COLUMN notification_timing.notice_style IS 'delay+failure | failure-only | quick+updates: the sender''s notice pattern (lab profiles only)';
COMMENT ON COLUMN notification_timing.notice_timers IS 'JSON object: the sender''s own notice timers, to print beside the timings';
