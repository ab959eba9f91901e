"""The escaping helpers every remote string goes through (no kernel needed)."""

from __future__ import annotations

import html
import re

import pandas as pd
from hypothesis import given, strategies as st

from collectors.report.escape import esc, html_table, quote


@given(st.text(max_size=200))
def test_esc_round_trips_and_leaves_no_markup(text):
    out = esc(text)
    assert "<" not in out and ">" not in out and '"' not in out
    assert html.unescape(out) == text


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=120))
def test_table_cells_hold_the_text_not_markup(text):
    markup = html_table(pd.DataFrame({"remote": [text]}))
    cell = re.search(r"<td[^>]*>(.*?)</td>", markup, re.S).group(1)
    assert "<" not in cell and ">" not in cell
    assert html.unescape(cell).strip() == text.strip()


def test_quote_and_caption_are_escaped():
    assert "<script>" not in quote("<script>x</script>", cite="<b>c</b>")
    assert "&lt;i&gt;" in html_table(pd.DataFrame({"a": [1]}), caption="<i>")


def test_long_cells_are_cut_and_missing_values_blank():
    markup = html_table(pd.DataFrame({"a": ["x" * 1000, None]}))
    assert "x" * 299 in markup and "x" * 301 not in markup
    assert "None" not in markup
