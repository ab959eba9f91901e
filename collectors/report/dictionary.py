"""The data dictionary students read first: what each table and view holds.

Column names and types come from the database itself; these are the words
around them. Posture columns follow notes on the verdict vocabulary
(docs/posture-export.md).
"""

from __future__ import annotations

import pandas as pd

RELATIONS = {
    "runs": "one row per crawl or ingest run: inputs with content hashes, parameters, tool version",
    "quarantine": "input that could not be parsed, kept with its raw bytes and the reason",
    "posture": "one row per domain per crawl run: the MTA-STS / TLS-RPT verdicts (the export columns)",
    "crawl_domains": "the normalised input list of a crawl run, with ranks",
    "crawl_observations": "per domain: MX, _mta-sts and _smtp._tls DNS answers as seen, parsed",
    "crawl_policy": "per domain with a valid record: the HTTPS policy fetch (RFC 8461 3.3) and the policy",
    "crawl_mx": "per domain and MX host: covered by the policy's mx patterns or not",
    "crawl_tlsa": "per MX host: TLSA records (DANE, RFC 7672)",
    "crawl_smtp": "per MX host, with --probe-smtp: STARTTLS and certificate facts",
    "report_funnel": "macro report_funnel([top_n, ...]): funnel counts per run and rank bucket",
    "report_run_summary": "one line per crawl run for the trend",
    "report_misconfig_classes": "domains per misconfiguration class and run (classes overlap)",
    "report_failure_stages": "where policy fetches failed, per run",
    "report_delivery_risk": "domains an RFC-compliant sender would not deliver to",
    "report_policy_hosts": "who serves policies (mta-sts CNAME target organisation)",
    "report_mx_providers": "which organisations run the MX of MTA-STS domains",
    "report_lifecycle_events": "changes between consecutive runs (RFC 8461 3.1 and 8.3)",
    "lab_deliveries": "per lab test address: provider, server, sent, delivered, TLS",
    "provider_behaviour": "per provider and lab server: delivered or not, MTA-STS and DANE verdicts, policy fetch, TLS-RPT",
    "notification_timing": "per undelivered test message: time to first and final notice, the sender's timers",
    "lab_sender_profiles": "the lab's sender profiles per lab run: MTA and version, TLS policy, notice timers",
    "lab_sender_profile_latest": "each lab sender profile as last started (provenance printed beside timings)",
}

POSTURE_COLUMNS = {
    "mx_status": "ok | none | null_mx | dns_error",
    "mx_hosts": "the MX host names, ';'-joined, by preference",
    "sts_record": "the _mta-sts TXT record: absent | valid | invalid | multiple | dns_error",
    "sts_id": "the record's id when valid",
    "policy_fetch": "ok | not_attempted | dns_error | tcp_error | tls_error | http_error | redirect | too_large | timeout | syntax_error",
    "policy_mode": "enforce | testing | none (valid policy only)",
    "policy_max_age": "seconds (valid policy only)",
    "policy_mx": "the policy's mx patterns, ';'-joined",
    "mx_policy_match": "all | some | none | n/a: MX hosts covered by the patterns (RFC 8461 4.1)",
    "tlsrpt_record": "the _smtp._tls TXT record: absent | valid | invalid | multiple | dns_error",
    "dnssec": "secure | insecure | bogus | unknown (AD bit on the MX answer)",
    "tlsa": "yes | no | n/a: any TLSA record at _25._tcp.<mx>",
    "mx_starttls": "worst over MX hosts of ok | no_starttls | cert_invalid | tcp_error; not_probed; n/a",
    "misconfigured": "any of the four published classes",
    "delivery_risk": "enforce mode and an MX a compliant sender must refuse",
    "misconfig_classes": "';'-joined: invalid_txt | policy_retrieval | mx_cert_invalid | mx_not_covered",
    "mismatch_subclass": "why an MX is uncovered: wrong_tld | wrong_domain | extra_label | typo | mta_sts_in_pattern | other",
    "policy_tls_subclass": "when policy_fetch = tls_error: name_mismatch | self_signed | expired | unknown_ca | no_certificate | other",
    "policy_host_cname": "CNAME target of mta-sts.<domain> (third-party policy hosts)",
    "sts_cname": "CNAME target of _mta-sts.<domain> when delegated",
}


def data_dictionary(con) -> pd.DataFrame:
    """Every table and view of the main schema with its columns, types and meaning."""
    cols = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'main' AND table_name <> 'schema_migrations'"
        " ORDER BY table_name, ordinal_position").df()
    cols.insert(0, "relation_meaning", cols["table_name"].map(RELATIONS).fillna(""))
    cols["column_meaning"] = [
        POSTURE_COLUMNS.get(c, "") if t == "posture" else ""
        for t, c in zip(cols["table_name"], cols["column_name"])]
    return cols[["table_name", "relation_meaning", "column_name", "data_type", "column_meaning"]]
