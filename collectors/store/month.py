"""A month as ``YYYY-MM``: how runs are grouped by the monthly job and chosen for a report."""

from __future__ import annotations

import re

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def is_month(text: str) -> bool:
    """True for ``YYYY-MM`` with a two-digit month from 01 to 12."""
    return bool(_MONTH.match(text))
