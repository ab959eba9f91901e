"""Population generator: deterministic, in the mix's proportions, realistic sharing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.testbed import ScenarioError, generate_population, load_catalogue
from collectors.testbed.plan import make_plan
from collectors.testbed.population import load_mixes, quotas


def test_same_seed_same_population_other_seed_other_order() -> None:
    a = generate_population(2000, seed=7)
    b = generate_population(2000, seed=7)
    c = generate_population(2000, seed=8)
    assert a == b and a.fingerprint() == b.fingerprint()
    assert [d.case for d in a.domains] != [d.case for d in c.domains]
    assert sorted(d.case for d in a.domains) == sorted(d.case for d in c.domains)  # same quotas


def test_default_mix_matches_published_adoption() -> None:
    pop = generate_population(20000, seed=1)
    assert len(pop.domains) == 20000
    with_record = [d for d in pop.domains if d.sts or d.sts_cname]
    share = len(with_record) / len(pop.domains)
    assert 0.01 <= share <= 0.02  # 1-2 percent publish a record
    misconfigured = [d for d in with_record if d.expected["misconfigured"]]
    assert 0.25 <= len(misconfigured) / len(with_record) <= 0.35  # about 30 percent of them
    no_mx = [d for d in pop.domains if d.expected["mx_status"] != "ok"]
    assert 0.05 <= len(no_mx) / len(pop.domains) <= 0.15
    # policy retrieval errors dominate the misconfigurations, as in the study
    retrieval = [d for d in misconfigured if "policy_retrieval" in d.expected["misconfig_classes"]]
    assert len(retrieval) / len(misconfigured) > 0.7


def test_stress_mix_gives_every_domain_a_record() -> None:
    pop = generate_population(3000, seed=3, mix="stress")
    assert all(d.sts or d.sts_cname for d in pop.domains)
    assert all(d.policy_host is not None for d in pop.domains if d.expected["sts_record"] == "valid")


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 5000), weights=st.dictionaries(st.sampled_from(["a", "b", "c", "d"]),
                                                       st.floats(0.001, 100), min_size=1))
def test_quotas_sum_to_n_and_follow_the_weights(n: int, weights: dict[str, float]) -> None:
    counts = quotas(n, weights)
    assert sum(counts.values()) == n
    total = sum(weights.values())
    for case, w in weights.items():
        assert abs(counts[case] - n * w / total) < 1


def test_copies_are_renamed_and_keep_their_verdict() -> None:
    catalogue = load_catalogue()
    pop = generate_population(300, seed=0, mix={"valid-wildcard": 1, "sts-cname": 1, "mx-typo": 1})
    for d in pop.domains:
        template = catalogue.by_case(d.case)
        assert d.name.startswith("pop") and d.name.endswith(".test")
        # the copy names its own hosts, never the template's
        text = repr((d.mx, d.sts, d.policy_host))
        assert template.name not in text
        assert d.expected == template.expected or d.expected.get("sts_cname") == template.expected.get("sts_cname")
        if d.case == "valid-wildcard":
            assert d.policy_host and f"*.{d.name}" in (d.policy_host.body or "")
        if d.case == "mx-typo":
            assert f"mial.{d.name}" in (d.policy_host.body or "") and d.mx[0].host == f"mail.{d.name}"


def test_population_hosts_are_shared_so_servers_stay_small() -> None:
    pop = generate_population(5000, seed=2, mix="stress")
    plan = make_plan(pop)
    assert len(plan.smtp_listeners) <= 20          # one address per MX behaviour, not per host
    assert len(plan.web_addresses) == 1             # one nginx address for every policy host
    providers = {m.host for d in pop.domains for m in d.mx if m.host.endswith("mail-provider.test")}
    assert providers == {"mx1.mail-provider.test", "mx2.mail-provider.test"}


def test_unknown_mix_or_case_is_a_clear_error() -> None:
    with pytest.raises(ScenarioError, match="unknown mix"):
        generate_population(10, mix="nope")
    with pytest.raises(ScenarioError, match="unknown catalogue cases"):
        generate_population(10, mix={"no-such-case": 1})


def test_mixes_name_only_catalogue_cases() -> None:
    cases = {d.case for d in load_catalogue().domains}
    for name, weights in load_mixes().items():
        assert set(weights) <= cases, name
