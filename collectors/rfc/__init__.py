"""The pure RFC layer: MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) parsing and MX matching.

No I/O and no imports from the rest of the project: importable alone. Every
parser returns a result object with ``.ok`` and ``.findings`` (each a
:class:`Finding` with a stable ``code``, a ``severity`` and a ``message``)
and never raises on bad input. :func:`ijson_violation` names what I-JSON (RFC 7493) forbids
in decoded JSON: a lone surrogate, or a number beyond ``MAX_EXACT_INTEGER`` (2**53 - 1).
"""

from collectors.rfc.findings import Finding, has_errors
from collectors.rfc.ijson import MAX_EXACT_INTEGER, ijson_violation, storable_text
from collectors.rfc.mx_match import classify_mismatch, mx_matches
from collectors.rfc.sts_policy import StsPolicy, parse_sts_policy
from collectors.rfc.sts_record import StsRecord, parse_sts_record
from collectors.rfc.tlsrpt_record import TlsRptRecord, parse_tlsrpt_record
from collectors.rfc.tlsrpt_report import (
    TlsRptFailureDetail,
    TlsRptPolicyResult,
    TlsRptReport,
    parse_tlsrpt_report,
    report_part_rank,
)

__all__ = [
    "MAX_EXACT_INTEGER",
    "Finding",
    "StsPolicy",
    "StsRecord",
    "TlsRptFailureDetail",
    "TlsRptPolicyResult",
    "TlsRptRecord",
    "TlsRptReport",
    "classify_mismatch",
    "has_errors",
    "ijson_violation",
    "mx_matches",
    "parse_sts_policy",
    "parse_sts_record",
    "parse_tlsrpt_record",
    "parse_tlsrpt_report",
    "report_part_rank",
    "storable_text",
]
