"""TXT-answer helpers shared by the MTA-STS and TLS-RPT record parsers (never raise).

Both RFC 8461 section 3.1 and RFC 8460 section 3 say the same thing about a record
made of several character-strings: they are concatenated without spaces before the
record is read. Both parsers also cap how many findings of one code they return, so a
hostile record (thousands of empty fields) cannot blow up a result row.
"""

from __future__ import annotations

from collections.abc import Iterable

from collectors.rfc.findings import Finding

_BYTES_LIKE = (bytes, bytearray, memoryview)
#: Findings of one code kept per record; beyond it one summary finding says how many more.
MAX_FINDINGS_PER_CODE = 10


def join_txt_records(txt: object, findings: list[Finding], code_prefix: str) -> tuple[str, ...]:
    """One string per TXT record, its character-strings concatenated without spaces.

    ``txt`` holds one entry per record: its strings, the joined string, or an object
    with a ``strings`` attribute (dnspython TXT rdata). ``bytes`` are decoded as UTF-8;
    undecodable bytes are kept as backslash escapes and flagged ``<prefix>.not_utf8``.
    A hostile iterable keeps what was read and is flagged ``<prefix>.bad_input``.
    """
    if txt is None:
        return ()
    if isinstance(txt, (str, *_BYTES_LIKE)):
        txt = [txt]
    if not isinstance(txt, Iterable):
        return (_text(txt, findings, code_prefix),)
    joined: list[str] = []
    try:
        for record in txt:
            strings = getattr(record, "strings", record)  # dnspython TXT rdata
            if isinstance(strings, (str, *_BYTES_LIKE)):
                joined.append(_text(strings, findings, code_prefix))
            elif isinstance(strings, Iterable):
                joined.append("".join(_text(part, findings, code_prefix) for part in strings))
            else:
                joined.append(_text(strings, findings, code_prefix))
    except Exception as exc:  # a hostile iterable; keep what was read
        findings.append(Finding.warning(f"{code_prefix}.bad_input", f"could not read the TXT answer: {exc!r}"))
    return tuple(joined)


def _text(value: object, findings: list[Finding], code_prefix: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, _BYTES_LIKE):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            findings.append(Finding.warning(
                f"{code_prefix}.not_utf8", "a TXT string is not UTF-8; undecodable bytes kept as \\x escapes"))
            return data.decode("utf-8", "backslashreplace")
    return str(value)


def bounded(findings: list[Finding]) -> tuple[Finding, ...]:
    """At most MAX_FINDINGS_PER_CODE findings of each code, then one that counts the rest."""
    counts: dict[str, int] = {}
    kept: list[Finding] = []
    last: dict[str, Finding] = {}
    for finding in findings:
        counts[finding.code] = counts.get(finding.code, 0) + 1
        last[finding.code] = finding
        if counts[finding.code] <= MAX_FINDINGS_PER_CODE:
            kept.append(finding)
    for code, count in counts.items():
        if count > MAX_FINDINGS_PER_CODE:
            kept.append(Finding(code, last[code].severity, f"... and {count - MAX_FINDINGS_PER_CODE} more like this"))
    return tuple(kept)
