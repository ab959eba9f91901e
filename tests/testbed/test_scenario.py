"""Scenario files: what loads, what is refused with a clear reason, and how records look."""

from __future__ import annotations

import pytest
import yaml

from collectors.testbed import Scenario, ScenarioError
from collectors.testbed.plan import make_plan
from collectors.testbed.scenario import from_dict
from collectors.testbed.zones import build_zones, domain_records, quote_txt


def one(domain: dict, **extra) -> Scenario:
    return from_dict({"name": "t", "domains": [domain], **extra})


@pytest.mark.parametrize("domain, message", [
    ({"name": "a.test", "null_mx": True, "mx": ["mx.a.test"]}, "null_mx and mx"),
    ({"name": "a.test", "sts": ["v=STSv1; id=1"], "sts_cname": "x.test"}, "both TXT records and a CNAME"),
    ({"name": "a.test", "policy_host": {"http": "teapot"}}, "policy_host.http"),
    ({"name": "a.test", "policy_host": {"certificate": "bad", "body": ""}}, "certificate"),
    ({"name": "a.test", "policy_host": {"http": "status"}}, "status code"),
    ({"name": "a.test", "policy_host": {"http": "redirect"}}, "location"),
    ({"name": "a.test", "policy_host": {"address": "192.0.2.1", "body": ""}}, "outside 127.0.0.0/8"),
    ({"name": "a.test", "mx": [{"host": "mx.a.test", "smtp": "maybe"}]}, "smtp must be"),
    ({"name": "a.test", "sts": ["x" * 256]}, "over 255 bytes"),
    ({"name": "a.test", "colour": "blue"}, "unknown keys"),
    ({"name": "a.test", "expected": {"verdict": "ok"}}, "unknown expected columns"),
    ({"name": "test"}, "two labels"),
    ({"name": "a.test", "exists": False, "mx": ["mx.a.test"]}, "exists: false"),
])
def test_unservable_scenarios_are_refused_with_the_reason(domain: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        one(domain)


def test_an_mx_host_defined_twice_differently_is_refused() -> None:
    with pytest.raises(ScenarioError, match="defined twice"):
        from_dict({"domains": [{"name": "a.test", "mx": [{"host": "mx.x.test", "certificate": "expired"}]},
                               {"name": "b.test", "mx": [{"host": "mx.x.test", "certificate": "valid"}]}]})


def test_a_minimal_scenario_file_loads(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"domains": [
        {"name": "Example.TEST.", "mx": ["mx1.example.test"], "sts": ["v=STSv1; id=1"],
         "policy_host": {"body": "version: STSv1\n"}}]}))
    s = Scenario.load(path)
    assert s.name == "s"
    d = s.domains[0]
    assert d.name == "example.test" and d.mx[0].host == "mx1.example.test"
    assert s.mx_host("mx1.example.test").smtp == "starttls"  # an inline MX entry defines its host
    assert d.sts == (("v=STSv1; id=1",),)


def test_zone_lines_quote_txt_strings_and_publish_what_the_domain_says() -> None:
    assert quote_txt('a "b" \\c') == '"a \\"b\\" \\\\c"'
    assert quote_txt("é") == '"\\195\\169"'
    s = one({"name": "a.test", "mx": [{"host": "mx.a.test", "preference": 5}],
             "sts": [["v=STSv1; ", "id=1"]], "policy_host": {"cname": "sts.provider.test", "body": ""}})
    lines = domain_records(s.domains[0], make_plan(s))
    assert "a.test. MX 5 mx.a.test." in lines
    assert '_mta-sts.a.test. TXT "v=STSv1; " "id=1"' in lines
    assert "mta-sts.a.test. CNAME sts.provider.test." in lines


def test_signed_domains_become_child_zones_delegated_from_their_tld() -> None:
    s = from_dict({"domains": [{"name": "sec.test", "dnssec": "signed", "mx": ["mx1.sec.test"]},
                               {"name": "plain.test", "mx": ["mx1.sec.test"]}]})
    zs = build_zones(s, make_plan(s), None)
    assert zs.signed == ("sec.test.",)
    assert any(l.startswith("mx1.sec.test. A ") for l in zs.zones["sec.test."])
    assert "sec.test. NS ns.testbed-dns.test." in zs.zones["test."]
    assert "plain.test. MX 10 mx1.sec.test." in zs.zones["test."]
    assert "test. NS ns.testbed-dns.test." in zs.zones["."]
