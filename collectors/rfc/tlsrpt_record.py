"""The TLS-RPT TXT record at ``_smtp._tls.<domain>`` (RFC 8460 section 3), parsed without I/O.

The grammar (RFC 8460 section 3, ABNF per RFC 5234 and RFC 7405)::

    tlsrpt-record     = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
    field-delim       = *WSP ";" *WSP
    tlsrpt-field      = tlsrpt-rua / tlsrpt-extension   ; rua is required
    tlsrpt-version    = %s"v=TLSRPTv1"
    tlsrpt-rua        = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
    tlsrpt-uri        = URI   ; RFC 3986; "," "!" and ";" MUST be percent-encoded
    tlsrpt-extension  = tlsrpt-ext-name "=" tlsrpt-ext-value
    tlsrpt-ext-name   = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
    tlsrpt-ext-value  = 1*(%x21-3A / %x3C / %x3E-7E)

``%s`` makes ``v=TLSRPTv1`` and ``rua=`` case-sensitive. A field spelled ``RUA=`` is
therefore a (well-formed, ignored) extension, not the reporting address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from collectors.rfc.findings import Finding, bounded, has_errors
from collectors.rfc.txt import RecordStatus, join_txt_records, select_record

VERSION = "v=TLSRPTv1"
#: RFC 8460 section 3: "Two URI schemes are supported: mailto and https".
SUPPORTED_SCHEMES = ("mailto", "https")

_WSP = " \t"  # RFC 5234 WSP = SP / HTAB
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}\Z")
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+\Z")
# RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_URI_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# RFC 3986 section 2: the characters a URI may hold (unreserved, reserved, "%" of pct-encoded).
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*\Z")
_BAD_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Something its author meant as a TLS-RPT record, whatever the case or spacing.
_LOOKS_LIKE_TLSRPT = re.compile(r"\s*v\s*=\s*tlsrpt", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TlsRptRecord:
    """What ``_smtp._tls`` says: whether one usable record exists and where reports go."""

    ok: bool
    status: RecordStatus
    rua: tuple[str, ...] = ()
    raw: str | None = None
    records: tuple[str, ...] = ()
    extensions: dict[str, str] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()


def parse_tlsrpt_record(txt: object) -> TlsRptRecord:
    """Parse the TXT answer for ``_smtp._tls.<domain>``; never raises.

    ``txt`` is a list with one entry per TXT record: either that record's
    character-strings (``list[str]``, joined without spaces, RFC 8460 section 3)
    or the already joined string. ``bytes`` strings are decoded as UTF-8 (undecodable
    bytes kept as backslash escapes and flagged); dnspython TXT rdata is accepted too.
    """
    findings: list[Finding] = []
    records = join_txt_records(txt, findings, "tlsrpt_record")
    # Section 3: "If the number of resulting records is not one, senders MUST
    # assume the recipient domain does not implement TLSRPT."
    status, raw, discarded = select_record(records, findings, prefix="tlsrpt_record", version=VERSION,
                                           section="RFC 8460 section 3", kept=_is_candidate,
                                           looks_like=lambda r: bool(_LOOKS_LIKE_TLSRPT.match(r)))
    if status == "multiple" or raw is None:
        return TlsRptRecord(False, status, records=records, findings=bounded(findings))
    if status == "invalid":
        findings.append(Finding.error(
            "tlsrpt_record.bad_version",
            f"record {raw[:80]!r} does not begin with {VERSION!r} "
            "(case-sensitive, no white space; RFC 8460 section 3), so it is discarded",
        ))
        return TlsRptRecord(False, "invalid", raw=raw, records=records, findings=bounded(findings))
    for other in discarded:
        findings.append(Finding.warning(
            "tlsrpt_record.discarded_record",
            f"another record {other[:80]!r} looks like TLS-RPT but does not begin with "
            f"{VERSION!r}; it is discarded (RFC 8460 section 3)",
        ))
    rua, extensions = _parse_fields(raw, findings)
    ok = not has_errors(findings)
    return TlsRptRecord(ok, "valid" if ok else "invalid", tuple(rua), raw, records,
                        extensions, bounded(findings))


def _is_candidate(record: str) -> bool:
    """Section 3 keeps records that "begin with v=TLSRPTv1;".

    The ABNF's field-delim allows white space before the ";" (the same conflict
    between prose and ABNF as in RFC 8461 section 3.1), and a bare version with no field
    is clearly a TLS-RPT record missing its rua. So a record is kept when its first
    token is exactly ``v=TLSRPTv1``: followed by the end, WSP or ";". White space
    before the ";" is then a warning (``version_separator_whitespace``).
    """
    if not record.startswith(VERSION):
        return False
    rest = record[len(VERSION):]
    return rest == "" or rest[0] in ";" + _WSP


def _parse_fields(raw: str, findings: list[Finding]) -> tuple[list[str], dict[str, str]]:
    """Check every field after the version against the ABNF; return rua URIs and extensions."""
    rest = raw[len(VERSION):]
    if rest.strip(_WSP) == "":
        findings.append(Finding.error("tlsrpt_record.no_rua",
                                      "the record has no field after the version; rua is required"))
        if rest:
            findings.append(_trailing_whitespace())
        return [], {}
    if rest.lstrip(_WSP)[:1] != ";":
        # Only possible when WSP follows the version and then not a ";".
        findings.append(Finding.error("tlsrpt_record.bad_whitespace",
                                      "white space after the version must be followed by ';'"))
    elif rest[0] in _WSP:
        findings.append(Finding.warning(
            "tlsrpt_record.version_separator_whitespace",
            f"white space between {VERSION!r} and ';': valid by the field-delim ABNF, but a sender "
            f"that filters on the literal prefix '{VERSION};' (RFC 8460 section 3) discards the record",
        ))
    parts = rest.lstrip(_WSP).split(";")
    if parts[0] == "":
        parts.pop(0)  # the empty text between the version and the first ";"
    if parts and parts[-1].strip(_WSP) == "":
        parts.pop()  # one trailing field-delim (*WSP ";" *WSP) is allowed
    elif parts and parts[-1] != parts[-1].rstrip(_WSP):
        # WSP is only allowed inside a field-delim: after the last field without a ";"
        # it is outside the grammar (the STS parser's sts_record.trailing_whitespace).
        findings.append(_trailing_whitespace())
    rua: list[str] = []
    extensions: dict[str, str] = {}
    seen_rua = False
    for part in parts:
        text = part.strip(_WSP)
        if any(c.isspace() and c not in _WSP for c in part):
            findings.append(Finding.error(
                "tlsrpt_record.bad_whitespace",
                f"field {part[:60]!r} holds white space other than SP or HTAB (RFC 8460 section 3 WSP)",
            ))
            text = part.strip()  # flagged; read on as if it were WSP
        if text == "":
            findings.append(Finding.error("tlsrpt_record.empty_field",
                                          "empty field between two ';' (RFC 8460 section 3 ABNF)"))
            continue
        name, eq, value = text.partition("=")
        if not eq:
            findings.append(Finding.error("tlsrpt_record.bad_extension",
                                          f"field {text[:60]!r} is not name=value (RFC 8460 section 3)"))
            continue
        if name != name.rstrip(_WSP) or value != value.lstrip(_WSP):
            findings.append(Finding.error(
                "tlsrpt_record.bad_whitespace",
                f"white space around '=' in {text[:60]!r} (RFC 8460 section 3 allows none)",
            ))
            name, value = name.rstrip(_WSP), value.lstrip(_WSP)
        if name == "rua":
            if seen_rua:
                findings.append(Finding.warning("tlsrpt_record.duplicate_rua",
                                                "rua= appears more than once; the URIs are combined"))
            seen_rua = True
            rua.extend(_parse_rua(value, findings))
            continue
        if not _EXT_NAME.match(name) or not _EXT_VALUE.match(value):
            findings.append(Finding.error(
                "tlsrpt_record.bad_extension",
                f"extension {text[:60]!r} does not match tlsrpt-ext-name \"=\" tlsrpt-ext-value "
                "(RFC 8460 section 3)",
            ))
            continue
        if name.lower() == "rua":
            findings.append(Finding.warning(
                "tlsrpt_record.rua_case",
                f"{name}= is not rua= (case-sensitive, RFC 8460 section 3): it is an ignored extension",
            ))
        # Section 3: unknown fields of a well-formed superset SHALL be ignored.
        extensions[name] = value
    if not seen_rua:
        findings.append(Finding.error("tlsrpt_record.no_rua",
                                      "no rua= field; RFC 8460 section 3 requires one"))
    return rua, extensions


def _trailing_whitespace() -> Finding:
    return Finding.error(
        "tlsrpt_record.trailing_whitespace",
        "white space after the last field without a ';' (RFC 8460 section 3: WSP is only "
        "allowed in a field-delim)",
    )


def _parse_rua(value: str, findings: list[Finding]) -> list[str]:
    """``tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)``: each URI checked for scheme and syntax."""
    uris: list[str] = []
    for item in value.split(","):
        uri = item.strip(_WSP)
        if uri == "":
            findings.append(Finding.error("tlsrpt_record.bad_uri",
                                          "empty URI in rua= (RFC 8460 section 3)"))
            continue
        uris.append(uri)
        problem = _uri_problem(uri)
        if problem is not None:
            findings.append(Finding.error("tlsrpt_record.bad_uri", f"rua URI {uri[:80]!r}: {problem}"))
            continue
        scheme = uri.split(":", 1)[0].lower()  # RFC 3986 section 3.1: schemes are case-insensitive
        if scheme not in SUPPORTED_SCHEMES:
            findings.append(Finding.error(
                "tlsrpt_record.bad_scheme",
                f"rua URI {uri[:80]!r} has scheme {scheme!r}; RFC 8460 section 3 supports only "
                "mailto and https",
            ))
            continue
        target = _target_problem(uri, scheme)
        if target is not None:
            findings.append(Finding.error("tlsrpt_record.bad_uri", f"rua URI {uri[:80]!r}: {target}"))
    return uris


def _uri_problem(uri: str) -> str | None:
    """Why ``uri`` is not an RFC 3986 URI as tlsrpt-uri restricts it, or None."""
    if not _URI_SCHEME.match(uri):
        return "no scheme (RFC 3986 section 3.1); write mailto: or https:"
    if "!" in uri:
        return "'!' must be percent-encoded (RFC 8460 section 3; not DMARC's size suffix)"
    if not _URI_CHARS.match(uri):
        return "characters not allowed in a URI (RFC 3986 section 2)"
    if _BAD_PCT.search(uri):
        return "'%' not followed by two hex digits (RFC 3986 section 2.1)"
    return None


def _target_problem(uri: str, scheme: str) -> str | None:
    """A mailto: URI needs an address; an https: URI needs a host."""
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        return f"unparsable ({exc})"
    if scheme == "mailto":
        address = parts.path
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain:
            return "mailto: without an address local@domain (RFC 6068)"
        return None
    if not parts.hostname:
        return "https: URI without a host"
    return None
