"""What a notebook needs from the report: chosen runs, SQL, escaped tables, saved figures.

A notebook opens one :class:`ReportContext` from its papermill parameters and
then only calls :meth:`sql`, :meth:`table`, :meth:`figure`, :meth:`key` and
:meth:`quote`. The context owns the things every page must get right:
provenance on top, every remote string escaped, every table also written as
CSV, every figure as PNG and SVG, and the key figures as JSON for the tests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import duckdb
import pandas as pd

from collectors import __version__
from collectors.report.database import default_database
from collectors.report.escape import esc, html_table, quote
from collectors.report.page import provenance_lists, write_json
from collectors.store import is_month

_NAME = re.compile(r"^[a-z0-9_]+$")
LAB_RUN_KINDS = ("ingest", "lab")

# The lab ingest's views (collectors/store/views/020_lab.sql) as the notebooks
# name them: the one place to adapt if a name changes.
LAB_VIEWS = {
    "deliveries": "lab_deliveries",
    "behaviour": "provider_behaviour",
    "timing": "notification_timing",
    "notices": "report_lab_notices",
}



def _display(obj: Any) -> None:
    try:
        from IPython.display import display
    except ImportError:  # outside Jupyter: nothing to show
        return
    display(obj)


def _html(markup: str) -> Any:
    from IPython.display import HTML

    return HTML(markup)


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """[first instant, first instant of the next month) in UTC."""
    year, mon = (int(x) for x in month.split("-"))
    start = dt.datetime(year, mon, 1, tzinfo=dt.timezone.utc)
    end = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=dt.timezone.utc)
    return start, end


@dataclass
class ReportContext:
    """One notebook's view of the database and of the report folder."""

    con: duckdb.DuckDBPyConnection
    notebook: str
    db_path: str
    month: str
    crawl_runs: pd.DataFrame          # selected crawl runs, oldest first
    lab_runs: pd.DataFrame            # lab evidence (ingest) runs
    parameters: dict[str, Any]
    output_dir: Path | None
    local_simulation: bool = False
    data_note: str = ""
    rank_buckets: tuple[int, ...] = (1000, 10_000, 100_000, 1_000_000)
    lab_id: str = ""
    key_figures: dict[str, Any] = field(default_factory=dict)

    # -- opening ----------------------------------------------------------
    @classmethod
    def open(
        cls,
        notebook: str,
        db_path: str = "",
        *,
        run_ids: Sequence[str] = (),
        month: str = "",
        rank_buckets: Sequence[int] = (1000, 10_000, 100_000, 1_000_000),
        lab_id: str = "",
        output_dir: str = "",
        local_simulation: bool = False,
        data_note: str = "",
        materialise: str = "all",
    ) -> "ReportContext":
        """Open ``db_path`` read-only and choose the crawl runs the page reports on.

        An empty ``db_path`` means the repository's default database
        (:func:`collectors.report.database.default_database`; the sample is labelled
        a local simulation).

        Without ``run_ids``: every finished crawl run started before the end of
        ``month`` (default: the month of the newest one); the newest is the
        current run, older ones feed the trend and the lifecycle events.
        ``materialise``: compute the posture of ``"all"`` chosen runs once, of the
        ``"current"`` run only, or ``"none"`` (a page that reads no crawl data).
        """
        if materialise not in ("all", "current", "none"):
            raise ValueError(f"materialise is all, current or none, not {materialise!r}")
        if month and not is_month(month):
            raise ValueError(f"month must be YYYY-MM, not {month!r}")
        if not db_path:
            default = default_database()
            db_path, local_simulation = str(default.path), local_simulation or default.local_simulation
            data_note = data_note or default.data_note
        if not Path(db_path).is_file():
            raise FileNotFoundError(f"no database at {db_path}")
        con = duckdb.connect(str(db_path), read_only=True)
        runs = con.execute(
            "SELECT run_id, started_at, finished_at, status, input_list, tool_version,"
            " CAST(parameters AS VARCHAR) AS parameters FROM runs WHERE kind = 'crawl'"
            " ORDER BY started_at, run_id").df()
        if run_ids:
            unknown = sorted(set(run_ids) - set(runs["run_id"]))
            if unknown:
                raise ValueError(f"no crawl run {', '.join(unknown)} in {db_path}")
            runs = runs[runs["run_id"].isin(list(run_ids))]
        else:
            runs = runs[runs["status"] == "finished"]
        if not month:
            newest = runs["started_at"].max() if len(runs) else None
            month = (pd.Timestamp(newest).tz_convert("UTC") if newest is not None
                     else pd.Timestamp.now(tz="UTC")).strftime("%Y-%m")
        if not run_ids:
            _, end = month_bounds(month)
            runs = runs[pd.to_datetime(runs["started_at"], utc=True) < pd.Timestamp(end)]
        runs = runs.reset_index(drop=True)
        lab_runs = con.execute(
            "SELECT run_id, kind, started_at, status, input_list, tool_version FROM runs"
            f" WHERE kind IN {LAB_RUN_KINDS} ORDER BY started_at, run_id").df()
        if lab_id:
            lab_runs = lab_runs[lab_runs["run_id"] == lab_id].reset_index(drop=True)
        ctx = cls(
            con=con, notebook=notebook, db_path=str(db_path), month=month,
            crawl_runs=runs, lab_runs=lab_runs,
            parameters={"db_path": os.path.basename(str(db_path)), "run_ids": list(run_ids),
                        "month": month, "rank_buckets": list(rank_buckets), "lab_id": lab_id},
            output_dir=Path(output_dir) if output_dir else None,
            local_simulation=local_simulation, data_note=data_note,
            rank_buckets=tuple(int(b) for b in rank_buckets), lab_id=lab_id,
        )
        if materialise != "none":
            ctx._materialise_posture(ctx.run_ids if materialise == "all" else ctx.run_ids[-1:])
        return ctx

    def _materialise_posture(self, run_ids: list[str]) -> None:
        """Compute the chosen runs' ``posture`` rows once for this page.

        A temporary table named ``posture`` shadows the view (DuckDB resolves the
        temp schema first), so every report view reads these rows instead of
        re-deriving the verdicts from raw observations for each query.
        """
        if not self.has_relation("posture") or not run_ids:
            return
        self.con.register("_report_runs", pd.DataFrame({"run_id": run_ids}))
        self.con.execute(
            "CREATE TEMP TABLE posture AS SELECT * FROM main.posture"
            " WHERE run_id IN (SELECT run_id FROM _report_runs)")
        self.con.unregister("_report_runs")

    # -- the runs ---------------------------------------------------------
    @property
    def run_ids(self) -> list[str]:
        return list(self.crawl_runs["run_id"])

    @property
    def current_run(self) -> str | None:
        """The newest chosen crawl run: the one the month's figures describe."""
        return self.run_ids[-1] if self.run_ids else None

    @property
    def has_crawl(self) -> bool:
        return self.current_run is not None and self.has_relation("posture")

    def has_relation(self, name: str) -> bool:
        row = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = $n"
            " UNION ALL SELECT count(*) FROM duckdb_views() WHERE view_name = $n", {"n": name}
        ).fetchall()
        return sum(r[0] for r in row) > 0

    def lab(self, part: str) -> str | None:
        """The relation name of a lab view (``deliveries``, ``behaviour``, ``timing``,
        ``notices``), or None when this database has no such view or it is empty."""
        name = LAB_VIEWS[part]
        return name if self.has_rows(name) else None

    def has_rows(self, name: str) -> bool:
        return self.has_relation(name) and bool(
            self.con.execute(f'SELECT EXISTS (SELECT 1 FROM "{name}")').fetchone()[0])

    # -- queries ----------------------------------------------------------
    def sql(self, query: str, **params: Any) -> pd.DataFrame:
        """Run one query with ``$name`` parameters; the result as a DataFrame."""
        return self.con.execute(query, params or None).df()

    def scalar(self, query: str, **params: Any) -> Any:
        row = self.con.execute(query, params or None).fetchone()
        return None if row is None else row[0]

    # -- provenance -------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        """Everything a reader needs to trace the page back to its data."""
        runs = []
        for r in self.crawl_runs.itertuples():
            params = json.loads(r.parameters or "{}")
            runs.append({
                "run_id": r.run_id, "started_at": str(r.started_at), "status": r.status,
                "list": r.input_list,
                "list_date": str(params.get("list_date") or params.get("date") or ""),
                "tool_version": r.tool_version,
            })
        return {
            "notebook": self.notebook,
            "month": self.month,
            "current_run": self.current_run,
            "crawl_runs": runs,
            "lab_runs": [
                {"run_id": r.run_id, "kind": r.kind, "started_at": str(r.started_at),
                 "input": r.input_list, "tool_version": r.tool_version}
                for r in self.lab_runs.itertuples()
            ],
            "report_tool_version": __version__,
            "parameters": self.parameters,
            "local_simulation": self.local_simulation,
            "data_note": self.data_note,
        }

    def banner(self) -> None:
        """Show the provenance box every page starts with (and save it as JSON)."""
        p = self.provenance()
        sim = ""
        if self.local_simulation:
            sim = ('<p class="simulation"><strong>Local simulation.</strong> '
                   f"These figures come from a simulated internet on one machine, not from real "
                   f"domains or providers. {esc(self.data_note)}</p>")
        _display(_html(
            f'<div class="provenance">{sim}'
            f"<p><strong>Report month</strong> {esc(self.month)}; current crawl run "
            f"<code>{esc(self.current_run or 'none')}</code>; report tool version {esc(__version__)}.</p>"
            f"<details open><summary>Provenance</summary>{provenance_lists(p)}</details></div>"))
        self._write_json("provenance", p)

    # -- output -----------------------------------------------------------
    def _path(self, kind: str, name: str, suffix: str) -> Path | None:
        if not _NAME.match(name):
            raise ValueError(f"output names are lower-case words with underscores, not {name!r}")
        if self.output_dir is None:
            return None
        folder = self.output_dir / kind
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{self.notebook}_{name}{suffix}"

    def _write_json(self, name: str, payload: Any) -> None:
        path = self._path("json", name, ".json")
        if path is not None:
            write_json(path, payload)

    def table(self, df: pd.DataFrame, name: str, *, caption: str = "", citation: str = "",
              max_rows: int = 200) -> None:
        """Show ``df`` escaped, and write it whole as ``tables/<notebook>_<name>.csv``."""
        path = self._path("tables", name, ".csv")
        if path is not None:
            df.to_csv(path, index=False)
        markup = html_table(df, caption=caption, max_rows=max_rows)
        if citation:
            markup += f'<p class="citation">Source: {esc(citation)}</p>'
        _display(_html(markup))

    def figure(self, fig: Any, name: str, *, citation: str = "") -> None:
        """Save ``fig`` as PNG and SVG under ``figures/``, show it, and close it."""
        import matplotlib.pyplot as plt

        png = self._path("figures", name, ".png")
        if png is not None:
            fig.savefig(png, dpi=110, bbox_inches="tight")
            fig.savefig(png.with_suffix(".svg"), bbox_inches="tight")
        _display(fig)
        plt.close(fig)
        if citation:
            _display(_html(f'<p class="citation">Source of the published figures: {esc(citation)}</p>'))

    def key(self, name: str, value: Any) -> Any:
        """Record one key figure (checked by the tests against SQL) and return it."""
        if hasattr(value, "item"):
            value = value.item()
        self.key_figures[name] = value
        self._write_json("key_figures", self.key_figures)
        return value

    def quote(self, text: str, cite: str = "") -> None:
        """Show a remote text (notice, policy) as an escaped quotation."""
        _display(_html(quote(text, cite=cite)))

    def note(self, text: str) -> None:
        """A short plain-text remark (escaped), e.g. 'no lab evidence in this database'."""
        _display(_html(f'<p class="note">{esc(text)}</p>'))
