"""The evolving population: deterministic, month k+1 is month k with transitions applied,
every transition planted at its rate, the verdicts follow the state; sampling weights."""

from __future__ import annotations

from collections import Counter
import pytest

from collectors.testbed import ScenarioError, generate_population
from collectors.testbed.evolution import (
    EVOLVING_CASES, RATES, evolve, evolve_population, initial_states, planted_events,
)
from collectors.testbed.strata import holds_record, sampling_weights

MIX = {"valid-enforce": 3, "valid-testing": 2, "plain-mx": 1, "mx-typo": 1}
EVENTS = {"published", "mode_changed", "policy_changed_same_id", "id_changed_same_policy",
          "removed_without_mode_none", "removed_after_mode_none", "policy_host_moved",
          "policy_cert_expired", "policy_cert_renewed", "mx_cert_lapsed", "mx_cert_renewed",
          "mx_migrated_uncovered", "tlsrpt_added"}


def test_same_inputs_same_month_and_month_zero_is_the_draw_with_adopters_pending() -> None:
    a = generate_population(300, seed=4, mix=MIX, month=3)
    assert a == generate_population(300, seed=4, mix=MIX, month=3)
    assert a != generate_population(300, seed=5, mix=MIX, month=3)
    base = generate_population(300, seed=4, mix=MIX)
    zero = generate_population(300, seed=4, mix=MIX, month=0)
    testing = [d for d in base.domains if d.case == "valid-testing"]
    pending = [d for d in zero.domains if d.case == "valid-testing" and not d.sts]
    assert len(pending) == round(len(testing) / 2)
    static = [d for d in base.domains if d.case not in EVOLVING_CASES]
    assert all(zero.domain(d.name) == d for d in static)  # only the evolving cases change


def test_month_k_plus_one_is_month_k_evolved() -> None:
    base = generate_population(400, seed=2, mix=MIX)
    m4, m5 = evolve_population(base, 2, 4), evolve_population(base, 2, 5)
    states, events = evolve(m4.states, 5, 2)
    assert states == dict(m5.states) and events == dict(m5.events)
    for name, event in events.items():  # every planted change shows in the served scenario
        assert m4.scenario.domain(name) != m5.scenario.domain(name), event
    changed = {d.name for d in m5.scenario.domains if m4.scenario.domain(d.name) != d}
    assert changed == set(events)


def test_quotas_follow_the_rates_and_every_event_is_planted_in_a_year() -> None:
    base = generate_population(4620, seed=2024, mix="panel")
    states = initial_states(base, 2024)
    seen: Counter[str] = Counter()
    for month in range(1, 12):
        eligible_tls = sum(1 for s in states.values() if s.active and not s.tlsrpt and not s.withdrawing)
        states, events = evolve(states, month, 2024)
        seen.update(events.values())
        assert Counter(events.values())["tlsrpt_added"] <= round(RATES["tlsrpt_added"] * eligible_tls)
        assert len(events) == len(set(events))  # at most one transition per domain a month
    assert set(seen) == EVENTS
    assert min(seen.values()) >= 20  # the sample's headline: every event on 20+ domains


def test_verdicts_follow_the_state() -> None:
    base = generate_population(200, seed=1, mix=MIX)
    month = evolve_population(base, 1, 6, rates={k: 0.2 for k in RATES})
    for name, s in month.states.items():
        d = month.scenario.domain(name)
        exp = d.expected
        assert exp["sts_record"] == ("valid" if s.active else "absent")
        assert bool(d.sts) == s.active and (d.policy_host is not None) == s.active
        if s.active and s.policy_cert == "valid":
            assert exp["policy_mode"] == s.mode and f"mode: {s.mode}" in d.policy_host.body
            assert exp["mx_policy_match"] == ("none" if s.mx_migrated else "all")
        if s.active and s.policy_cert == "expired":
            assert exp["policy_fetch"] == "tls_error" and "policy_retrieval" in exp["misconfig_classes"]
        assert exp["tlsrpt_record"] == ("valid" if s.tlsrpt else "absent")
        assert exp["delivery_risk"] == (s.active and s.policy_cert == "valid" and s.mode == "enforce"
                                        and (s.mx_migrated or s.mx_cert == "expired"))


def test_unknown_transition_and_negative_month_are_refused() -> None:
    base = generate_population(10, seed=1, mix=MIX)
    with pytest.raises(ScenarioError):
        evolve_population(base, 1, 2, rates={"teleported": 0.1})
    with pytest.raises(ScenarioError):
        evolve_population(base, 1, -1)
    assert planted_events(50, 1, MIX, 0) == []


def test_panel_weights_reproduce_the_published_adoption_rate() -> None:
    weights = sampling_weights(4620, 2024, "panel")
    month0 = generate_population(4620, 2024, "panel", month=0)
    by_name = {w.domain: w for w in weights}
    holders = [d for d in month0.domains if holds_record(d)]
    assert all(by_name[d.name].weight == 1.0 and by_name[d.name].stratum == "mta-sts" for d in holders)
    total = sum(w.weight for w in weights)
    assert len(holders) / total == pytest.approx(0.012)
    assert {w.stratum for w in weights} == {"mta-sts", "other"}
    assert all(w.weight == 1.0 for w in sampling_weights(100, 1, "default"))


def test_evolved_domain_keeps_its_mx_pattern_after_migration() -> None:
    base = generate_population(60, seed=3, mix={"valid-enforce": 1})
    month = evolve_population(base, 3, 1, rates={"mx_migrated": 1.0})
    for name, event in month.events.items():
        d = month.scenario.domain(name)
        assert event == "mx_migrated_uncovered"
        assert d.mx[0].host == f"smtp-relay.{name}" and f"mx: mx1.{name}" in d.policy_host.body
        assert d.expected["mismatch_subclass"] == "other" and d.expected["delivery_risk"] is True
