"""An evolving population: month k+1 is month k with lifecycle transitions applied.

Month 0 is :func:`collectors.testbed.population.generate_population`'s draw. Domains of the
evolving cases (a self-hosted policy: ``valid-enforce``, ``valid-testing``) carry a state
(:class:`StsState`) that changes month by month; every other domain stays as drawn. Each
month a quota of the eligible domains (the monthly rate times their number, rounded) goes
through each transition, chosen by a generator seeded with (seed, month): the same
(n, seed, mix, month) always gives the same world, and the events planted between two
months are known (:func:`planted_events`), in the vocabulary of the store's
``report_lifecycle_events`` view. A domain goes through at most one transition a month.

The rates are monthly fractions of the eligible domains (:data:`RATES`, documented in
docs/testbed.md with their source or stated as an assumption).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any, Mapping

from collectors.testbed.plan import pool_address
from collectors.testbed.scenario import Domain, MxHost, MxRecord, PolicyHost, Scenario, ScenarioError, validate

EVOLVING_CASES = ("valid-enforce", "valid-testing")
HOSTING_PROVIDER = "mta-sts.sts-hosting.test"   # the catalogue's MTA-STS hosting service
MIGRATED_MX_LABEL = "smtp-relay"                 # the new MX after a migration: smtp-relay.<domain>
MAX_AGES = (86400, 604800)

# Monthly transition rates: the fraction of the eligible domains that make the change.
RATES: dict[str, float] = {
    # new adopters: publish in testing mode first (RFC 8461 5 advises testing first)
    "published": 0.08,              # of the domains not yet publishing (the adopters' pool)
    "testing_to_enforce": 0.12,     # of testing domains published before this month
    "policy_changed_same_id": 0.006,
    "id_changed_same_policy": 0.012,
    "removed_without_mode_none": 0.004,
    "withdraw_to_mode_none": 0.004,  # mode none with a new id; removed the month after (RFC 8461 8.3)
    "policy_host_moved": 0.008,     # self-hosted policy host CNAMEd to a hosting provider
    "policy_cert_expired": 0.006,   # self-hosted policy host's certificate lapses
    "policy_cert_renewed": 0.5,     # of the lapsed ones
    "mx_cert_expired": 0.005,
    "mx_cert_renewed": 0.6,
    "mx_migrated": 0.005,           # MX moved to a new host, the policy's mx left as it was
    "tlsrpt_added": 0.015,          # of active domains without TLS-RPT
}
# Share of the evolving testing-mode domains that have not published yet in month 0.
ADOPTER_POOL_SHARE = 0.5


@dataclass(frozen=True)
class StsState:
    """An evolving domain's MTA-STS deployment in one month."""

    active: bool                 # an _mta-sts record and a policy are published
    pending: bool = False        # not published yet (a future adopter)
    mode: str = "testing"
    version: int = 1             # the record's id is id<version>
    max_age: int = 86400
    hosted: bool = False         # policy host CNAMEd to the hosting provider
    policy_cert: str = "valid"   # valid | expired
    mx_cert: str = "valid"       # valid | expired
    mx_migrated: bool = False    # MX moved to smtp-relay.<domain>; the policy still names the old one
    tlsrpt: bool = False
    withdrawing: bool = False    # mode none published: removed next month (RFC 8461 8.3)
    published_month: int = 0

    @property
    def sts_id(self) -> str:
        return f"id{self.version:04d}"


@dataclass(frozen=True)
class Month:
    """One month of an evolving population: its scenario and the events since the month before."""

    month: int
    scenario: Scenario
    states: Mapping[str, StsState]
    events: Mapping[str, str]    # domain -> event (report_lifecycle_events vocabulary)


def initial_states(base: Scenario, seed: int) -> dict[str, StsState]:
    """Month 0's state of every domain of an evolving case (half the testing ones pending)."""
    states: dict[str, StsState] = {}
    testing = sorted(d.name for d in base.domains if d.case == "valid-testing")
    pending = set(random.Random(f"{seed}/adopters").sample(testing, round(len(testing) * ADOPTER_POOL_SHARE)))
    for d in base.domains:
        if d.case not in EVOLVING_CASES:
            continue
        mode = "enforce" if d.case == "valid-enforce" else "testing"
        states[d.name] = StsState(
            active=d.name not in pending, pending=d.name in pending, mode=mode,
            max_age=604800 if mode == "enforce" else 86400, tlsrpt=bool(d.tlsrpt))
    return states


def _eligible(kind: str, s: StsState, month: int) -> bool:
    if kind == "published":
        return s.pending
    if not s.active or s.withdrawing:
        return False
    fetch_ok = s.policy_cert == "valid"
    healthy = fetch_ok and s.mx_cert == "valid" and not s.mx_migrated
    rules = {
        "testing_to_enforce": s.mode == "testing" and s.published_month < month and healthy,
        "policy_changed_same_id": fetch_ok and s.mode in ("enforce", "testing"),
        "id_changed_same_policy": fetch_ok,
        "removed_without_mode_none": fetch_ok and s.mode in ("enforce", "testing"),
        "withdraw_to_mode_none": fetch_ok and s.mode == "enforce",
        "policy_host_moved": fetch_ok and not s.hosted,
        "policy_cert_expired": fetch_ok and not s.hosted and s.mode in ("enforce", "testing"),
        "policy_cert_renewed": s.policy_cert == "expired",
        "mx_cert_expired": fetch_ok and s.mx_cert == "valid" and not s.mx_migrated,
        "mx_cert_renewed": s.mx_cert == "expired",
        "mx_migrated": healthy,
        "tlsrpt_added": not s.tlsrpt,
    }
    return rules[kind]


def _apply(kind: str, s: StsState, month: int) -> tuple[StsState, str]:
    """The state after the transition, and the event the crawler's view sees for it."""
    if kind == "published":
        return replace(s, active=True, pending=False, mode="testing", published_month=month), "published"
    if kind == "testing_to_enforce":
        return replace(s, mode="enforce", version=s.version + 1), "mode_changed"
    if kind == "policy_changed_same_id":  # RFC 8461 3.1 says the id must change: it does not
        return replace(s, max_age=MAX_AGES[1] if s.max_age == MAX_AGES[0] else MAX_AGES[0]), kind
    if kind == "id_changed_same_policy":
        return replace(s, version=s.version + 1), kind
    if kind == "removed_without_mode_none":
        return replace(s, active=False), kind
    if kind == "withdraw_to_mode_none":
        return replace(s, mode="none", version=s.version + 1, withdrawing=True), "mode_changed"
    if kind == "policy_host_moved":
        return replace(s, hosted=True), kind
    if kind in ("policy_cert_expired", "policy_cert_renewed"):
        return replace(s, policy_cert="expired" if kind.endswith("expired") else "valid"), kind
    if kind in ("mx_cert_expired", "mx_cert_renewed"):  # the view sees validity, not its cause
        expired = kind.endswith("expired")
        return replace(s, mx_cert="expired" if expired else "valid"), "mx_cert_lapsed" if expired else kind
    if kind == "mx_migrated":
        return replace(s, mx_migrated=True), "mx_migrated_uncovered"
    if kind == "tlsrpt_added":
        return replace(s, tlsrpt=True), kind
    raise ScenarioError(f"unknown transition {kind}")


def evolve(states: Mapping[str, StsState], month: int, seed: int,
           rates: Mapping[str, float] = RATES) -> tuple[dict[str, StsState], dict[str, str]]:
    """Month ``month``'s states from the month before's, and the events between them."""
    rng = random.Random(f"{seed}/month{month}")
    out = dict(states)
    events: dict[str, str] = {}
    # a mode none policy published last month is removed now (RFC 8461 8.3)
    for name in sorted(out):
        if out[name].withdrawing:
            out[name] = replace(out[name], active=False, withdrawing=False)
            events[name] = "removed_after_mode_none"
    for kind, rate in rates.items():
        eligible = sorted(n for n, s in out.items() if n not in events and _eligible(kind, s, month))
        for name in rng.sample(eligible, min(len(eligible), round(rate * len(eligible)))):
            out[name], events[name] = _apply(kind, out[name], month)
    return out, events


def render(d: Domain, s: StsState, hosts: Mapping[str, MxHost]) -> tuple[Domain, list[MxHost]]:
    """The domain as served under state ``s`` (from its month-0 copy ``d``), and its own MX hosts."""
    own = hosts[d.mx[0].host]
    old_mx = own.name
    mx_name = f"{MIGRATED_MX_LABEL}.{d.name}" if s.mx_migrated else old_mx
    host = replace(own, name=mx_name, certificate=s.mx_cert, address=pool_address(own.smtp, s.mx_cert))
    out = replace(d, mx=(MxRecord(host=mx_name, preference=d.mx[0].preference),),
                  sts=(), tlsrpt=(), policy_host=None, expected=expected_for(d, s, old_mx))
    if s.tlsrpt:
        out = replace(out, tlsrpt=((f"v=TLSRPTv1; rua=mailto:tlsrpt@{d.name}",),))
    if s.active:
        body = f"version: STSv1\nmode: {s.mode}\nmx: {old_mx}\nmax_age: {s.max_age}\n"
        out = replace(out, sts=((f"v=STSv1; id={s.sts_id};",),), policy_host=PolicyHost(
            body=body, certificate=s.policy_cert, cname=HOSTING_PROVIDER if s.hosted else None))
    return out, [host]


def expected_for(d: Domain, s: StsState, policy_mx: str) -> dict[str, Any]:
    """The verdict (crawl with --probe-smtp) of a domain in state ``s``."""
    exp: dict[str, Any] = dict(d.expected)
    for col in ("sts_id", "policy_mode", "policy_max_age", "mismatch_subclass", "policy_tls_subclass",
                "policy_host_cname"):
        exp.pop(col, None)
    fetch = "not_attempted" if not s.active else ("tls_error" if s.policy_cert == "expired" else "ok")
    classes = []
    if fetch == "tls_error":
        classes.append("policy_retrieval")
        exp["policy_tls_subclass"] = "expired"
    if s.active and s.mx_cert == "expired":
        classes.append("mx_cert_invalid")
    uncovered = fetch == "ok" and s.mx_migrated
    if uncovered and s.mode in ("enforce", "testing"):
        classes.append("mx_not_covered")
    exp.update(
        sts_record="valid" if s.active else "absent", policy_fetch=fetch,
        mx_policy_match=("none" if uncovered else "all") if fetch == "ok" else "n/a",
        tlsrpt_record="valid" if s.tlsrpt else "absent",
        mx_starttls="cert_invalid" if s.mx_cert == "expired" else "ok",
        misconfigured=bool(classes), misconfig_classes=";".join(classes),
        delivery_risk=fetch == "ok" and s.mode == "enforce" and (uncovered or s.mx_cert == "expired"),
    )
    if s.active:
        exp["sts_id"] = s.sts_id
    else:
        exp["sts_id"] = ""
    if fetch == "ok":
        exp.update(policy_mode=s.mode, policy_max_age=s.max_age)
    else:
        exp.update(policy_mode="", policy_max_age="")
    if s.active and s.hosted:
        exp["policy_host_cname"] = HOSTING_PROVIDER
    if uncovered:
        exp["mismatch_subclass"] = "other"  # a pattern in the host's domain names another host
    return exp


def apply_states(base: Scenario, states: Mapping[str, StsState], month: int) -> Scenario:
    """``base`` with every evolving domain rendered in its state."""
    hosts = {h.name: h for h in base.mx_hosts}
    domains: list[Domain] = []
    replaced: dict[str, MxHost] = {}
    dropped: set[str] = set()
    for d in base.domains:
        s = states.get(d.name)
        if s is None:
            domains.append(d)
            continue
        new, own = render(d, s, hosts)
        dropped.add(d.mx[0].host)
        replaced.update({h.name: h for h in own})
        domains.append(new)
    kept = [h for h in base.mx_hosts if h.name not in dropped] + list(replaced.values())
    scenario = replace(base, name=f"{base.name}-month{month}", description=f"{base.description}, month {month}",
                       domains=tuple(domains), mx_hosts=tuple(sorted(kept, key=lambda h: h.name)))
    validate(scenario)
    return scenario


def evolve_population(base: Scenario, seed: int, month: int, rates: Mapping[str, float] = RATES) -> Month:
    """Month ``month`` (0 = ``base`` as drawn) of the population that starts as ``base``."""
    if month < 0:
        raise ScenarioError("a month is >= 0")
    unknown = sorted(set(rates) - set(RATES))
    if unknown:
        raise ScenarioError(f"unknown transitions: {', '.join(unknown)}")
    states = initial_states(base, seed)
    events: dict[str, str] = {}
    for k in range(1, month + 1):
        states, events = evolve(states, k, seed, rates)
    return Month(month, apply_states(base, states, month), states, events)


def planted_events(n: int, seed: int, mix: str | Mapping[str, float], month: int) -> list[tuple[str, str]]:
    """(domain, event) pairs planted between month ``month - 1`` and ``month`` (none for month 0)."""
    from collectors.testbed.population import generate_population

    events = evolve_population(generate_population(n, seed, mix), seed, month).events
    return sorted(events.items())
