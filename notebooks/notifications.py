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
# # What users were told
#
# When MTA-STS stops a message, the sending user gets delay notices and,
# in the end, a failure notice (RFC 3464). Per provider: a timeline of the
# notices (first notice, updates, final), whether they mention TLS, and the
# notice text quoted as received (escaped: it is remote text).

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

from collectors.report import ReportContext, reference

ctx = ReportContext.open(
    "notifications", db_path, run_ids=run_ids, month=month, rank_buckets=rank_buckets,
    lab_id=lab_id, output_dir=output_dir, local_simulation=local_simulation, data_note=data_note,
    materialise="none")
ctx.banner()
timing = ctx.lab("timing")
notices = ctx.lab("notices")
if timing is None:
    ctx.note("No undelivered lab message with notices in this database.")

# %% [markdown]
# ## Time to notice, per undelivered message

# %%
if timing is not None:
    t = ctx.sql(f"SELECT provider, server_label, address, sent_at, notices, delay_notices,"
                f" failure_notices, time_to_first_notice_s, first_notice_kind, time_to_final_notice_s,"
                f" tls_mentioned, mta_sts_mentioned, notice_sources, sender_last_reason"
                f" FROM {timing} ORDER BY provider, server_label")
    ctx.key("undelivered_messages", len(t))
    ctx.key("messages_with_tls_mentioned", int(t["tls_mentioned"].fillna(False).astype(bool).sum()))
    ctx.table(t, "timing", caption="Per undelivered test message")

# %% [markdown]
# ## Timeline per provider
#
# Each row is one undelivered test message; markers are the notices it
# caused, in minutes after the send.

# %%
if notices is not None and timing is not None:
    n = ctx.sql(f"SELECT provider, server_label, address, kind, mentions_tls, after_s"
                f" FROM {notices} ORDER BY provider, server_label, received_at")
    ctx.key("notices", len(n))
    rows = list(dict.fromkeys(zip(n["provider"], n["server_label"])))
    fig, ax = plt.subplots(figsize=(8, 1 + 0.35 * max(len(rows), 1)))
    marker = {"delay": ("o", "tab:orange"), "failure": ("X", "tab:red"), "success": ("s", "tab:green")}
    for kind, (m, colour) in marker.items():
        part = n[n["kind"] == kind]
        ax.scatter(part["after_s"] / 60, [rows.index(k) for k in zip(part["provider"], part["server_label"])],
                   marker=m, color=colour, label=kind, s=50)
    ax.set_yticks(range(len(rows)), [f"{p} / {s.upper()}" for p, s in rows])
    ax.set_xlabel("minutes after the send")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Notices received by the sending user")
    ctx.figure(fig, "timeline")

# %% [markdown]
# ## The notices, quoted
#
# The text each notice showed the user (first 1,500 characters), escaped.

# %%
if notices is not None:
    texts = ctx.sql(f"SELECT provider, server_label, kind, received_at, mentions_tls, subject, text"
                    f" FROM {notices} ORDER BY provider, received_at")
    ctx.table(texts.drop(columns=["text"]), "notices", caption="Notices")
    for row in texts.head(40).itertuples():
        ctx.quote((row.text or "")[:1500],
                  cite=f"{row.provider}, server {str(row.server_label).upper()}, {row.kind} notice, "
                       f"{row.received_at}{', mentions TLS' if row.mentions_tls else ''}")

# %% [markdown]
# ## Beside the published observations

# %%
published = reference.load("notification_observations_alexander_2024")
ctx.table(published.table, "published", caption="What users were told (published)",
          citation=published.citation)
