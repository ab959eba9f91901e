"""Sampling weights of a stratified population (a mix listed under ``strata`` in mixes.yaml).

A stratified mix oversamples MTA-STS record holders so that every rare case has enough
domains. Its domains fall into two strata: ``mta-sts`` (a domain that publishes an
``_mta-sts`` record in some month of the evolving population, future adopters included),
taken whole (weight 1), and ``other`` (the rest), a sample standing for many more domains.
The ``other`` weight makes month 0's record holders the published share of the
population it stands for: ``holders / (n_mta_sts + weight * n_other) = adoption``.
Every rate of the report weights a domain by its weight (views/030_report.sql).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collectors.testbed.evolution import EVOLVING_CASES
from collectors.testbed.population import generate_population, stratified_adoption
from collectors.testbed.scenario import Domain, ScenarioError


@dataclass(frozen=True)
class Weight:
    """One domain's stratum and sampling weight (the domains of the population it stands for)."""

    domain: str
    stratum: str
    weight: float


def holds_record(d: Domain) -> bool:
    """An _mta-sts TXT record or a CNAME for it (valid or not: the published studies' record holders)."""
    return bool(d.sts or d.sts_cname)


def sampling_weights(n: int, seed: int, mix: str) -> list[Weight]:
    """One weight per domain of the population (month 0 decides the strata), in domain order.

    A mix that is not stratified: every domain weight 1, stratum ``all``.
    """
    base = generate_population(n, seed, mix)
    adoption = stratified_adoption(mix)
    if adoption is None:
        return [Weight(d.name, "all", 1.0) for d in base.domains]
    month0 = generate_population(n, seed, mix, month=0)
    in_a = {d.name for d in base.domains if holds_record(d) or d.case in EVOLVING_CASES}
    holders0 = sum(1 for d in month0.domains if holds_record(d))
    n_a, n_b = len(in_a), len(base.domains) - len(in_a)
    if n_b == 0 or holders0 == 0:
        raise ScenarioError(f"mix {mix} is stratified but a stratum is empty at n={n}")
    weight_b = (holders0 / adoption - n_a) / n_b
    if weight_b < 1:
        raise ScenarioError(f"mix {mix} at n={n} has fewer record holders than needed for weights >= 1")
    return [Weight(d.name, "mta-sts" if d.name in in_a else "other", 1.0 if d.name in in_a else weight_b)
            for d in base.domains]


def write_weights(weights: list[Weight], path: Path) -> None:
    """The CSV ``mtasts crawl --weights`` reads: domain,stratum,weight."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("domain,stratum,weight\n")
        fh.writelines(f"{w.domain},{w.stratum},{w.weight!r}\n" for w in weights)

