"""``reports/<month>/paper/``: what a paper needs, and nothing that changes between renders.

Figures as PDF (copied there by the report context), tables as CSV and LaTeX
(booktabs rules, via pandas' Styler), the provenance as JSON and a short
``CITATION.md`` saying how to cite the data and the tool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from collectors.report.escape import integral
from collectors.report.page import write_json

_LATEX_SPECIAL = str.maketrans({"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                                "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"})


def latex_escape(value: Any) -> str:
    """One value as LaTeX text: every special character escaped (remote strings included)."""
    return str(value).translate(_LATEX_SPECIAL)


def _latex_cell(value: Any) -> str:
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        value = "; ".join(map(str, list(value)))
    elif value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return latex_escape(value)


def latex_table(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """``df`` as a booktabs ``table`` environment (\\toprule, \\midrule, \\bottomrule)."""
    shown = integral(df)
    for column in shown.columns:
        if not pd.api.types.is_numeric_dtype(shown[column]) and not pd.api.types.is_bool_dtype(shown[column]):
            shown[column] = shown[column].map(_latex_cell)
    shown.columns = [latex_escape(c) for c in shown.columns]
    styler = shown.style.hide(axis="index").format(na_rep="", precision=2, thousands=",")
    return styler.to_latex(hrules=True, caption=latex_escape(caption) if caption else None,
                           label=label or None, position_float="centering")


def write_paper_table(df: pd.DataFrame, stem: Path, caption: str, citation: str) -> None:
    """``<stem>.csv`` and ``<stem>.tex`` (with the citation in the caption when there is one)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(stem.with_suffix(".csv"), index=False)
    full = caption + (f" Published figures: {citation}." if citation else "")
    stem.with_suffix(".tex").write_text(latex_table(df, full, f"tab:{stem.name}"), encoding="utf-8")


def citation_text(provenance: dict[str, Any], figures: list[str], tables: list[str]) -> str:
    """How to cite this report's numbers: the tool, the commit, the runs and the simulation label."""
    runs = [r["run_id"] for r in provenance.get("crawl_runs", [])]
    lab = [r["run_id"] for r in provenance.get("lab_runs", [])]
    sim = ("\n**Local simulation.** These numbers come from a simulated internet and lab on one "
           "machine; do not cite them as measurements of real domains or providers.\n"
           if provenance.get("local_simulation") else "")
    lines = [
        f"# How to cite the MTA-STS Observatory report {provenance.get('month')}", sim,
        "Cite the data as:",
        "",
        f"> MTA-STS Observatory, monthly report {provenance.get('month')}, crawl run "
        f"{provenance.get('current_run') or 'none'}, produced with mtasts "
        f"{provenance.get('report_tool_version')} (commit {provenance.get('git_commit') or 'n/a'}).",
        "",
        f"Crawl runs: {', '.join(runs) or 'none'}. Lab evidence runs: {', '.join(lab) or 'none'}.",
        f"{provenance.get('lab_period', '')}",
        "The inputs and their SHA-256, the crawl settings and the lab timers are in `provenance.json`.",
        "Published figures shown beside ours keep their own citations (in each table's caption).",
        "",
        "Figures (PDF): " + (", ".join(f"`figures/{f}`" for f in figures) or "none"),
        "",
        "Tables (CSV and LaTeX with booktabs; `\\usepackage{booktabs}`): "
        + (", ".join(f"`tables/{t}`" for t in tables) or "none"),
        "",
        "Re-render one page with `mtasts report --db DB --month MONTH --notebook NAME`; the same "
        "database gives the same bytes.",
        "",
    ]
    return "\n".join(lines)


def write_citation(paper_dir: Path, provenance: dict[str, Any]) -> None:
    """``CITATION.md`` and ``provenance.json`` for the paper folder (after every notebook ran)."""
    paper_dir.mkdir(parents=True, exist_ok=True)
    figures = sorted(p.name for p in (paper_dir / "figures").glob("*.pdf"))
    tables = sorted(p.stem for p in (paper_dir / "tables").glob("*.csv"))
    (paper_dir / "CITATION.md").write_text(citation_text(provenance, figures, tables), encoding="utf-8")
    write_json(paper_dir / "provenance.json", provenance)
