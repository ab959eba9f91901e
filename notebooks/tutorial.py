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
# # Tutorial: ten questions about MTA-STS, answered in SQL
#
# MTA-STS (RFC 8461) lets a mail domain say "deliver to me only over verified
# TLS": a `_mta-sts` TXT record announces a policy, served over HTTPS, whose
# `mode` is `enforce`, `testing` or `none` and whose `mx` patterns list the
# mail servers a sender may trust. TLS-RPT (RFC 8460) asks senders for reports.
#
# Each question below is one short SQL query in a `%%sql` cell (jupysql, on
# the notebook's DuckDB connection) and one chart. Start a query with `SELECT`
# or `WITH` (jupysql re-runs other statements and can lose rows). `%%sql name <<` keeps the
# result as a pandas DataFrame called `name`. Change a query and run the cell
# again: that is the whole workflow. The columns are described in the data
# dictionary (the explore notebook, or `SELECT * FROM duckdb_columns()` with
# its `comment` column).
#
# Opened from `make lab` with no parameter, this notebook reads the embedded
# sample (a local simulation: a generated population of 2,000 domains and a
# lab of real Postfix servers, no real domain). A bigger, evolving sample is
# being built; where the current one has no rows for a question, the notebook
# says so instead of drawing an empty chart.

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
import re

import matplotlib.pyplot as plt

from collectors.report import ReportContext, enable_interactive_tables, enable_sql_cells

ctx = ReportContext.open(
    "tutorial", db_path, run_ids=run_ids, month=month, rank_buckets=rank_buckets,
    lab_id=lab_id, output_dir=output_dir, local_simulation=local_simulation, data_note=data_note,
    materialise="current")
ctx.banner()
run = ctx.current_run  # the newest crawl run; `posture` below holds this run only
enable_sql_cells(ctx.con)
enable_interactive_tables()
from itables import show  # noqa: E402  (after init: interactive, searchable tables)


def bar(df, x, y, title, xlabel="", horizontal=False):
    """One bar chart per question, labelled; returns nothing (the chart is shown)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    bars = (ax.barh if horizontal else ax.bar)(df[x].astype(str), df[y])
    ax.bar_label(bars, fmt="{:,.4g}")
    ax.set_title(title)
    (ax.set_xlabel if horizontal else ax.set_ylabel)(xlabel or y)
    fig.tight_layout()
    ctx.figure(fig, re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_"))


def say(text):
    """An answer in words (used when the data holds no rows for a question)."""
    ctx.note(text)


# %% [markdown]
# ## 1. What share of domains enforce MTA-STS?
#
# `posture` has one row per domain of a crawl run with the verdicts; a domain
# has a `policy_mode` only when its policy was fetched and valid.

# %% magic_args="modes <<" language="sql"
# SELECT coalesce(policy_mode, '(no valid policy)') AS mode, count(*) AS domains,
#        round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS percent
# FROM posture GROUP BY ALL ORDER BY domains DESC

# %%
show(modes)
bar(modes, "mode", "percent", "Domains by MTA-STS policy mode", "% of domains")

# %% [markdown]
# ## 2. How far do domains get through the MTA-STS funnel?
#
# Record published, record valid, policy fetched over HTTPS, policy valid,
# enforce mode (RFC 8461 sections 3.1 to 3.3). `report_domain_stages` has one
# boolean column per stage.

# %% magic_args="funnel <<" language="sql"
# SELECT stage, domains FROM (
#   UNPIVOT (SELECT count_if(has_record) AS "1 record", count_if(valid_record) AS "2 valid record",
#                   count_if(policy_fetched) AS "3 policy fetched", count_if(valid_policy) AS "4 valid policy",
#                   count_if(mode_enforce) AS "5 enforce"
#            FROM report_domain_stages WHERE run_id = '{{run}}')
#   ON COLUMNS(*) INTO NAME stage VALUE domains)
# ORDER BY stage

# %%
bar(funnel, "stage", "domains", "The MTA-STS funnel", "domains")

# %% [markdown]
# ## 3. What goes wrong most often?
#
# The four published misconfiguration classes (a domain can be in several).

# %% magic_args="classes <<" language="sql"
# SELECT class, domains FROM report_misconfig_classes WHERE run_id = '{{run}}' ORDER BY domains DESC

# %%
if len(classes):
    bar(classes, "class", "domains", "Misconfigured domains by class", "domains", horizontal=True)
else:
    say("No misconfigured domain in this run.")

# %% [markdown]
# ## 4. When a policy cannot be fetched, at which step does it fail?
#
# DNS of `mta-sts.<domain>`, TCP, TLS (with why the certificate was refused),
# HTTP status, size cap, timeout, or the policy's syntax.

# %% magic_args="stages <<" language="sql"
# SELECT stage || coalesce(' / ' || tls_subclass, '') AS failure, domains
# FROM report_failure_stages WHERE run_id = '{{run}}' ORDER BY domains DESC

# %%
if len(stages):
    bar(stages, "failure", "domains", "Where policy fetches failed", "domains", horizontal=True)
else:
    say("Every policy announced in this run was fetched.")

# %% [markdown]
# ## 5. Which enforce-mode domains have an MX their policy does not cover?
#
# RFC 8461 section 4.1: a sender must refuse an MX host that no `mx` pattern of
# an enforce policy matches, so mail to these domains is not delivered by
# compliant senders. `crawl_mx` has one row per domain and MX host.

# %% magic_args="uncovered <<" language="sql"
# SELECT p.rank, p.domain, m.mx_host, p.policy_mx, m.mismatch_subclass
# FROM posture p JOIN crawl_mx m USING (run_id, domain)
# WHERE p.policy_mode = 'enforce' AND NOT m.covered ORDER BY p.rank

# %%
if len(uncovered):
    show(uncovered)
    bar(uncovered.groupby("mismatch_subclass", as_index=False).size(), "mismatch_subclass", "size",
        "Why the MX is not covered", "MX hosts", horizontal=True)
else:
    say("In this run no enforce-mode domain has an MX outside its policy's mx patterns: "
        "every enforce-mode domain's MX hosts are covered. The query above finds them "
        "in a crawl where some are not.")

# %% [markdown]
# ## 6. Do MTA-STS domains also ask for TLS reports?
#
# A valid `_smtp._tls` TXT record (RFC 8460 section 3) beside a valid `_mta-sts` record.

# %% magic_args="tlsrpt <<" language="sql"
# SELECT sts_record, count_if(tlsrpt_record = 'valid')::INT AS with_tlsrpt,
#        count_if(tlsrpt_record <> 'valid')::INT AS without_tlsrpt
# FROM posture GROUP BY ALL ORDER BY sts_record

# %%
show(tlsrpt)
fig, ax = plt.subplots(figsize=(6.5, 3.2))
tlsrpt.set_index("sts_record")[["with_tlsrpt", "without_tlsrpt"]].plot.barh(ax=ax, logx=True)
ax.set_title("TLS-RPT by MTA-STS record status")
ax.set_xlabel("domains (log scale)")
ctx.figure(fig, "q6_tlsrpt")

# %% [markdown]
# ## 7. How long do policies ask senders to cache them?
#
# `max_age` in seconds (RFC 8461 section 3.2); the RFC suggests weeks or more.

# %% magic_args="ages <<" language="sql"
# SELECT policy_max_age / 86400.0 AS days, count(*) AS domains
# FROM posture WHERE policy_max_age IS NOT NULL GROUP BY ALL ORDER BY days

# %%
if len(ages):
    bar(ages, "days", "domains", "Policy max_age", "domains")
else:
    say("No valid policy in this run, so no max_age to show.")

# %% [markdown]
# ## 8. Who runs the mail servers of MTA-STS domains?
#
# The organisation is the registered domain of each MX host.

# %% magic_args="providers <<" language="sql"
# SELECT mx_org, domains, round(100 * share, 1) AS percent
# FROM report_mx_providers WHERE run_id = '{{run}}' ORDER BY domains DESC, mx_org LIMIT 10

# %%
if len(providers):
    bar(providers, "mx_org", "domains", "MX operators of MTA-STS domains (top 10)", "domains",
        horizontal=True)
else:
    say("No MTA-STS domain with an MX in this run.")

# %% [markdown]
# ## 9. Which senders delivered where an enforce policy should have stopped them?
#
# The lab sends test mail from each provider to servers whose policy a
# compliant sender must honour (refuse delivery) or may ignore. `provider_behaviour`
# has the verdict per provider and lab server.

# %% magic_args="behaviour <<" language="sql"
# SELECT provider, server_label, setup, enforcing_sender_must, delivered, verdict
# FROM provider_behaviour ORDER BY provider, server_label

# %%
if len(behaviour):
    show(behaviour)
    ignored = behaviour[(behaviour["enforcing_sender_must"] == "refuse") & behaviour["delivered"]]
    say("Delivered although an enforcing sender must refuse: "
        + (", ".join(sorted(set(ignored["provider"]))) or "no sender") + ".")
    pivot = behaviour.assign(n=1).pivot_table(index="provider", columns="verdict", values="n",
                                              aggfunc="sum", fill_value=0)
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    pivot.plot.barh(stacked=True, ax=ax)
    ax.set_title("Lab servers per provider and verdict")
    ax.set_xlabel("lab servers")
    ax.legend(fontsize="small", loc="lower right")
    ctx.figure(fig, "q9_behaviour")
else:
    say("This database holds no lab evidence (run 'mtasts ingest' on a lab's logs).")

# %% [markdown]
# ## 10. How long did each sender take to tell its user that mail was not delivered?
#
# For each undelivered test message: the time from sending to the first notice
# (a delay warning or a bounce) and to the final one.

# %% magic_args="timing <<" language="sql"
# SELECT provider, server_label, address, first_notice_kind,
#        time_to_first_notice_s / 60.0 AS first_notice_min,
#        time_to_final_notice_s / 60.0 AS final_notice_min
# FROM notification_timing ORDER BY provider, server_label, address

# %%
if len(timing):
    show(timing)
    per_sender = timing.groupby("provider", as_index=False)[["first_notice_min", "final_notice_min"]].median()
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    per_sender.set_index("provider").plot.barh(ax=ax)
    ax.set_title("Median minutes until the sender told its user")
    ax.set_xlabel("minutes after sending")
    ctx.figure(fig, "q10_timing")
else:
    say("No undelivered lab message in this database, so no notice to time.")
if len(timing) and timing["provider"].nunique() < 2:
    say(f"Only {timing['provider'].nunique()} sender in this sample left a message undelivered "
        "(the others delivered everything), so there is one sender to compare.")
