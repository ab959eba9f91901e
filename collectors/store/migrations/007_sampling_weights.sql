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
COMMENT ON TABLE crawl_weights IS 'Sampling weights of a stratified crawl list: how many domains each crawled domain stands for (mtasts crawl --weights); a domain without a row weighs 1.';
COMMENT ON COLUMN crawl_weights.run_id IS 'the run that wrote this row (runs.run_id)';
COMMENT ON COLUMN crawl_weights.observed_at IS 'when this row was written (UTC)';
COMMENT ON COLUMN crawl_weights.input_list IS 'the run''s input list, as given';
COMMENT ON COLUMN crawl_weights.tool_version IS 'version of mtasts-observatory that wrote the row';
COMMENT ON COLUMN crawl_weights.domain IS 'the domain (normalised like crawl_domains.domain)';
COMMENT ON COLUMN crawl_weights.stratum IS 'the sampling stratum the domain was drawn from (e.g. mta-sts: every record holder; other: a sample of the rest)';
COMMENT ON COLUMN crawl_weights.weight IS 'the number of domains of the population this domain stands for (> 0)';
