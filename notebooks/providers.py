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
# # Provider behaviour
#
# Which senders honour MTA-STS, from the audit lab's evidence: one test
# message per lab server (A valid certificate, B no TLS, C IPv6 only,
# D untrusted certificate with the wrong name, E TLS required, F no TLS and
# no MTA-STS record; all but F under an enforce-mode policy). An enforcing
# sender (RFC 8461 section 5) delivers to A, C and E and refuses B and D.
# The published table is shown beside ours, with its source.

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
from collectors.report import ReportContext, charts, compare, reference

ctx = ReportContext.from_parameters("providers", globals(), materialise="none")
ctx.banner()
behaviour = ctx.lab("behaviour")
deliveries = ctx.lab("deliveries")
ctx.note(ctx.lab_period_text())
if behaviour is None:
    ctx.empty("Provider behaviour", "no lab test message in the period this page covers: ingest a lab "
                                    "run ('mtasts ingest') or choose the month the lab ran in.")

# %% [markdown]
# ## Who delivered where
#
# One row per sending provider and lab server: delivered or not, and the
# ingest's verdict (enforces MTA-STS, does not, partial: for example only
# later messages refused, which is lazy policy caching, RFC 8461 section 5.1).

# %%
if behaviour is not None:
    table = ctx.sql(f"SELECT provider, server_label, setup, enforcing_sender_must, messages,"
                    f" delivered_messages, delivered, verdict, provider_verdict, tls_protocols"
                    f" FROM {behaviour} ORDER BY provider, server_label")
    ctx.key("providers", int(table["provider"].nunique()))
    ctx.key("delivered_pairs", int(table["delivered"].fillna(False).astype(bool).sum()))
    ctx.table(table, "behaviour", paper=True, caption="Provider behaviour per lab server")

# %% [markdown]
# ## Beside the published table
#
# The published table (Alexander 2024) in its own columns: inbound MTA-STS
# (the provider's own sending domain's policy mode), delivered to A (valid
# certificate), delivered to B (no TLS), outbound MTA-STS support. Our rows
# use the same columns: inbound MTA-STS from our crawl of the sender's domain
# when the crawl has it ("not crawled" otherwise); our servers A and B are the
# published A and B (our D, an untrusted certificate, is in the table above).
# Outbound support maps our verdict: **full** = refuses every server an
# enforcing sender must refuse (B and D); **partial** = refuses some, or only
# later messages (lazy policy caching); **none** = delivers to all of them.
# A sender that fetched no policy has no MTA-STS support whatever it refused:
# when it enforces DANE (B publishes TLSA records and offers no STARTTLS, so
# RFC 7672 section 2.2 refuses it) its row says **none (B refused by DANE)**.

# %%
published = reference.load("provider_behaviour_alexander_2024")
if behaviour is not None:
    ours = ctx.sql(
        f"""SELECT provider,
                   bool_or(delivered) FILTER (WHERE lower(server_label) = 'a') AS delivered_a,
                   bool_or(delivered) FILTER (WHERE lower(server_label) = 'b') AS delivered_b,
                   any_value(provider_verdict) AS provider_verdict,
                   bool_or(dane_enforced) AS dane_enforced, bool_or(policy_fetched) AS policy_fetched
            FROM {behaviour} GROUP BY provider ORDER BY provider""")
    inbound = {}
    if ctx.has_crawl:
        inbound = dict(ctx.sql(
            """SELECT d.provider, coalesce(p.policy_mode, CASE p.sts_record WHEN 'absent' THEN 'none published'
                                                       ELSE p.sts_record END)
               FROM (SELECT DISTINCT provider, lower(split_part(sender, '@', 2)) AS domain FROM lab_deliveries
                     WHERE sender LIKE '%@%') d
               JOIN posture p ON p.domain = d.domain AND p.run_id = $run""", run=ctx.current_run
        ).itertuples(index=False))
    side = compare.provider_table(published.table, ours, inbound)
    ctx.key("outbound_support", dict(zip(ours["provider"], side[side["source"] == "this lab"]
                                         ["outbound_mta_sts_support"])))
    ctx.table(side, "published_style", paper=True, citation=published.citation,
              caption="Provider table in the published columns: published rows and this lab's rows")
    ctx.figure(charts.provider_matrix(side), "provider_table", lab=True, citation=published.citation)
else:
    ctx.table(published.table, "published", caption="Published provider behaviour",
              citation=published.citation)

# %% [markdown]
# ## Policy fetches and TLS-RPT per provider
#
# Whether the sender fetched the lab's policy and when, relative to its
# first test message. The policy server's access log records whole seconds,
# so a fetch is drawn as the one-second interval it lies in: a fetch in the
# same second as the first send may have come just before it (a primed
# cache) or just after (a lazy fetch). TLS-RPT reports (RFC 8460) that
# arrived from the sender are counted beside.

# %%
if behaviour is not None:
    timing = ctx.sql(f"""SELECT provider, any_value(provider_verdict) AS verdict,
                                bool_or(policy_fetched) AS policy_fetched,
                                max(policy_fetches) AS policy_fetches,
                                min(first_sent_at) AS first_sent_at,
                                min(first_policy_fetch_at) AS first_policy_fetch_at,
                                any_value(fetch_attribution) AS fetch_attribution,
                                max(tlsrpt_reports) AS tlsrpt_reports,
                                any_value(tlsrpt_failure_types) AS tlsrpt_failure_types
                         FROM {behaviour} GROUP BY provider ORDER BY provider""")
    ctx.table(timing, "policy_fetch_and_tlsrpt", paper=True,
              caption="Policy fetch timing and TLS-RPT, per provider (fetch times are whole seconds)")
    ctx.key("providers_fetching_policy", int(timing["policy_fetched"].fillna(False).astype(bool).sum()))
    ctx.key("providers_with_tlsrpt", int((timing["tlsrpt_reports"].fillna(0) > 0).sum()))
    lab_timers = ctx.timers()
    ctx.note("Lab senders' timers (from the run's provenance): " + (
        "; ".join(f"{r.profile}: {r.name} = {r.value}" for r in lab_timers.itertuples()) or "not recorded") + ".")
    fig = charts.fetch_timing(timing)
    if fig is None:
        ctx.empty("Policy fetch timing", "no sender fetched the lab's MTA-STS policy in this period.")
    else:
        never = [p for p, f in zip(timing["provider"], timing["policy_fetched"]) if not f]
        ctx.figure(fig, "policy_fetch_timing", lab=True,
                   caption=("Never fetched the policy: " + ", ".join(never) + ".") if never else "")

# %% [markdown]
# ## Deliveries with their TLS
#
# Each test message: delivered or not, and the TLS protocol and cipher the
# receiving Postfix recorded.

# %%
if deliveries is not None:
    d = ctx.sql(f"SELECT provider, server_label, address, sent_at, delivered, received_at, tls_protocol,"
                f" tls_cipher, client_address, sender_last_status, sender_last_reason"
                f" FROM {deliveries} ORDER BY provider, server_label, sent_at, address")
    ctx.key("test_messages", len(d))
    ctx.table(d, "deliveries", caption="Test messages")
