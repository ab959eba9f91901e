"""Render the notebooks through papermill into ``<out>/<month>/``, with an index.

Each notebook is read from its reviewed text form (``notebooks/<name>.py``,
jupytext percent format), executed with its parameters, saved executed
(``<name>.ipynb``), exported to HTML with the code hidden (``<name>.html``),
and leaves its figures (PNG and SVG), tables (CSV) and key figures (JSON)
under the month's folder. ``index.html`` links everything and carries the
provenance. A failing notebook is reported in the result, not raised.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from collectors import REPO_ROOT
from collectors.report import NOTEBOOKS
from collectors.report.context import ReportContext
from collectors.report.page import index_page, shell, write_json

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


def _parameters(db_path: str, out_dir: Path, month: str, run_ids: Sequence[str],
                rank_buckets: Sequence[int], lab_id: str, local_simulation: bool,
                data_note: str) -> dict[str, Any]:
    return {"db_path": str(db_path), "run_ids": list(run_ids), "month": month,
            "rank_buckets": [int(b) for b in rank_buckets], "lab_id": lab_id,
            "output_dir": str(out_dir), "local_simulation": bool(local_simulation),
            "data_note": data_note}


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
    notebooks: Sequence[str] = NOTEBOOKS,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    kernel_name: str = "python3",
    log: Callable[[str], None] | None = None,
) -> ReportResult:
    """Render every notebook on ``db_path`` into ``out_root/<month>/`` and write the index."""
    started = time.perf_counter()
    probe = ReportContext.open("index", str(db_path), run_ids=run_ids, month=month,
                               rank_buckets=rank_buckets, lab_id=lab_id,
                               local_simulation=local_simulation, data_note=data_note,
                               materialise="none")
    month = probe.month
    provenance = probe.provenance()
    probe.con.close()
    out = Path(out_root) / month
    for sub in ("figures", "tables", "json"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    params = _parameters(os.path.abspath(db_path), out.resolve(), month, run_ids, rank_buckets,
                         lab_id, local_simulation, data_note)
    pages = []
    for name in notebooks:
        t0 = time.perf_counter()
        executed = out / f"{name}.ipynb"
        error = _execute(notebooks_dir / f"{name}.py", executed, params, kernel_name, out)
        title = TITLES.get(name, name)
        if executed.exists():
            (out / f"{name}.html").write_text(_html_export(executed, title), encoding="utf-8")
        keys_file = out / "json" / f"{name}_key_figures.json"
        keys = json.loads(keys_file.read_text(encoding="utf-8")) if keys_file.exists() else {}
        page = PageResult(
            name=name, ok=not error, seconds=time.perf_counter() - t0, error=error,
            figures=tuple(sorted(str(p.relative_to(out)) for p in (out / "figures").glob(f"{name}_*.png"))),
            tables=tuple(sorted(str(p.relative_to(out)) for p in (out / "tables").glob(f"{name}_*.csv"))),
            key_figures=keys)
        pages.append(page)
        if log:
            log(f"{name}: {'ok' if page.ok else 'FAILED: ' + error} in {page.seconds:.1f} s")
    write_json(out / "key_figures.json", {p.name: p.key_figures for p in pages})
    write_json(out / "provenance.json", provenance)
    index = index_page(month, [
        {"title": TITLES.get(p.name, p.name), "html": f"{p.name}.html", "ipynb": f"{p.name}.ipynb",
         "ok": p.ok, "error": p.error, "seconds": p.seconds, "figures": list(p.figures),
         "tables": list(p.tables), "key_figures": p.key_figures} for p in pages], provenance)
    (out / "index.html").write_text(index, encoding="utf-8")
    return ReportResult(out, month, tuple(pages), time.perf_counter() - started)
