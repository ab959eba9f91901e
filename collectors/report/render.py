"""Render the notebooks through papermill into ``<out>/<month>/``, with an index.

Each notebook is read from its reviewed text form (``notebooks/<name>.py``,
jupytext percent format), executed with its parameters, saved executed
(``<name>.ipynb``), exported to HTML with the code hidden (``<name>.html``),
and leaves its figures (PNG, SVG, PDF), tables (CSV) and key figures (JSON)
under the month's folder; ``paper/`` gets the PDFs, the LaTeX tables and a
CITATION.md. ``index.html`` links everything and carries the provenance. A
failing notebook is reported in the result, not raised. Nothing that changes
between two renders of the same database is written (run times, random ids).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from collectors import REPO_ROOT
from collectors.report import NOTEBOOKS
from collectors.report.context import ReportContext, write_posture_cache
from collectors.report.page import index_page, shell, write_json
from collectors.report.paper import write_citation

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
TITLES = {
    "adoption": "MTA-STS adoption",
    "providers": "Provider behaviour",
    "notifications": "What users were told",
    "explore": "Explore the data",
}


@dataclass(frozen=True)
class PageResult:
    """One rendered notebook: where its files are and whether it ran to the end."""

    name: str
    ok: bool
    seconds: float
    error: str = ""
    figures: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    key_figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    month: str
    pages: tuple[PageResult, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.pages)


# What papermill and nbclient stamp into an executed notebook that changes on every run.
_VOLATILE = ("start_time", "end_time", "duration", "exception", "input_path", "output_path")


def _strip_volatile(executed: Path) -> None:
    """Drop run times and random cell ids from the executed notebook: the same database gives
    the same bytes."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
        if "injected-parameters" in cell.metadata.get("tags", []):  # a temporary file, gone by now
            cell.source = "\n".join(line for line in cell.source.splitlines()
                                    if not line.startswith("posture_cache = "))
    nb.metadata.get("papermill", {}).get("parameters", {}).pop("posture_cache", None)
    for meta in [nb.metadata, *(c.metadata for c in nb.cells)]:
        for key in _VOLATILE:
            meta.get("papermill", {}).pop(key, None)
        meta.pop("execution", None)
    nbformat.write(nb, executed)


def _page_files(out: Path, name: str, pattern: str) -> tuple[str, ...]:
    return tuple(sorted(str(p.relative_to(out)) for p in out.glob(pattern.format(name=name))))


def _clear_page(out: Path, name: str) -> None:
    """Remove one notebook's previous artefacts (the other pages' stay)."""
    for pattern in ("figures/{name}_*", "tables/{name}_*", "json/{name}_*", "paper/figures/{name}_*",
                    "paper/tables/{name}_*"):
        for path in out.glob(pattern.format(name=name)):
            path.unlink()


def _html_export(executed: Path, title: str) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    return shell(title, body)


def _execute(source: Path, executed: Path, parameters: dict[str, Any], kernel_name: str, cwd: Path) -> str:
    """Run one notebook; returns '' or the error's first line (the notebook is saved either way)."""
    import jupytext
    import papermill
    from traitlets.config import Config

    notebook = jupytext.read(source)
    # CurveZMQ keys for the kernel's local TCP sockets when its kernelspec supports them
    # (ipykernel's does): encrypted, and no "running over TCP without encryption" warning.
    kernel_config = Config({"KernelManager": {"transport_encryption": "auto"}})
    try:
        papermill.execute_notebook(
            notebook, str(executed), parameters=parameters, kernel_name=kernel_name,
            cwd=str(cwd), progress_bar=False, log_output=False, report_mode=False,
            config=kernel_config)
    except papermill.PapermillExecutionError as exc:
        return f"{exc.ename}: {exc.evalue}".splitlines()[0]
    return ""


def _render_page(name: str, out: Path, params: dict[str, Any], notebooks_dir: Path,
                 kernel_name: str) -> PageResult:
    """Run one notebook into ``out`` and export its HTML page."""
    t0 = time.perf_counter()
    _clear_page(out, name)
    executed = out / f"{name}.ipynb"
    error = _execute(notebooks_dir / f"{name}.py", executed, params, kernel_name, out)
    if executed.exists():
        _strip_volatile(executed)
        (out / f"{name}.html").write_text(_html_export(executed, TITLES.get(name, name)), encoding="utf-8")
    return _page_from_disk(out, name, ok=not error, error=error, seconds=time.perf_counter() - t0)


def _page_from_disk(out: Path, name: str, *, ok: bool, error: str = "", seconds: float = 0.0) -> PageResult:
    keys_file = out / "json" / f"{name}_key_figures.json"
    keys = json.loads(keys_file.read_text(encoding="utf-8")) if keys_file.exists() else {}
    return PageResult(name=name, ok=ok, seconds=seconds, error=error,
                      figures=_page_files(out, name, "figures/{name}_*.png"),
                      tables=_page_files(out, name, "tables/{name}_*.csv"), key_figures=keys)


def _render_pages(out: Path, params: dict[str, Any], notebooks: Sequence[str], notebooks_dir: Path,
                  kernel_name: str, log: Callable[[str], None] | None) -> list[PageResult]:
    """The asked notebooks rendered, the others read back from an earlier render, in index order."""
    pages = []
    for name in NOTEBOOKS:
        if name in notebooks:
            page = _render_page(name, out, params, notebooks_dir, kernel_name)
            if log:
                log(f"{name}: {'ok' if page.ok else 'FAILED: ' + page.error} in {page.seconds:.1f} s")
        elif (out / f"{name}.html").exists():
            page = _page_from_disk(out, name, ok=True)
        else:
            continue
        pages.append(page)
    return pages


def render_report(
    db_path: str | os.PathLike[str],
    out_root: str | os.PathLike[str] = "reports",
    *,
    month: str = "",
    run_ids: Sequence[str] = (),
    lab_id: str = "",
    rank_buckets: Sequence[int] = (1000, 10_000, 100_000, 1_000_000),
    local_simulation: bool = False,
    data_note: str = "",
    db_label: str = "",
    notebooks: Sequence[str] = NOTEBOOKS,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    kernel_name: str = "python3",
    log: Callable[[str], None] | None = None,
) -> ReportResult:
    """Render ``notebooks`` on ``db_path`` into ``out_root/<month>/`` and write the index and the
    paper folder. Pages not asked for keep their files from an earlier render."""
    started = time.perf_counter()
    params = {"db_path": os.path.abspath(db_path), "run_ids": list(run_ids), "month": month,
              "rank_buckets": [int(b) for b in rank_buckets], "lab_id": lab_id,
              "local_simulation": bool(local_simulation), "data_note": data_note, "db_label": db_label}
    probe = ReportContext.from_parameters("index", params, materialise="none")
    month, provenance, run_ids_chosen = probe.month, probe.provenance(), probe.run_ids
    probe.con.close()
    out = Path(out_root) / month
    out.mkdir(parents=True, exist_ok=True)
    params["output_dir"] = str(out.resolve())
    with tempfile.TemporaryDirectory(prefix="mtasts-report-cache-") as tmp:
        cache = Path(tmp) / "posture.duckdb"
        t0 = time.perf_counter()
        if write_posture_cache(params["db_path"], run_ids_chosen, cache):
            params["posture_cache"] = str(cache)
            if log:
                log(f"posture of {len(run_ids_chosen)} crawl run(s) computed once in {time.perf_counter() - t0:.1f} s")
        pages = _render_pages(out, params, notebooks, notebooks_dir, kernel_name, log)
    write_json(out / "key_figures.json", {p.name: p.key_figures for p in pages})
    write_json(out / "provenance.json", provenance)
    write_citation(out / "paper", provenance)
    index = index_page(month, [
        {"title": TITLES.get(p.name, p.name), "html": f"{p.name}.html", "ipynb": f"{p.name}.ipynb",
         "ok": p.ok, "error": p.error, "figures": list(p.figures),
         "tables": list(p.tables), "key_figures": p.key_figures} for p in pages], provenance)
    (out / "index.html").write_text(index, encoding="utf-8")
    return ReportResult(out, month, tuple(p for p in pages if p.name in notebooks),
                        time.perf_counter() - started)
