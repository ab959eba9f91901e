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
db_label = ""
posture_cache = ""

# %%
import pandas as pd

from collectors.report import ReportContext, charts, reference

ctx = ReportContext.from_parameters("notifications", globals(), materialise="none")
ctx.banner()
timing = ctx.lab("timing")
notices = ctx.lab("notices")
timers = ctx.timers()
ctx.note(ctx.lab_period_text())
if timing is None:
    ctx.empty("Notifications", "no undelivered lab test message in the period this page covers, so no "
                               "sender had anything to tell its user.")

# %% [markdown]
# ## The lab senders' timers
#
# When a user hears about a stuck message is set by the sending MTA's own
# timers (Postfix `delay_warning_time` and `maximal_queue_lifetime`, Exim's
# `delay_warning` and retry rules), stored with the lab run's provenance. Every
# timing below must be read against them.

# %%
if len(timers):
    ctx.table(timers, "sender_timers", paper=True, caption="Queue timers of the lab's senders, as stored with the run")
    ctx.key("timers", {f"{r.profile}:{r.name}": r.value for r in timers.itertuples()})
else:
    ctx.empty("Timers", "the lab senders' timers are not recorded in this database's run provenance, "
                        "so the notice times below cannot be compared with any provider's.")

# %% [markdown]
# ## Time to notice, per undelivered message

# %%
if timing is not None:
    t = ctx.sql(f"SELECT provider, server_label, address, sent_at, notices, delay_notices,"
                f" failure_notices, time_to_first_notice_s, first_notice_kind, time_to_final_notice_s,"
                f" tls_mentioned, mta_sts_mentioned, notice_sources, sender_last_reason"
                f" FROM {timing} ORDER BY provider, server_label, sent_at, address")
    ctx.key("undelivered_messages", len(t))
    ctx.key("messages_with_tls_mentioned", int(t["tls_mentioned"].fillna(False).astype(bool).sum()))
    ctx.table(t, "timing", paper=True, caption="Per undelivered test message")

# %% [markdown]
# ## Timeline per message
#
# Each row is one undelivered test message; markers are the notices it
# caused, in minutes after the send; dashed lines are the sender's timers.

# %%
if notices is not None and timing is not None:
    n = ctx.sql(f"SELECT provider, server_label, address, sent_at, kind, mentions_tls, after_s"
                f" FROM {notices} ORDER BY provider, server_label, sent_at, received_at, address, kind")
    ctx.key("notices", len(n))
    lines = {r.name: charts.seconds(r.value) for r in timers.itertuples()
             if r.name in ("delay_warning_time", "maximal_queue_lifetime", "delay_warning")}
    ctx.figure(charts.timeline(n, {k: v for k, v in lines.items() if v}), "timeline", lab=True)
elif timing is not None:
    ctx.empty("Timeline", "the undelivered messages caused no notice that reached the sending user.")

# %% [markdown]
# ## Beside the published observations
#
# The published notices come from real providers with their own timers; our
# notices come from the lab's senders with the timers above. The table puts
# each side's timers beside its times.

# %%
published = reference.load("notification_observations_alexander_2024")
timer_text = "; ".join(f"{r.profile}: {r.name} = {r.value}" for r in timers.itertuples()) or "not recorded"
side = published.table.assign(source="published (Alexander 2024)", sender_timers="provider defaults (not published)",
                              mentions_tls=published.table["mentions_tls"].eq("true"))
if timing is not None:
    ours = ctx.sql(f"""SELECT provider, CASE WHEN min(time_to_first_notice_s) IS NULL THEN 'none'
                                             ELSE any_value(first_notice_kind) END AS notice,
                              'first notice after ' || coalesce(min(time_to_first_notice_s) || ' s', 'never')
                              || ', final after ' || coalesce(max(time_to_final_notice_s) || ' s', 'never')
                                  AS what_the_user_saw,
                              bool_or(tls_mentioned) AS mentions_tls
                       FROM {timing} GROUP BY provider ORDER BY provider""")
    ours = ours.assign(source="this lab", sender_timers=[
        "; ".join(f"{r.name} = {r.value}" for r in timers.itertuples() if r.profile in (p, "all lab senders"))
        or timer_text for p in ours["provider"]])
    side = pd.concat([side.drop(columns=["source_note"]), ours], ignore_index=True)
    ctx.note(f"Read our times against our timers ({timer_text}): they show the lab's settings, "
             "not how long a real provider waits.")
ctx.table(side, "published", paper=True, caption="What users were told: published and this lab, with each side's timers",
          citation=published.citation)

# %% [markdown]
# ## The notices, quoted
#
# The text each notice showed the user (first 1,500 characters), escaped.

# %%
if notices is not None:
    texts = ctx.sql(f"SELECT provider, server_label, kind, received_at, mentions_tls, subject, text"
                    f" FROM {notices} ORDER BY provider, received_at, server_label, kind, subject")
    ctx.table(texts.drop(columns=["text"]), "notices", caption="Notices")
    for row in texts.head(40).itertuples():
        ctx.quote((row.text or "")[:1500],
                  cite=f"{row.provider}, server {str(row.server_label).upper()}, {row.kind} notice, "
                       f"{row.received_at}{', mentions TLS' if row.mentions_tls else ''}")
