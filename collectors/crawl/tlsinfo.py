"""TLS helpers shared by the policy fetch and the SMTP probe: the verifying context and
the subclass of a verification failure, and certificate facts."""

from __future__ import annotations

import ssl
from typing import Any

from collectors.store import TlsSubclass

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) -> the study's TLS failure subclasses.
_VERIFY_SUBCLASS: dict[int, TlsSubclass] = {
    62: "name_mismatch",     # X509_V_ERR_HOSTNAME_MISMATCH
    64: "name_mismatch",     # X509_V_ERR_IP_ADDRESS_MISMATCH
    18: "self_signed",       # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    19: "self_signed",       # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
    10: "expired",           # X509_V_ERR_CERT_HAS_EXPIRED
    9: "expired",            # X509_V_ERR_CERT_NOT_YET_VALID (outside its dates)
    2: "unknown_ca",         # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
    20: "unknown_ca",        # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: "unknown_ca",        # X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
    27: "unknown_ca",        # X509_V_ERR_CERT_UNTRUSTED
}


def client_context(ca_bundle: str | None) -> ssl.SSLContext:
    """A verifying client context: chain to ``ca_bundle`` (or the system store), dates and
    the server name (RFC 8461 3.3 requires a valid PKIX certificate for the policy host)."""
    ctx = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def insecure_context() -> ssl.SSLContext:
    """A context that accepts any certificate: only to *read* certificate facts."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_failure(exc: BaseException) -> tuple[TlsSubclass, int | None, str]:
    """(subclass, OpenSSL verify code, detail) of a failed handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        message = getattr(exc, "verify_message", "") or str(exc)
        return _VERIFY_SUBCLASS.get(code or -1, "other"), code, message
    text = str(exc)
    reason = getattr(exc, "reason", None) or ""
    upper = f"{reason} {text}".upper()
    # The server sent no certificate: an aborted handshake (unrecognized name, handshake
    # failure alert) or an anonymous suite.
    if any(k in upper for k in ("UNRECOGNIZED_NAME", "HANDSHAKE_FAILURE", "NO_SHARED_CIPHER",
                                 "PEER_DID_NOT_RETURN_A_CERTIFICATE", "NO_CERTIFICATE",
                                 "INTERNAL_ERROR")):
        return "no_certificate", None, text[:300]
    return "other", None, text[:300] or type(exc).__name__


_NO_CERTIFICATE: dict[str, Any] = {"subject": None, "issuer": None, "sans": [], "not_before": None,
                                   "not_after": None}


def no_certificate_facts() -> dict[str, Any]:
    """The facts when no certificate was read (all empty)."""
    return dict(_NO_CERTIFICATE, sans=[])


def der_facts(der: bytes | None) -> dict[str, Any]:
    """Subject, issuer, DNS SANs and dates of a DER certificate.

    The one reader for both the verified session and the unverified second read, so the
    stored strings never depend on whether the certificate verified: names in the RFC 4514
    string form (``CN=mx.example.test``), dates as OpenSSL prints them (``notAfter``)."""
    if not der:
        return no_certificate_facts()
    try:
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        try:
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = sans.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            names = []
        return {
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "sans": list(names),
            "not_before": _openssl_time(cert.not_valid_before_utc),
            "not_after": _openssl_time(cert.not_valid_after_utc),
        }
    except Exception:  # a hostile certificate must not crash the crawl
        return no_certificate_facts()


def _openssl_time(when: Any) -> str:
    """``Jan  2 03:04:05 2026 GMT``: OpenSSL's ASN1_TIME_print form (day padded with a space)."""
    return f"{when:%b} {when.day:2d} {when:%H:%M:%S %Y} GMT"
