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

# %%
import matplotlib.pyplot as plt
import pandas as pd

from collectors.report import ReportContext, reference

ctx = ReportContext.open(
    "adoption", db_path, run_ids=run_ids, month=month, rank_buckets=rank_buckets,
    lab_id=lab_id, output_dir=output_dir, local_simulation=local_simulation, data_note=data_note)
ctx.banner()
run = ctx.current_run
if not ctx.has_crawl:
    ctx.note("No finished crawl run in this database for the month: nothing to report on adoption.")

# %% [markdown]
# ## The funnel by rank bucket
#
# Buckets are cumulative (the top 1k is inside the top 10k); "all" is the
# whole list. A record is any `_mta-sts` TXT record that starts `v=STSv1`;
# the policy is fetched only when the record is valid; "fetched" means an
# HTTP 200 body within the size cap, "valid" that it also parsed.

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
    ctx.table(funnel.drop(columns=["run_id", "top_n"]), "funnel",
              caption=f"Domains reaching each stage, run {run}")
    stages = ["has_mx", "has_record", "valid_record", "policy_fetched", "valid_policy", "mode_enforce"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(funnel)
    for i, row in enumerate(funnel.itertuples()):
        shares = [100 * getattr(row, s) / max(row.domains, 1) for s in stages]
        ax.bar([x + i * width for x in range(len(stages))], shares, width, label=row.bucket)
    ax.set_xticks([x + width * (len(funnel) - 1) / 2 for x in range(len(stages))],
                  [s.replace("_", " ") for s in stages], rotation=20)
    ax.set_ylabel("% of domains in bucket")
    ax.set_title("MTA-STS funnel by rank bucket")
    ax.legend(fontsize=8)
    ctx.figure(fig, "funnel")

# %% [markdown]
# ## TLS-RPT, DNSSEC and DANE alongside
#
# Shares of all domains, and of the domains with an MTA-STS record.

# %%
if ctx.has_crawl:
    along = ctx.sql(
        """SELECT 'all domains' AS population, report_weighted(sum(weight)) AS domains,
                  report_weighted(sum(weight) FILTER (WHERE tlsrpt_valid)) AS tlsrpt,
                  report_weighted(sum(weight) FILTER (WHERE dnssec_secure)) AS dnssec,
                  report_weighted(sum(weight) FILTER (WHERE dane_tlsa)) AS dane
           FROM report_domain_stages WHERE run_id = $run
           UNION ALL
           SELECT 'with MTA-STS record', report_weighted(sum(weight)),
                  report_weighted(sum(weight) FILTER (WHERE tlsrpt_valid)),
                  report_weighted(sum(weight) FILTER (WHERE dnssec_secure)),
                  report_weighted(sum(weight) FILTER (WHERE dane_tlsa))
           FROM report_domain_stages WHERE run_id = $run AND has_record""", run=run)
    ctx.key("record_and_tlsrpt", int(along.iloc[1]["tlsrpt"]))
    ctx.table(along, "alongside", caption="TLS-RPT (valid record), DNSSEC (validated MX answer), DANE (TLSA for an MX)")
    fig, ax = plt.subplots(figsize=(6, 3))
    for i, row in enumerate(along.itertuples()):
        vals = [100 * v / max(row.domains, 1) for v in (row.tlsrpt, row.dnssec, row.dane)]
        ax.bar([x + i * 0.4 for x in range(3)], vals, 0.4, label=row.population)
    ax.set_xticks([x + 0.2 for x in range(3)], ["TLS-RPT", "DNSSEC", "DANE"])
    ax.set_ylabel("% of population")
    ax.legend(fontsize=8)
    ctx.figure(fig, "alongside")

# %% [markdown]
# ## Misconfiguration classes and failure stages, beside the published figures
#
# The four classes of Ashiq et al. (IMC 2025): invalid TXT record, policy
# retrieval error, PKIX-invalid MX certificate (only when MX hosts were
# probed), MX not covered by the policy. Classes overlap. Published numbers
# are shown only beside ours, with their source.

# %%
published = reference.load("misconfiguration_published")
adoption_ref = reference.load("adoption_published")
if ctx.has_crawl:
    classes = ctx.sql("SELECT class, domains FROM report_misconfig_classes WHERE run_id = $run"
                      " ORDER BY domains DESC", run=run)
    record_holders = int(whole["has_record"])
    classes["pct_of_record_holders"] = (100 * classes["domains"] / max(record_holders, 1)).round(1)
    for name, n in zip(classes["class"], classes["domains"]):
        ctx.key(f"class_{name}", int(n))
    measures = {
        "invalid_txt": "invalid TXT record",
        "policy_retrieval": "policy server errors among misconfigured",
        "mx_cert_invalid": "PKIX-invalid MX certificate (self-managed)",
        "mx_not_covered": "MX not covered by policy patterns in enforce mode",
    }
    pub = published.table.set_index("measure")
    side = classes.assign(
        published_measure=[measures.get(c, "") for c in classes["class"]],
        published_domains=[pub["value"].get(measures.get(c, ""), "") for c in classes["class"]])
    ctx.table(side, "misconfig_classes",
              caption=f"Misconfiguration classes among {record_holders:,} record holders, run {run}",
              citation=published.citation)
    stages = ctx.sql("SELECT stage, tls_subclass, domains FROM report_failure_stages"
                     " WHERE run_id = $run ORDER BY domains DESC, stage, tls_subclass", run=run)
    ctx.table(stages, "failure_stages",
              caption="Where the policy fetch failed (domains with a valid record)")
    ctx.key("policy_fetch_failures", int(stages["domains"].sum()))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    a1.barh(classes["class"], classes["pct_of_record_holders"], color="tab:red")
    a1.set_xlabel("% of record holders (this run)")
    a1.set_title("Ours")
    pub_pct = published.table.assign(value=published.table["value"].astype(float))
    pub_rows = pub_pct[pub_pct["measure"].isin(measures.values()) & (pub_pct["unit"] == "domains")]
    holders = float(pub.loc["domains with an _mta-sts record", "value"])
    a2.barh([m[:38] for m in pub_rows["measure"]], 100 * pub_rows["value"] / holders, color="tab:gray")
    a2.set_xlabel("% of record holders (published)")
    a2.set_title("Ashiq et al. IMC 2025")
    fig.tight_layout()
    ctx.figure(fig, "misconfig_vs_published", citation=published.citation)
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
    ctx.table(risk, "delivery_risk", caption=f"{len(risk):,} delivery-risk domains")
    subclasses = ctx.sql("SELECT subclass, domains, in_enforce_mode FROM report_mismatch_subclasses"
                         " WHERE run_id = $run ORDER BY domains DESC", run=run)
    ctx.table(subclasses, "mismatch_subclasses", caption="Why an MX is not covered by the policy")
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
# (`report_host_org` in the report views).

# %%
if ctx.has_crawl:
    hosts = ctx.sql("SELECT policy_host_org, domains, round(100 * share, 2) AS pct"
                    " FROM report_policy_hosts WHERE run_id = $run"
                    " ORDER BY domains DESC, policy_host_org LIMIT 20", run=run)
    mx = ctx.sql("SELECT mx_org, domains, round(100 * share, 2) AS pct FROM report_mx_providers"
                 " WHERE run_id = $run ORDER BY domains DESC, mx_org LIMIT 20", run=run)
    third = hosts[hosts["policy_host_org"] != "(self-hosted)"]
    ctx.key("third_party_policy_hosts_top_share_pct",
            float(third["pct"].iloc[0]) if len(third) else 0.0)
    ctx.table(hosts, "policy_hosts", caption="Policy hosts (mta-sts.<domain> CNAME target), top 20")
    ctx.table(mx, "mx_providers", caption="MX organisations of domains with a valid record, top 20")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    a1.barh(hosts["policy_host_org"].head(10)[::-1], hosts["pct"].head(10)[::-1])
    a1.set_xlabel("% of domains with a valid record")
    a1.set_title("Policy hosts")
    a2.barh(mx["mx_org"].head(10)[::-1], mx["pct"].head(10)[::-1], color="tab:green")
    a2.set_xlabel("% of domains with a valid record")
    a2.set_title("MX organisations")
    fig.tight_layout()
    ctx.figure(fig, "concentration")

# %% [markdown]
# ## Month over month, and lifecycle events between runs
#
# Events between consecutive crawl runs: a policy changed without a new id
# (senders keep the cached policy, RFC 8461 section 3.1), an id changed for
# the same policy, MTA-STS removed without first publishing mode `none`
# (section 8.3).

# %%
if ctx.has_crawl:
    trend = ctx.sql("SELECT * FROM report_run_summary WHERE run_id IN (SELECT unnest($runs))"
                    " ORDER BY run_order", runs=ctx.run_ids)
    ctx.key("runs_in_trend", len(trend))
    ctx.table(trend.drop(columns=["run_order"]), "trend", caption="One line per crawl run")
    if len(trend) > 1:
        fig, ax = plt.subplots(figsize=(7, 3.2))
        for column in ("has_record", "valid_policy", "mode_enforce", "misconfigured"):
            ax.plot(trend["started_at"], 100 * trend[column] / trend["domains"], marker="o",
                    label=column.replace("_", " "))
        ax.set_ylabel("% of domains")
        ax.legend(fontsize=8)
        fig.autofmt_xdate()
        ctx.figure(fig, "trend")
    events = ctx.sql("SELECT event, rfc_section, count(*) AS domains FROM report_lifecycle_events"
                     " WHERE run_id = $run GROUP BY ALL ORDER BY domains DESC, event", run=run)
    ctx.key("lifecycle_violations",
            int(events.loc[events["rfc_section"].notna(), "domains"].sum()))
    if len(trend) > 1:
        ctx.table(events, "lifecycle_summary", caption="Lifecycle events since the previous run")
        detail = ctx.sql("SELECT domain, event, rfc_section, before_id, after_id, before_mode,"
                         " after_mode, before_mx, after_mx FROM report_lifecycle_events"
                         " WHERE run_id = $run AND violates_rfc ORDER BY event, domain", run=run)
        ctx.table(detail, "lifecycle_violations", caption="Domains whose change breaks RFC 8461")
    else:
        ctx.note("One crawl run only: the trend and lifecycle events need two or more runs.")
