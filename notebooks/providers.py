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

# %%
import matplotlib.pyplot as plt
import numpy as np

from collectors.report import ReportContext, reference

ctx = ReportContext.open(
    "providers", db_path, run_ids=run_ids, month=month, rank_buckets=rank_buckets,
    lab_id=lab_id, output_dir=output_dir, local_simulation=local_simulation, data_note=data_note,
    materialise="none")
ctx.banner()
behaviour = ctx.lab("behaviour")
deliveries = ctx.lab("deliveries")
if behaviour is None:
    ctx.note("No lab evidence in this database: ingest a lab run ('mtasts ingest') to fill this page.")

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
    ctx.table(table, "behaviour", caption="Provider behaviour per lab server")
    matrix = table.pivot_table(index="provider", columns="server_label", values="delivered",
                               aggfunc="max").astype(float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * matrix.shape[1], 0.8 + 0.5 * matrix.shape[0]))
    ax.imshow(matrix.to_numpy(), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), [str(c).upper() for c in matrix.columns])
    ax.set_yticks(range(matrix.shape[0]), list(matrix.index))
    for (i, j), v in np.ndenumerate(matrix.to_numpy()):
        ax.text(j, i, "" if np.isnan(v) else ("delivered" if v else "refused"), ha="center", va="center", fontsize=7)
    ax.set_title("Delivered (green) or refused (red), per lab server")
    ctx.figure(fig, "delivery_matrix")

# %% [markdown]
# ## Beside the published table
#
# The published lab tested server A (valid certificate) and B (no TLS or an
# untrusted certificate), both under an enforce-mode policy.

# %%
published = reference.load("provider_behaviour_alexander_2024")
if behaviour is not None:
    ours = ctx.sql(
        f"""SELECT provider,
                   bool_or(delivered) FILTER (WHERE lower(server_label) = 'a') AS delivered_a,
                   bool_or(delivered) FILTER (WHERE lower(server_label) = 'b') AS delivered_b,
                   bool_or(delivered) FILTER (WHERE lower(server_label) = 'd') AS delivered_d,
                   any_value(provider_verdict) AS verdict
            FROM {behaviour} GROUP BY provider ORDER BY provider""")
    ctx.table(ours, "published_style", caption="Ours, in the published table's shape")
ctx.table(published.table, "published", caption="Published provider behaviour", citation=published.citation)

# %% [markdown]
# ## Policy fetches and TLS-RPT per provider
#
# Whether the sender fetched the lab's policy, how long after its first send,
# and the TLS-RPT reports (RFC 8460) that arrived from it.

# %%
if behaviour is not None:
    timing = ctx.sql(f"""SELECT provider, any_value(provider_verdict) AS verdict,
                                bool_or(policy_fetched) AS policy_fetched,
                                max(policy_fetches) AS policy_fetches,
                                min(first_fetch_after_first_send_s) AS first_fetch_after_first_send_s,
                                any_value(fetch_attribution) AS fetch_attribution,
                                max(tlsrpt_reports) AS tlsrpt_reports,
                                any_value(tlsrpt_failure_types) AS tlsrpt_failure_types
                         FROM {behaviour} GROUP BY provider ORDER BY provider""")
    ctx.table(timing, "policy_fetch_and_tlsrpt", caption="Policy fetch timing and TLS-RPT, per provider")
    per = timing.set_index("provider")["first_fetch_after_first_send_s"].dropna()
    ctx.key("providers_fetching_policy", int(timing["policy_fetched"].fillna(False).astype(bool).sum()))
    ctx.key("providers_with_tlsrpt", int((timing["tlsrpt_reports"].fillna(0) > 0).sum()))
    if len(per):
        fig, ax = plt.subplots(figsize=(6, 0.8 + 0.4 * max(len(per), 1)))
        ax.barh(list(per.index), list(per.values))
        ax.set_xlabel("first policy fetch, seconds after the provider's first send")
        ax.set_title("Policy fetch timing")
        ctx.figure(fig, "policy_fetch_timing")

# %% [markdown]
# ## Deliveries with their TLS
#
# Each test message: delivered or not, and the TLS protocol and cipher the
# receiving Postfix recorded.

# %%
if deliveries is not None:
    d = ctx.sql(f"SELECT provider, server_label, address, sent_at, delivered, received_at, tls_protocol,"
                f" tls_cipher, client_address, sender_last_status, sender_last_reason"
                f" FROM {deliveries} ORDER BY provider, server_label, sent_at")
    ctx.key("test_messages", len(d))
    ctx.table(d, "deliveries", caption="Test messages")
