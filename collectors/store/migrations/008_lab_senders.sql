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
