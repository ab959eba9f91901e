"""Ours beside theirs, in the published shape: the IMC 2025 misconfiguration classes and the
published provider table (Alexander 2024), each computed our way with the same denominators.

The published numbers come only from ``data/reference`` (:mod:`reference`); the mapping from
our classes and verdicts to the published wording is written here once, and in
``docs/report.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from collectors.report.stats import wilson

# Ashiq, Fiebig, Chung (IMC 2025): the four misconfiguration classes in the paper's order,
# each as our class code (the crawler's misconfig_classes) and the published measure's wording
# in data/reference/misconfiguration_published.csv.
IMC_CLASSES = (
    ("invalid_txt", "Invalid TXT record", "invalid TXT record"),
    ("policy_retrieval", "Policy retrieval error", "policy server errors among misconfigured"),
    ("mx_cert_invalid", "PKIX-invalid MX certificate", "PKIX-invalid MX certificate (self-managed)"),
    ("mx_not_covered", "MX not matching the policy (enforce mode)",
     "MX not covered by policy patterns in enforce mode"),
)
IMC_HOLDERS = "domains with an _mta-sts record"
IMC_MISCONFIGURED = "misconfigured"

# Our provider verdict (views/020_lab.sql provider_behaviour.provider_verdict) -> the published
# "outbound MTA-STS support": full = refuses every server an enforcing sender must refuse;
# partial = refuses some of them or only later messages (lazy caching, RFC 8461 5.1);
# none = delivers to all of them.
OUTBOUND_SUPPORT = {
    "enforces MTA-STS": "full",
    "partial": "partial",
    "does not enforce MTA-STS": "none",
}
# A sender that fetched no policy cannot enforce MTA-STS: when its refusals are DANE's (it
# enforces DANE, RFC 7672: B publishes TLSA and offers no STARTTLS), its support is none.
NONE_BY_DANE = "none (B refused by DANE)"
PROVIDER_COLUMNS = ["provider", "inbound_mta_sts", "delivered_a", "delivered_b", "outbound_mta_sts_support"]


@dataclass(frozen=True)
class OurCounts:
    """Our side of the misconfiguration comparison for one crawl run."""

    holders: int
    misconfigured: int
    classes: dict[str, int]
    probed: bool          # MX hosts probed (--probe-smtp): the certificate class was measured
    holders_neff: float | None = None        # effective sample sizes (a weighted sample; stats.py)
    misconfigured_neff: float | None = None


def misconfiguration_table(published: pd.DataFrame, ours: OurCounts) -> pd.DataFrame:
    """One row per IMC 2025 class, in the paper's order: published and our counts, each as a
    share of record holders and of misconfigured domains, ours with 95 % Wilson intervals."""
    pub = published.set_index("measure")["value"].astype(float)
    holders, misconf = pub[IMC_HOLDERS], pub[IMC_MISCONFIGURED]
    rows = []
    for code, name, measure in IMC_CLASSES:
        measured = code != "mx_cert_invalid" or ours.probed
        n = ours.classes.get(code, 0)
        of_holders = wilson(n, ours.holders, ours.holders_neff)
        of_misconf = wilson(n, ours.misconfigured, ours.misconfigured_neff)
        rows.append({
            "class": name, "published_wording": measure,
            "published_domains": int(pub[measure]),
            "published_pct_of_record_holders": round(100 * pub[measure] / holders, 2),
            "published_pct_of_misconfigured": round(100 * pub[measure] / misconf, 2),
            "published_record_holders": int(holders), "published_misconfigured": int(misconf),
            "our_code": code,
            "our_domains": n if measured else None,
            "our_pct_of_record_holders": round(of_holders.pct, 2) if measured else None,
            "our_ci_holders": f"{of_holders.low:.1f}\u2013{of_holders.high:.1f}" if measured and ours.holders else "",
            "our_pct_of_misconfigured": round(of_misconf.pct, 2) if measured and ours.misconfigured else None,
            "our_ci_misconfigured": (f"{of_misconf.low:.1f}\u2013{of_misconf.high:.1f}"
                                     if measured and ours.misconfigured else ""),
            "note": "" if measured else "not measured: the crawl did not probe MX hosts (--probe-smtp)",
        })
    return pd.DataFrame(rows)


def _yes_no(value: object) -> object:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    return bool(value)


def provider_table(published: pd.DataFrame, ours: pd.DataFrame, inbound: dict[str, str]) -> pd.DataFrame:
    """The published provider table and ours in its columns, one table (``source`` says whose).

    ``ours``: one row per provider with ``delivered_a``, ``delivered_b`` and ``provider_verdict``;
    ``inbound``: provider -> its sending domain's policy mode from our crawl (missing: not crawled).
    """
    theirs = published.assign(source="published (Alexander 2024)")
    for column in ("delivered_a", "delivered_b"):
        theirs[column] = theirs[column].map({"true": True, "false": False})
    mine = pd.DataFrame({
        "provider": ours["provider"],
        "inbound_mta_sts": [inbound.get(p, "not crawled") for p in ours["provider"]],
        "delivered_a": [_yes_no(v) for v in ours["delivered_a"]],
        "delivered_b": [_yes_no(v) for v in ours["delivered_b"]],
        "outbound_mta_sts_support": [_support(row) for row in ours.to_dict("records")],
        "source": "this lab",
    })
    return pd.concat([theirs[[*PROVIDER_COLUMNS, "source"]], mine], ignore_index=True)


def _support(row: dict) -> str:
    """One provider's outbound MTA-STS support from its verdict (and, when known, whether it
    fetched a policy and enforces DANE)."""
    verdict = row.get("provider_verdict")
    if not isinstance(verdict, str):
        return "not tested"
    if verdict == "partial" and row.get("dane_enforced") is True and row.get("policy_fetched") is False:
        return NONE_BY_DANE
    return OUTBOUND_SUPPORT.get(verdict, "not tested")


def misconfiguration_display(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison for reading: one column per side and denominator, ours with its interval."""
    def ours(pct: object, ci: str) -> str:
        return "not measured" if pct is None or pd.isna(pct) else f"{pct:.1f} % ({ci})"

    return pd.DataFrame({
        "IMC 2025 class": table["class"],
        "published wording": table["published_wording"],
        "IMC 2025 domains": table["published_domains"],
        "IMC 2025 % of record holders": table["published_pct_of_record_holders"],
        "IMC 2025 % of misconfigured": table["published_pct_of_misconfigured"],
        "ours: domains": table["our_domains"],
        "ours: % of record holders (95 % CI)": [ours(p, c) for p, c in zip(table["our_pct_of_record_holders"],
                                                                          table["our_ci_holders"])],
        "ours: % of misconfigured (95 % CI)": [ours(p, c) for p, c in zip(table["our_pct_of_misconfigured"],
                                                                         table["our_ci_misconfigured"])],
    })
