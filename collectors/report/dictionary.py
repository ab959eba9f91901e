"""The data dictionary students read first: every table and view, every column, what it holds.

The words live at each definition, as DuckDB comments: ``COMMENT ON`` in
``migrations/010_dictionary.sql`` for tables and at the end of each
``views/*.sql`` for views. This module only reads them back (``duckdb_columns()``,
``duckdb_tables()``, ``duckdb_views()``), so the page, the docs and the notebooks
cannot drift from the schema; ``tests/store/test_dictionary.py`` fails on a
public column without a description.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from collectors.report.escape import esc

# Groups of the page, in order: (title, test on (relation, is_view)).
GROUPS: tuple[tuple[str, Any], ...] = (
    ("Runs and quarantine", lambda n, v: n in ("runs", "quarantine", "schema_migrations",
                                               "run_overview", "quarantine_summary")),
    ("Crawl verdicts (views)", lambda n, v: v and n in ("posture", "crawl_verdicts",
                                                        "crawl_domain_mx", "crawl_progress")),
    ("Crawl raw observations (tables)", lambda n, v: not v and n.startswith("crawl_")),
    ("Report views", lambda n, v: v and n.startswith("report_")),
    ("Lab verdicts (views)", lambda n, v: v),
    ("Lab evidence (tables)", lambda n, v: True),
)


def _group(name: str, is_view: bool) -> str:
    return next(title for title, test in GROUPS if test(name, is_view))


def data_dictionary(con: Any) -> pd.DataFrame:
    """Every table and view of the main schema, grouped: kind, columns, types and meaning."""
    cols = con.execute(
        "SELECT c.table_name AS relation, coalesce(t.comment, v.comment, '') AS relation_meaning,"
        " v.view_name IS NOT NULL AS is_view, c.column_name, c.data_type,"
        " coalesce(c.comment, '') AS column_meaning, c.column_index"
        " FROM duckdb_columns() c"
        " LEFT JOIN duckdb_tables() t ON t.table_name = c.table_name AND t.schema_name = c.schema_name"
        "  AND t.database_name = c.database_name"
        " LEFT JOIN duckdb_views() v ON v.view_name = c.table_name AND v.schema_name = c.schema_name"
        "  AND v.database_name = c.database_name"
        " WHERE c.schema_name = 'main' AND c.database_name = current_database()"
        " AND NOT c.internal").df()
    cols.insert(0, "group", [_group(n, bool(v)) for n, v in zip(cols["relation"], cols["is_view"])])
    order = {title: i for i, (title, _) in enumerate(GROUPS)}
    cols["_g"] = cols["group"].map(order)
    cols = cols.sort_values(["_g", "relation", "column_index"]).reset_index(drop=True)
    cols["kind"] = cols["is_view"].map({True: "view", False: "table"})
    return cols[["group", "relation", "kind", "relation_meaning", "column_name", "data_type",
                 "column_meaning"]]


def undescribed(con: Any) -> list[str]:
    """``relation`` or ``relation.column`` of everything public that has no description."""
    df = data_dictionary(con)
    missing = sorted({r for r, m in zip(df["relation"], df["relation_meaning"]) if not m.strip()})
    missing += [f"{r}.{c}" for r, c, m in zip(df["relation"], df["column_name"], df["column_meaning"])
                if not m.strip()]
    return missing


def dictionary_html(df: pd.DataFrame) -> str:
    """The whole dictionary as escaped HTML: a contents list of every relation by group,
    then one table per relation with every column (no row limit). No script: the
    browser's find searches it; in JupyterLab the interactive table does."""
    parts, contents = [], []
    for group, in_group in df.groupby("group", sort=False):
        links = []
        parts.append(f"<h3>{esc(group)}</h3>")
        for relation, rows in in_group.groupby("relation", sort=False):
            anchor = f"dict-{relation}"
            links.append(f'<a href="#{esc(anchor)}">{esc(relation)}</a>')
            body = "".join(
                f"<tr><td><code>{esc(c)}</code></td><td>{esc(t)}</td><td>{esc(m)}</td></tr>"
                for c, t, m in zip(rows["column_name"], rows["data_type"], rows["column_meaning"]))
            parts.append(
                f'<details open id="{esc(anchor)}"><summary><strong>{esc(relation)}</strong>'
                f" ({esc(rows['kind'].iloc[0])}, {len(rows)} columns): {esc(rows['relation_meaning'].iloc[0])}"
                f'</summary><table class="report-table"><thead><tr><th>column</th><th>type</th>'
                f"<th>meaning</th></tr></thead><tbody>{body}</tbody></table></details>")
        contents.append(f"<li>{esc(group)}: {', '.join(links)}</li>")
    return (f'<div class="dictionary"><p class="note">{df["relation"].nunique()} relations,'
            f" {len(df)} columns.</p><ul>{''.join(contents)}</ul>{''.join(parts)}</div>")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def dictionary_markdown(df: pd.DataFrame) -> str:
    """The dictionary as Markdown (``mtasts db dictionary``): a section per relation with
    its description and a table of its columns, grouped as on the page."""
    out = ["# Data dictionary\n",
           "Every table and view of the store with every column, generated by `mtasts db dictionary`",
           "from the schema's own comments (`COMMENT ON` in `collectors/store/migrations/010_dictionary.sql`",
           "and at the end of each `collectors/store/views/*.sql`). Do not edit by hand: change the comment,",
           "then `mtasts db init --db /tmp/d.duckdb && mtasts db dictionary --db /tmp/d.duckdb >",
           "docs/data-dictionary.md` (tests/store/test_dictionary.py checks it is current).\n"]
    for group, in_group in df.groupby("group", sort=False):
        out.append(f"## {group}\n")
        for relation, rows in in_group.groupby("relation", sort=False):
            out.append(f"### `{relation}` ({rows['kind'].iloc[0]})\n\n{rows['relation_meaning'].iloc[0]}\n")
            out.append("| column | type | meaning |\n|---|---|---|")
            out += [f"| `{c}` | {t} | {_md_cell(m)} |"
                    for c, t, m in zip(rows["column_name"], rows["data_type"], rows["column_meaning"])]
            out.append("")
    return "\n".join(out)


def show_dictionary(df: pd.DataFrame, *, interactive: bool) -> None:
    """Show the dictionary: in JupyterLab as one searchable, sortable table (itables);
    in a rendered report as :func:`dictionary_html` (pages there carry no script)."""
    from IPython.display import HTML, display

    if interactive:
        from itables import show

        from collectors.report.jupyter import enable_interactive_tables

        enable_interactive_tables()
        relations = (df.drop_duplicates("relation")[["group", "relation", "kind", "relation_meaning"]]
                     .reset_index(drop=True))
        show(relations, paging=False, scrollY="30vh", scrollCollapse=True, classes="display compact",
             columnDefs=[{"className": "dt-left", "targets": "_all"}])
        show(df.drop(columns="relation_meaning"), paging=False, scrollY="60vh", scrollCollapse=True,
             classes="display compact", columnDefs=[{"className": "dt-left", "targets": "_all"}])
    else:
        display(HTML(dictionary_html(df)))
