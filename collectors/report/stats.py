"""Uncertainty for every rate the report prints: Wilson score intervals (statsmodels).

A share of domains is a binomial proportion; its 95 % interval is the Wilson
score interval (Wilson 1927), well behaved for the small shares MTA-STS has
(1 %) and for small buckets. A change between two runs is a difference of two
independent proportions; its interval is Newcomb's hybrid score interval, the
Wilson intervals of both sides combined (Newcomb 1998, method 10). Both come
from statsmodels, not from formulas written here.

A weighted share (a stratified sample, each domain standing for ``weight``
domains) is an estimate for the population: its count and its n are weighted
sums, but its uncertainty is that of the sample. Its interval is the Wilson
interval of the same share among ``n_eff`` domains, its effective sample size:
from the stratified design's variance for a share of all domains, Kish's for a
share of a subgroup (``report_share_neff``, ``report_effective_n`` in
views/030_report.sql). With every weight 1, ``n_eff`` is ``n`` and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

ALPHA = 0.05  # 95 % intervals


@dataclass(frozen=True)
class Rate:
    """``count`` of ``n`` as a percentage with its 95 % Wilson interval (percent), taken
    among ``n_eff`` domains (the effective sample size; ``n`` when unweighted)."""

    count: int
    n: int
    pct: float
    low: float
    high: float
    n_eff: float = 0.0

    def text(self, digits: int = 1) -> str:
        """``12.3 % (95 % CI 10.1-14.8)``, or ``n/a`` without a denominator."""
        if not self.n:
            return "n/a"
        return f"{self.pct:.{digits}f} % (95 % CI {self.low:.{digits}f}\u2013{self.high:.{digits}f})"


def wilson(count: int, n: int, n_eff: float | None = None) -> Rate:
    """One rate and its Wilson interval; NaN everywhere when ``n`` is 0. ``n_eff``: the
    effective sample size of a weighted ``n`` (the interval is the share's among that many)."""
    count, n = int(count), int(n)
    if n <= 0:
        return Rate(count, n, float("nan"), float("nan"), float("nan"))
    size = float(n) if n_eff is None or pd.isna(n_eff) or n_eff <= 0 else min(float(n_eff), float(n))
    low, high = proportion_confint(count / n * size, size, alpha=ALPHA, method="wilson")
    return Rate(count, n, 100.0 * count / n, 100.0 * float(low), 100.0 * float(high), size)


def effective_sizes(df: pd.DataFrame, n_eff: str | None, count: str = "") -> list[float | None]:
    """The effective sample sizes of ``df``'s rows (None: the plain n). ``n_eff`` names a
    column, or a pattern with ``{}`` for the count's own (``"{}_share_neff"``)."""
    column = n_eff.replace("{}", count) if n_eff is not None else None
    return list(df[column]) if column is not None and column in df else [None] * len(df)


def rate_columns(df: pd.DataFrame, count: str, n: str, prefix: str | None = None,
                 n_eff: str | None = None) -> pd.DataFrame:
    """``df`` with ``<prefix>_pct``, ``_ci_low`` and ``_ci_high`` for ``count`` of ``n`` per row
    (the interval among column ``n_eff``'s effective sample size, when given)."""
    prefix = prefix or count
    rates = [wilson(c, d, e) for c, d, e in zip(df[count], df[n], effective_sizes(df, n_eff, count))]
    return df.assign(**{
        f"{prefix}_pct": [round(r.pct, 3) for r in rates],
        f"{prefix}_ci_low": [round(r.low, 3) for r in rates],
        f"{prefix}_ci_high": [round(r.high, 3) for r in rates],
    })


def rate_texts(df: pd.DataFrame, counts: list[str], n: str, n_eff: str | None = None) -> pd.DataFrame:
    """For reading: each ``count`` column as ``count (pct %, 95 % CI low-high)`` of ``n``."""
    out = df.copy()
    for column in counts:
        out[column] = [f"{int(c):,} ({wilson(c, d, e).text()})"
                       for c, d, e in zip(df[column], df[n], effective_sizes(df, n_eff, column))]
    return out


@dataclass(frozen=True)
class Change:
    """The change of a share between two runs, in percentage points, with its 95 % interval."""

    before: Rate
    after: Rate
    diff_pp: float
    low_pp: float
    high_pp: float

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero."""
        return bool(self.low_pp > 0 or self.high_pp < 0)


def change(before_count: int, before_n: int, after_count: int, after_n: int,
           before_neff: float | None = None, after_neff: float | None = None) -> Change:
    """``after - before`` of two independent shares with Newcomb's score interval (each side
    among its effective sample size, when weighted)."""
    before, after = wilson(before_count, before_n, before_neff), wilson(after_count, after_n, after_neff)
    if not before_n or not after_n:
        nan = float("nan")
        return Change(before, after, nan, nan, nan)
    low, high = confint_proportions_2indep(
        after.pct / 100.0 * after.n_eff, after.n_eff, before.pct / 100.0 * before.n_eff, before.n_eff,
        method="newcomb", compare="diff", alpha=ALPHA)
    return Change(before, after, after.pct - before.pct, 100.0 * float(low), 100.0 * float(high))


def error_bars(rates: Iterable[Rate]) -> np.ndarray:
    """The (2, n) array of distances below and above each rate, for matplotlib's ``yerr``."""
    rows = [(r.pct - r.low, r.high - r.pct) if r.n else (0.0, 0.0) for r in rates]
    return np.array(rows, dtype=float).T.reshape(2, -1)


def run_changes(summary: pd.DataFrame, columns: Iterable[str], n: str = "domains",
                n_eff: str | None = "{}_share_neff") -> pd.DataFrame:
    """Between consecutive runs (rows of ``summary``, oldest first, with ``month``): each share's
    change in percentage points with its 95 % Newcomb interval."""
    rows = []
    for before, after in zip(summary.iloc[:-1].to_dict("records"), summary.iloc[1:].to_dict("records")):
        for column in columns:
            size = n_eff.replace("{}", column) if n_eff else None
            c = change(before[column], before[n], after[column], after[n], before.get(size), after.get(size))
            rows.append({"from": before["month"], "to": after["month"], "share": column,
                         "before_pct": round(c.before.pct, 3), "after_pct": round(c.after.pct, 3),
                         "change_pp": round(c.diff_pp, 3), "ci_low_pp": round(c.low_pp, 3),
                         "ci_high_pp": round(c.high_pp, 3), "interval_excludes_0": c.significant})
    return pd.DataFrame(rows)
