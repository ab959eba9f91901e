"""The committed sample's crawl part (data/sample, `make sample`) has data in every crawl
section of the report: twelve monthly runs, every lifecycle event, delivery risk, every
misconfiguration class and subclass, DNSSEC, DANE and third-party policy hosts, each on at
least 20 sampled domains; its weights reproduce the published adoption rate; under 25 MB."""

from __future__ import annotations

import duckdb
import pytest

from collectors.report import import_sample
from collectors.report.sample import SAMPLE_DIR

HEADLINE = 20  # sampled domains (not weighted) for every headline case
EVENTS = ("published", "mode_changed", "policy_changed_same_id", "id_changed_same_policy",
          "removed_without_mode_none", "removed_after_mode_none", "policy_host_moved",
          "policy_cert_expired", "policy_cert_renewed", "mx_cert_lapsed", "mx_cert_renewed",
          "mx_migrated_uncovered", "tlsrpt_added")
CLASSES = ("invalid_txt", "policy_retrieval", "mx_cert_invalid", "mx_not_covered")
TLS_SUBCLASSES = ("name_mismatch", "self_signed", "expired", "unknown_ca", "no_certificate")
MISMATCH_SUBCLASSES = ("wrong_tld", "wrong_domain", "extra_label", "typo", "mta_sts_in_pattern", "other")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    db = tmp_path_factory.mktemp("sample") / "sample.duckdb"
    import_sample(db, SAMPLE_DIR)
    con = duckdb.connect(str(db), read_only=True)
    current = con.execute("SELECT run_id FROM report_crawl_runs ORDER BY run_order DESC LIMIT 1").fetchone()[0]
    con.execute(f"CREATE TEMP TABLE posture AS SELECT * FROM main.posture")  # once, as the report does
    yield con, current
    con.close()


def _count(con, sql: str, *args) -> int:  # type: ignore[no-untyped-def]
    return con.execute(sql, list(args)).fetchone()[0]


def test_twelve_monthly_runs_and_the_trend(sample) -> None:
    con, _ = sample
    months = [m for (m,) in con.execute("SELECT month FROM report_crawl_runs ORDER BY run_order").fetchall()]
    assert len(months) == 12 and len(set(months)) == 12
    trend = con.execute("SELECT has_record, valid_policy, mode_enforce FROM report_run_summary"
                        " ORDER BY run_order").fetchall()
    assert len(trend) == 12 and trend[-1][2] > trend[0][2]  # enforce grows as adopters move on


def test_every_lifecycle_event_on_20_domains(sample) -> None:
    con, _ = sample
    got = dict(con.execute("SELECT event, count(DISTINCT domain) FROM report_lifecycle_events GROUP BY event")
               .fetchall())
    assert {e: got.get(e, 0) for e in EVENTS if got.get(e, 0) < HEADLINE} == {}
    assert _count(con, "SELECT count(*) FROM report_lifecycle_events WHERE violates_rfc") >= 2 * HEADLINE


def test_current_run_has_every_class_subclass_and_delivery_risk(sample) -> None:
    con, run = sample
    base = "SELECT count(*) FROM posture WHERE run_id = ? AND "
    small = {c: n for c in CLASSES
             if (n := _count(con, base + "list_contains(string_split(misconfig_classes, ';'), ?)", run, c)) < HEADLINE}
    small |= {s: n for s in TLS_SUBCLASSES if (n := _count(con, base + "policy_tls_subclass = ?", run, s)) < HEADLINE}
    small |= {s: n for s in MISMATCH_SUBCLASSES
              if (n := _count(con, base + "list_contains(string_split(mismatch_subclass, ';'), ?)", run, s)) < HEADLINE}
    assert small == {}
    assert _count(con, base + "delivery_risk", run) >= HEADLINE
    assert _count(con, "SELECT count(*) FROM report_delivery_risk WHERE run_id = ?", run) >= HEADLINE
    for view in ("report_misconfig_classes", "report_failure_stages", "report_mismatch_subclasses",
                 "report_policy_texts", "report_mx_providers"):
        assert _count(con, f"SELECT count(*) FROM {view} WHERE run_id = ?", run) > 0, view


def test_dnssec_dane_tlsrpt_and_third_party_hosts(sample) -> None:
    con, run = sample
    base = "SELECT count(*) FROM posture WHERE run_id = ? AND "
    assert _count(con, base + "dnssec = 'secure'", run) >= HEADLINE
    assert _count(con, base + "tlsa = 'yes'", run) >= HEADLINE
    assert _count(con, base + "tlsrpt_record = 'valid'", run) >= HEADLINE
    third = _count(con, "SELECT sum(domains) FROM report_policy_hosts WHERE run_id = ?"
                        " AND policy_host_org <> '(self-hosted)'", run)
    assert third >= HEADLINE


def test_weights_give_the_published_adoption_rate_and_every_rate_uses_them(sample) -> None:
    con, _ = sample
    first = con.execute("SELECT run_id FROM report_crawl_runs ORDER BY run_order LIMIT 1").fetchone()[0]
    domains, holders, sampled = con.execute(
        "SELECT domains, has_record, sampled_domains FROM report_funnel([NULL::BIGINT]) WHERE run_id = ?",
        [first]).fetchone()
    assert sampled < domains  # the other stratum stands for many more domains
    assert holders / domains == pytest.approx(0.012, abs=0.0005)  # IMC 2025, Alexander 2024
    assert _count(con, "SELECT count(*) FROM crawl_weights WHERE run_id = ?", first) == sampled


def test_committed_sample_is_under_25_mb() -> None:
    size = sum(f.stat().st_size for f in SAMPLE_DIR.rglob("*") if f.is_file())
    assert size < 25 * 1024 * 1024


def test_view_finds_exactly_the_events_the_generator_planted(sample) -> None:
    from collectors.report import read_metadata

    con, _ = sample
    planted = read_metadata(SAMPLE_DIR)["details"]["testbed"]["planted_events"]
    got = dict(con.execute("SELECT event, count(*) FROM report_lifecycle_events GROUP BY event").fetchall())
    assert got == planted


@pytest.mark.parametrize("part", ["crawl", "lab"])
def test_each_part_can_be_dropped_for_a_rebuild_keeping_the_other(tmp_path, part: str) -> None:
    """`mtasts lab sample --only PART` starts from the committed sample without PART's rows."""
    from collectors.cli.sample_crawl import drop_part

    db = tmp_path / "s.duckdb"
    import_sample(db, SAMPLE_DIR)
    con = duckdb.connect(str(db))
    before = dict(con.execute("SELECT kind = 'crawl', count(*) FROM runs GROUP BY ALL").fetchall())
    crawl_rows = _count(con, "SELECT count(*) FROM crawl_observations")
    lab_rows = _count(con, "SELECT count(*) FROM postfix_deliveries")
    con.close()
    assert drop_part(db, part) == before[part == "crawl"]
    con = duckdb.connect(str(db), read_only=True)
    kinds = dict(con.execute("SELECT kind = 'crawl', count(*) FROM runs GROUP BY ALL").fetchall())
    assert kinds == {part != "crawl": before[part != "crawl"]}
    assert _count(con, "SELECT count(*) FROM crawl_observations") == (0 if part == "crawl" else crawl_rows)
    assert _count(con, "SELECT count(*) FROM postfix_deliveries") == (0 if part == "lab" else lab_rows)
    con.close()


def test_intervals_of_weighted_shares_are_the_samples_not_the_weighted_counts(sample) -> None:
    """Each share of all domains has the effective sample size of the stratified design
    (Cochran 5A.5, with the finite-population correction): computed here by hand from the
    crawled domains per stratum, it equals the view's; a stratum crawled whole adds nothing,
    so the record holders' share (all in the census stratum) is exact, and a share spread over
    the sampled stratum gets the interval of about the domains crawled there, not of the
    weighted count."""
    from collectors.report import stats

    con, _ = sample
    run = con.execute("SELECT run_id FROM report_crawl_runs ORDER BY run_order DESC LIMIT 1").fetchone()[0]
    strata = con.execute("SELECT stratum, count(*), sum(weight), count(*) FILTER (WHERE dnssec_secure),"
                         " sum(weight) FILTER (WHERE dnssec_secure), count(*) FILTER (WHERE has_record)"
                         " FROM report_domain_stages WHERE run_id = ? GROUP BY stratum", [run]).fetchall()
    total = sum(w for _, _, w, _, _, _ in strata)
    p = sum(yw or 0 for *_, yw, _ in strata) / total
    variance = sum((w / total) ** 2 * (1 - n / w) * (y / n) * (1 - y / n) / (n - 1)
                   for _, n, w, y, _, _ in strata if n > 1 and w > n)
    by_hand = round(p * (1 - p) / variance)
    row = con.execute("SELECT domains, dnssec_secure, dnssec_secure_share_neff, has_record, has_record_share_neff,"
                      " sampled_domains FROM report_funnel([NULL::BIGINT]) WHERE run_id = ?", [run]).fetchone()
    domains, dnssec, dnssec_neff, holders, holders_neff, sampled = row
    assert dnssec_neff == by_hand and 1000 < dnssec_neff < sampled   # the sampled stratum's size, about
    assert holders_neff == domains                                    # a census: no sampling variance
    assert all(n_rec == 0 for stratum, *_, n_rec in strata if stratum == "other")
    weighted, honest = stats.wilson(dnssec, domains), stats.wilson(dnssec, domains, dnssec_neff)
    assert honest.pct == weighted.pct
    width = (honest.high - honest.low) / (weighted.high - weighted.low)
    assert width == pytest.approx((domains / dnssec_neff) ** 0.5, rel=0.1)   # as wide as the sample allows
