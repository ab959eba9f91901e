"""The MTA-STS policy body from ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` (RFC 8461 section 3.2).

The grammar (RFC 8461 section 3.2, ABNF per RFC 5234 and RFC 7405)::

    sts-policy-record        = sts-policy-field *WSP
                               *(sts-policy-term sts-policy-field *WSP)
                               [sts-policy-term]
    sts-policy-field         = sts-policy-version /   ; required once
                               sts-policy-mode /      ; required once
                               sts-policy-max-age /   ; required once
                               sts-policy-mx /        ; at least once, unless mode is "none"
                               sts-policy-extension   ; other fields
    sts-policy-field-delim   = ":" *WSP
    sts-policy-version-value = %s"STSv1"
    sts-policy-mode-value    = %s"testing" / %s"enforce" / %s"none"
    sts-policy-mx-value      = ["*."] Domain          ; Domain: RFC 5321 section 4.1.2
    sts-policy-max-age-value = 1*10(DIGIT)            ; at most 31557600
    sts-policy-ext-name      = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
    sts-policy-term          = LF / CRLF
    sts-policy-ext-value     = sts-policy-vchar [*(%x20 / sts-policy-vchar) sts-policy-vchar]
    sts-policy-vchar         = %x21-7E / UTF8-2 / UTF8-3 / UTF8-4

Field names and the version and mode values are case-sensitive (``%s``). The
ABNF sets no order of fields (unlike the TXT record, whose version comes first).
Unknown fields "SHALL be ignored"; of a repeated non-``mx`` field "all entries
except for the first SHALL be ignored" (section 3.2): both are warnings here,
and the first value wins. Everything the ABNF does not allow is an error, so
``ok`` means "an RFC-conforming policy". Nothing here raises, and the work is
linear in the size of the body.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

import idna

from collectors.rfc.findings import CappedFindings, Finding, has_errors

Mode = Literal["enforce", "testing", "none"]
LineEnding = Literal["LF", "CRLF", "mixed"]

VERSION = "STSv1"
MODES: tuple[Mode, ...] = ("enforce", "testing", "none")
MAX_AGE_LIMIT = 31557600  # section 3.2: "maximum value of 31557600"
MAX_AGE_DIGITS = 10  # sts-policy-max-age-value = 1*10(DIGIT)
KNOWN_FIELDS = ("version", "mode", "max_age", "mx")

_WSP = " \t"
_FIELD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}\Z")
# sts-policy-vchar and %x20 (WSP at either end is already stripped).
_EXT_VALUE = re.compile(r"[\x20-\x7e\u0080-\U0010ffff]+\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
# RFC 5321 section 4.1.2: sub-domain = Let-dig [Ldh-str]; Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\Z")
# A well-formed pattern, checked first so the common case costs one match: ["*."] then LDH
# labels of 1 to 63 characters, at least two, the last one not all digits (an IPv4 address).
_GOOD_PATTERN = re.compile(
    r"(?:\*\.)?(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+"
    r"(?=[A-Za-z0-9\-]*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\Z"
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_PORT = re.compile(r"(.+):([0-9]{1,5})\Z")
_SHOWN = 80


@dataclass(frozen=True, slots=True)
class StsPolicy:
    """A parsed policy: its values as written (first one of a repeated field) and what is wrong with it.

    ``version`` is the version value as written; ``mode`` only one of the three
    modes; ``max_age`` the integer when the value is all digits (even out of range,
    then with a finding); ``mx`` every non-empty ``mx`` value in order, as written;
    ``extensions`` the first value of every unknown field.
    """

    ok: bool
    version: str | None = None
    mode: Mode | None = None
    max_age: int | None = None
    mx: tuple[str, ...] = ()
    line_ending: LineEnding | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()


def parse_sts_policy(body: bytes | str) -> StsPolicy:
    """Parse an MTA-STS policy body (RFC 8461 section 3.2); never raises.

    ``bytes`` must be UTF-8 (section 3.2 allows UTF-8 only inside extension
    values); undecodable bytes are an error and are read on as U+FFFD.
    """
    out = CappedFindings()
    text = _decode(body, out)
    if text.strip(" \t\r\n") == "":
        out.error("sts_policy.empty", "the policy body is empty (RFC 8461 section 3.2)")
        return StsPolicy(False, line_ending=_line_ending(text), findings=out.result())
    if "\x00" in text:
        out.error("sts_policy.nul_byte",
                  f"the body holds {text.count(chr(0))} NUL character(s) (not allowed by RFC 8461 section 3.2)")
    if text.startswith("\ufeff"):
        out.error("sts_policy.bom", "the body starts with a byte order mark (not allowed by the section 3.2 ABNF)")
        text = text[1:]
    if text.lstrip()[:1] == "<":
        out.error("sts_policy.looks_like_html",
                  "the body looks like HTML or XML, not a policy (RFC 8461 section 3.2: key: value lines)")

    line_ending = _line_ending(text)
    if line_ending == "mixed":
        out.warning("sts_policy.mixed_line_endings",
                    "lines end with both LF and CRLF (each allowed by sts-policy-term, RFC 8461 section 3.2)")

    lines = text.split("\n")
    terminated = len(lines)  # lines[:terminated] were followed by LF
    if lines[-1] == "":
        lines.pop()  # the optional final sts-policy-term
    else:
        terminated -= 1
    values: dict[str, str] = {}
    mx: list[str] = []
    seen_mx: set[str] = set()
    extensions: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if line.endswith("\r") and number <= terminated:  # the CR of a CRLF
            line = line[:-1]
        if "\r" in line:
            out.error("sts_policy.bare_cr",
                      f"line {number}: a CR not followed by LF (lines end with LF or CRLF, RFC 8461 section 3.2)")
            for piece in line.split("\r"):  # read on as if CR ended lines, to say what else is wrong
                if piece.strip(_WSP):
                    _parse_line(number, piece, values, mx, seen_mx, extensions, out)
            continue
        _parse_line(number, line, values, mx, seen_mx, extensions, out)

    version = values.get("version")
    mode_text = values.get("mode")
    max_age_text = values.get("max_age")
    if version is None:
        out.error("sts_policy.no_version", "no version field (required once, RFC 8461 section 3.2)")
    elif version != VERSION:
        out.error("sts_policy.bad_version",
                  f"version {_quote(version)} is not 'STSv1' (case-sensitive, RFC 8461 section 3.2)")
    mode: Mode | None = None
    if mode_text is None:
        out.error("sts_policy.no_mode", "no mode field (required once, RFC 8461 section 3.2)")
    elif mode_text in MODES:
        mode = mode_text  # type: ignore[assignment]
    else:
        out.error("sts_policy.bad_mode",
                  f"mode {_quote(mode_text)} is not enforce, testing or none (case-sensitive, RFC 8461 section 3.2)")
    max_age = _check_max_age(max_age_text, out)
    if not mx and mode != "none":
        out.error("sts_policy.no_mx",
                  "no mx field; at least one is required unless mode is none (RFC 8461 section 3.2)")
    findings = out.result()
    return StsPolicy(not has_errors(findings), version, mode, max_age, tuple(mx), line_ending,
                     extensions, findings)


def _decode(body: object, out: CappedFindings) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.error("sts_policy.not_utf8",
                      f"the body is not UTF-8 (first bad byte at offset {exc.start}; RFC 8461 section 3.2)")
            return data.decode("utf-8", "replace")
    if body is None:
        return ""
    out.error("sts_policy.not_text", f"the body is a {type(body).__name__}, not bytes or str")
    return ""


def _line_ending(text: str) -> LineEnding | None:
    lf = text.count("\n")
    crlf = text.count("\r\n")
    if lf == 0:
        return None
    if crlf == 0:
        return "LF"
    return "CRLF" if crlf == lf else "mixed"


def _parse_line(number: int, line: str, values: dict[str, str], mx: list[str], seen_mx: set[str],
                extensions: dict[str, str], out: CappedFindings) -> None:
    """One ``sts-policy-field *WSP`` line: check it and record its value."""
    if line.strip(_WSP) == "":
        out.error("sts_policy.blank_line",
                  f"line {number} is blank; the section 3.2 ABNF allows no empty line between or after fields")
        return
    if line[0] in _WSP:
        out.error("sts_policy.leading_whitespace",
                  f"line {number} starts with white space (RFC 8461 section 3.2: a line starts with its field name)")
        line = line.lstrip(_WSP)
    name, colon, rest = line.partition(":")
    if not colon:
        out.error("sts_policy.missing_colon", f"line {number} {_quote(line)} has no ':' (RFC 8461 section 3.2)")
        return
    if name != name.rstrip(_WSP):
        out.error("sts_policy.whitespace_before_colon",
                  f"line {number}: white space before ':' in {_quote(line)} (RFC 8461 section 3.2: \":\" *WSP)")
        name = name.rstrip(_WSP)
    if not _FIELD_NAME.match(name):
        out.error("sts_policy.bad_field_name",
                  f"line {number}: {_quote(name)} is not a field name (RFC 8461 section 3.2 sts-policy-ext-name)")
        return
    value = rest.strip(_WSP)  # sts-policy-field-delim = ":" *WSP, and *WSP after the field

    if name == "mx":
        if value == "":
            out.error("sts_policy.mx_empty", f"line {number}: mx has no value (RFC 8461 section 3.2)")
            return
        if value in seen_mx:
            out.warning("sts_policy.mx_duplicate", f"line {number}: mx {_quote(value)} is listed twice")
        mx.append(value)
        seen_mx.add(value)
        for code, severity, message in mx_problems(value):
            (out.error if severity == "error" else out.warning)(code, f"line {number}: {message}")
        return
    if name in values or (name not in KNOWN_FIELDS and name in extensions):
        out.warning("sts_policy.duplicate_field",
                    f"line {number}: {name!r} appears again; only the first counts (RFC 8461 section 3.2)")
        return
    if name in KNOWN_FIELDS:
        values[name] = value
        return
    if not _EXT_VALUE.match(value):
        out.error("sts_policy.bad_extension",
                  f"line {number}: the value of {name!r} is empty or holds control characters "
                  "(RFC 8461 section 3.2 sts-policy-ext-value)")
        return
    extensions[name] = value
    known = _misspelt(name)
    if known is not None:
        out.warning("sts_policy.misspelt_field",
                    f"line {number}: {name!r} is not {known!r} (field names are case-sensitive, RFC 8461 "
                    "section 3.2); it is ignored as an unknown field")
    else:
        out.warning("sts_policy.unknown_field",
                    f"line {number}: unknown field {name!r} is ignored (RFC 8461 section 3.2)")


def _misspelt(name: str) -> str | None:
    folded = name.lower().replace("-", "_").replace(".", "_")
    for known in KNOWN_FIELDS:
        if folded in (known, known.replace("_", ""), known + "s"):
            return known
    return None


def _check_max_age(text: str | None, out: CappedFindings) -> int | None:
    if text is None:
        out.error("sts_policy.no_max_age", "no max_age field (required once, RFC 8461 section 3.2)")
        return None
    if not _DIGITS.match(text) or not text.isascii():
        out.error("sts_policy.bad_max_age",
                  f"max_age {_quote(text)} is not a number of seconds (1*10DIGIT, RFC 8461 section 3.2)")
        return None
    value = int(text) if len(text) <= 4300 else None  # int() refuses longer strings
    if len(text) > MAX_AGE_DIGITS:
        out.error("sts_policy.max_age_too_long",
                  f"max_age has {len(text)} digits; at most {MAX_AGE_DIGITS} (RFC 8461 section 3.2)")
    elif value is not None and value > MAX_AGE_LIMIT:
        out.error("sts_policy.max_age_too_large",
                  f"max_age {value} is over the maximum {MAX_AGE_LIMIT} (RFC 8461 section 3.2)")
    if value == 0:
        out.warning("sts_policy.max_age_zero",
                    "max_age 0: the policy expires at once, so senders cannot cache it (RFC 8461 section 3.2)")
    return value


def mx_problems(value: str) -> list[tuple[str, str, str]]:
    """(code, severity, message) for every way ``value`` is not ``["*."] Domain`` (RFC 8461 section 3.2).

    Domain is RFC 5321 section 4.1.2 (letters, digits, hyphens; no trailing dot),
    with the DNS limits of RFC 1035 (labels of at most 63 octets, names of at most
    253 characters). An address in place of a host name names no MX host.
    """
    if len(value) <= 253 + 2 and _GOOD_PATTERN.match(value) and len(value.removeprefix("*.")) <= 253:
        return []
    shown = _quote(value)
    if any(c in value for c in " \t,;"):
        parts = [p for p in re.split(r"[ \t,;]+", value) if p]
        if len(parts) > 1:
            return [("sts_policy.mx_multiple_values", "error",
                     f"mx {shown} holds several values; write one mx line per pattern (RFC 8461 section 3.2)")]
        return [("sts_policy.mx_bad_label", "error", f"mx {shown} holds white space or punctuation")]
    if _URL.match(value) or value.lower().startswith(("http:", "https:", "smtp:", "mailto:")):
        return [("sts_policy.mx_url", "error", f"mx {shown} is a URL, not a host name pattern")]
    if "@" in value:
        return [("sts_policy.mx_email", "error", f"mx {shown} is an e-mail address, not a host name pattern")]
    if _is_ip_address(value):
        return [("sts_policy.mx_ip_address", "error",
                 f"mx {shown} is an IP address; MX records and mx patterns name hosts (RFC 8461 section 4.1)")]
    port = _PORT.match(value)
    if port and not _is_ip_address(port.group(1)):
        return [("sts_policy.mx_port", "error", f"mx {shown} carries a port; patterns are bare host names")]
    if not value.isascii():
        try:
            suggestion = idna.encode(value.removeprefix("*."), uts46=True).decode("ascii")
            hint = f"; write the A-label {('*.' if value.startswith('*.') else '') + suggestion!r}"
        except (idna.IDNAError, UnicodeError, ValueError):
            hint = ""
        return [("sts_policy.mx_non_ascii", "error",
                 f"mx {shown} is not ASCII (Domain of RFC 5321 section 4.1.2 is LDH){hint}")]

    problems: list[tuple[str, str, str]] = []
    wildcard = value.startswith("*.")
    name = value[2:] if wildcard else value
    if name.endswith(".") and name.strip(".*"):
        problems.append(("sts_policy.mx_trailing_dot", "error",
                         f"mx {shown} ends with a dot (not allowed by Domain, RFC 5321 section 4.1.2)"))
        name = name[:-1]
    if "*" in name or name == "":
        problems.append(("sts_policy.mx_bad_wildcard", "error",
                         f"mx {shown}: a wildcard is only '*.' followed by a domain (RFC 8461 section 3.2)"))
        return problems
    if name.startswith(".") and not wildcard:
        problems.append(("sts_policy.mx_leading_dot", "error",
                         f"mx {shown} starts with a dot; to match subdomains write '*.{name[1:]}' "
                         "(RFC 8461 section 3.2)"))
        name = name[1:]
    labels = name.split(".")
    bad = [label for label in labels if not _LABEL.match(label) or len(label) > 63]
    if bad:
        problems.append(("sts_policy.mx_bad_label", "error",
                         f"mx {shown} has label(s) {', '.join(_quote(b) for b in bad[:3])} that are not "
                         "letters, digits and inner hyphens of 1 to 63 characters (RFC 5321 section 4.1.2)"))
    elif len(name) > 253:
        problems.append(("sts_policy.mx_too_long", "error",
                         f"mx {shown} is longer than 253 characters (RFC 1035 section 2.3.4)"))
    elif len(labels) == 1 and not wildcard:
        problems.append(("sts_policy.mx_single_label", "warning",
                         f"mx {shown} is a single label; MX hosts are fully qualified names"))
    return problems


def _is_ip_address(value: str) -> bool:
    text = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _quote(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")
