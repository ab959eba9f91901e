"""Rows for the record-based evidence: the record parsers' records -> table rows.

Each record a format's parser yields (see the format registry) becomes ``(table, columns,
key column, row)`` tuples (:func:`rows_for`). Keys are computed from what identifies the
observation, so the same report or notice read from two mailboxes is stored once. Message
bodies are never stored (the published lab's ``MSG:`` body rows are counted and dropped
here, by design).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from collectors.lab_ingest.http_log import policy_domain_of
from collectors.lab_ingest.postfix_log import row_key
from collectors.lab_ingest.records import Quarantined

RowSpec = tuple[str | None, tuple[str, ...], str, Any]

RECEIVED_COLUMNS = ("received_key", "source_position", "source", "received_at", "server_label",
                    "recipient", "original_recipient", "address_uuid", "sender", "client_address",
                    "client_helo", "client_hostname", "client_protocol", "envid", "message_id",
                    "queue_id", "received_with", "tls_protocol", "tls_cipher", "tls_bits", "row_id")
FETCH_COLUMNS = ("fetch_key", "source_position", "source", "log_format", "fetched_at", "client_addr",
                 "host", "policy_domain", "server_label", "method", "path", "protocol", "status",
                 "bytes_sent", "referer", "user_agent", "forwarded_for", "is_policy_fetch")
REPORT_COLUMNS = ("report_key", "source_position", "source_kind", "received_at", "organization_name",
                  "report_id", "contact_info", "date_range_start", "date_range_end", "policy_domains",
                  "total_successful_session_count", "total_failure_session_count", "remote_addr",
                  "content_type", "email_from", "email_message_id", "report_domain", "report_submitter",
                  "raw_json")
POLICY_COLUMNS = ("policy_key", "report_key", "policy_index", "policy_type", "policy_domain",
                  "policy_string", "mx_host", "total_successful_session_count",
                  "total_failure_session_count")
FAILURE_COLUMNS = ("failure_key", "report_key", "policy_index", "failure_index", "policy_type",
                   "policy_domain", "result_type", "sending_mta_ip", "receiving_mx_hostname",
                   "receiving_mx_helo", "receiving_ip", "failed_session_count", "additional_information",
                   "failure_reason_code")
LEDGER_COLUMNS = ("entry_key", "source_position", "provider", "account", "sent_at", "from_addr",
                  "to_addr", "message_id", "server_label", "address_uuid", "entry_source")
SENDER_PROFILE_COLUMNS = ("profile_key", "source_position", "lab_started_at", "provider", "description", "mta",
                          "mta_version", "mta_sts", "policy_cache", "dane", "notices", "timers", "addresses",
                          "tlsa_labels")
NOTICE_COLUMNS = ("notice_key", "source_position", "received_at", "received_at_source", "notice_from",
                  "notice_to", "subject", "kind", "structure", "recipients", "original_message_ids",
                  "status_codes", "diagnostics", "mentions_tls", "mentions_mta_sts", "reporting_mta",
                  "arrival_date", "notice_message_id", "dsn_recipients", "text")


def _utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def rows_for(rec: Any, pseudo: Any) -> list[RowSpec]:
    """The table rows for one record (empty for what is never stored, e.g. body lines)."""
    name = type(rec).__name__
    handler = _HANDLERS.get(name)
    if handler is None:
        return [("quarantine", (), "", Quarantined(getattr(rec, "position", "") or "", repr(rec)[:4096].encode(),
                                                    f"no table for record type {name}"))]
    return handler(rec, pseudo)


def _recorded(rec: Any, pseudo: Any) -> list[RowSpec]:
    key = row_key("received", "recorder", rec.queue_id, rec.recipient, rec.received_at, rec.message_id,
                  rec.client_address)
    return [("received_messages", RECEIVED_COLUMNS, "received_key", (
        key, rec.position, "recorder", _utc(rec.received_at), rec.server_label, rec.recipient,
        rec.original_recipient, rec.address_uuid, pseudo.address(rec.sender), rec.client_address,
        rec.client_helo, rec.client_hostname, rec.client_protocol, rec.envid, rec.message_id, rec.queue_id,
        rec.received_with, rec.tls_protocol, rec.tls_cipher, rec.tls_bits, None))]


def _published_received(rec: Any, pseudo: Any) -> list[RowSpec]:
    key = row_key("received", "published_lab", rec.row_id, rec.uuid, rec.received_at,
                  rec.original_recipient, rec.sender, rec.client_address)
    return [("received_messages", RECEIVED_COLUMNS, "received_key", (
        key, rec.position, "published_lab", _utc(rec.received_at), rec.label, rec.original_recipient,
        rec.original_recipient, rec.uuid, pseudo.address(rec.sender), rec.client_address, rec.client_helo,
        rec.client_hostname, rec.client_protocol, rec.envid, None, None, None, None, None, None,
        rec.row_id))]


def _published_fetch(rec: Any, pseudo: Any) -> list[RowSpec]:
    at = _utc(rec.fetched_at)
    if at is None:
        return [("quarantine", (), "", Quarantined(rec.position, repr(rec)[:4096].encode(),
                                                    "policy fetch without a time"))]
    domain, label = policy_domain_of(rec.host)
    key = row_key("fetch", "published_lab", rec.row_id, at, rec.client_address, rec.host, rec.user_agent)
    return [("policy_fetches_http", FETCH_COLUMNS, "fetch_key", (
        key, rec.position, "published_lab", "published_lab", at, rec.client_address, rec.host, domain,
        rec.label or label, "GET", None, None, None, None, None, rec.user_agent, rec.forwarded_for, True))]


def _report_rows(report: Any, raw: bytes, position: str, source_kind: str, received_at: Any,
                 extra: dict[str, Any]) -> list[RowSpec]:
    raw_text = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else str(raw)
    try:  # the same report JSON, however it was wrapped, is one report
        canonical = json.dumps(json.loads(raw_text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = raw_text
    report_key = row_key("tlsrpt", canonical)
    policies = tuple(getattr(report, "policies", ()) or ())
    contact = getattr(report, "contact_info", None)
    rows: list[RowSpec] = [("tlsrpt_reports", REPORT_COLUMNS, "report_key", (
        report_key, position, source_kind, _utc(received_at), getattr(report, "organization_name", None),
        getattr(report, "report_id", None), contact if isinstance(contact, str) or contact is None else str(contact),
        _utc(getattr(report, "date_range_start", None)), _utc(getattr(report, "date_range_end", None)),
        [p.policy_domain for p in policies if getattr(p, "policy_domain", None)],
        sum(int(p.total_successful_session_count or 0) for p in policies),
        sum(int(p.total_failure_session_count or 0) for p in policies),
        extra.get("remote_addr"), extra.get("content_type"), extra.get("email_from"),
        extra.get("email_message_id"), extra.get("report_domain"), extra.get("report_submitter"), raw_text))]
    for i, p in enumerate(policies):
        rows.append(("tlsrpt_policies", POLICY_COLUMNS, "policy_key", (
            row_key("tlsrpt-policy", report_key, i), report_key, i, p.policy_type, p.policy_domain,
            list(p.policy_string or ()), list(p.mx_host or ()),
            p.total_successful_session_count, p.total_failure_session_count)))
        for j, f in enumerate(getattr(p, "failure_details", ()) or ()):
            rows.append(("tlsrpt_failures", FAILURE_COLUMNS, "failure_key", (
                row_key("tlsrpt-failure", report_key, i, j), report_key, i, j, p.policy_type,
                p.policy_domain, f.result_type, f.sending_mta_ip, f.receiving_mx_hostname,
                f.receiving_mx_helo, f.receiving_ip, f.failed_session_count,
                f.additional_information, f.failure_reason_code)))
    return rows


def _tlsrpt_evidence(rec: Any, pseudo: Any) -> list[RowSpec]:
    return _report_rows(rec.report, rec.raw, rec.position, rec.source_kind, rec.received_at, {
        "remote_addr": rec.remote_addr, "content_type": rec.content_type, "email_from": rec.email_from,
        "email_message_id": rec.email_message_id, "report_domain": rec.report_domain,
        "report_submitter": rec.report_submitter})


def _published_tlsrpt(rec: Any, pseudo: Any) -> list[RowSpec]:
    return _report_rows(rec.report, rec.raw, rec.position, "published_lab", rec.received_at, {})


def _ledger(rec: Any, pseudo: Any) -> list[RowSpec]:
    key = row_key("ledger", rec.to_addr, rec.provider, _utc(rec.sent_at))
    return [("ledger", LEDGER_COLUMNS, "entry_key", (
        key, rec.position, rec.provider, pseudo.address(rec.account), _utc(rec.sent_at),
        pseudo.address(rec.from_addr), rec.to_addr, rec.message_id, rec.server_label, rec.address_uuid,
        rec.source))]


def _notification(rec: Any, pseudo: Any) -> list[RowSpec]:
    key = row_key("notice", rec.notice_message_id) if rec.notice_message_id else row_key(
        "notice", rec.received_at, rec.notice_from, rec.subject, rec.text)
    dsn = [{k: getattr(d, k) for k in ("final_recipient", "original_recipient", "action", "status",
                                       "remote_mta", "diagnostic_code", "last_attempt_date",
                                       "will_retry_until")} for d in rec.dsn_recipients]
    return [("notifications", NOTICE_COLUMNS, "notice_key", (
        key, rec.position, _utc(rec.received_at), rec.received_at_source, rec.notice_from,
        pseudo.address(rec.notice_to), rec.subject, rec.kind, rec.structure, list(rec.recipients),
        list(rec.original_message_ids), list(rec.status_codes), list(rec.diagnostics), rec.mentions_tls,
        rec.mentions_mta_sts, rec.reporting_mta, _utc(rec.arrival_date), rec.notice_message_id,
        json.dumps(dsn), rec.text))]


def _sender_profile(rec: Any, pseudo: Any) -> list[RowSpec]:
    started = _utc(rec.lab_started_at)
    return [("lab_sender_profiles", SENDER_PROFILE_COLUMNS, "profile_key", (
        row_key("sender-profile", started, rec.provider), rec.position, started, rec.provider, rec.description,
        rec.mta, rec.mta_version, rec.mta_sts, rec.policy_cache, rec.dane, rec.notices,
        json.dumps(rec.timers, sort_keys=True), list(rec.addresses), list(rec.tlsa_labels)))]


def _body_line(rec: Any, pseudo: Any) -> list[RowSpec]:
    return []   # message bodies are never stored


_HANDLERS = {
    "RecordedMessage": _recorded,
    "PublishedReceived": _published_received,
    "PublishedPolicyFetch": _published_fetch,
    "PublishedTlsRpt": _published_tlsrpt,
    "PublishedBodyLine": _body_line,
    "TlsRptEvidence": _tlsrpt_evidence,
    "LedgerEntry": _ledger,
    "Notification": _notification,
    "SenderProfileRecord": _sender_profile,
}
