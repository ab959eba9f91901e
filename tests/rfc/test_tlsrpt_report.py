"""parse_tlsrpt_report against RFC 8460 section 4: the RFC example, every real sample under
../shared/external/tlsrpt/, the containers of section 5.3, rejections and properties."""

from __future__ import annotations

import gzip
import json
import string
import tracemalloc
import zlib
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.rfc.tlsrpt_report import (
    MAX_DECOMPRESSED_BYTES,
    TlsRptReport,
    parse_tlsrpt_report,
)

UTC = timezone.utc


def codes(report: TlsRptReport) -> list[str]:
    return [f.code for f in report.findings]


def error_codes(report: TlsRptReport) -> set[str]:
    return {f.code for f in report.findings if f.severity == "error"}


def sample(external_dir: Path, name: str) -> TlsRptReport:
    return parse_tlsrpt_report((external_dir / "tlsrpt" / name).read_bytes())


# RFC 8460 Appendix B, the example report, with the schema's key spellings.
RFC_EXAMPLE: dict[str, Any] = {
    "organization-name": "Company-X",
    "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},
    "contact-info": "sts-reporting@company-x.example",
    "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
    "policies": [{
        "policy": {
            "policy-type": "sts",
            "policy-string": ["version: STSv1", "mode: testing",
                              "mx: *.mail.company-y.example", "max_age: 86400"],
            "policy-domain": "company-y.example",
            "mx-host": "*.mail.company-y.example",
        },
        "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
        "failure-details": [{
            "result-type": "certificate-expired",
            "sending-mta-ip": "2001:db8:abcd:0012::1",
            "receiving-mx-hostname": "mx1.mail.company-y.example",
            "failed-session-count": 100,
        }, {
            "result-type": "starttls-not-supported",
            "sending-mta-ip": "2001:db8:abcd:0013::1",
            "receiving-mx-hostname": "mx2.mail.company-y.example",
            "receiving-ip": "203.0.113.56",
            "failed-session-count": 200,
            "additional-information":
                "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported",
        }, {
            "result-type": "validation-failure",
            "sending-mta-ip": "198.51.100.62",
            "receiving-ip": "203.0.113.58",
            "receiving-mx-hostname": "mx-backup.mail.company-y.example",
            "failed-session-count": 3,
            "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED",
        }],
    }],
}


def dumps(document: Any) -> bytes:
    return json.dumps(document).encode()


def assert_rfc_example(report: TlsRptReport) -> None:
    assert report.ok, report.findings
    assert report.findings == ()
    assert report.organization_name == "Company-X"
    assert report.report_id == "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
    assert report.contact_info == "sts-reporting@company-x.example"
    assert report.date_range_start == datetime(2016, 4, 1, tzinfo=UTC)
    assert report.date_range_end == datetime(2016, 4, 1, 23, 59, 59, tzinfo=UTC)
    (policy,) = report.policies
    assert policy.policy_type == "sts"
    assert policy.policy_domain == "company-y.example"
    assert policy.policy_string == ("version: STSv1", "mode: testing",
                                    "mx: *.mail.company-y.example", "max_age: 86400")
    assert policy.mx_host == ("*.mail.company-y.example",)
    assert (policy.total_successful_session_count, policy.total_failure_session_count) == (5326, 303)
    assert [d.result_type for d in policy.failure_details] == [
        "certificate-expired", "starttls-not-supported", "validation-failure"]
    assert [d.failed_session_count for d in policy.failure_details] == [100, 200, 3]
    expired, starttls, validation = policy.failure_details
    assert expired.sending_mta_ip == "2001:db8:abcd:0012::1"
    assert expired.receiving_mx_hostname == "mx1.mail.company-y.example"
    assert expired.receiving_ip is None and expired.additional_information is None
    assert starttls.receiving_ip == "203.0.113.56"
    assert starttls.additional_information == (
        "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported")
    assert validation.failure_reason_code == "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
    assert validation.receiving_mx_hostname == "mx-backup.mail.company-y.example"
    assert validation.receiving_mx_helo is None


def test_rfc_example_report() -> None:
    report = parse_tlsrpt_report(dumps(RFC_EXAMPLE))
    assert report.container == "json"
    assert_rfc_example(report)


def test_rfc_example_gzip() -> None:
    report = parse_tlsrpt_report(gzip.compress(dumps(RFC_EXAMPLE)))
    assert report.container == "gzip"
    assert_rfc_example(report)


def tlsrpt_email(part: bytes, content_type: str = "application/tlsrpt+gzip",
                 filename: str = "sender!example.com!1459468800!1459555199.json.gz",
                 top: str = "report") -> bytes:
    """An RFC 8460 section 5.3 report message, built in memory."""
    message = EmailMessage()
    message["From"] = "tlsrpt@sender.example"
    message["To"] = "reports@example.com"
    message["Subject"] = "Report Domain: example.com Submitter: sender.example"
    message["TLS-Report-Domain"] = "example.com"
    message["TLS-Report-Submitter"] = "sender.example"
    message.set_content("This is an aggregate TLS report from sender.example")
    maintype, subtype = content_type.split("/")
    message.add_attachment(part, maintype=maintype, subtype=subtype, filename=filename)
    if top == "report":
        message.replace_header("Content-Type", message["Content-Type"].replace(
            "multipart/mixed", "multipart/report; report-type=tlsrpt"))
    return message.as_bytes()


def test_rfc_example_in_an_email_gzip_part() -> None:
    report = parse_tlsrpt_report(tlsrpt_email(gzip.compress(dumps(RFC_EXAMPLE))))
    assert report.container == "email"
    assert_rfc_example(report)


def test_rfc_example_in_an_email_json_part() -> None:
    report = parse_tlsrpt_report(tlsrpt_email(dumps(RFC_EXAMPLE), "application/tlsrpt+json",
                                              "x.json"))
    assert report.container == "email"
    assert_rfc_example(report)


@pytest.mark.parametrize("content_type", ["application/gzip", "application/octet-stream"])
def test_email_with_another_attachment_type_is_read_with_a_warning(content_type: str) -> None:
    report = parse_tlsrpt_report(tlsrpt_email(gzip.compress(dumps(RFC_EXAMPLE)), content_type))
    assert report.ok and report.organization_name == "Company-X"
    assert codes(report) == ["tlsrpt_report.email_part_type"]


def test_email_not_multipart_report_is_read_with_a_warning() -> None:
    report = parse_tlsrpt_report(tlsrpt_email(gzip.compress(dumps(RFC_EXAMPLE)), top="mixed"))
    assert report.ok and report.report_id == "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
    assert codes(report) == ["tlsrpt_report.email_not_report"]


def test_email_without_a_report_part_is_rejected() -> None:
    report = parse_tlsrpt_report(tlsrpt_email(b"%PDF-1.4", "application/pdf", "report.pdf"))
    assert not report.ok and report.container == "email"
    assert "tlsrpt_report.email_no_report" in error_codes(report)


def test_octet_stream_without_a_report_name_is_not_taken() -> None:
    report = parse_tlsrpt_report(tlsrpt_email(b"\x00\x01", "application/octet-stream", "logo.bin"))
    assert error_codes(report) == {"tlsrpt_report.email_no_report"}


# --- every real sample under ../shared/external/tlsrpt/ ---------------------------------------

SAMPLES = {
    "parsedmarc/rfc8460.json", "parsedmarc/mail.ru.json", "parsedmarc/smtp_tls.json",
    "parsedmarc/google.com_smtp_tls_report.eml",
    "dmarc-report-viewer/google.json", "dmarc-report-viewer/microsoft.json",
    "dmarc-report-viewer/no-contact.json", "dmarc-report-viewer/no-policy.json",
    "dmarc-report-viewer/no_ip_and_mx.json", "dmarc-report-viewer/rfc-example.json",
}


def test_every_sample_is_covered_here(external_dir: Path) -> None:
    root = external_dir / "tlsrpt"
    present = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "LICENSE"}
    assert present == SAMPLES


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_parses_as_a_report(external_dir: Path, name: str) -> None:
    report = sample(external_dir, name)
    assert report.ok, report.findings
    assert report.date_range_start is not None and report.date_range_start.tzinfo is not None
    assert report.policies


@pytest.mark.parametrize("name", ["parsedmarc/rfc8460.json", "dmarc-report-viewer/rfc-example.json"])
def test_sample_rfc_example(external_dir: Path, name: str) -> None:
    # parsedmarc's copy writes mx-host as a string, dmarc-report-viewer's as an array.
    assert_rfc_example(sample(external_dir, name))


def test_sample_google_email(external_dir: Path) -> None:
    report = sample(external_dir, "parsedmarc/google.com_smtp_tls_report.eml")
    assert report.container == "email"
    assert report.findings == ()
    assert report.organization_name == "Google Inc."
    assert report.report_id == "2024-09-03T00:00:00Z_cardinalhealth.ca"
    assert report.contact_info == "smtp-tls-reporting@google.com"
    assert report.date_range_start == datetime(2024, 9, 3, tzinfo=UTC)
    assert report.date_range_end == datetime(2024, 9, 3, 23, 59, 59, tzinfo=UTC)
    (policy,) = report.policies
    assert policy.policy_type == "no-policy-found"
    assert policy.policy_domain == "cardinalhealth.ca"
    assert policy.policy_string == () and policy.mx_host == ()
    assert (policy.total_successful_session_count, policy.total_failure_session_count) == (48, 0)
    assert policy.failure_details == ()


def test_sample_mail_ru_mismatch_is_flagged(external_dir: Path) -> None:
    report = sample(external_dir, "parsedmarc/mail.ru.json")
    assert report.ok and report.container == "json"
    assert report.organization_name == "Mail.ru"
    assert report.report_id == "b28254de-7b2e-be36-bb5c-4c3b92da8b25@mail.ru"
    assert report.contact_info == "tls_support@corp.mail.ru"
    assert report.date_range_start == datetime(2024, 2, 22, tzinfo=UTC)
    assert report.date_range_end == datetime(2024, 2, 23, tzinfo=UTC)
    (policy,) = report.policies
    assert (policy.policy_type, policy.policy_domain) == ("sts", "example.com")
    assert (policy.total_successful_session_count, policy.total_failure_session_count) == (0, 1)
    assert [(d.result_type, d.failed_session_count, d.failure_reason_code)
            for d in policy.failure_details] == [
        ("sts-policy-fetch-error", 1, "bad https response code: 404"),
        ("sts-policy-fetch-error", 1, "bad https response code: 500"),
    ]
    mismatch = [f for f in report.findings if f.code == "tlsrpt_report.failure_count_mismatch"]
    assert len(mismatch) == 1 and mismatch[0].severity == "warning"
    assert "1" in mismatch[0].message and "2" in mismatch[0].message
    assert codes(report).count("tlsrpt_report.no_sending_mta_ip") == 2


def test_sample_parsedmarc_smtp_tls(external_dir: Path) -> None:
    report = sample(external_dir, "parsedmarc/smtp_tls.json")
    assert report.findings == ()
    assert report.organization_name == "Example Inc."
    assert report.report_id == "2024-01-09T00:00:00Z_example.com"
    assert report.date_range_end == datetime(2024, 1, 9, 23, 59, 59, tzinfo=UTC)
    (policy,) = report.policies
    assert (policy.policy_type, policy.policy_domain, policy.mx_host) == ("sts", "example.com", ())
    assert policy.policy_string[2] == "mx: example.com"
    assert (policy.total_successful_session_count, policy.total_failure_session_count) == (0, 3)
    assert [(d.result_type, d.sending_mta_ip, d.receiving_ip, d.receiving_mx_hostname,
             d.failed_session_count) for d in policy.failure_details] == [
        ("validation-failure", "209.85.222.201", "173.212.201.41", "example.com", 2),
        ("validation-failure", "209.85.208.176", "173.212.201.41", "example.com", 1),
    ]


def test_sample_viewer_google(external_dir: Path) -> None:
    report = sample(external_dir, "dmarc-report-viewer/google.json")
    assert report.findings == ()
    assert report.organization_name == "Google Inc."
    assert report.report_id == "2025-05-22T00:00:00Z_foo-bar.io"
    assert report.date_range_start == datetime(2025, 5, 22, tzinfo=UTC)
    (policy,) = report.policies
    assert policy.policy_domain == "foo-bar.io"
    assert policy.mx_host == ("*.foo-bar.io",)
    assert policy.policy_string == ("version: STSv1", "mode: enforce", "mx: *.foo-bar.io",
                                    "max_age: 2592000")
    assert (policy.total_successful_session_count, policy.total_failure_session_count) == (1, 0)


def test_sample_microsoft_tlsa_policy_string_is_decoded(external_dir: Path) -> None:
    report = sample(external_dir, "dmarc-report-viewer/microsoft.json")
    assert report.ok
    assert report.organization_name == "Microsoft Corporation"
    assert report.report_id == "133925885310113267+random.net"
    assert report.contact_info == "tlsrpt-noreply@microsoft.com"
    assert report.date_range_end == datetime(2025, 5, 23, 23, 59, 59, tzinfo=UTC)
    sts, tlsa = report.policies
    assert (sts.policy_type, sts.policy_domain, sts.mx_host) == ("sts", "random.net", ())
    assert sts.policy_string[1] == "mode: enforce"
    assert tlsa.policy_type == "tlsa" and tlsa.policy_domain == "random.net"
    assert tlsa.policy_string == (
        "3 1 1 6007EEE553E85D8DF007A845D19EC343283D4E416E9A33F9EF3040C8B7C285BC",
        "3 1 1 837C773D54C2E2BD71871A3FC352BE8214D5646CBAE5E3091401A7274717998B",
    )
    assert [(p.total_successful_session_count, p.total_failure_session_count)
            for p in report.policies] == [(2, 0), (2, 0)]
    encoded = [f for f in report.findings if f.code == "tlsrpt_report.policy_string_json_encoded"]
    assert len(encoded) == 1 and encoded[0].severity == "warning"
    assert "policies[1]" in encoded[0].message
    assert codes(report) == ["tlsrpt_report.policy_string_json_encoded"]


def test_sample_no_contact(external_dir: Path) -> None:
    report = sample(external_dir, "dmarc-report-viewer/no-contact.json")
    assert report.ok
    assert report.organization_name == "server.com" and report.report_id == "123_456"
    assert report.contact_info is None
    assert report.date_range_start == datetime(2026, 1, 11, tzinfo=UTC)
    assert report.date_range_end == datetime(2026, 1, 12, tzinfo=UTC)
    (policy,) = report.policies
    assert policy.policy_domain == "server.com"
    # The sample's mx-host holds a policy line, not a host pattern: kept, and flagged.
    assert policy.mx_host == ("mx: mx.server.com",)
    assert (policy.total_successful_session_count, policy.total_failure_session_count) == (1, 0)
    assert policy.failure_details == ()
    assert codes(report) == ["tlsrpt_report.no_contact_info", "tlsrpt_report.bad_mx_host"]
    assert {f.severity for f in report.findings} == {"warning"}


def test_sample_no_policy(external_dir: Path) -> None:
    report = sample(external_dir, "dmarc-report-viewer/no-policy.json")
    assert report.findings == ()
    assert report.report_id == "2025-03-27T00:00:00Z_foo-bar.io"
    (policy,) = report.policies
    assert (policy.policy_type, policy.policy_domain) == ("no-policy-found", "foo-bar.io")
    assert policy.policy_string == () and policy.mx_host == ()
    assert (policy.total_successful_session_count, policy.total_failure_session_count) == (1, 0)


def test_sample_no_ip_and_mx(external_dir: Path) -> None:
    report = sample(external_dir, "dmarc-report-viewer/no_ip_and_mx.json")
    assert report.ok
    assert report.organization_name == "Microsoft Corporation" and report.report_id == "1234567890+"
    assert report.date_range_start == datetime(2025, 6, 14, tzinfo=UTC)
    (policy,) = report.policies
    assert (policy.policy_type, policy.policy_domain) == ("sts", "xxxxxxxx.xx")
    assert policy.policy_string == () and policy.mx_host == ()
    assert (policy.total_successful_session_count, policy.total_failure_session_count) == (0, 3)
    (detail,) = policy.failure_details
    assert detail.result_type == "sts-policy-fetch-error"
    assert detail.failed_session_count == 3
    assert detail.sending_mta_ip is None and detail.receiving_mx_hostname is None
    assert codes(report) == ["tlsrpt_report.no_sending_mta_ip"]


# --- key spellings, dates, counts ---------------------------------------------------------


def with_changes(document: dict[str, Any], change) -> bytes:
    copy = json.loads(json.dumps(document))
    change(copy)
    return dumps(copy)


def first_policy(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["policies"][0]


def test_prose_key_spellings_are_read() -> None:
    def prose(doc: dict[str, Any]) -> None:
        policy = first_policy(doc)["policy"]
        policy["mx-host-pattern"] = ["*.mail.company-y.example", "mx.company-y.example"]
        del policy["mx-host"]
        detail = first_policy(doc)["failure-details"][1]
        detail["additional-info-uri"] = detail.pop("additional-information")

    report = parse_tlsrpt_report(with_changes(RFC_EXAMPLE, prose))
    assert report.ok and report.findings == ()
    (policy,) = report.policies
    assert policy.mx_host == ("*.mail.company-y.example", "mx.company-y.example")
    assert policy.failure_details[1].additional_information.endswith("#StarttlsNotSupported")


def test_both_spellings_that_differ_are_flagged() -> None:
    def both(doc: dict[str, Any]) -> None:
        first_policy(doc)["policy"]["mx-host-pattern"] = "other.example"

    report = parse_tlsrpt_report(with_changes(RFC_EXAMPLE, both))
    assert report.ok and report.policies[0].mx_host == ("*.mail.company-y.example",)
    assert codes(report) == ["tlsrpt_report.key_conflict"]


def test_helo_and_offsets() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["date-range"] = {"start-datetime": "2016-04-01T02:00:00.123456789+02:00",
                             "end-datetime": "2016-04-01t23:59:60z"}
        first_policy(doc)["failure-details"][0]["receiving-mx-helo"] = "mx1.helo.example"

    report = parse_tlsrpt_report(with_changes(RFC_EXAMPLE, change))
    assert report.ok, report.findings
    assert report.date_range_start == datetime(2016, 4, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert report.date_range_start.utcoffset() == timedelta(hours=2)
    assert report.date_range_end == datetime(2016, 4, 2, tzinfo=UTC)  # leap second, RFC 3339 5.7
    assert report.policies[0].failure_details[0].receiving_mx_helo == "mx1.helo.example"


@pytest.mark.parametrize("value", ["2016-04-01", "2016-04-01T00:00:00", "2016-13-01T00:00:00Z",
                                   "yesterday", "2016-04-01 00:00:00Z", "2016-04-01T00:00:00+25:00"])
def test_bad_dates_are_rejected(value: str) -> None:
    report = parse_tlsrpt_report(with_changes(
        RFC_EXAMPLE, lambda d: d["date-range"].__setitem__("start-datetime", value)))
    assert not report.ok and report.date_range_start is None
    assert error_codes(report) == {"tlsrpt_report.bad_date"}
    assert report.organization_name == "Company-X"  # the rest is still read


def test_inverted_date_range_is_a_warning() -> None:
    report = parse_tlsrpt_report(with_changes(
        RFC_EXAMPLE, lambda d: d["date-range"].__setitem__("start-datetime", "2016-04-02T00:00:00Z")))
    assert report.ok and codes(report) == ["tlsrpt_report.date_range_inverted"]


@pytest.mark.parametrize("value", [-1, 1.5, 2.0, "5", True, [], {}])
def test_bad_counts_are_rejected(value: Any) -> None:
    report = parse_tlsrpt_report(with_changes(
        RFC_EXAMPLE, lambda d: first_policy(d)["summary"].__setitem__("total-successful-session-count",
                                                                      value)))
    assert not report.ok
    assert error_codes(report) == {"tlsrpt_report.bad_count"}
    assert report.policies[0].total_successful_session_count is None


def test_bad_failed_session_count_is_rejected_and_skips_the_sum() -> None:
    report = parse_tlsrpt_report(with_changes(
        RFC_EXAMPLE, lambda d: first_policy(d)["failure-details"][0].__setitem__(
            "failed-session-count", -100)))
    assert error_codes(report) == {"tlsrpt_report.bad_count"}
    assert "tlsrpt_report.failure_count_mismatch" not in codes(report)


def test_unknown_result_type_and_policy_type_are_warnings() -> None:
    def change(doc: dict[str, Any]) -> None:
        first_policy(doc)["failure-details"][0]["result-type"] = "quantum-decoherence"
        first_policy(doc)["policy"]["policy-type"] = "dane"

    report = parse_tlsrpt_report(with_changes(RFC_EXAMPLE, change))
    assert report.ok
    assert report.policies[0].failure_details[0].result_type == "quantum-decoherence"
    assert report.policies[0].policy_type == "dane"
    assert sorted(codes(report)) == ["tlsrpt_report.unknown_policy_type",
                                     "tlsrpt_report.unknown_result_type"]


def test_summary_without_failure_details_is_not_a_mismatch() -> None:
    report = parse_tlsrpt_report(with_changes(RFC_EXAMPLE, lambda d: first_policy(d).pop("failure-details")))
    assert report.ok and report.findings == ()


def test_empty_failure_details_against_failures_is_a_mismatch() -> None:
    report = parse_tlsrpt_report(with_changes(
        RFC_EXAMPLE, lambda d: first_policy(d).__setitem__("failure-details", [])))
    assert report.ok and codes(report) == ["tlsrpt_report.failure_count_mismatch"]


def test_bad_ip_is_a_warning() -> None:
    report = parse_tlsrpt_report(with_changes(
        RFC_EXAMPLE, lambda d: first_policy(d)["failure-details"][0].__setitem__(
            "sending-mta-ip", "mta.example")))
    assert report.ok and codes(report) == ["tlsrpt_report.bad_ip"]


def test_duplicate_keys_are_a_warning() -> None:
    text = dumps(RFC_EXAMPLE).replace(b'"report-id"', b'"report-id": "first", "report-id"', 1)
    report = parse_tlsrpt_report(text)
    assert report.ok and report.report_id == "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
    assert codes(report) == ["tlsrpt_report.duplicate_key"]


# --- what is not a report ---------------------------------------------------------------


@pytest.mark.parametrize(("data", "code"), [
    (b"", "tlsrpt_report.not_json"),
    (b"   \n", "tlsrpt_report.not_json"),
    (b"{not json", "tlsrpt_report.not_json"),
    (b"\xff\xfe\x00{", "tlsrpt_report.not_json"),
    (b'{"a": NaN}', "tlsrpt_report.not_json"),
    (b"[" * 100_000, "tlsrpt_report.not_json"),
    (b"[]", "tlsrpt_report.not_object"),
    (b"null", "tlsrpt_report.not_object"),
    (b'"organization-name"', "tlsrpt_report.not_object"),
    (b"\x1f\x8b\x08\x00garbage", "tlsrpt_report.bad_gzip"),
])
def test_not_a_report(data: bytes, code: str) -> None:
    report = parse_tlsrpt_report(data)
    assert not report.ok and error_codes(report) == {code}
    assert report.policies == ()


@pytest.mark.parametrize("field", ["organization-name", "date-range", "report-id", "policies"])
def test_missing_required_field_is_rejected(field: str) -> None:
    report = parse_tlsrpt_report(with_changes(RFC_EXAMPLE, lambda d: d.pop(field)))
    assert not report.ok
    assert error_codes(report) == {"tlsrpt_report.missing_field"}
    assert field in report.findings[0].message


@pytest.mark.parametrize("path", [("policy",), ("summary",), ("policy", "policy-type"),
                                  ("policy", "policy-domain"),
                                  ("summary", "total-failure-session-count")])
def test_missing_policy_field_is_rejected(path: tuple[str, ...]) -> None:
    def drop(doc: dict[str, Any]) -> None:
        node = first_policy(doc)
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    report = parse_tlsrpt_report(with_changes(RFC_EXAMPLE, drop))
    assert not report.ok and error_codes(report) == {"tlsrpt_report.missing_field"}


def test_wrong_types_of_required_fields_are_rejected() -> None:
    report = parse_tlsrpt_report(with_changes(RFC_EXAMPLE, lambda d: d.update(
        {"report-id": 42, "policies": {"policy": {}}})))
    assert not report.ok and error_codes(report) == {"tlsrpt_report.bad_type"}


def test_null_and_missing_contact_info_are_warnings() -> None:
    for change in (lambda d: d.__setitem__("contact-info", None), lambda d: d.pop("contact-info")):
        report = parse_tlsrpt_report(with_changes(RFC_EXAMPLE, change))
        assert report.ok and report.contact_info is None
        assert codes(report) == ["tlsrpt_report.no_contact_info"]


def test_truncated_gzip_is_rejected() -> None:
    compressed = gzip.compress(dumps(RFC_EXAMPLE))
    report = parse_tlsrpt_report(compressed[: len(compressed) // 2])
    assert report.container == "gzip" and error_codes(report) == {"tlsrpt_report.bad_gzip"}


def test_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b"{" + b" " * MAX_DECOMPRESSED_BYTES + b"}", compresslevel=1)
    assert len(bomb) < MAX_DECOMPRESSED_BYTES // 100
    report = parse_tlsrpt_report(bomb)
    assert report.container == "gzip" and error_codes(report) == {"tlsrpt_report.too_large"}


def test_gzip_bomb_inside_an_email_is_refused() -> None:
    bomb = gzip.compress(b" " * (MAX_DECOMPRESSED_BYTES + 1), compresslevel=1)
    report = parse_tlsrpt_report(tlsrpt_email(bomb))
    assert report.container == "email" and error_codes(report) == {"tlsrpt_report.too_large"}


def test_report_just_under_the_cap_is_read() -> None:
    padded = dumps(RFC_EXAMPLE)
    padded = padded[:-1] + b" " * (MAX_DECOMPRESSED_BYTES - len(padded)) + b"}"
    assert len(padded) == MAX_DECOMPRESSED_BYTES
    report = parse_tlsrpt_report(gzip.compress(padded, compresslevel=1))
    assert report.ok


# --- properties -------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def assert_well_formed(report: TlsRptReport) -> None:
    assert isinstance(report, TlsRptReport)
    assert "tlsrpt_report.internal_error" not in codes(report), report.findings
    assert report.ok == (not error_codes(report))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert_well_formed(parse_tlsrpt_report(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=500), st.sampled_from([b"\x1f\x8b", b"From: a@b\n\n", b"Content-Type: multipart/report; boundary=x\n\n--x\n", b"{", b"\xef\xbb\xbf"]))
def test_arbitrary_bytes_behind_a_container_prefix_never_raise(data: bytes, prefix: bytes) -> None:
    assert_well_formed(parse_tlsrpt_report(prefix + data))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_reports(draw: st.DrawFn) -> Any:
    """The RFC example with a few nodes deleted or replaced by arbitrary JSON."""
    doc = json.loads(json.dumps(RFC_EXAMPLE))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        replacement = draw(_json_values)
        if not path:
            doc = replacement
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = replacement
        if not isinstance(doc, (dict, list)):
            break
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_reports(), st.sampled_from(["json", "gzip", "email"]))
def test_mutated_reports_never_raise(doc: Any, container: str) -> None:
    data = dumps(doc)
    if container == "gzip":
        data = gzip.compress(data)
    elif container == "email":
        data = tlsrpt_email(gzip.compress(data))
    report = parse_tlsrpt_report(data)
    assert_well_formed(report)
    assert report.container == container


_domain = st.lists(st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8),
                   min_size=2, max_size=3).map(".".join)
_count = st.integers(0, 2**40)
_ip = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
_result_type = st.sampled_from(sorted([
    "starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
    "certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid",
    "dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid"]))


@st.composite
def valid_reports(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1),
                              timezones=st.just(UTC)))
    policies = []
    for _ in range(draw(st.integers(0, 3))):
        details = [{"result-type": draw(_result_type), "sending-mta-ip": draw(_ip),
                    "receiving-mx-hostname": "mx." + draw(_domain), "failed-session-count": draw(_count)}
                   for _ in range(draw(st.integers(0, 3)))]
        policy_type = draw(st.sampled_from(["sts", "tlsa", "no-policy-found"]))
        policy: dict[str, Any] = {"policy-type": policy_type, "policy-domain": draw(_domain)}
        if policy_type != "no-policy-found":
            policy["policy-string"] = draw(st.lists(st.text(max_size=30), min_size=2, max_size=4))
            policy[draw(st.sampled_from(["mx-host", "mx-host-pattern"]))] = [
                "*." + d for d in draw(st.lists(_domain, max_size=2))]
        entry: dict[str, Any] = {
            "policy": policy,
            "summary": {"total-successful-session-count": draw(_count),
                        "total-failure-session-count": sum(d["failed-session-count"] for d in details)},
        }
        if details:
            entry["failure-details"] = details
        policies.append(entry)
    return {
        "organization-name": draw(st.text(min_size=1, max_size=30)),
        "date-range": {"start-datetime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "end-datetime": (start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")},
        "contact-info": "tlsrpt@" + draw(_domain),
        "report-id": draw(st.text(min_size=1, max_size=40)),
        "policies": policies,
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_reports(), st.sampled_from(["json", "gzip", "email"]))
def test_valid_generated_reports_round_trip(doc: dict[str, Any], container: str) -> None:
    data = dumps(doc)
    if container == "gzip":
        data = gzip.compress(data)
    elif container == "email":
        data = tlsrpt_email(gzip.compress(data))
    report = parse_tlsrpt_report(data)
    assert report.ok, report.findings
    assert set(codes(report)) <= {"tlsrpt_report.no_policies"}
    assert report.container == container
    assert report.organization_name == doc["organization-name"]
    assert report.report_id == doc["report-id"]
    assert report.date_range_start.isoformat().replace("+00:00", "Z") == doc["date-range"]["start-datetime"]
    assert len(report.policies) == len(doc["policies"])
    for parsed, entry in zip(report.policies, doc["policies"], strict=True):
        assert parsed.policy_type == entry["policy"]["policy-type"]
        assert parsed.policy_domain == entry["policy"]["policy-domain"]
        assert parsed.policy_string == tuple(entry["policy"].get("policy-string", ()))
        mx = entry["policy"].get("mx-host", entry["policy"].get("mx-host-pattern", []))
        assert parsed.mx_host == tuple(mx)
        assert parsed.total_successful_session_count == entry["summary"]["total-successful-session-count"]
        assert parsed.total_failure_session_count == entry["summary"]["total-failure-session-count"]
        details = entry.get("failure-details", [])
        assert [d.failed_session_count for d in parsed.failure_details] == [
            d["failed-session-count"] for d in details]
        assert [d.result_type for d in parsed.failure_details] == [d["result-type"] for d in details]
        assert [d.sending_mta_ip for d in parsed.failure_details] == [d["sending-mta-ip"] for d in details]


def test_gzip_bomb_does_not_inflate_past_the_cap() -> None:
    deflater = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1 << 20)
    bomb = b"".join([deflater.compress(block) for _ in range(128)] + [deflater.flush()])
    tracemalloc.start()
    try:
        report = parse_tlsrpt_report(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error_codes(report) == {"tlsrpt_report.too_large"}
    assert peak < 3 * MAX_DECOMPRESSED_BYTES  # 128 MiB would be inflated without the cap
