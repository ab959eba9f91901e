"""The report's figures, each built from a query result and titled with its finding.

Every builder returns a matplotlib figure (or None when there is nothing to draw, so the
page says why in words). Shares carry 95 % Wilson intervals (:mod:`stats`); scales that
differ by orders of magnitude get separate panels; long labels wrap instead of being cut.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from collectors.report.figures import CYCLE, OURS, PALETTE, PUBLISHED, new, wrap
from collectors.report.stats import effective_sizes, error_bars, wilson

STAGES = {"has_record": "record", "valid_record": "valid record", "policy_fetched": "policy fetched",
          "valid_policy": "valid policy", "mode_enforce": "mode enforce"}


def _annotate(ax: Any, bars: Any, texts: list[str]) -> None:
    """Write each bar's value at its end (small bars stay readable)."""
    ax.bar_label(bars, labels=texts, padding=2, fontsize=7)


def _pct(v: float) -> str:
    if np.isnan(v):
        return ""
    return "0 %" if v == 0 else (f"{v:.2f} %" if v < 1 else f"{v:.1f} %")


def _grouped(ax: Any, groups: list[str], series: dict[str, list[Any]], horizontal: bool = False) -> None:
    """Grouped bars with Wilson error bars: ``series`` maps a legend label to Rates per group."""
    width = 0.8 / max(len(series), 1)
    for i, (label, rates) in enumerate(series.items()):
        pos = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
        vals = [r.pct for r in rates]
        err = error_bars(rates)
        if horizontal:
            bars = ax.barh(pos, vals, width, xerr=err, label=label, color=CYCLE[i % len(CYCLE)],
                           error_kw={"elinewidth": 0.8, "capsize": 2})
        else:
            bars = ax.bar(pos, vals, width, yerr=err, label=label, color=CYCLE[i % len(CYCLE)],
                          error_kw={"elinewidth": 0.8, "capsize": 2})
        _annotate(ax, bars, [_pct(v) for v in vals])
    ticks = np.arange(len(groups))
    if horizontal:
        ax.set_yticks(ticks, [wrap(g, 22) for g in groups])
        ax.invert_yaxis()
    else:
        ax.set_xticks(ticks, [wrap(g, 12) for g in groups])


def funnel(funnel_df: pd.DataFrame) -> Figure:
    """Two panels: the share with MX (about 90 %) and the MTA-STS stages (about 1 %), per bucket."""
    whole = funnel_df[funnel_df["bucket"] == "all"].iloc[0]
    # a weighted sample: each share among its effective sample size (stats.py)
    rec = wilson(whole.has_record, whole.domains, whole.get("has_record_share_neff"))
    enf = wilson(whole.mode_enforce, whole.domains, whole.get("mode_enforce_share_neff"))
    fig, (a1, a2) = new(1, 2, figsize=(9, 3.8), width_ratios=[1, 4])
    buckets = list(funnel_df["bucket"])
    mx = {b: [wilson(r.has_mx, r.domains, getattr(r, "has_mx_share_neff", None))]
          for b, r in zip(buckets, funnel_df.itertuples())}
    _grouped(a1, ["has MX"], mx)
    a1.set_ylabel("% of domains in the bucket (95 % CI)")
    a1.set_ylim(0, 112)
    a1.set_title("Mail domains")
    stages = {b: [wilson(getattr(r, s), r.domains, getattr(r, f"{s}_share_neff", None)) for s in STAGES]
              for b, r in zip(buckets, funnel_df.itertuples())}
    _grouped(a2, list(STAGES.values()), stages)
    a2.set_ylabel("% of domains in the bucket (95 % CI)")
    top = max((r.high for rs in stages.values() for r in rs if r.n), default=1.0)
    a2.set_ylim(0, top * 1.25 or 1)
    a2.set_title("MTA-STS stages (own scale)")
    a2.legend(title="rank bucket", fontsize=7, title_fontsize=7, loc="upper right")
    fig.suptitle(f"{rec.pct:.1f} % of {int(whole.domains):,} domains publish an MTA-STS record; "
                 f"{enf.pct:.1f} % enforce a valid policy")
    return fig


def alongside(along: pd.DataFrame) -> Figure:
    """TLS-RPT, DNSSEC and DANE: among all domains and among MTA-STS record holders (own panels)."""
    fig, axes = new(1, 2, figsize=(8.5, 3.4), sharey=False)
    names = {"tlsrpt": "TLS-RPT record", "dnssec": "DNSSEC-signed MX", "dane": "DANE (TLSA)"}
    rates = {}
    for ax, row in zip(axes, along.itertuples()):
        rates[row.population] = [wilson(getattr(row, c), row.domains, getattr(row, f"{c}_neff", None))
                                 for c in names]
        _grouped(ax, list(names.values()), {row.population: rates[row.population]})
        ax.set_ylabel(wrap(f"% of {row.population} (n = {int(row.domains):,}), 95 % CI", 34))
        ax.set_title(wrap(f"Denominator: {row.population}", 40))
        ax.set_ylim(0, max([r.high for r in rates[row.population] if r.n] + [1]) * 1.25)
    holders, everyone = rates.get("domains with an MTA-STS record"), rates.get("all domains")
    title = "TLS-RPT, DNSSEC and DANE"
    if holders and everyone and holders[0].n:
        title = (f"TLS-RPT: {holders[0].pct:.0f} % of MTA-STS record holders, "
                 f"{everyone[0].pct:.1f} % of all domains")
    fig.suptitle(title)
    return fig


def misconfiguration(table: pd.DataFrame, holders: int, misconfigured: int, citation_short: str,
                     holders_neff: float | None = None, misconfigured_neff: float | None = None) -> Figure:
    """IMC 2025's four classes in their order: ours (with CI) beside theirs, two denominators
    (with their effective sample sizes, for a weighted sample)."""
    fig, axes = new(1, 2, figsize=(10, 4.4), sharey=True)
    labels = list(table["class"])
    pos = np.arange(len(labels))
    for ax, (col, denom, n, n_eff) in zip(axes, (("record_holders", "record holders", holders, holders_neff),
                                                 ("misconfigured", "misconfigured domains", misconfigured,
                                                  misconfigured_neff))):
        ours = [wilson(0, 0) if pd.isna(c) else wilson(c, n, n_eff) for c in table["our_domains"]]
        b1 = ax.barh(pos - 0.2, [r.pct if r.n else 0 for r in ours], 0.4, xerr=error_bars(ours),
                     color=OURS, label="this crawl (95 % CI)", error_kw={"elinewidth": 0.8, "capsize": 2})
        theirs = list(table[f"published_pct_of_{col}"])
        b2 = ax.barh(pos + 0.2, theirs, 0.4, color=PUBLISHED, label=citation_short)
        _annotate(ax, b1, [_pct(r.pct) if r.n else ("not measured" if pd.isna(c) else "n/a")
                           for r, c in zip(ours, table["our_domains"])])
        _annotate(ax, b2, [_pct(v) for v in theirs])
        published_n = int(table[f"published_{col}"].iloc[0])
        ax.set_xlabel(wrap(f"% of {denom} (ours: n = {n:,}; IMC 2025: n = {published_n:,}); "
                           "classes overlap", 50))
        ax.set_title(f"Share of {denom}")
        ax.set_xlim(0, min(max([*theirs, *[r.high for r in ours if r.n], 1]) * 1.3, 118))
    axes[0].set_yticks(pos, [wrap(x, 24) for x in labels])
    axes[0].invert_yaxis()
    axes[1].legend(loc="lower right", fontsize=7)
    fig.suptitle(_misconfig_finding(table))
    return fig


def _misconfig_finding(table: pd.DataFrame) -> str:
    """The title: which class is largest on each side."""
    theirs = table.iloc[int(np.nanargmax(table["published_pct_of_record_holders"]))]
    measured = table.dropna(subset=["our_domains"])
    if measured.empty or not measured["our_domains"].max():
        return f"No misconfigured record holder here; IMC 2025's largest class: {theirs['class']}"
    ours = measured.iloc[int(np.argmax(measured["our_domains"]))]
    if ours["class"] == theirs["class"]:
        return (f"{ours['class']} is the largest class here ({ours['our_pct_of_record_holders']:.0f} % of "
                f"record holders) and in IMC 2025 ({theirs['published_pct_of_record_holders']:.0f} %)")
    return (f"Largest class here: {ours['class']} ({ours['our_pct_of_record_holders']:.0f} %); "
            f"in IMC 2025: {theirs['class']} ({theirs['published_pct_of_record_holders']:.0f} %)")


def concentration(orgs: pd.DataFrame, total: int, what: str, colour: str = OURS,
                  total_neff: float | None = None) -> Figure | None:
    """Organisations serving two or more domains (singletons summed in one bar); None when
    every organisation serves one domain only (no concentration to show)."""
    shared = orgs[orgs["domains"] >= 2].head(10)
    if shared.empty or not total:
        return None
    singles = orgs[orgs["domains"] == 1]
    labels = list(shared.iloc[:, 0]) + ([f"{len(singles):,} organisations with one domain each"]
                                        if len(singles) else [])
    counts = list(shared["domains"]) + ([int(singles["domains"].sum())] if len(singles) else [])
    rates = [wilson(c, total, total_neff) for c in counts]
    fig, ax = new(figsize=(7.5, 0.9 + 0.42 * len(labels)))
    bars = ax.barh(range(len(labels)), [r.pct for r in rates], xerr=error_bars(rates), color=colour,
                   error_kw={"elinewidth": 0.8, "capsize": 2})
    _annotate(ax, bars, [f"{c:,} ({_pct(r.pct)})" for c, r in zip(counts, rates)])
    ax.set_yticks(range(len(labels)), [wrap(x, 34) for x in labels])
    ax.invert_yaxis()
    ax.set_xlabel(f"% of the {total:,} domains with a valid MTA-STS record (95 % CI)")
    ax.set_xlim(0, max(r.high for r in rates) * 1.35)
    ax.set_title(f"{labels[0]} serves the {what} of {counts[0]:,} of {total:,} record holders "
                 f"({rates[0].pct:.0f} %)")
    return fig


def trend(summary: pd.DataFrame) -> Figure:
    """Monthly shares with 95 % Wilson bands (one line per stage)."""
    fig, ax = new(figsize=(8, 3.6))
    x = np.arange(len(summary))
    series = {"has_record": "MTA-STS record", "valid_policy": "valid policy",
              "mode_enforce": "mode enforce", "misconfigured": "misconfigured"}
    for i, (column, label) in enumerate(series.items()):
        rates = [wilson(c, n, e) for c, n, e in zip(summary[column], summary["domains"],
                                                    effective_sizes(summary, "{}_share_neff", column))]
        ax.plot(x, [r.pct for r in rates], marker="o", color=CYCLE[i], label=label)
        ax.fill_between(x, [r.low for r in rates], [r.high for r in rates], color=CYCLE[i], alpha=0.2,
                        linewidth=0)
    ax.set_xticks(x, list(summary["month"]), rotation=45 if len(x) > 6 else 0, ha="right" if len(x) > 6 else "center")
    ax.set_ylabel("% of crawled domains (95 % CI band)")
    ax.set_xlabel("month of the crawl run")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    first, last = summary.iloc[0], summary.iloc[-1]
    ax.set_title(f"MTA-STS records: {100 * first.has_record / first.domains:.2f} % in {first.month}, "
                 f"{100 * last.has_record / last.domains:.2f} % in {last.month}")
    return fig


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(value: str) -> float | None:
    """A Postfix or Exim time value (``1m``, ``3h``, ``5d``, ``90``) in seconds, else None."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(value))
    return float(m[1]) * _UNITS[m[2] or "s"] if m else None


NOTICE_STYLE = {"delay": ("o", PALETTE["orange"], "delay notice"),
                "failure": ("X", PALETTE["vermillion"], "failure (bounce) notice"),
                "success": ("s", PALETTE["green"], "success notice"),
                "unknown": ("D", PALETTE["grey"], "other notice")}


# Whose parameter a timer is: the lab runs Postfix and Exim senders side by side.
TIMER_MTA = {"delay_warning_time": "Postfix", "maximal_queue_lifetime": "Postfix", "delay_warning": "Exim"}


def timeline(notices: pd.DataFrame, timers: dict[str, float]) -> Figure:
    """One row per undelivered message, its notices after the send (minutes, or hours when the
    notices take hours); the lab senders' timers as lines, so a reader sees notices follow them."""
    messages = list(dict.fromkeys(zip(notices["provider"], notices["server_label"], notices["sent_at"])))
    longest = max(float(notices["after_s"].max()), *timers.values(), 60.0)
    unit, per = ("hours", 3600.0) if longest > 3 * 3600 else ("minutes", 60.0)
    fig, ax = new(figsize=(8.5, 1.3 + 0.32 * len(messages)))
    row = {m: i for i, m in enumerate(messages)}
    for kind, part in notices.groupby("kind", sort=True):
        marker, colour, label = NOTICE_STYLE.get(kind, NOTICE_STYLE["unknown"])
        ys = [row[k] for k in zip(part["provider"], part["server_label"], part["sent_at"])]
        ax.scatter(part["after_s"] / per, ys, marker=marker, color=colour, label=label, s=46, zorder=3)
    styles = [(0, (1, 2)), (0, (5, 3)), (0, (8, 2, 1, 2))]
    for i, (name, secs) in enumerate(sorted(timers.items(), key=lambda t: t[1])):
        owner = f"{TIMER_MTA[name]} senders'" if name in TIMER_MTA else "sender's"
        ax.axvline(secs / per, color=PALETTE["black"], linestyle=styles[i % len(styles)], linewidth=0.9,
                   label=f"{owner} {name} = {secs / per:g} {unit[:-1] if secs == per else unit}")
    ax.set_yticks(range(len(messages)), [f"{p} \u2192 server {s.upper()}, sent {pd.Timestamp(t):%m-%d %H:%M:%S}"
                                         for p, s, t in messages])
    ax.invert_yaxis()
    ax.set_xlabel(f"{unit} after the message was sent")
    ax.set_xlim(0, longest / per * 1.1)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    first = notices.groupby(["provider", "server_label", "sent_at"])["after_s"].min() / per
    span = f"{first.min():.3g}" if first.min() == first.max() else f"{first.min():.3g}\u2013{first.max():.3g}"
    ax.set_title(wrap(f"{len(messages)} undelivered messages: first notice after {span} {unit}"
                      + (", as the sender's timers set it" if timers else ""), 70))
    return fig


def fetch_timing(rows: pd.DataFrame) -> Figure | None:
    """Per provider that fetched the policy: the first fetch relative to its first send, drawn as
    the one-second interval the access log's whole-second time allows (never clamped to 0)."""
    rows = rows.dropna(subset=["first_policy_fetch_at"])
    if rows.empty:
        return None
    fig, ax = new(figsize=(7.5, 1.4 + 0.45 * len(rows)))
    lows = [(pd.Timestamp(f) - pd.Timestamp(s)).total_seconds()
            for f, s in zip(rows["first_policy_fetch_at"], rows["first_sent_at"])]
    ax.barh(range(len(rows)), [1.0] * len(rows), left=lows, height=0.4, color=OURS,
            label="first policy fetch (log time is whole seconds)")
    ax.axvline(0, color=PALETTE["vermillion"], linewidth=1, label="provider's first send")
    ax.set_yticks(range(len(rows)), list(rows["provider"]))
    for i, low in enumerate(lows):
        ax.annotate(f"{low:+.2f} s to {low + 1:+.2f} s", (low + 1, i), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=7)
    span = max(max(abs(v) for v in lows) + 1, 2)
    ax.set_xlim(-span * 1.5, span * 2.2)
    ax.set_xlabel("seconds relative to the provider's first test message")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    before = sum(1 for v in lows if v + 1 <= 0)
    same = sum(1 for v in lows if v < 0 < v + 1)
    ax.set_title(wrap(f"{len(rows)} sender(s) fetched the policy: {before} before the first send, "
                      f"{same} within the same second, {len(rows) - before - same} after", 60))
    return fig


_CELL = {True: ("delivered", PALETTE["sky"]), False: ("refused", PALETTE["vermillion"]),
         "full": ("full", PALETTE["green"]), "partial": ("partial", PALETTE["yellow"]),
         "none": ("none", PALETTE["orange"]), "enforce": ("enforce", PALETTE["green"]),
         "testing": ("testing", PALETTE["yellow"]),
         "none (B refused by DANE)": ("none (B refused\nby DANE)", PALETTE["orange"])}


def provider_matrix(table: pd.DataFrame) -> Figure:
    """The published table and ours in its columns, as labelled cells (colour and words)."""
    cols = [("inbound_mta_sts", "inbound MTA-STS\n(own domain)"), ("delivered_a", "delivered to A\n(valid certificate)"),
            ("delivered_b", "delivered to B\n(no TLS)"), ("outbound_mta_sts_support", "outbound MTA-STS\nsupport")]
    sources = list(dict.fromkeys(table["source"]))
    heights = [max((table["source"] == s).sum(), 1) for s in sources]
    fig, axes = new(len(sources), 1, figsize=(8.5, 1.4 + 0.32 * sum(heights)), height_ratios=heights,
                    squeeze=False)
    for ax, source in zip(axes[:, 0], sources):
        part = table[table["source"] == source].reset_index(drop=True)
        for i, r in part.iterrows():
            for j, (c, _) in enumerate(cols):
                v = r[c]
                key = bool(v) if isinstance(v, (bool, np.bool_)) else ("" if v is None or pd.isna(v) else str(v))
                text, colour = _CELL.get(key, (key or "not tested", "#DDDDDD"))
                ax.add_patch(Rectangle(
                    (j, i), 0.96, 0.9, color=colour, alpha=0.55))
                ax.text(j + 0.48, i + 0.45, text, ha="center", va="center", fontsize=7)
        ax.set_xlim(0, len(cols))
        ax.set_ylim(len(part), 0)
        ax.set_yticks(np.arange(len(part)) + 0.45, list(part["provider"]))
        ax.set_xticks(np.arange(len(cols)) + 0.48, [c[1] for c in cols] if ax is axes[0, 0] else [])
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        ax.spines[:].set_visible(False)
        ax.set_ylabel(wrap(source, 16), fontsize=8)
    ours = table[table["source"] == "this lab"]
    support = ours["outbound_mta_sts_support"]
    full, partial = int((support == "full").sum()), int((support == "partial").sum())
    by_dane = int(support.str.startswith("none (B refused by DANE").sum())
    fig.suptitle(f"Outbound MTA-STS support: {full} of {len(ours)} lab sender(s) full, {partial} partial"
                 + (f"; {by_dane} refuse B by DANE alone" if by_dane else ""))
    return fig
