"""The crawl's vocabularies: the values the raw tables (migrations/002_crawl.sql) and the
``posture`` view (views/010_crawl.sql) hold, one definition each.

The crawler types its results with these (``FetchResult.outcome: FetchOutcome``), the
views' SQL classifies into them, and the README's data dictionary lists them;
tests/store/test_vocabulary.py holds the SQL, the README and the testbed's expectations to
these. Values the RFC core decides (record status, policy mode, mismatch class) are its
``Literal`` types; the store, which imports nothing of ours, repeats them in
``POSTURE_VALUES``, and the same test ties the two.
"""

from __future__ import annotations

from typing import Literal, get_args

#: ``quarantine.reason`` of a list entry that is no usable domain name
#: (``crawl.inputs.normalise_domain``); with ``duplicate``, every reason of source ``crawl_input``
#: for a list (a zone file adds the reasons of its own syntax, docs/cluster.md).
DomainReason = Literal["empty", "url", "ip_address", "invalid_characters", "invalid_idn", "empty_label",
                       "label_too_long", "name_too_long", "single_label", "numeric_tld"]
#: ``line_too_long``: a list line longer than 65,536 characters (kept cut at that, with its length).
InputReason = Literal[DomainReason, "duplicate", "line_too_long"]
#: ``crawl_policy.outcome``: how the policy fetch (RFC 8461 3.3) ended. ``ok`` is a 200
#: with a body within the 64 KiB cap (parsing is separate); ``dns_error``: the policy
#: host has no address; ``redirect``: any 3xx (never followed).
#: ``host_unresponsive``: the address stopped answering (a per-address circuit breaker left it
#: alone); ``host_busy``: the domain's time ran out waiting for a connection to a busy address.
FetchOutcome = Literal["ok", "dns_error", "tcp_error", "tls_error", "http_error", "redirect", "too_large",
                       "timeout", "host_unresponsive", "host_busy"]
#: ``crawl_policy.phase``: the step a fetch had reached when it ended.
FetchPhase = Literal["wait", "dns", "connect", "tls", "request", "response", "body"]
#: ``crawl_smtp.outcome``: the SMTP probe of one MX host (EHLO, STARTTLS, certificate).
ProbeOutcome = Literal["ok", "no_starttls", "cert_invalid", "tls_error", "tcp_error", "host_unresponsive",
                       "host_busy"]
#: ``tls_subclass`` of ``crawl_policy`` and ``crawl_smtp``: why a certificate failed.
TlsSubclass = Literal["name_mismatch", "self_signed", "expired", "unknown_ca", "no_certificate", "other"]
#: ``posture.policy_fetch``: the fetch's outcome, or what became of a fetched policy.
PolicyFetch = Literal[FetchOutcome, "not_attempted", "syntax_error"]
#: ``posture.misconfig_classes``: the four published misconfiguration classes.
MisconfigClass = Literal["invalid_txt", "policy_retrieval", "mx_cert_invalid", "mx_not_covered"]

#: The posture export's columns with a closed vocabulary, and their values.
POSTURE_VALUES: dict[str, tuple[str, ...]] = {
    "mx_status": ("ok", "none", "null_mx", "dns_error"),
    "sts_record": ("absent", "valid", "invalid", "multiple", "dns_error"),
    "policy_fetch": get_args(PolicyFetch),
    "policy_mode": ("enforce", "testing", "none"),
    "mx_policy_match": ("all", "some", "none", "n/a"),
    "tlsrpt_record": ("absent", "valid", "invalid", "multiple", "dns_error"),
    "dnssec": ("secure", "insecure", "bogus", "unknown"),
    "tlsa": ("yes", "no", "n/a"),
    "mx_starttls": (*get_args(ProbeOutcome), "not_probed", "n/a"),
    "misconfig_classes": get_args(MisconfigClass),
    "mismatch_subclass": ("wrong_tld", "wrong_domain", "extra_label", "typo", "mta_sts_in_pattern", "other"),
    "policy_tls_subclass": get_args(TlsSubclass),
}
