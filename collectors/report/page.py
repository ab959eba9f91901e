"""The HTML around the notebooks: one page shell (no scripts, no remote assets) and the index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collectors.report.escape import esc

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1,h2,h3{line-height:1.2} a{color:#0b5cad}
table.report-table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}
.table-wrap{overflow-x:auto}
table.report-table th,table.report-table td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top;max-width:32em;overflow-wrap:break-word}
table.report-table td{font-variant-numeric:tabular-nums}
table.report-table th{background:#f0f3f7}
.provenance{background:#f6f8fa;border:1px solid #d0d7de;padding:0.6em 1em;font-size:0.85em;margin-bottom:1em}
.simulation{background:#fff4ce;border:1px solid #e0b400;padding:0.4em 0.8em;margin:0 0 0.6em}
.caption{font-weight:600;margin:0.8em 0 0.2em}.citation,.note{font-size:0.85em;color:#555}
blockquote.remote-text{border-left:4px solid #999;margin:0.4em 0;padding:0.2em 0.8em;background:#fafafa}
blockquote.remote-text pre{white-space:pre-wrap;margin:0}
img{max-width:100%}.figs{display:flex;flex-wrap:wrap;gap:1em}.figs figure{margin:0;width:330px}
.figs img{border:1px solid #ddd}.jp-OutputPrompt,.jp-InputPrompt{display:none}
"""


def shell(title: str, body: str, *, subtitle: str = "", back_link: bool = True) -> str:
    """A complete, self-contained HTML page (title escaped; ``body`` is already HTML)."""
    sub = f"<p class=\"note\">{esc(subtitle)}</p>" if subtitle else ""
    back = '<p><a href="index.html">&larr; report index</a></p>' if back_link else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body>{back}"
        f"{sub}{body}</body></html>\n"
    )


def _inputs(inputs: list[dict[str, Any]]) -> str:
    if not inputs:
        return ""
    rows = "".join(f"<li><code>{esc(i.get('name'))}</code> sha256 <code>{esc(i.get('sha256') or 'n/a')}</code>"
                   f"{' (' + format(int(i['bytes']), ',') + ' bytes)' if i.get('bytes') is not None else ''}</li>"
                   for i in inputs)
    return f"<details><summary>inputs ({len(inputs)}) and SHA-256</summary><ul>{rows}</ul></details>"


def _settings(settings: dict[str, Any]) -> str:
    if not settings:
        return ""
    return "; crawl settings: " + ", ".join(f"{esc(k)}={esc(v)}" for k, v in settings.items())


def provenance_lists(provenance: dict[str, Any]) -> str:
    """The crawl runs (inputs with SHA-256, settings), lab runs, timers, tool, commit, database
    and parameters of a provenance dict, as escaped HTML (the same on every page and the index)."""
    crawl = "".join(
        f"<li><code>{esc(r['run_id'])}</code>: list {esc(r['list'])}"
        f"{' dated ' + esc(r['list_date']) if r.get('list_date') else ''}, started {esc(r['started_at'])},"
        f" tool {esc(r['tool_version'])}{_settings(r.get('settings', {}))}{_inputs(r.get('inputs', []))}</li>"
        for r in provenance.get("crawl_runs", [])) or "<li>none</li>"
    lab = "".join(
        f"<li><code>{esc(r['run_id'])}</code> ({esc(r['kind'])}): started {esc(r['started_at'])},"
        f" tool {esc(r['tool_version'])}{_inputs(r.get('inputs', []))}</li>"
        for r in provenance.get("lab_runs", [])) or "<li>none</li>"
    timers = ", ".join(f"{esc(t['profile'])}: {esc(t['name'])} = {esc(t['value'])}"
                       for t in provenance.get("lab_timers", [])) or "not recorded in this database"
    params = ", ".join(f"{esc(k)}={esc(v)}" for k, v in provenance.get("parameters", {}).items())
    reasons = "".join(f"<li>{esc(r)}</li>" for r in provenance.get("simulation_reasons", []))
    return (f"<p>Crawl runs:</p><ul>{crawl}</ul><p>Lab evidence runs:</p><ul>{lab}</ul>"
            f"<p>{esc(provenance.get('lab_period', ''))} Lab senders' queue timers: {timers}.</p>"
            f"<p>Database <code>{esc(provenance.get('database', ''))}</code>; code commit "
            f"<code>{esc(provenance.get('git_commit') or 'not a git checkout')}</code>.</p>"
            + (f"<p>Labelled a local simulation because:</p><ul>{reasons}</ul>" if reasons else "")
            + f"<p>Parameters: {params}</p>")


def simulation_note(provenance: dict[str, Any]) -> str:
    """The yellow "Local simulation" box, or '' for real data."""
    if not provenance.get("local_simulation"):
        return ""
    return ('<p class="simulation"><strong>Local simulation.</strong> These figures come from a '
            "simulated internet and lab on one machine, not from real domains or providers. "
            f"{esc(provenance.get('data_note', ''))}</p>")


def provenance_box(provenance: dict[str, Any]) -> str:
    """The box every page starts with: simulation label, month, current run, tool and provenance."""
    return (f'<div class="provenance">{simulation_note(provenance)}'
            f"<p><strong>Report month</strong> {esc(provenance.get('month'))}; current crawl run "
            f"<code>{esc(provenance.get('current_run') or 'none')}</code>; report tool version "
            f"{esc(provenance.get('report_tool_version'))}.</p>"
            f"<details open><summary>Provenance</summary>{provenance_lists(provenance)}</details></div>")


def index_page(month: str, pages: list[dict[str, Any]], provenance: dict[str, Any]) -> str:
    """The report's front page: provenance, key figures, and links to every artefact."""
    sim = simulation_note(provenance)
    sections = []
    for page in pages:
        figs = "".join(
            f'<figure><a href="{esc(f)}"><img src="{esc(f)}" alt="{esc(Path(f).stem)}"></a>'
            f'<figcaption><a href="{esc(f)}">PNG</a> &middot; '
            f'<a href="{esc(str(Path(f).with_suffix(".svg")))}">SVG</a> &middot; '
            f'<a href="{esc(str(Path(f).with_suffix(".pdf")))}">PDF</a></figcaption></figure>'
            for f in page["figures"])
        tables = " &middot; ".join(f'<a href="{esc(t)}">{esc(Path(t).stem)}</a>' for t in page["tables"])
        keys = page.get("key_figures", {})
        key_rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in keys.items())
        status = "" if page["ok"] else f'<p class="simulation">This page failed to render: {esc(page["error"])}</p>'
        sections.append(
            f'<section><h2><a href="{esc(page["html"])}">{esc(page["title"])}</a></h2>{status}'
            f'<p><a href="{esc(page["html"])}">page</a> &middot; <a href="{esc(page["ipynb"])}">executed notebook</a>'
            '</p>'
            f'<div class="figs">{figs}</div>'
            + (f"<p>Tables (CSV): {tables}</p>" if tables else "")
            + (f'<details><summary>Key figures</summary><table class="report-table">{key_rows}</table></details>'
               if key_rows else "")
            + "</section>")
    body = (
        f"<h1>MTA-STS Observatory report, {esc(month)}</h1>{sim}"
        f'<div class="provenance"><p>Report tool version {esc(provenance.get("report_tool_version"))};'
        f" current crawl run <code>{esc(provenance.get('current_run') or 'none')}</code>.</p>"
        f"{provenance_lists(provenance)}"
        '<p><a href="key_figures.json">key figures (JSON)</a> &middot; '
        '<a href="provenance.json">provenance (JSON)</a> &middot; '
        '<a href="paper/CITATION.md">for papers: figures (PDF), tables (CSV, LaTeX), how to cite</a></p></div>'
        + "".join(sections))
    return shell(f"MTA-STS Observatory report {month}", body, back_link=False)


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
