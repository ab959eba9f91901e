-- 007: sampling weights of a crawl run's domains (mtasts crawl --weights FILE). A stratified
-- list (collectors/testbed/strata.py: MTA-STS record holders taken whole, the rest a
-- sample) weighs each domain by the number of domains it stands for; the report's rates
-- weight every domain by it (views/030_report.sql). A domain without a row weighs 1.
CREATE TABLE crawl_weights (
    run_id        VARCHAR NOT NULL,
    observed_at   TIMESTAMPTZ NOT NULL,
    input_list    VARCHAR NOT NULL,
    tool_version  VARCHAR NOT NULL,
    domain        VARCHAR NOT NULL,          -- normalised like crawl_domains.domain
    stratum       VARCHAR NOT NULL,
    weight        DOUBLE NOT NULL CHECK (weight > 0),
    PRIMARY KEY (run_id, domain)
);
