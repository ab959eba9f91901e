"""Every figure reviewed as a reader would, the comparisons in the published shape, the
intervals against a reference computation, the paper folder, and the same bytes again."""

from __future__ import annotations

import hashlib
import json
import math

import duckdb
import pandas as pd
import pytest
from PIL import Image

from collectors.report import NOTEBOOKS, compare, render_report, stats
from conftest import SAMPLE_NOTE
from collectors.report.provenance import lab_timers, simulation_reasons
from collectors.report.reference import load


def _checks(out, notebook):
    path = out / "json" / f"{notebook}_figure_checks.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _sql(db, query, *params):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(query, list(params)).fetchall()
    finally:
        con.close()


def review_figures(out, run_id):
    """Assert what a reviewer checks on every figure of a rendered report; returns their names."""
    names = []
    for notebook in NOTEBOOKS:
        for name, check in _checks(out, notebook).items():
            names.append(f"{notebook}_{name}")
            assert check["axes_with_data"] >= 1, (notebook, name)
            assert check["empty_axes"] == [], (notebook, name)
            assert check["cut_or_colliding_texts"] == [], (notebook, name)
            assert check["legend_without_artist"] == [], (notebook, name)
            assert "local simulation" in check["footer"], (notebook, name)
            assert run_id in check["footer"] or "lab evidence" in check["footer"], (notebook, name)
            png = out / "figures" / f"{notebook}_{name}.png"
            assert Image.open(png).info["dpi"][0] >= 199, name
            svg = png.with_suffix(".svg").read_text()
            assert "local simulation" in svg and "<script" not in svg
            assert (out / "paper" / "figures" / f"{notebook}_{name}.pdf").read_bytes().startswith(b"%PDF")
    pngs = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert sorted(names) == pngs  # every saved figure was reviewed
    return names


def test_every_figure_holds_data_and_nothing_is_cut(synthetic):
    names = review_figures(synthetic["out"], synthetic["run_ids"][-1])
    # two runs: the trend is drawn; the funnel, comparisons and the lab figures too
    for expected in ("adoption_funnel", "adoption_alongside", "adoption_misconfig_vs_published",
                     "adoption_trend", "providers_provider_table", "notifications_timeline"):
        assert expected in names


def test_figures_say_what_they_show(synthetic):
    out = synthetic["out"]
    checks = _checks(out, "adoption")
    assert set(checks) >= {"funnel", "misconfig_vs_published"}
    svg = (out / "figures" / "adoption_funnel.svg").read_text()
    # the title states the finding with the numbers of the run
    record = _sql(synthetic["db"], "SELECT count(*) FILTER (WHERE has_record), count(*) FROM report_domain_stages"
                                   " WHERE run_id = ?", synthetic["run_ids"][-1])[0]
    assert f"{100 * record[0] / record[1]:.1f} % of {record[1]:,} domains publish an MTA-STS record" in svg


def test_wilson_and_newcomb_against_a_reference_computation():
    z = 1.959963984540054
    for k, n in [(0, 10), (1, 2000), (30, 2000), (17, 30), (2000, 2000), (5, 7)]:
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        r = stats.wilson(k, n)
        assert r.low == pytest.approx(100 * max(0.0, centre - half), abs=1e-9)
        assert r.high == pytest.approx(100 * min(1.0, centre + half), abs=1e-9)
    # Newcomb (1998) method 10: the hybrid score interval from the two Wilson intervals
    k1, n1, k2, n2 = 30, 2000, 45, 2100
    a, b = stats.wilson(k1, n1), stats.wilson(k2, n2)
    p1, p2 = k1 / n1, k2 / n2
    d = p2 - p1
    low = d - math.sqrt((p2 - b.low / 100) ** 2 + (a.high / 100 - p1) ** 2)
    high = d + math.sqrt((b.high / 100 - p2) ** 2 + (p1 - a.low / 100) ** 2)
    c = stats.change(k1, n1, k2, n2)
    assert c.low_pp == pytest.approx(100 * low, abs=1e-9) and c.high_pp == pytest.approx(100 * high, abs=1e-9)
    assert math.isnan(stats.wilson(0, 0).pct)
    # A weighted share: the same percentage, the interval of the effective sample size.
    weighted = stats.wilson(120, 10_000, n_eff=400)
    assert weighted.pct == 1.2 and weighted.n == 10_000 and weighted.n_eff == 400
    assert (weighted.low, weighted.high) == pytest.approx((stats.wilson(12, 1000, n_eff=400).low,
                                                           stats.wilson(12, 1000, n_eff=400).high))
    assert (weighted.low, weighted.high) == pytest.approx(
        tuple(100 * x for x in __import__("statsmodels.stats.proportion", fromlist=["x"]).proportion_confint(
            4.8, 400, method="wilson")))
    assert stats.wilson(120, 10_000, n_eff=None) == stats.wilson(120, 10_000) == stats.wilson(120, 10_000, 0)


def test_funnel_intervals_equal_sql_counts(synthetic):
    table = pd.read_csv(synthetic["out"] / "tables" / "adoption_funnel.csv")
    whole = table[table["bucket"] == "all"].iloc[0]
    k, n = _sql(synthetic["db"], "SELECT count(*) FILTER (WHERE has_record), count(*) FROM report_domain_stages"
                                 " WHERE run_id = ?", synthetic["run_ids"][-1])[0]
    ref = stats.wilson(k, n)
    assert (whole["has_record_ci_low"], whole["has_record_ci_high"]) == (round(ref.low, 3), round(ref.high, 3))


def test_month_over_month_changes_have_intervals(synthetic):
    moves = pd.read_csv(synthetic["out"] / "tables" / "adoption_month_over_month.csv")
    runs = _sql(synthetic["db"], "SELECT run_id, count(*), count(*) FILTER (WHERE has_record)"
                                 " FROM report_domain_stages GROUP BY run_id ORDER BY run_id")
    row = moves[moves["share"] == "has_record"].iloc[0]
    c = stats.change(runs[0][2], runs[0][1], runs[1][2], runs[1][1])
    assert row["ci_low_pp"] == round(c.low_pp, 3) and row["ci_high_pp"] == round(c.high_pp, 3)


def test_misconfiguration_comparison_in_the_published_order_and_denominators(synthetic):
    table = pd.read_csv(synthetic["out"] / "tables" / "adoption_misconfig_classes.csv")
    assert list(table["our_code"]) == [c[0] for c in compare.IMC_CLASSES]
    published = load("misconfiguration_published").table.set_index("measure")["value"].astype(float)
    for row in table.itertuples():
        assert row.published_domains == published[row.published_wording]
        assert row.published_pct_of_record_holders == round(
            100 * published[row.published_wording] / published[compare.IMC_HOLDERS], 2)
        assert row.published_pct_of_misconfigured == round(
            100 * published[row.published_wording] / published[compare.IMC_MISCONFIGURED], 2)
    run = synthetic["run_ids"][-1]
    holders, misconfigured, uncovered = _sql(
        synthetic["db"], "SELECT count(*) FILTER (WHERE sts_record IN ('valid', 'invalid', 'multiple')),"
        " count(*) FILTER (WHERE misconfigured), count(*) FILTER (WHERE policy_mode = 'enforce' AND"
        " list_contains(string_split(misconfig_classes, ';'), 'mx_not_covered')) FROM posture WHERE run_id = ?",
        run)[0]
    row = table.set_index("our_code").loc["mx_not_covered"]
    assert row["our_domains"] == uncovered
    assert row["our_pct_of_record_holders"] == round(100 * uncovered / holders, 2)
    assert row["our_pct_of_misconfigured"] == round(100 * uncovered / misconfigured, 2)
    # the synthetic crawl did not probe MX hosts: the certificate class is "not measured", not 0
    assert pd.isna(table.set_index("our_code").loc["mx_cert_invalid", "our_domains"])


def test_provider_table_in_the_published_columns(synthetic):
    table = pd.read_csv(synthetic["out"] / "tables" / "providers_published_style.csv")
    assert list(table.columns) == [*compare.PROVIDER_COLUMNS, "source"]
    published = load("provider_behaviour_alexander_2024").table
    theirs = table[table["source"] != "this lab"]
    assert list(theirs["provider"]) == list(published["provider"])
    rows = _sql(synthetic["db"], "SELECT provider, any_value(provider_verdict), bool_or(dane_enforced),"
                                 " bool_or(policy_fetched) FROM provider_behaviour GROUP BY provider")
    ours = table[table["source"] == "this lab"].set_index("provider")
    assert set(ours.index) == {r[0] for r in rows}
    for provider, verdict, dane, fetched in rows:
        expected = (compare.NONE_BY_DANE if verdict == "partial" and dane is True and fetched is False
                    else compare.OUTBOUND_SUPPORT[verdict])
        assert ours.loc[provider, "outbound_mta_sts_support"] == expected


def test_a_sender_that_fetched_no_policy_has_no_mta_sts_support_whatever_dane_refused():
    ours = pd.DataFrame({"provider": ["dane-only", "lazy-mta-sts", "unknown"], "delivered_a": [True, True, True],
                         "delivered_b": [False, False, True],
                         "provider_verdict": ["partial", "partial", "partial"],
                         "dane_enforced": [True, False, None], "policy_fetched": [False, True, None]})
    table = compare.provider_table(load("provider_behaviour_alexander_2024").table, ours, {})
    support = dict(zip(table["provider"], table["outbound_mta_sts_support"]))
    assert support["dane-only"] == "none (B refused by DANE)"
    assert support["lazy-mta-sts"] == support["unknown"] == "partial"


def test_paper_folder_has_pdfs_tables_citation_and_provenance(synthetic):
    paper = synthetic["out"] / "paper"
    assert sorted(p.stem for p in (paper / "figures").glob("*.pdf")) == sorted(
        p.stem for p in (synthetic["out"] / "figures").glob("*.png"))
    tex = (paper / "tables" / "adoption_misconfig_classes.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "10.1145/3730567.3732916" in tex  # the published figures' citation travels with the table
    assert (paper / "tables" / "adoption_misconfig_classes.csv").is_file()
    citation = (paper / "CITATION.md").read_text()
    assert synthetic["run_ids"][-1] in citation and "Local simulation" in citation
    prov = json.loads((paper / "provenance.json").read_text())
    assert prov["crawl_runs"][0]["inputs"][0]["sha256"]


def test_provenance_names_inputs_settings_and_why_simulated(synthetic):
    html = (synthetic["out"] / "adoption.html").read_text()
    sha = _sql(synthetic["db"], "SELECT inputs->>'$[0].sha256' FROM runs WHERE run_id = ?",
               synthetic["run_ids"][0])[0][0]
    assert sha and sha in html
    assert "imported from the embedded sample" in html  # decided from the runs table
    assert "Lab pages cover" in (synthetic["out"] / "providers.html").read_text()


def test_same_database_gives_the_same_bytes(synthetic, tmp_path):
    out = synthetic["out"]

    def digest():
        return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*")) if p.is_file()}

    before = digest()
    again = render_report(synthetic["db"], out.parent, notebooks=("adoption",), local_simulation=True,
                          data_note=SAMPLE_NOTE)
    assert again.ok
    after = digest()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == []


def test_lab_pages_honour_the_month(synthetic, tmp_path):
    early = synthetic["months"][0]
    result = render_report(synthetic["db"], tmp_path, month=early, notebooks=("providers",))
    assert result.ok, result.pages[0].error
    html = (tmp_path / early / "providers.html").read_text()
    assert f"Lab pages cover the test messages sent in {early}: there are none." in html
    assert "no lab test message in the period this page covers" in html
    assert not list((tmp_path / early / "figures").glob("providers_*.png"))


def test_simulation_is_decided_from_stored_settings():
    testbed = {"run_id": "c1", "kind": "crawl",
               "parameters": json.dumps({"settings": {"resolver": "127.53.0.1:53",
                                                      "ca_bundle": "/x/testbed/pki/ca.pem"}})}
    real = {"run_id": "c2", "kind": "crawl",
            "parameters": json.dumps({"settings": {"resolver": "9.9.9.9",
                                                   "ca_bundle": "/etc/ssl/certs/ca-certificates.crt"}})}
    assert len(simulation_reasons([testbed])) == 2
    assert simulation_reasons([real]) == []
    assert simulation_reasons([real], ["x@d.audit.lab.test"]) != []
    assert simulation_reasons([{"run_id": "v6", "kind": "crawl",
                                "parameters": {"settings": {"resolver": "[::1]:5353"}}}]) != []


def test_lab_timers_are_read_from_any_run_parameters():
    runs = [{"run_id": "lab-1", "parameters": json.dumps({"profiles": {
        "exim-notify": {"delay_warning": ["1h", "4h"], "timeout_frozen_after": "2d"},
        "postfix-quick": {"delay_warning_time": "5m", "maximal_queue_lifetime": "1d"}}})},
        {"run_id": "sample", "parameters": {"details": {"lab": {"timers": {"delay_warning_time": "1m"}}}}}]
    got = {(t.profile, t.name): t.value for t in lab_timers(runs)}
    assert got[("exim-notify", "delay_warning")] == "1h, 4h"
    assert got[("postfix-quick", "maximal_queue_lifetime")] == "1d"
    assert got[("all lab senders", "delay_warning_time")] == "1m"


def test_notification_page_prints_the_timers_beside_the_times(synthetic):
    html = (synthetic["out"] / "notifications.html").read_text()
    timers = lab_timers([{"run_id": r, "parameters": p} for r, p in _sql(
        synthetic["db"], "SELECT run_id, CAST(parameters AS VARCHAR) FROM runs")])
    if timers:
        assert all(t.value in html for t in timers)
    else:
        assert "timers are not recorded" in html
    assert "sender timers" in html


def test_each_page_shows_its_figures_as_images(synthetic):
    out = synthetic["out"]
    for notebook in NOTEBOOKS:
        html = (out / f"{notebook}.html").read_text()
        figures = list((out / "figures").glob(f"{notebook}_*.png"))
        assert html.count("data:image/png;base64") == len(figures), notebook
        assert "<Figure size" not in html, notebook


def test_empty_sections_say_why(synthetic, tmp_path):
    """One crawl run: no trend figure, and the page says why in words."""
    result = render_report(synthetic["db"], tmp_path, run_ids=synthetic["run_ids"][:1], notebooks=("adoption",))
    assert result.ok, result.pages[0].error
    out = result.out_dir
    html = (out / "adoption.html").read_text()
    assert "the trend and the month-over-month changes need two or more runs" in html
    assert not (out / "figures" / "adoption_trend.png").exists()
    review_figures(out, synthetic["run_ids"][0])
