"""I-JSON (RFC 7493): the JSON profile RFC 8460 section 4.4 requires of TLS-RPT reports.

A decoded JSON value can hold what no store can: a lone surrogate escape (``"\\udcff"``
is valid JSON, but no UTF-8 encodes it) or a number beyond any fixed-width column
(``10**400``, ``1e999`` decoded as infinity). :func:`ijson_violation` names the first such
value so a reader can reject the document with that reason instead of crashing later.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["MAX_EXACT_INTEGER", "ijson_violation", "storable_text"]

# RFC 7493 section 2.2: integers beyond IEEE 754 double precision's exact range are not
# interoperable; [-(2**53)+1, (2**53)-1] is the range every I-JSON reader holds exactly.
MAX_EXACT_INTEGER = 2**53 - 1

# RFC 7493 section 2.1: no code point that identifies a surrogate.
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` with any lone surrogate written as its escape: valid UTF-8, so a message or a
    reason that quotes hostile input can be stored."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _text_violation(text: str, where: str) -> str | None:
    match = _SURROGATE.search(text)
    if match is None:
        return None
    return (f"{where} holds the lone surrogate U+{ord(match.group()):04X}, "
            "which I-JSON forbids (RFC 7493 section 2.1)")


def _number_violation(value: int | float, where: str) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if abs(value) > MAX_EXACT_INTEGER:
            return (f"{where} is an integer of {len(str(abs(value)))} digits, beyond I-JSON's "
                    "exact range of +-(2**53 - 1) (RFC 7493 section 2.2)")
        return None
    if not math.isfinite(value):
        return f"{where} is a number beyond IEEE 754 double precision (RFC 7493 section 2.2)"
    return None


def ijson_violation(document: Any) -> str | None:
    """The first value of a decoded JSON document that I-JSON forbids, described; None if
    there is none. Walks iteratively, so any nesting depth the decoder accepted is fine."""
    stack: list[tuple[Any, str]] = [(document, "$")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            problem = _text_violation(value, where)
        elif isinstance(value, (int, float)):
            problem = _number_violation(value, where)
        elif isinstance(value, dict):
            problem = None
            for key, item in value.items():
                problem = problem or _text_violation(str(key), f"a key of {where}")
                stack.append((item, f"{where}.{storable_text(str(key)[:40])}"))
        elif isinstance(value, list):
            problem = None
            stack.extend((item, f"{where}[{index}]") for index, item in enumerate(value))
        else:
            problem = None
        if problem is not None:
            return problem
    return None
