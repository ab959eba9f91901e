-- 008: the audit lab's sender profiles (issue 13), read from evidence/senders.json: which
-- MTA (and version) each profile is, its TLS policy and its own notice timers, as the
-- run's provenance (the report prints the timers beside every timing comparison), and
-- which lab servers published TLSA records (for the DANE verdict of provider_behaviour).
CREATE TABLE lab_sender_profiles (
    profile_key   BIGINT PRIMARY KEY,        -- of (lab_started_at, provider)
    run_id VARCHAR NOT NULL, observed_at TIMESTAMPTZ NOT NULL, input_list VARCHAR NOT NULL,
    tool_version VARCHAR NOT NULL, source_name VARCHAR NOT NULL, source_position VARCHAR,
    lab_started_at TIMESTAMPTZ NOT NULL,     -- when `mtasts lab up` started the lab
    provider      VARCHAR NOT NULL,          -- the profile: the ledger's provider
    description   VARCHAR,
    mta           VARCHAR NOT NULL,          -- postfix | exim
    mta_version   VARCHAR,
    mta_sts       BOOLEAN NOT NULL,          -- looks MTA-STS policies up (RFC 8461)
    policy_cache  VARCHAR,                   -- lazy (first message triggers the fetch) | primed
    dane          VARCHAR NOT NULL,          -- none | opportunistic (where TLSA exist) | required
    notices       VARCHAR NOT NULL,          -- delay+failure | failure-only | quick+updates
    timers        VARCHAR NOT NULL,          -- JSON object: the MTA's own parameter names -> values
    addresses     VARCHAR[],                 -- the addresses it sends (and fetches policies) from
    tlsa_labels   VARCHAR[]                  -- lab servers whose MX host published TLSA records
);

COMMENT ON TABLE lab_sender_profiles IS 'The lab''s sender profiles per lab start (evidence/senders.json): MTA and version, TLS policy, notice timers (the run''s provenance), and which lab servers published TLSA records.';
COMMENT ON COLUMN lab_sender_profiles.profile_key IS 'identifies the row: of (lab_started_at, provider)';
COMMENT ON COLUMN lab_sender_profiles.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN lab_sender_profiles.observed_at IS 'when this row was written (UTC)';
COMMENT ON COLUMN lab_sender_profiles.input_list IS 'the run''s input list, as given';
COMMENT ON COLUMN lab_sender_profiles.tool_version IS 'version of mtasts-observatory that wrote the row';
COMMENT ON COLUMN lab_sender_profiles.source_name IS 'the senders.json file the row was read from';
COMMENT ON COLUMN lab_sender_profiles.source_position IS 'where in that file (the profile''s entry)';
COMMENT ON COLUMN lab_sender_profiles.lab_started_at IS 'when mtasts lab up started the lab';
COMMENT ON COLUMN lab_sender_profiles.provider IS 'the profile, as the ledger''s provider names it';
COMMENT ON COLUMN lab_sender_profiles.description IS 'what the profile is, in words';
COMMENT ON COLUMN lab_sender_profiles.mta IS 'postfix | exim';
COMMENT ON COLUMN lab_sender_profiles.mta_version IS 'the MTA''s version as it reports it';
COMMENT ON COLUMN lab_sender_profiles.mta_sts IS 'whether it looks MTA-STS policies up (RFC 8461)';
COMMENT ON COLUMN lab_sender_profiles.policy_cache IS 'lazy (the first message triggers the fetch) | primed (fetched before the first message); NULL without MTA-STS';
COMMENT ON COLUMN lab_sender_profiles.dane IS 'none | opportunistic (where TLSA records exist) | required (RFC 7672)';
COMMENT ON COLUMN lab_sender_profiles.notices IS 'delay+failure | failure-only | quick+updates: which notices its timers give the user';
COMMENT ON COLUMN lab_sender_profiles.timers IS 'JSON object: the MTA''s own timer parameters (e.g. delay_warning_time, maximal_queue_lifetime, delay_warning) and their values';
COMMENT ON COLUMN lab_sender_profiles.addresses IS 'the addresses it sends (and fetches policies) from';
COMMENT ON COLUMN lab_sender_profiles.tlsa_labels IS 'lab servers whose MX host published TLSA records in that lab';
