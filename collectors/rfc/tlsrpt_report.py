"""TLS-RPT aggregate reports (RFC 8460 section 4), parsed from bytes without I/O.

A report arrives as JSON (``application/tlsrpt+json``), gzip-compressed JSON
(``application/tlsrpt+gzip``, section 5.3) or a whole e-mail carrying one of those
in a ``multipart/report; report-type=tlsrpt`` message (section 5.3). The JSON
shape is section 4.4's schema.

RFC 8460 disagrees with itself on two key names: the section 4.4 schema writes
``mx-host`` and ``additional-information``, while the prose (sections 4.2 and 4.3)
names the same values ``mx-host-pattern`` and ``additional-info-uri``. Reporters
in the wild (Google, Microsoft) use the schema's keys; both spellings are read.
"""

from __future__ import annotations

import email
import email.message
import ipaddress
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from collectors.rfc.findings import Finding
from collectors.rfc.ijson import ijson_violation

Container = Literal["json", "gzip", "email"]

#: Decompressed reports larger than this are refused (a gzip bomb must not fill memory).
MAX_DECOMPRESSED_BYTES = 20 * 1024 * 1024

#: RFC 8460 section 4.2: the policy types.
POLICY_TYPES = frozenset({"sts", "tlsa", "no-policy-found"})

#: RFC 8460 section 4.3 (and the IANA registry of section 6.6): the result types.
RESULT_TYPES = frozenset({
    # 4.3.1 negotiation failures
    "starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
    "certificate-not-trusted", "validation-failure",
    # 4.3.2.1 DANE-specific policy failures
    "tlsa-invalid", "dnssec-invalid", "dane-required",
    # 4.3.2.2 MTA-STS-specific policy failures
    "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid",
})

#: RFC 8460 sections 5.3 and 6.4/6.5: the media types of a report.
REPORT_MEDIA_TYPES = frozenset({"application/tlsrpt+json", "application/tlsrpt+gzip"})
# Attachment types reporters use instead; accepted with a warning.
# "application/tlsrpt" (no suffix) is what at least one real sender labels its reports.
_TOLERATED_MEDIA_TYPES = frozenset({
    "application/gzip", "application/x-gzip", "application/json", "text/json", "application/tlsrpt",
})
# Generic types, accepted (with a warning) only with a report-like file name.
_NAMED_MEDIA_TYPES = frozenset({"application/octet-stream", "text/plain"})
_REPORT_FILENAME = re.compile(r"\.json(\.gz)?\Z|\.gz\Z", re.IGNORECASE)

_GZIP_MAGIC = b"\x1f\x8b"
# RFC 5322 section 2.2: field-name = 1*(%d33-57 / %d59-126), then ":"; or an mbox "From " line.
_EMAIL_START = re.compile(rb"(From |[\x21-\x39\x3b-\x7e]+:)")
# RFC 3339 section 5.6 date-time (the "T" may be lower case, section 5.6 NOTE).
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z"
)
# A host name or "*." wildcard pattern (RFC 8461 section 3.2): no spaces, ":", "/", "@" or inner "*".
_HOST_PATTERN = re.compile(r"(\*\.)?[^\s*:/@]+\Z")


@dataclass(frozen=True, slots=True)
class TlsRptFailureDetail:
    """One ``failure-details`` entry (RFC 8460 section 4.3): a failure kind and how often."""

    result_type: str | None
    sending_mta_ip: str | None
    receiving_mx_hostname: str | None
    receiving_mx_helo: str | None
    receiving_ip: str | None
    failed_session_count: int | None
    additional_information: str | None
    failure_reason_code: str | None


@dataclass(frozen=True, slots=True)
class TlsRptPolicyResult:
    """One ``policies`` entry (RFC 8460 section 4.2): the policy applied and its session counts."""

    policy_type: str | None
    policy_string: tuple[str, ...]
    policy_domain: str | None
    mx_host: tuple[str, ...]
    total_successful_session_count: int | None
    total_failure_session_count: int | None
    failure_details: tuple[TlsRptFailureDetail, ...]


@dataclass(frozen=True, slots=True)
class TlsRptReport:
    """A parsed report: ``ok`` is False when the input is not a usable RFC 8460 report."""

    ok: bool
    container: Container | None
    organization_name: str | None = None
    date_range_start: datetime | None = None
    date_range_end: datetime | None = None
    contact_info: str | None = None
    report_id: str | None = None
    policies: tuple[TlsRptPolicyResult, ...] = ()
    findings: tuple[Finding, ...] = ()


def parse_tlsrpt_report(data: bytes) -> TlsRptReport:
    """Parse one report from JSON, gzip or e-mail bytes; never raises.

    The container is recognised by content, not by name: the gzip magic bytes,
    else an RFC 5322 header line, else JSON.
    """
    findings: list[Finding] = []
    container: Container | None = None
    try:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            findings.append(Finding.error("tlsrpt_report.not_bytes",
                                          f"expected bytes, got {type(data).__name__}"))
            return TlsRptReport(False, None, findings=tuple(findings))
        data = bytes(data)
        container = _detect_container(data)
        if container == "gzip":
            payload = _gunzip(data, findings)
        elif container == "email":
            payload = _report_from_email(data, findings)
        else:
            payload = data
        if payload is None:
            return TlsRptReport(False, container, findings=tuple(findings))
        document = _load_json(payload, findings)
        if document is None:
            return TlsRptReport(False, container, findings=tuple(findings))
        return _read_report(document, container, findings)
    except Exception as exc:  # noqa: BLE001 - the contract: errors are values, never raised
        findings.append(Finding.error("tlsrpt_report.internal_error",
                                      f"parser failure {type(exc).__name__}: {exc}"[:300]))
        return TlsRptReport(False, container, findings=tuple(findings))


# --- containers -------------------------------------------------------------------


def _detect_container(data: bytes) -> Container:
    if data.startswith(_GZIP_MAGIC):
        return "gzip"
    head = data.lstrip(b" \t\r\n")
    if head.startswith(b"\xef\xbb\xbf"):
        return "json"
    if head[:1] not in (b"{", b"[") and _EMAIL_START.match(data):
        return "email"
    return "json"


def _gunzip(data: bytes, findings: list[Finding]) -> bytes | None:
    """Inflate every gzip member, refusing output beyond MAX_DECOMPRESSED_BYTES."""
    out: list[bytes] = []
    size = 0
    rest = data
    try:
        while rest:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper (RFC 1952)
            chunk = inflater.decompress(rest, MAX_DECOMPRESSED_BYTES - size + 1)
            size += len(chunk)
            if size > MAX_DECOMPRESSED_BYTES:
                findings.append(Finding.error(
                    "tlsrpt_report.too_large",
                    f"decompressed report exceeds {MAX_DECOMPRESSED_BYTES} bytes; refused",
                ))
                return None
            out.append(chunk)
            if not inflater.eof:
                findings.append(Finding.error("tlsrpt_report.bad_gzip",
                                              "gzip stream is truncated"))
                return None
            rest = inflater.unused_data
            if rest and not rest.startswith(_GZIP_MAGIC):
                findings.append(Finding.warning("tlsrpt_report.gzip_trailing_data",
                                                f"{len(rest)} bytes after the gzip stream ignored"))
                break
    except zlib.error as exc:
        findings.append(Finding.error("tlsrpt_report.bad_gzip", f"gzip stream is corrupt: {exc}"))
        return None
    return out[0] if len(out) == 1 else b"".join(out)


def _report_from_email(data: bytes, findings: list[Finding]) -> bytes | None:
    """Find the report part of an RFC 5322 message (RFC 8460 section 5.3) and decode it."""
    message = email.message_from_bytes(data)  # compat32 policy: lenient, does not raise
    top_type = message.get_content_type()
    report_type = (message.get_param("report-type") or "")
    if not isinstance(report_type, str):
        report_type = str(report_type)
    if top_type != "multipart/report" or report_type.lower() != "tlsrpt":
        findings.append(Finding.warning(
            "tlsrpt_report.email_not_report",
            f"message is {top_type!r} report-type={report_type!r}, not "
            "'multipart/report; report-type=tlsrpt' (RFC 8460 section 5.3)",
        ))
    candidates: list[tuple[int, email.message.Message]] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        rank = report_part_rank(part.get_content_type(), _filename(part))
        if rank is not None:
            candidates.append((rank, part))
    if not candidates:
        findings.append(Finding.error(
            "tlsrpt_report.email_no_report",
            "the message has no application/tlsrpt+json or application/tlsrpt+gzip part "
            "(RFC 8460 section 5.3)",
        ))
        return None
    candidates.sort(key=lambda c: c[0])
    rank, part = candidates[0]
    if len(candidates) > 1:
        findings.append(Finding.warning("tlsrpt_report.email_multiple_parts",
                                        f"{len(candidates)} report parts; the first is used"))
    if rank:
        findings.append(Finding.warning(
            "tlsrpt_report.email_part_type",
            f"report part is {part.get_content_type()!r}, not application/tlsrpt+json or "
            "application/tlsrpt+gzip (RFC 8460 section 5.3)",
        ))
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload:
        findings.append(Finding.error("tlsrpt_report.email_no_report", "the report part is empty"))
        return None
    if payload.startswith(_GZIP_MAGIC):
        if part.get_content_type() == "application/tlsrpt+json":
            findings.append(Finding.warning("tlsrpt_report.email_part_type",
                                            "part labelled application/tlsrpt+json holds gzip"))
        return _gunzip(payload, findings)
    if part.get_content_type() == "application/tlsrpt+gzip":
        findings.append(Finding.warning("tlsrpt_report.email_part_type",
                                        "part labelled application/tlsrpt+gzip is not gzip"))
    return payload


# --- JSON -------------------------------------------------------------------------


def _load_json(payload: bytes, findings: list[Finding]) -> dict[str, Any] | None:
    """Decode UTF-8 JSON (RFC 8460 section 4.4; I-JSON, RFC 7493) into an object."""
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        findings.append(Finding.error("tlsrpt_report.not_json", f"report is not UTF-8: {exc}"))
        return None
    if not text.strip():
        findings.append(Finding.error("tlsrpt_report.not_json", "report is empty"))
        return None
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        document = json.loads(text, object_pairs_hook=pairs, parse_constant=no_constant)
    except (ValueError, RecursionError) as exc:
        findings.append(Finding.error("tlsrpt_report.not_json", f"report is not JSON: {exc}"[:300]))
        return None
    if duplicates:
        # RFC 7493 section 2.3: I-JSON objects MUST NOT have duplicate names.
        findings.append(Finding.warning("tlsrpt_report.duplicate_key",
                                        f"duplicate JSON keys (last one kept): {sorted(set(duplicates))[:10]}"))
    violation = ijson_violation(document)
    if violation is not None:
        # RFC 8460 section 4.4: the report is I-JSON (RFC 7493). A lone surrogate or an
        # integer no fixed-width count holds makes it unusable as a whole.
        findings.append(Finding.error("tlsrpt_report.not_ijson", f"report is not I-JSON: {violation}"[:300]))
        return None
    if not isinstance(document, dict):
        findings.append(Finding.error("tlsrpt_report.not_object",
                                      f"report is a JSON {type(document).__name__}, not an object"))
        return None
    return document


# --- the report schema (RFC 8460 section 4.4) ------------------------------------------


class _Reader:
    """Typed access to JSON values that turns every surprise into a finding."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings

    def error(self, code: str, message: str) -> None:
        self.findings.append(Finding.error(code, message))

    def warning(self, code: str, message: str) -> None:
        self.findings.append(Finding.warning(code, message))

    def object(self, parent: dict[str, Any], key: str, where: str, required: bool) -> dict[str, Any] | None:
        if key not in parent or parent[key] is None:
            if required:
                self.error("tlsrpt_report.missing_field", f"{where}: {key!r} is missing")
            return None
        value = parent[key]
        if not isinstance(value, dict):
            self.error("tlsrpt_report.bad_type", f"{where}: {key!r} is not an object")
            return None
        return value

    def string(self, parent: dict[str, Any], key: str, where: str, required: bool) -> str | None:
        if key not in parent or parent[key] is None:
            if required:
                self.error("tlsrpt_report.missing_field", f"{where}: {key!r} is missing")
            return None
        value = parent[key]
        if not isinstance(value, str):
            add = self.error if required else self.warning
            add("tlsrpt_report.bad_type", f"{where}: {key!r} is a {type(value).__name__}, not a string")
            return None
        return value

    def count(self, parent: dict[str, Any], key: str, where: str,
              missing: Callable[[str], None] | None) -> int | None:
        """A session count: a non-negative JSON integer (RFC 8460 section 4.3)."""
        if key not in parent or parent[key] is None:
            if missing is not None:
                missing(f"{where}: {key!r} is missing")
            return None
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.error("tlsrpt_report.bad_count",
                       f"{where}: {key!r} is {_short(value)}, not a non-negative integer")
            return None
        return value


def _read_report(doc: dict[str, Any], container: Container, findings: list[Finding]) -> TlsRptReport:
    read = _Reader(findings)
    # Section 4.1: report metadata.
    organization = read.string(doc, "organization-name", "report", required=True)
    report_id = read.string(doc, "report-id", "report", required=True)
    start = end = None
    date_range = read.object(doc, "date-range", "report", required=True)
    if date_range is not None:
        start = _datetime(read, date_range, "start-datetime")
        end = _datetime(read, date_range, "end-datetime")
        if start is not None and end is not None and start > end:
            read.warning("tlsrpt_report.date_range_inverted",
                         f"start-datetime {start.isoformat()} is after end-datetime {end.isoformat()}")
    contact = None
    if doc.get("contact-info") is None:
        read.warning("tlsrpt_report.no_contact_info",
                     "contact-info is null or missing (RFC 8460 section 4.1 asks for one)")
    else:
        contact = read.string(doc, "contact-info", "report", required=False)

    policies: list[TlsRptPolicyResult] = []
    raw_policies = doc.get("policies")
    if raw_policies is None:
        read.error("tlsrpt_report.missing_field", "report: 'policies' is missing")
    elif not isinstance(raw_policies, list):
        read.error("tlsrpt_report.bad_type", "report: 'policies' is not an array")
    else:
        if not raw_policies:
            read.warning("tlsrpt_report.no_policies", "the report lists no policies")
        for index, entry in enumerate(raw_policies):
            where = f"policies[{index}]"
            if not isinstance(entry, dict):
                read.error("tlsrpt_report.bad_type", f"{where} is not an object")
                continue
            policies.append(_read_policy(read, entry, where))

    ok = not any(f.severity == "error" for f in findings)
    return TlsRptReport(ok, container, organization, start, end, contact, report_id,
                        tuple(policies), tuple(findings))


def _read_policy(read: _Reader, entry: dict[str, Any], where: str) -> TlsRptPolicyResult:
    """One policy result: section 4.2's policy block, 4.3's summary and failure details."""
    policy_type = domain = None
    policy_string: tuple[str, ...] = ()
    mx_host: tuple[str, ...] = ()
    policy = read.object(entry, "policy", where, required=True)
    if policy is not None:
        pwhere = f"{where}.policy"
        policy_type = read.string(policy, "policy-type", pwhere, required=True)
        if policy_type is not None and policy_type not in POLICY_TYPES:
            read.warning("tlsrpt_report.unknown_policy_type",
                         f"{pwhere}: policy-type {policy_type[:60]!r} is not tlsa, sts or "
                         "no-policy-found (RFC 8460 section 4.2)")
        domain = read.string(policy, "policy-domain", pwhere, required=True)
        policy_string = _policy_string(read, policy.get("policy-string"), pwhere)
        mx_host = _mx_host(read, policy, pwhere)

    successful = failed = None
    details: list[TlsRptFailureDetail] = []
    summary = read.object(entry, "summary", where, required=True)
    if summary is not None:
        swhere = f"{where}.summary"
        missing = _missing_error(read)
        successful = read.count(summary, "total-successful-session-count", swhere, missing)
        failed = read.count(summary, "total-failure-session-count", swhere, missing)

    raw_details = entry.get("failure-details")
    if raw_details is not None and not isinstance(raw_details, list):
        read.error("tlsrpt_report.bad_type", f"{where}: 'failure-details' is not an array")
        raw_details = None
    all_counted = True
    for index, item in enumerate(raw_details or ()):
        dwhere = f"{where}.failure-details[{index}]"
        if not isinstance(item, dict):
            read.error("tlsrpt_report.bad_type", f"{dwhere} is not an object")
            all_counted = False
            continue
        detail = _read_detail(read, item, dwhere)
        all_counted &= detail.failed_session_count is not None
        details.append(detail)

    if raw_details is not None and failed is not None and all_counted:
        total = sum(d.failed_session_count or 0 for d in details)
        if total != failed:
            read.warning(
                "tlsrpt_report.failure_count_mismatch",
                f"{where}: total-failure-session-count is {failed} but the failure-details' "
                f"failed-session-count add up to {total}",
            )
    return TlsRptPolicyResult(policy_type, policy_string, domain, mx_host,
                              successful, failed, tuple(details))


def _read_detail(read: _Reader, item: dict[str, Any], where: str) -> TlsRptFailureDetail:
    """One failure-details entry (RFC 8460 section 4.3), every field optional but counted."""
    result_type = read.string(item, "result-type", where, required=False)
    if result_type is None and item.get("result-type") is None:
        read.warning("tlsrpt_report.missing_result_type", f"{where}: 'result-type' is missing")
    elif result_type is not None and result_type not in RESULT_TYPES:
        read.warning("tlsrpt_report.unknown_result_type",
                     f"{where}: result-type {result_type[:60]!r} is not one of RFC 8460 section 4.3")
    sending_ip = read.string(item, "sending-mta-ip", where, required=False)
    if item.get("sending-mta-ip") is None:
        read.warning("tlsrpt_report.no_sending_mta_ip", f"{where}: 'sending-mta-ip' is missing")
    receiving_ip = read.string(item, "receiving-ip", where, required=False)
    for key, ip in (("sending-mta-ip", sending_ip), ("receiving-ip", receiving_ip)):
        if ip is not None and not _is_ip(ip):
            read.warning("tlsrpt_report.bad_ip", f"{where}: {key} {ip[:60]!r} is not an IP address")
    count = read.count(item, "failed-session-count", where,
                       lambda m: read.warning("tlsrpt_report.missing_failed_session_count", m))
    # Schema key first (section 4.4), then the prose name (section 4.3).
    info = _either(read, item, "additional-information", "additional-info-uri", where)
    return TlsRptFailureDetail(
        result_type=result_type,
        sending_mta_ip=sending_ip,
        receiving_mx_hostname=read.string(item, "receiving-mx-hostname", where, required=False),
        receiving_mx_helo=read.string(item, "receiving-mx-helo", where, required=False),
        receiving_ip=receiving_ip,
        failed_session_count=count,
        additional_information=info,
        failure_reason_code=read.string(item, "failure-reason-code", where, required=False),
    )


def _missing_error(read: _Reader) -> Callable[[str], None]:
    return lambda message: read.error("tlsrpt_report.missing_field", message)


def _either(read: _Reader, item: dict[str, Any], schema_key: str, prose_key: str, where: str) -> str | None:
    """Read a value spelled ``schema_key`` (section 4.4) or ``prose_key`` (the prose)."""
    first = read.string(item, schema_key, where, required=False)
    second = read.string(item, prose_key, where, required=False)
    if first is not None and second is not None and first != second:
        read.warning("tlsrpt_report.key_conflict",
                     f"{where}: {schema_key!r} and {prose_key!r} differ; {schema_key!r} is used")
    return first if first is not None else second


def _policy_string(read: _Reader, value: Any, where: str) -> tuple[str, ...]:
    """Section 4.2: policy-string is a JSON array of strings.

    Microsoft sends a TLSA policy as one string holding a JSON-encoded array;
    that is decoded, with a warning.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        decoded = _json_string_list(value)
        if decoded is not None:
            read.warning("tlsrpt_report.policy_string_json_encoded",
                         f"{where}: policy-string is a JSON-encoded array in a string; decoded")
            return decoded
        read.warning("tlsrpt_report.bad_type", f"{where}: policy-string is a string, not an array")
        return (value,)
    if not isinstance(value, list):
        read.warning("tlsrpt_report.bad_type", f"{where}: policy-string is not an array")
        return ()
    strings = [v for v in value if isinstance(v, str)]
    if len(strings) != len(value):
        read.warning("tlsrpt_report.bad_type", f"{where}: policy-string holds non-strings (dropped)")
    if len(strings) == 1:
        decoded = _json_string_list(strings[0])
        if decoded is not None:
            read.warning("tlsrpt_report.policy_string_json_encoded",
                         f"{where}: policy-string's one element is a JSON-encoded array; decoded")
            return decoded
    return tuple(strings)


def _json_string_list(text: str) -> tuple[str, ...] | None:
    if not text.lstrip().startswith("["):
        return None
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(decoded, list) and all(isinstance(v, str) for v in decoded):
        return tuple(decoded)
    return None


def _mx_host(read: _Reader, policy: dict[str, Any], where: str) -> tuple[str, ...]:
    """The MX pattern(s): schema key ``mx-host`` or prose ``mx-host-pattern``; string or array."""
    values: list[tuple[str, ...]] = []
    for key in ("mx-host", "mx-host-pattern"):
        value = policy.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            values.append((value,))
        elif isinstance(value, list):
            strings = tuple(v for v in value if isinstance(v, str))
            if len(strings) != len(value):
                read.warning("tlsrpt_report.bad_type", f"{where}: {key} holds non-strings (dropped)")
            values.append(strings)
        else:
            read.warning("tlsrpt_report.bad_type", f"{where}: {key} is neither a string nor an array")
    if len(values) == 2 and values[0] != values[1]:
        read.warning("tlsrpt_report.key_conflict",
                     f"{where}: 'mx-host' and 'mx-host-pattern' differ; 'mx-host' is used")
    hosts = values[0] if values else ()
    for host in hosts:
        if not _HOST_PATTERN.match(host):
            read.warning("tlsrpt_report.bad_mx_host",
                         f"{where}: mx-host {host[:60]!r} is not a host name or *.pattern")
    return hosts


def _datetime(read: _Reader, date_range: dict[str, Any], key: str) -> datetime | None:
    """An RFC 3339 date-time (section 4.1) as an aware datetime; "-00:00" is taken as UTC."""
    text = read.string(date_range, key, "report.date-range", required=True)
    if text is None:
        return None
    match = _RFC3339.match(text)
    if match is None:
        read.error("tlsrpt_report.bad_date", f"date-range {key} {text[:60]!r} is not an RFC 3339 date-time")
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if offset in ("Z", "z"):
        zone = timezone.utc
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            read.error("tlsrpt_report.bad_date", f"date-range {key} {text!r} has a bad offset")
            return None
        delta = timedelta(hours=hours, minutes=minutes)
        zone = timezone(-delta if offset[0] == "-" else delta)
    leap = second == 60  # RFC 3339 section 5.7 allows a leap second
    try:
        value = datetime(year, month, day, hour, minute, 59 if leap else second, micro, tzinfo=zone)
        return value + timedelta(seconds=1) if leap else value
    except (ValueError, OverflowError) as exc:
        read.error("tlsrpt_report.bad_date", f"date-range {key} {text!r}: {exc}")
        return None


def report_part_rank(content_type: str, filename: str) -> int | None:
    """How an e-mail part's media type marks it as a report (RFC 8460 section 5.3): 0 for
    the registered types, 1 for a type reporters use instead (accepted with a warning), None
    for a part that is not a report."""
    content_type = content_type.lower()
    if content_type in REPORT_MEDIA_TYPES:
        return 0
    if content_type in _TOLERATED_MEDIA_TYPES or (
            content_type in _NAMED_MEDIA_TYPES and _REPORT_FILENAME.search(filename)):
        return 1
    return None


def _filename(part: email.message.Message) -> str:
    try:
        return str(part.get_filename() or "")
    except Exception:  # noqa: BLE001 - a malformed RFC 2231 parameter is just "no name"
        return ""


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _short(value: Any) -> str:
    return repr(value)[:40]
