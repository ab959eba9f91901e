"""The rendered report on a two-run synthetic database: every notebook runs, key
figures equal direct SQL, remote strings are escaped, provenance is on every page."""

from __future__ import annotations

import json
import re

import duckdb
import nbformat
import pytest

from collectors.report import NOTEBOOKS
from report_fixture import HOSTILE_MX_HOST, HOSTILE_NOTICE, HOSTILE_POLICY_MX

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def sql(db, query, *params):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(query, list(params)).fetchone()[0]
    finally:
        con.close()


def keys(synthetic, notebook):
    return json.loads((synthetic["out"] / "key_figures.json").read_text())[notebook]


def test_every_notebook_renders_all_artefacts(synthetic):
    out, result = synthetic["out"], synthetic["result"]
    assert result.ok, [(p.name, p.error) for p in result.pages]
    assert result.month == synthetic["months"][-1]
    assert [p.name for p in result.pages] == list(NOTEBOOKS)
    index = (out / "index.html").read_text()
    for name in NOTEBOOKS:
        assert (out / f"{name}.ipynb").is_file() and (out / f"{name}.html").is_file()
        assert f'href="{name}.html"' in index
        executed = nbformat.read(out / f"{name}.ipynb", as_version=4)
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    for page in result.pages:
        for png in page.figures:
            assert (out / png).stat().st_size > 1000
            assert (out / png).with_suffix(".svg").is_file()
            assert f'src="{png}"' in index
        for csv in page.tables:
            assert f'href="{csv}"' in index
    assert any(p.figures for p in result.pages if p.name == "adoption")


def test_html_pages_hide_code(synthetic):
    html = (synthetic["out"] / "adoption.html").read_text()
    assert "ReportContext.open" not in html and "ctx.sql(" not in html
    assert "MTA-STS funnel" not in html or "data:image/png;base64" in html


@pytest.mark.parametrize("column", ["domains", "has_mx", "has_record", "valid_record", "valid_policy",
                                    "mode_enforce", "mode_testing", "mode_none", "tlsrpt_valid",
                                    "dnssec_secure", "dane_tlsa", "misconfigured", "delivery_risk"])
def test_adoption_key_figures_equal_sql_on_posture(synthetic, column):
    condition = {
        "domains": "true", "has_mx": "mx_status = 'ok'",
        "has_record": "sts_record IN ('valid', 'invalid', 'multiple')",
        "valid_record": "sts_record = 'valid'", "valid_policy": "policy_fetch = 'ok'",
        "mode_enforce": "policy_fetch = 'ok' AND policy_mode = 'enforce'",
        "mode_testing": "policy_fetch = 'ok' AND policy_mode = 'testing'",
        "mode_none": "policy_fetch = 'ok' AND policy_mode = 'none'",
        "tlsrpt_valid": "tlsrpt_record = 'valid'", "dnssec_secure": "dnssec = 'secure'",
        "dane_tlsa": "tlsa = 'yes'", "misconfigured": "misconfigured", "delivery_risk": "delivery_risk",
    }[column]
    run = synthetic["run_ids"][-1]
    expected = sql(synthetic["db"], f"SELECT count(*) FROM posture WHERE run_id = ? AND {condition}", run)
    assert keys(synthetic, "adoption")[column] == expected


def test_misconfiguration_classes_equal_sql(synthetic):
    k = keys(synthetic, "adoption")
    run = synthetic["run_ids"][-1]
    for cls in ("invalid_txt", "policy_retrieval", "mx_not_covered"):
        expected = sql(synthetic["db"], "SELECT count(*) FROM posture WHERE run_id = ?"
                       " AND list_contains(string_split(misconfig_classes, ';'), ?)", run, cls)
        assert expected > 0
        assert k[f"class_{cls}"] == expected


def test_lifecycle_events_match_the_changes_made(synthetic):
    expected = synthetic["lifecycle_expected"][f"after_{synthetic['run_ids'][0]}"]
    assert keys(synthetic, "adoption")["lifecycle_violations"] == (
        expected["policy_changed_same_id"] + expected["removed_without_mode_none"])
    con = duckdb.connect(str(synthetic["db"]), read_only=True)
    got = dict(con.execute("SELECT event, count(*) FROM report_lifecycle_events"
                           " WHERE run_id = ? GROUP BY event", [synthetic["run_ids"][1]]).fetchall())
    con.close()
    assert {k: got.get(k, 0) for k in expected} == expected
    assert keys(synthetic, "adoption")["runs_in_trend"] == 2


def test_provider_and_notification_key_figures_equal_sql(synthetic):
    db = synthetic["db"]
    p = keys(synthetic, "providers")
    assert p["providers"] == sql(db, "SELECT count(DISTINCT provider) FROM provider_behaviour")
    assert p["delivered_pairs"] == sql(db, "SELECT count(*) FROM provider_behaviour WHERE delivered")
    n = keys(synthetic, "notifications")
    assert n["undelivered_messages"] == sql(db, "SELECT count(*) FROM notification_timing")
    assert n["notices"] == sql(db, "SELECT count(*) FROM report_lab_notices") == 4
    assert n["messages_with_tls_mentioned"] == sql(
        db, "SELECT count(*) FROM notification_timing WHERE tls_mentioned")
    assert p["providers_fetching_policy"] == sql(
        db, "SELECT count(DISTINCT provider) FROM provider_behaviour WHERE policy_fetched")


def test_remote_strings_are_escaped(synthetic):
    out = synthetic["out"]
    adoption = (out / "adoption.html").read_text()
    notifications = (out / "notifications.html").read_text()
    for raw, page in ((HOSTILE_POLICY_MX, adoption), (HOSTILE_MX_HOST, adoption),
                      (HOSTILE_NOTICE, notifications)):
        assert raw not in page
    # in tables and in quoted policy and notice texts (<, > and & escaped; quotes are harmless
    # in element text, and nbconvert writes them back as plain quotes)
    assert re.search(r'<td[^>]*>&lt;script&gt;alert\((&quot;|")policy(&quot;|")\)&lt;/script&gt;\.example</td>', adoption)
    assert re.search(r"<td[^>]*>&lt;img src=x onerror=alert\(1\)&gt;\.mx\.example", adoption)
    assert re.search(r"mx: &lt;script&gt;alert\((&quot;|\")policy(&quot;|\")\)&lt;/script&gt;\.example", adoption)
    assert re.search(r"said: &lt;script&gt;alert\((&quot;|\")notice(&quot;|\")\)&lt;/script&gt;", notifications)
    for page in out.glob("*.html"):
        assert not re.search(r"<script\b", page.read_text(), re.I), page.name
    # the CSV keeps the remote text as it was
    import pandas as pd
    risk = pd.read_csv(out / "tables" / "adoption_delivery_risk.csv")
    assert HOSTILE_POLICY_MX in set(risk["policy_mx"])


def test_provenance_on_every_page(synthetic):
    out = synthetic["out"]
    from collectors import __version__
    for page in ["index.html", *(f"{n}.html" for n in NOTEBOOKS)]:
        html = (out / page).read_text()
        for run in synthetic["run_ids"]:
            assert run in html, (page, run)
        assert "synthetic-top2000.csv" in html and "2025-10-03" in html  # list and its date
        assert f"version {__version__}" in html
        assert "Local simulation" in html, page
        assert "rank_buckets=" in html
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["local_simulation"] is True and prov["current_run"] == synthetic["run_ids"][-1]


def test_published_figures_are_cited(synthetic):
    adoption = (synthetic["out"] / "adoption.html").read_text()
    providers = (synthetic["out"] / "providers.html").read_text()
    assert "doi 10.1145/3730567.3732916" in adoption
    assert "SMTP downgrade attacks and MTA-STS" in providers


def test_notebooks_are_paired_without_outputs_and_have_parameters():
    import jupytext

    for name in NOTEBOOKS:
        text = jupytext.read(REPO / "notebooks" / f"{name}.py")
        stored = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
        assert [c.source for c in stored.cells] == [c.source for c in text.cells], name
        for cell in stored.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name
        params = [c for c in text.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1
        for p in ("db_path", "run_ids", "month", "rank_buckets", "lab_id"):
            assert re.search(rf"^{p} = ", params[0].source, re.M), (name, p)
