# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # MTA-STS adoption
#
# The posture of the crawled list: how far domains get through the MTA-STS
# funnel (RFC 8461: a `_mta-sts` TXT record, a policy fetched over HTTPS, a
# valid policy and its mode), with TLS-RPT (RFC 8460), DNSSEC and DANE
# alongside; what goes wrong, beside the published figures; the domains an
# RFC-compliant sender would not deliver to; who hosts policies and MX; and,
# with several runs, the trend and the lifecycle events between runs.

# %% tags=["parameters"]
db_path = ""  # empty: the repository's data/observatory.duckdb, else the embedded sample
run_ids = []
month = ""
rank_buckets = [1000, 10000, 100000, 1000000]
lab_id = ""
output_dir = ""
local_simulation = False
data_note = ""
db_label = ""
posture_cache = ""

# %%
import pandas as pd

from collectors.report import ReportContext, charts, compare, reference, stats

rate_columns, rate_texts, run_changes, wilson = stats.rate_columns, stats.rate_texts, stats.run_changes, stats.wilson

ctx = ReportContext.from_parameters("adoption", globals())
ctx.banner()
run = ctx.current_run
if not ctx.has_crawl:
    ctx.empty("Adoption", "no finished crawl run in this database for the month, so there is nothing "
                          "to report on adoption; run 'mtasts crawl' first.")

# %% [markdown]
# ## The funnel by rank bucket
#
# Buckets are cumulative (the top 1k is inside the top 10k); "all" is the
# whole list. A record is any `_mta-sts` TXT record that starts `v=STSv1`;
# the policy is fetched only when the record is valid; "fetched" means an
# HTTP 200 body within the size cap, "valid" that it also parsed. Every share
# has its 95 % Wilson interval; in a stratified sample, counts are weighted
# estimates and each interval is taken among the share's effective sample size
# (`<stage>_share_neff`, from the stratified design's variance; see
# `views/030_report.sql`), not among the weighted count. "Has MX" (about nine in ten domains) and the MTA-STS stages
# (about one in a hundred) are drawn in separate panels, each on its own scale.

# %%
if ctx.has_crawl:
    funnel = ctx.sql(
        "SELECT * FROM report_funnel($buckets) WHERE run_id = $run"
        " ORDER BY top_n NULLS LAST",
        buckets=[*ctx.rank_buckets, None], run=run)
    # a bucket no smaller than the list repeats "all": drop it
    largest = int(funnel["sampled_domains"].max())  # the list's length (ranks are list positions)
    funnel = funnel[[pd.isna(n) or n < largest for n in funnel["top_n"]]].reset_index(drop=True)
    funnel.insert(1, "bucket", ["all" if pd.isna(n) else f"top {int(n):,}" for n in funnel["top_n"]])
    whole = funnel[funnel["top_n"].isna()].iloc[0]
    if int(whole["domains"]) != int(whole["sampled_domains"]):
        ctx.note(f"A stratified sample: {int(whole['sampled_domains']):,} domains crawled stand for "
                 f"{int(whole['domains']):,}; every count on this page is weighted by each domain's "
                 "sampling weight (an estimate for the population; sampled_domains is the plain count).")
    for column in ("domains", "has_mx", "has_record", "valid_record", "policy_fetched",
                   "valid_policy", "mode_enforce", "mode_testing", "mode_none",
                   "tlsrpt_valid", "dnssec_secure", "dane_tlsa", "misconfigured", "delivery_risk"):
        ctx.key(column, int(whole[column]))
    shown = funnel
    for column in ("has_record", "valid_policy", "mode_enforce"):   # each share among its effective n
        shown = rate_columns(shown, column, "domains", n_eff="{}_share_neff")
    shown = shown[["bucket", "domains", "has_mx", "has_record", "valid_policy", "mode_enforce",
                   *(f"{c}_{part}" for c in ("has_record", "valid_policy", "mode_enforce")
                     for part in ("pct", "ci_low", "ci_high"))]]
    ctx.key("has_record_ci_pct", [float(shown.iloc[-1]["has_record_ci_low"]),
                                  float(shown.iloc[-1]["has_record_ci_high"])])
    ctx.table(shown, "funnel", paper=True,
              display=rate_texts(funnel, ["has_mx", "has_record", "valid_policy", "mode_enforce"], "domains",
                                 "{}_share_neff")[["bucket", "domains", "has_mx", "has_record", "valid_policy",
                                                   "mode_enforce"]],
              caption=f"Domains reaching each stage: count (percent of the bucket, 95 % Wilson interval), run {run}")
    counts = funnel.drop(columns=["run_id", "top_n"])
    ctx.table(counts, "funnel_counts",   # the CSV keeps each share's effective sample size (*_neff)
              display=counts[[c for c in counts.columns if not c.endswith("_neff")]],
              caption="Every stage's count per bucket (effective sample sizes in tables/adoption_funnel_counts.csv)")
    ctx.figure(charts.funnel(funnel), "funnel")

# %% [markdown]
# ## TLS-RPT, DNSSEC and DANE alongside
#
# Two denominators, two panels: all crawled domains, and the domains with an
# MTA-STS record.

# %%
if ctx.has_crawl:
    along = ctx.sql(
        """SELECT 'all domains' AS population, report_weighted(sum(weight)) AS domains,
                  report_weighted(sum(weight) FILTER (WHERE tlsrpt_valid)) AS tlsrpt,
                  report_weighted(sum(weight) FILTER (WHERE dnssec_secure)) AS dnssec,
                  report_weighted(sum(weight) FILTER (WHERE dane_tlsa)) AS dane
           FROM report_domain_stages WHERE run_id = $run
           UNION ALL
           SELECT 'domains with an MTA-STS record', report_weighted(sum(weight)),
                  report_weighted(sum(weight) FILTER (WHERE tlsrpt_valid)),
                  report_weighted(sum(weight) FILTER (WHERE dnssec_secure)),
                  report_weighted(sum(weight) FILTER (WHERE dane_tlsa))
           FROM report_domain_stages WHERE run_id = $run AND has_record""", run=run)
    ctx.key("record_and_tlsrpt", int(along.iloc[1]["tlsrpt"]))
    # effective sample sizes: a share of all domains, from the stratified design; a share of
    # the record holders, Kish's of the holders (stats.py)
    along = along.assign(**{f"{c}_neff": [whole[f"{stage}_share_neff"], whole["has_record_neff"]]
                            for c, stage in (("tlsrpt", "tlsrpt_valid"), ("dnssec", "dnssec_secure"),
                                             ("dane", "dane_tlsa"))})
    shown = along
    for column in ("tlsrpt", "dnssec", "dane"):
        shown = rate_columns(shown, column, "domains", n_eff="{}_neff")
    ctx.table(shown.drop(columns=["tlsrpt_neff", "dnssec_neff", "dane_neff"]), "alongside", paper=True,
              display=rate_texts(along, ["tlsrpt", "dnssec", "dane"], "domains", "{}_neff")[
                  ["population", "domains", "tlsrpt", "dnssec", "dane"]],
              caption="TLS-RPT (valid record), DNSSEC (validated MX answer), DANE (TLSA for an MX): "
                      "count (percent of the population, 95 % Wilson interval)")
    if int(along.iloc[1]["domains"]):
        ctx.figure(charts.alongside(along), "alongside")
    else:
        ctx.empty("Figure", "no domain has an MTA-STS record, so the second denominator is empty.")

# %% [markdown]
# ## Misconfiguration classes, beside the published figures
#
# The four classes of Ashiq, Fiebig and Chung (IMC 2025) in the paper's
# order and wording, each as a share of the domains with an `_mta-sts`
# record and as a share of the misconfigured domains, ours computed the same
# way: invalid TXT record; policy retrieval error (DNS, TCP, TLS, HTTP,
# size, time or syntax); PKIX-invalid MX certificate (measured only when the
# crawl probed MX hosts); MX not matching the policy under mode `enforce`.
# Classes overlap. Published numbers come from `data/reference`, with their source.

# %%
published = reference.load("misconfiguration_published")
adoption_ref = reference.load("adoption_published")
if ctx.has_crawl:
    classes = dict(ctx.sql("SELECT class, domains FROM report_misconfig_classes WHERE run_id = $run",
                           run=run).itertuples(index=False))
    for name, n in classes.items():
        ctx.key(f"class_{name}", int(n))
    enforce_uncovered = ctx.scalar(   # weighted, as every other count of the comparison
        "SELECT report_weighted(sum(weight)) FROM report_posture_weighted WHERE run_id = $run"
        " AND policy_mode = 'enforce' AND list_contains(string_split(misconfig_classes, ';'), 'mx_not_covered')",
        run=run)
    probed = any(r.get("settings", {}).get("probe_smtp") for r in ctx.provenance()["crawl_runs"][-1:])
    ours = compare.OurCounts(holders=int(whole["has_record"]), misconfigured=int(whole["misconfigured"]),
                             classes={**classes, "mx_not_covered": int(enforce_uncovered)}, probed=probed,
                             holders_neff=whole["has_record_neff"], misconfigured_neff=whole["misconfigured_neff"])
    side = compare.misconfiguration_table(published.table, ours)
    ctx.key("imc_classes_in_order", list(side["our_code"]))
    ctx.table(side, "misconfig_classes", paper=True, citation=published.citation,
              display=compare.misconfiguration_display(side),
              caption=f"Misconfiguration classes: ours ({ours.holders:,} record holders, "
                      f"{ours.misconfigured:,} misconfigured) beside Ashiq et al., IMC 2025")
    if ours.holders:
        ctx.figure(charts.misconfiguration(side, ours.holders, ours.misconfigured,
                                           "Ashiq et al. IMC 2025", ours.holders_neff, ours.misconfigured_neff),
                   "misconfig_vs_published", citation=published.citation)
    else:
        ctx.empty("Figure", "no domain has an MTA-STS record in this run: no share to compare.")
    stages = ctx.sql("SELECT stage, tls_subclass, domains FROM report_failure_stages"
                     " WHERE run_id = $run ORDER BY domains DESC, stage, tls_subclass", run=run)
    ctx.key("policy_fetch_failures", int(stages["domains"].sum()))
    if len(stages):
        stages = stages.assign(valid_records=int(whole["valid_record"]), valid_records_neff=whole["valid_record_neff"])
        ctx.table(rate_columns(stages, "domains", "valid_records", "of_valid_records", n_eff="valid_records_neff"),
                  "failure_stages", display=rate_texts(stages, ["domains"], "valid_records", "valid_records_neff"),
                  caption="Where the policy fetch failed: domains (percent of those with a valid record, 95 % CI)")
    else:
        ctx.empty("Policy fetch failures", "every domain with a valid record served a policy.")
ctx.table(adoption_ref.table, "published_adoption", caption="Published adoption figures",
          citation=adoption_ref.citation)

# %% [markdown]
# ## Delivery-risk domains
#
# Enforce mode and an MX an RFC-compliant sender must refuse (not covered by
# the policy's `mx` patterns, RFC 8461 section 4.1, or, when probed, no
# STARTTLS or an invalid certificate, section 4.2). Host names and patterns
# are as the domains publish them.

# %%
if ctx.has_crawl:
    risk = ctx.sql("SELECT domain, rank, policy_mode, mx_policy_match, mismatch_subclass,"
                   " mx_starttls, mx_hosts, policy_mx FROM report_delivery_risk"
                   " WHERE run_id = $run ORDER BY rank NULLS LAST, domain", run=run)
    # the share is of weighted counts (the list's rows are the sampled domains themselves)
    at_risk = wilson(int(whole["delivery_risk"]), int(whole["mode_enforce"]), whole["mode_enforce_neff"])
    if len(risk):
        ctx.table(risk, "delivery_risk", paper=True,
                  caption=f"{len(risk):,} delivery-risk domains crawled; their share of enforce-mode domains: "
                          f"{at_risk.text()}")
    else:
        ctx.empty("Delivery risk", f"no enforce-mode domain of the {int(whole['mode_enforce']):,} in this run "
                                   "has an MX that a compliant sender would refuse.")
    subclasses = ctx.sql("SELECT subclass, domains, in_enforce_mode FROM report_mismatch_subclasses"
                         " WHERE run_id = $run ORDER BY domains DESC, subclass", run=run)
    if len(subclasses):
        ctx.table(subclasses, "mismatch_subclasses", caption="Why an MX is not covered by the policy")
    else:
        ctx.empty("MX not covered", "no domain's MX hosts fall outside its policy's mx patterns in this run.")
    texts = ctx.sql("SELECT domain, policy_fetch, policy_text FROM report_policy_texts"
                    " WHERE run_id = $run ORDER BY delivery_risk DESC, rank NULLS LAST, domain"
                    " LIMIT 10", run=run)
    if len(texts):
        ctx.note("Policy texts as served (first 10 of the delivery-risk and unparsable policies):")
    for row in texts.itertuples():
        ctx.quote(row.policy_text[:2000], cite=f"https://mta-sts.{row.domain}/.well-known/mta-sts.txt"
                                                f" ({row.policy_fetch})")

# %% [markdown]
# ## Concentration: who serves policies and MX
#
# Organisations are approximated by the host name's registrable part
# (`report_host_org` in the report views). The figures show the
# organisations that serve two or more domains; organisations with a single
# domain are summed in one bar.

# %%
if ctx.has_crawl:
    hosts = ctx.sql("SELECT policy_host_org, domains, round(100 * share, 2) AS pct"
                    " FROM report_policy_hosts WHERE run_id = $run"
                    " ORDER BY domains DESC, policy_host_org", run=run)
    mx = ctx.sql("SELECT mx_org, domains, round(100 * share, 2) AS pct FROM report_mx_providers"
                 " WHERE run_id = $run ORDER BY domains DESC, mx_org", run=run)
    third = hosts[hosts["policy_host_org"] != "(self-hosted)"]
    ctx.key("third_party_policy_hosts_top_share_pct",
            float(third["pct"].iloc[0]) if len(third) else 0.0)
    valid = int(whole["valid_record"])
    ctx.table(hosts.head(20), "policy_hosts", paper=True,
              caption="Policy hosts (mta-sts.<domain> CNAME target), top 20")
    ctx.table(mx.head(20), "mx_providers", paper=True,
              caption="MX organisations of domains with a valid record, top 20")
    for frame, what, name in ((hosts, "MTA-STS policy", "policy_hosts"), (mx, "MX", "mx_providers")):
        fig = charts.concentration(frame, valid, what, total_neff=whole["valid_record_neff"])
        if fig is None:
            ctx.empty(f"{what} concentration", "every organisation serves a single domain: "
                                               "there is no concentration to draw.")
        else:
            ctx.figure(fig, f"concentration_{name}")

# %% [markdown]
# ## Month over month, and lifecycle events between runs
#
# One line per crawl run, each share with its 95 % Wilson band; the change
# from the previous run with Newcomb's score interval for a difference of
# two proportions. Events between consecutive crawl runs: a policy changed
# without a new id (senders keep the cached policy, RFC 8461 section 3.1),
# an id changed for the same policy, MTA-STS removed without first
# publishing mode `none` (section 8.3).

# %%
if ctx.has_crawl:
    trend = ctx.sql("SELECT * FROM report_run_summary WHERE run_id IN (SELECT unnest($runs))"
                    " ORDER BY run_order", runs=ctx.run_ids)
    ctx.key("runs_in_trend", len(trend))
    if len(trend) > 1:
        ctx.table(trend.drop(columns=["run_order"]), "trend", paper=True, caption="One line per crawl run")
        ctx.table(run_changes(trend, ["has_record", "mode_enforce", "misconfigured"]), "month_over_month", paper=True,
                  caption="Change from the previous run, percentage points, 95 % Newcomb interval")
        ctx.figure(charts.trend(trend), "trend")
    else:
        ctx.empty("Trend", "one crawl run only in the chosen period: the trend and the month-over-month "
                           "changes need two or more runs.")
    events = ctx.sql("SELECT event, rfc_section, count(*) AS domains FROM report_lifecycle_events"
                     " WHERE run_id = $run GROUP BY ALL ORDER BY domains DESC, event", run=run)
    ctx.key("lifecycle_violations",
            int(events.loc[events["rfc_section"].notna(), "domains"].sum()))
    if len(trend) > 1 and len(events):
        ctx.table(events, "lifecycle_summary", paper=True, caption="Lifecycle events since the previous run")
        detail = ctx.sql("SELECT domain, event, rfc_section, before_id, after_id, before_mode,"
                         " after_mode, before_mx, after_mx FROM report_lifecycle_events"
                         " WHERE run_id = $run AND violates_rfc ORDER BY event, domain", run=run)
        ctx.table(detail, "lifecycle_violations", caption="Domains whose change breaks RFC 8461")
    elif len(trend) > 1:
        ctx.empty("Lifecycle events", "no domain changed its record or policy between the last two runs.")
