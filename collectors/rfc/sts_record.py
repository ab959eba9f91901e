"""The MTA-STS TXT record at ``_mta-sts.<domain>`` (RFC 8461 section 3.1), parsed without I/O.

The grammar (RFC 8461 section 3.1, ABNF per RFC 5234 and RFC 7405)::

    sts-text-record = sts-version 1*(sts-sep sts-field) [sts-sep]
    sts-field       = sts-id / sts-extension      ; sts-id is required
    sts-version     = %s"v=STSv1"
    sts-sep         = *WSP %x3B *WSP              ; ";"
    sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
    sts-extension   = sts-ext-name "=" sts-ext-value
    sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
    sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)

Selection (section 3.1): the strings of one TXT record are concatenated without
spaces; records that do not begin with ``v=STSv1;`` are discarded; exactly one
must remain. A multi-string record that joins into a valid record is valid.

Decisions where the RFC leaves room (each documented in docs/rfc-core.md):

* ``v=STSv1 ;`` (WSP before the separator) is allowed by ``sts-sep`` but does not
  literally begin with ``v=STSv1;``. We keep it (the ABNF is the normative
  syntax) and add a warning, since a sender filtering on the literal prefix
  would discard it.
* ``v=STSv1`` alone (no ``;``) is discarded by the prefix rule and invalid by the
  ABNF (``1*(sts-sep sts-field)``): with nothing else left it is reported as an
  invalid record missing its id.
* A repeated field (``id``, ``v`` or an extension) is allowed by the ABNF; section
  3.2 says of every non-``mx`` field "all entries except for the first SHALL be
  ignored", so the first wins and the repeat is a warning. A second ``v=...``
  after the first field is, by the ABNF, a well-formed extension named ``v``.
* TXT answers that do not look like MTA-STS at all (for example an SPF record
  reached through a wildcard) make the status ``absent``; records that look like
  a broken MTA-STS record (wrong version, version not first, ...) make it
  ``invalid``, so a measurement can tell "not deployed" from "deployed wrongly".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from collectors.rfc.findings import Finding, bounded, has_errors
from collectors.rfc.txt import RecordStatus, join_txt_records, select_record

VERSION = "v=STSv1"
MAX_ID_LENGTH = 32

_WSP = " \t"  # RFC 5234: WSP = SP / HTAB
# Section 3.1: the discard rule's "v=STSv1;", with the WSP that sts-sep allows before ";".
_KEPT = re.compile(r"v=STSv1[ \t]*;")
_ID_VALUE = re.compile(r"[A-Za-z0-9]+\Z")
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}\Z")
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+\Z")
# A field that names the version, whatever its case or spacing ("V = stsv1", "v=STSv2").
_VERSION_FIELD = re.compile(r"[ \t]*v[ \t]*=", re.IGNORECASE)
_STS_VERSION_FIELD = re.compile(r"[ \t]*v[ \t]*=[ \t]*sts", re.IGNORECASE)
_ID_FIELD = re.compile(r"[ \t]*id[ \t]*=", re.IGNORECASE)
# "v=STSv1id=..." or "v=STSv1 id=...": the separator after the version is missing.
_MISSING_SEP = re.compile(r"v=STSv1[ \t]*[A-Za-z0-9][A-Za-z0-9_.\-]*[ \t]*=")
_SHOWN = 80  # characters of a record quoted in a message


@dataclass(frozen=True, slots=True)
class StsRecord:
    """What ``_mta-sts`` says: whether exactly one usable record exists, and its id."""

    ok: bool
    status: RecordStatus
    id: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    raw: str | None = None
    records: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()


def parse_sts_record(txt: object) -> StsRecord:
    """Parse the TXT answer for ``_mta-sts.<domain>`` (RFC 8461 section 3.1); never raises.

    ``txt`` holds one entry per TXT record: that record's character-strings
    (``list[str]``, joined without spaces) or the already joined string. Strings
    may be ``bytes`` (invalid UTF-8 is kept with backslash escapes and flagged);
    objects with a ``strings`` attribute (dnspython TXT rdata) are accepted too.
    """
    findings: list[Finding] = []
    records = join_txt_records(txt, findings, "sts_record")
    for other in records:
        if not _KEPT.match(other) and not _looks_like_sts(other):
            findings.append(Finding.warning(
                "sts_record.unrelated_txt",
                f"TXT record {_quote(other)} is not an MTA-STS record; it is discarded "
                "(RFC 8461 section 3.1)",
            ))
    # Section 3.1: "If the number of resulting records is not one ... senders MUST
    # assume the recipient domain does not have an available MTA-STS Policy".
    status, raw, discarded = select_record(records, findings, prefix="sts_record", version="v=STSv1;",
                                           section="RFC 8461 section 3.1", kept=_KEPT.match,
                                           looks_like=_looks_like_sts)
    if status == "multiple":
        return StsRecord(False, "multiple", records=records, findings=bounded(findings))
    if raw is None:
        findings.append(Finding.error(
            "sts_record.absent", "no TXT record beginning with 'v=STSv1;' (RFC 8461 section 3.1)"))
        return StsRecord(False, "absent", records=records, findings=bounded(findings))
    for other in discarded:
        findings.append(Finding.warning(
            "sts_record.discarded_record",
            f"another broken MTA-STS-like record {_quote(other)} is discarded as well" if status == "invalid" else
            f"record {_quote(other)} looks like MTA-STS but does not begin with 'v=STSv1;'; "
            "it is discarded (RFC 8461 section 3.1)",
        ))
    record_id, extensions = _analyse(raw, findings)
    if status == "invalid" and not has_errors(findings):  # cannot happen: a lookalike always has a reason
        findings.append(Finding.error("sts_record.syntax", f"record {_quote(raw)} does not begin with 'v=STSv1;'"))
    ok = status == "valid" and not has_errors(findings)
    return StsRecord(ok, "valid" if ok else "invalid", record_id, extensions, raw, records, bounded(findings))


def _looks_like_sts(record: str) -> bool:
    """True for a record its author meant as MTA-STS: a ``v=sts...`` or an ``id=`` field."""
    for part in record.split(";"):
        if _STS_VERSION_FIELD.match(part) or _ID_FIELD.match(part):
            return True
    return False


def _analyse(raw: str, findings: list[Finding]) -> tuple[str | None, dict[str, str]]:
    """Check one record against the section 3.1 ABNF; return its id (when well-formed) and extensions."""
    fields = _fields_after_version(raw, findings)
    record_id: str | None = None
    id_seen = False
    id_wrong_case: str | None = None
    extensions: dict[str, str] = {}
    seen: set[str] = set()
    for index, part in enumerate(fields):
        pair = _name_value(part, index == len(fields) - 1, findings)
        if pair is None:
            continue
        name, value, token = pair
        if name in seen:
            # Section 3.2: of a repeated non-mx field "all entries except for the first SHALL be ignored".
            findings.append(Finding.warning(
                "sts_record.duplicate_field",
                f"field {name!r} appears more than once; only the first counts (RFC 8461 section 3.2)",
            ))
            continue
        seen.add(name)
        if name == "id":
            id_seen = True
            if _check_id(value, findings):
                record_id = value
        elif _is_extension(name, value, token, findings):
            if name.lower() == "id":
                id_wrong_case = name
            extensions[name] = value  # section 3.2: unknown fields SHALL be ignored
    if not id_seen:
        if id_wrong_case is not None:
            findings.append(Finding.error(
                "sts_record.id_wrong_case",
                f"{id_wrong_case}= is not id= (case-sensitive, RFC 8461 section 3.1); the record has no id",
            ))
        else:
            findings.append(Finding.error(
                "sts_record.no_id", "no id= field; RFC 8461 section 3.1 requires one"))
    return record_id, extensions


def _fields_after_version(raw: str, findings: list[Finding]) -> list[str]:
    """Check the record's start (``v=STSv1`` first, then ``;``); the fields after it."""
    text = raw
    if text[:1] in (" ", "\t"):
        findings.append(Finding.error(
            "sts_record.leading_whitespace",
            "white space before 'v=STSv1' (the record MUST begin with the version, RFC 8461 section 3.1)",
        ))
        text = text.lstrip(_WSP)
    head, *fields = text.split(";")
    if head.rstrip(_WSP) != VERSION:
        return _version_problem(head, fields, findings)
    if head != VERSION and not fields:
        findings.append(Finding.error(
            "sts_record.trailing_whitespace",
            "white space after the last field (only allowed around ';', RFC 8461 section 3.1 sts-sep)",
        ))
    elif head != VERSION:
        findings.append(Finding.warning(
            "sts_record.version_separator_whitespace",
            "white space between 'v=STSv1' and ';': valid by the sts-sep ABNF, but a sender that "
            "filters on the literal prefix 'v=STSv1;' (RFC 8461 section 3.1) discards the record",
        ))
    return fields


def _name_value(part: str, last: bool, findings: list[Finding]) -> tuple[str, str, str] | None:
    """One field as ``(name, value, token)``, its white space problems reported; None for
    an empty field or one that is not name=value."""
    token = part.strip(_WSP)
    if token == "":
        if not last:
            findings.append(Finding.error(
                "sts_record.empty_field", "empty field between two ';' (RFC 8461 section 3.1 ABNF)"))
        return None
    if last and part != part.rstrip(_WSP):
        findings.append(Finding.error(
            "sts_record.trailing_whitespace",
            "white space after the last field (only allowed around ';', RFC 8461 section 3.1 sts-sep)",
        ))
    name, eq, value = token.partition("=")
    if not eq:
        findings.append(Finding.error(
            "sts_record.syntax", f"field {_quote(token)} is not name=value (RFC 8461 section 3.1)"))
        return None
    if name != name.rstrip(_WSP) or value != value.lstrip(_WSP):
        findings.append(Finding.error(
            "sts_record.whitespace_around_equals",
            f"white space around '=' in {_quote(token)} (RFC 8461 section 3.1 allows none)",
        ))
        name, value = name.rstrip(_WSP), value.lstrip(_WSP)
    return name, value, token


def _is_extension(name: str, value: str, token: str, findings: list[Finding]) -> bool:
    """True for a well-formed sts-extension other than a second version field."""
    if not _EXT_NAME.match(name) or not _EXT_VALUE.match(value):
        findings.append(Finding.error(
            "sts_record.bad_extension",
            f"field {_quote(token)} is not a well-formed sts-extension "
            "(name: letter or digit then up to 31 of letters, digits, '_', '-', '.'; "
            "value: printable ASCII without '=', ';' or space; RFC 8461 section 3.1)",
        ))
        return False
    if name == "v":
        # By the ABNF a later "v=..." is just an extension named "v": ignored.
        findings.append(Finding.warning(
            "sts_record.duplicate_field",
            f"a second version field {_quote(token)}; only the first counts (RFC 8461 section 3.2)",
        ))
        return False
    return True


def _version_problem(head: str, fields: list[str], findings: list[Finding]) -> list[str]:
    """Say why the first field is not ``v=STSv1``; return the fields left to check."""
    if head.rstrip(_WSP) == VERSION:  # pragma: no cover - the caller handles this case
        return fields
    if head.startswith(VERSION) and _MISSING_SEP.match(head):
        findings.append(Finding.error(
            "sts_record.missing_separator",
            f"no ';' after 'v=STSv1' in {_quote(head)} (RFC 8461 section 3.1 sts-sep; strings of a "
            "multi-string record are joined without spaces)",
        ))
        rest = head[len(VERSION):]
        return [rest, *fields]
    if _VERSION_FIELD.match(head):
        if re.fullmatch(r"v[ \t]*=[ \t]*STSv1[ \t]*", head):
            findings.append(Finding.error(
                "sts_record.whitespace_around_equals",
                f"white space around '=' in the version {_quote(head)} (RFC 8461 section 3.1: %s\"v=STSv1\")",
            ))
        else:
            findings.append(Finding.error(
                "sts_record.bad_version",
                f"version {_quote(head.strip(_WSP))} is not 'v=STSv1' (case-sensitive, RFC 8461 section 3.1)",
            ))
        return fields
    for index, part in enumerate(fields):
        if _VERSION_FIELD.match(part):
            findings.append(Finding.error(
                "sts_record.version_not_first",
                f"the version field {_quote(part.strip(_WSP))} is not first; the record MUST begin "
                "with v=STSv1 (RFC 8461 section 3.1)",
            ))
            if part.strip(_WSP) != VERSION:
                findings.append(Finding.error(
                    "sts_record.bad_version",
                    f"version {_quote(part.strip(_WSP))} is not 'v=STSv1' (case-sensitive, RFC 8461 section 3.1)",
                ))
            return [head.rstrip(_WSP), *fields[:index], *fields[index + 1:]]
    findings.append(Finding.error(
        "sts_record.no_version", "no v=STSv1 field; the record MUST begin with it (RFC 8461 section 3.1)"))
    return [head, *fields]


def _check_id(value: str, findings: list[Finding]) -> bool:
    """``sts-id = %s"id=" 1*32(ALPHA / DIGIT)``: True when ``value`` is a well-formed id."""
    if value == "":
        findings.append(Finding.error("sts_record.id_empty", "id= has no value (RFC 8461 section 3.1: 1 to 32)"))
        return False
    good = True
    if not _ID_VALUE.match(value):
        bad = sorted({c for c in value if not (c.isascii() and c.isalnum())})
        findings.append(Finding.error(
            "sts_record.id_invalid_char",
            f"id {_quote(value)} holds {''.join(bad)[:20]!r}; only letters and digits are allowed "
            "(RFC 8461 section 3.1)",
        ))
        good = False
    if len(value) > MAX_ID_LENGTH:
        findings.append(Finding.error(
            "sts_record.id_too_long",
            f"id is {len(value)} characters long; at most {MAX_ID_LENGTH} (RFC 8461 section 3.1)",
        ))
        good = False
    return good


def _quote(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")
