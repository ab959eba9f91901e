"""HTML output for remote strings: every table and quotation is escaped here.

Policy text, notice text and host names come from servers we do not control;
a report shows them as text, never as markup (a ``<script>`` in a policy must
read as ``&lt;script&gt;``). Notebooks render tables and quotations only
through these helpers.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd

# Long remote strings are cut for tables (the CSV keeps them whole).
_CELL_LIMIT = 300


def esc(value: Any) -> str:
    """One value as HTML text (quotes escaped too)."""
    return html.escape("" if value is None else str(value), quote=True)


def _cell(value: Any) -> Any:
    if hasattr(value, "tolist") and not isinstance(value, str) and getattr(value, "ndim", 0):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    elif value is None or (not isinstance(value, str) and pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, str) and len(value) > _CELL_LIMIT:
        return value[: _CELL_LIMIT - 1] + "\u2026"
    return value


def integral(df: pd.DataFrame) -> pd.DataFrame:
    """Float columns that hold only whole numbers (counts with gaps) as nullable integers."""
    out = df.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_float_dtype(values) and values.notna().any():
            kept = values.dropna()
            if (kept == kept.round()).all() and kept.abs().max() < 2**53:
                out[column] = values.astype("Int64")
    return out


def html_table(df: pd.DataFrame, *, caption: str = "", max_rows: int = 200, table_id: str = "t") -> str:
    """A DataFrame as an escaped HTML table through pandas' Styler (``escape="html"``): no index,
    headers with spaces for underscores (they wrap), thousands separators, two decimals, empty
    for missing; caption escaped too. ``table_id``
    makes the element ids stable (the same database gives the same page)."""
    shown = integral(df.head(max_rows)).map(_cell) if len(df) else df
    styler = (shown.style.hide(axis="index")
              .format(escape="html", na_rep="", precision=2, thousands=",")
              .format_index(lambda c: str(c).replace("_", " "), escape="html", axis=1)
              .set_table_attributes('class="report-table"'))
    styler.set_uuid(re.sub(r"[^A-Za-z0-9_]", "_", table_id))
    body = styler.to_html(doctype_html=False)
    more = ""
    if len(df) > max_rows:
        more = f'<p class="note">first {max_rows:,} of {len(df):,} rows; all rows are in the CSV</p>'
    cap = f'<p class="caption">{esc(caption)}</p>' if caption else ""
    return f'<div class="table-wrap">{cap}{body}{more}</div>'


def quote(text: str, *, cite: str = "") -> str:
    """A remote text (a notice, a policy) as an escaped block quotation."""
    who = f'<footer>{esc(cite)}</footer>' if cite else ""
    return f'<blockquote class="remote-text"><pre>{esc(text)}</pre>{who}</blockquote>'
