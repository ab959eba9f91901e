"""Populations: N domains drawn from catalogue cases in a configurable mix.

Deterministic: the same (n, seed, mix) gives the same scenario. Counts per case follow
the mix weights exactly (largest remainder), then a seeded shuffle decides which names
get which case. A population domain is a renamed copy of its catalogue case: names
under the case's domain move to the new domain, shared hosts (a provider's MX and
policy hosts) stay shared, as on the internet; the copy's own MX hosts share one address
per behaviour (their certificate is chosen by SNI), so servers stay small for 100,000.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import replace
from importlib import resources
from typing import Any, Mapping

from collectors.testbed.catalogue import load_catalogue
from collectors.testbed.plan import pool_address
from collectors.testbed.scenario import Domain, MxHost, Scenario, ScenarioError, read_yaml, validate


def _mix_file() -> dict[str, Any]:
    text = resources.files("collectors.testbed").joinpath("mixes.yaml").read_text(encoding="utf-8")
    return read_yaml(text)


def load_mixes() -> dict[str, dict[str, float]]:
    """{mix: {case: weight}} from mixes.yaml (its ``strata`` section is not a mix)."""
    return {k: {c: float(w) for c, w in v.items()} for k, v in _mix_file().items() if k != "strata"}


def stratified_adoption(mix: str) -> float | None:
    """The published adoption rate a stratified mix is weighted to, or None (mixes.yaml ``strata``)."""
    value = (_mix_file().get("strata") or {}).get(mix)
    return float(value) if value is not None else None


def quotas(n: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split n into integer counts proportional to the weights (largest remainder)."""
    total = sum(weights.values())
    if total <= 0:
        raise ScenarioError("a mix needs positive weights")
    exact = {c: n * w / total for c, w in weights.items()}
    counts = {c: int(x) for c, x in exact.items()}
    rest = n - sum(counts.values())
    for c in sorted(exact, key=lambda c: (-(exact[c] - counts[c]), c))[:rest]:
        counts[c] += 1
    return counts


@functools.lru_cache(maxsize=None)
def _pattern(old: str) -> re.Pattern[str]:
    return re.compile(r"(?<![A-Za-z0-9-])" + re.escape(old) + r"(?![A-Za-z0-9-])", re.IGNORECASE)


@functools.lru_cache(maxsize=None)
def _label_pattern(label: str) -> re.Pattern[str]:
    return re.compile(r"(?<![A-Za-z0-9-])" + re.escape(label) + r"(?=\.)", re.IGNORECASE)


class _Renamer:
    """Moves every name under ``old`` to ``new`` (in host names and free text)."""

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new
        self.pattern = _pattern(old)
        # the case's own label under another TLD (mx1.mx-wrong-tld.example): the copy's label
        self.old_label, self.new_label = old.split(".")[0], new.split(".")[0]
        self.label_pattern = _label_pattern(self.old_label)

    def name(self, n: str | None) -> str | None:
        if n is None:
            return None
        if n == self.old:
            return self.new
        if n.endswith("." + self.old):
            return n[: -len(self.old)] + self.new
        return n

    def text(self, t: str | None) -> str | None:
        if t is None or self.old_label not in t.lower():
            return t
        t = self.pattern.sub(self.new, t)
        return self.label_pattern.sub(self.new_label, t)


def instantiate(case: Domain, new_name: str, hosts: Mapping[str, MxHost]) -> tuple[Domain, list[MxHost]]:
    """A renamed copy of a catalogue case, plus the (renamed) MX hosts it owns."""
    r = _Renamer(case.name, new_name)
    own: list[MxHost] = []
    mx = []
    for m in case.mx:
        host = r.name(m.host)
        assert host is not None
        if host != m.host:
            h = hosts[m.host]
            own.append(replace(h, name=host, address=pool_address(h.smtp, h.certificate)))
        mx.append(replace(m, host=host))
    ph = case.policy_host
    if ph is not None:
        ph = replace(ph, cname=r.name(ph.cname), location=r.text(ph.location), body=r.text(ph.body))
    expected: dict[str, Any] = dict(case.expected)
    for col in ("policy_host_cname", "sts_cname"):
        if col in expected:
            expected[col] = r.name(expected[col])
    domain = replace(
        case, name=new_name, case=case.case or case.name, mx=tuple(mx),
        sts=tuple(tuple(r.text(s) or "" for s in rec) for rec in case.sts),
        sts_cname=r.name(case.sts_cname),
        tlsrpt=tuple(tuple(r.text(s) or "" for s in rec) for rec in case.tlsrpt),
        tlsrpt_cname=r.name(case.tlsrpt_cname),
        policy_host=ph, records=tuple(r.text(x) or "" for x in case.records), expected=expected,
    )
    return domain, own


def generate_population(n: int, seed: int = 0, mix: str | Mapping[str, float] = "default",
                        suffix: str = "test", month: int | None = None) -> Scenario:
    """N domains ``pop000001.test``... drawn from the catalogue in the given mix.

    ``mix`` is a mix name from mixes.yaml ("default", "stress", "panel") or a mapping
    {case: weight}. Each domain's ``case`` names its template; ``expected`` is the
    template's verdict. With ``month`` (0, 1, ...): that month of the evolving
    population that starts as this draw (:mod:`collectors.testbed.evolution`).
    """
    if month is not None:
        from collectors.testbed.evolution import evolve_population

        return evolve_population(generate_population(n, seed, mix, suffix), seed, month).scenario
    if n < 0:
        raise ScenarioError("a population needs n >= 0")
    catalogue = load_catalogue()
    if isinstance(mix, str):
        mixes = load_mixes()
        if mix not in mixes:
            raise ScenarioError(f"unknown mix {mix!r} (known: {', '.join(sorted(mixes))})")
        weights = mixes[mix]
        mix_name = mix
    else:
        weights, mix_name = dict(mix), "custom"
    cases = {d.case: d for d in catalogue.domains}
    unknown = sorted(set(weights) - set(cases))
    if unknown:
        raise ScenarioError(f"mix names unknown catalogue cases: {', '.join(unknown)}")
    counts = quotas(n, weights)
    order = [c for c in sorted(counts) for _ in range(counts[c])]
    random.Random(seed).shuffle(order)
    hosts = {h.name: h for h in catalogue.mx_hosts}
    width = max(6, len(str(n)))
    domains: list[Domain] = []
    own_hosts: list[MxHost] = []
    used_shared: set[str] = set()
    for i, case_name in enumerate(order, start=1):
        d, own = instantiate(cases[case_name], f"pop{i:0{width}d}.{suffix}", hosts)
        domains.append(d)
        own_hosts.extend(own)
        owned = {h.name for h in own}
        used_shared.update(m.host for m in d.mx if m.host not in owned)
    shared = [hosts[h] for h in sorted(used_shared)]
    scenario = Scenario(
        name=f"population-{mix_name}-{n}-seed{seed}",
        description=f"{n} domains, mix {mix_name}, seed {seed}",
        domains=tuple(domains),
        mx_hosts=tuple(sorted(shared + own_hosts, key=lambda h: h.name)),
        https_hosts=catalogue.https_hosts,
        records=catalogue.records,
    )
    validate(scenario)
    return scenario
