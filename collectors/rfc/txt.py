"""TXT-answer helpers shared by the MTA-STS and TLS-RPT record parsers (never raise).

Both RFC 8461 section 3.1 and RFC 8460 section 3 say the same thing about a record
made of several character-strings: they are concatenated without spaces before the
record is read, and of all the records only those that begin with the version count:
exactly one must remain (:func:`select_record`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

from collectors.rfc.findings import Finding

_BYTES_LIKE = (bytes, bytearray, memoryview)


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


#: What a TXT answer holds for a parser: no record, one that is valid or invalid, or several.
RecordStatus = Literal["absent", "valid", "invalid", "multiple"]


def select_record(records: tuple[str, ...], findings: list[Finding], *, prefix: str, version: str,
                  section: str, kept: Callable[[str], bool],
                  looks_like: Callable[[str], bool]) -> tuple[RecordStatus, str | None, tuple[str, ...]]:
    """The record a parser reads: ``(status, raw, discarded)``.

    RFC 8461 3.1 and RFC 8460 3: records that do not begin with the version are
    discarded, and unless exactly one remains the domain has no record. ``multiple``
    (with the ``<prefix>.multiple`` error added), ``absent`` (no record meant as one),
    ``invalid`` (none kept, but ``raw`` is the first of the lookalikes: records meant as
    one, which the caller explains), or ``valid`` (``raw`` the one kept; the status
    still turns ``invalid`` when its fields are wrong). ``discarded``: the lookalikes
    the caller reports besides ``raw``.
    """
    chosen = [r for r in records if kept(r)]
    lookalikes = tuple(r for r in records if not kept(r) and looks_like(r))
    if len(chosen) > 1:
        findings.append(Finding.error(
            f"{prefix}.multiple", f"{len(chosen)} records begin with {version!r}; {section} requires exactly one"))
        return "multiple", None, lookalikes
    if not chosen:
        return ("invalid", lookalikes[0], lookalikes[1:]) if lookalikes else ("absent", None, ())
    return "valid", chosen[0], lookalikes
