"""What a notebook needs from the report: chosen runs, SQL, escaped tables, saved figures.

A notebook opens one :class:`ReportContext` with :meth:`from_parameters` and
then only calls :meth:`sql`, :meth:`table`, :meth:`figure`, :meth:`empty`,
:meth:`key` and :meth:`quote`. The context owns the things every page must get
right: provenance on top, every remote string escaped, every table also written
as CSV (and LaTeX for papers), every figure reviewed, footed and saved as PNG,
SVG and PDF, and the key figures as JSON for the tests.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import duckdb
import pandas as pd

from collectors import REPO_ROOT
from collectors.report.database import default_database
from collectors.report.escape import esc, html_table, quote
from collectors.report.figures import Footer, add_footer, review, save
from collectors.report.page import provenance_box, write_json
from collectors.report.paper import write_paper_table
from collectors.report.provenance import build_provenance, lab_timers, relative_db_path, simulation_reasons
from collectors.store import is_month

_NAME = re.compile(r"^[a-z0-9_]+$")
LAB_RUN_KINDS = ("ingest", "lab", "sample")

# The lab ingest's views (collectors/store/views/020_lab.sql) as the notebooks
# name them: the one place to adapt if a name changes.
LAB_VIEWS = {
    "deliveries": "lab_deliveries",
    "behaviour": "provider_behaviour",
    "timing": "notification_timing",
    "notices": "report_lab_notices",
}



def _display(obj: Any, handle: Any = None) -> None:
    """Show ``obj`` as a new output, or in place of what ``handle`` (an IPython display
    handle) shows."""
    if handle is not None:
        handle.update(obj)
        return
    try:
        from IPython.display import display
    except ImportError:  # outside Jupyter: nothing to show
        return
    display(obj)


def _html(markup: str) -> Any:
    from IPython.display import HTML

    return HTML(markup)


def _png(path: Path, width: int) -> Any:
    """The saved 200 dpi PNG itself, shown at the figure's size (the page shows the file)."""
    from IPython.display import Image

    return Image(filename=str(path), width=width)


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """[first instant, first instant of the next month) in UTC."""
    year, mon = (int(x) for x in month.split("-"))
    start = dt.datetime(year, mon, 1, tzinfo=dt.timezone.utc)
    end = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=dt.timezone.utc)
    return start, end


def _crawl_runs(con: duckdb.DuckDBPyConnection, db_path: str, run_ids: Sequence[str],
                month: str) -> tuple[pd.DataFrame, str]:
    """The chosen crawl runs (oldest first) and the report month (default: the newest run's)."""
    runs = con.execute(
        "SELECT run_id, started_at, finished_at, status, input_list, tool_version,"
        " CAST(inputs AS VARCHAR) AS inputs, CAST(parameters AS VARCHAR) AS parameters"
        " FROM runs WHERE kind = 'crawl' ORDER BY started_at, run_id").df()
    if run_ids:
        unknown = sorted(set(run_ids) - set(runs["run_id"]))
        if unknown:
            raise ValueError(f"no crawl run {', '.join(unknown)} in {db_path}")
        runs = runs[runs["run_id"].isin(list(run_ids))]
    else:
        runs = runs[runs["status"] == "finished"]
    if not month:  # the newest crawl run's month; without one, the newest run of any kind
        newest = runs["started_at"].max() if len(runs) else con.execute("SELECT max(started_at) FROM runs").fetchone()[0]
        month = (pd.Timestamp(newest).tz_convert("UTC") if newest is not None and not pd.isna(newest)
                 else pd.Timestamp.now(tz="UTC")).strftime("%Y-%m")
    if not run_ids:
        _, end = month_bounds(month)
        runs = runs[pd.to_datetime(runs["started_at"], utc=True) < pd.Timestamp(end)]
    return runs.reset_index(drop=True), month


# The papermill parameters every notebook declares (its ``parameters`` cell) and their defaults.
PARAMETERS: dict[str, Any] = {
    "db_path": "data/observatory.duckdb", "run_ids": [], "month": "",
    "rank_buckets": [1000, 10_000, 100_000, 1_000_000], "lab_id": "", "output_dir": "",
    "local_simulation": False, "data_note": "", "db_label": "", "posture_cache": "",
}
# DuckDB's memory per page, and for computing the posture cache once (it spills to disk
# beyond): the whole report stays under 8 GB (benchmarks/report_bench.py measures it).
MEMORY_LIMIT = "3GB"
CACHE_MEMORY_LIMIT = "6GB"


def _sql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def write_posture_cache(db_path: str, run_ids: Sequence[str], cache: Path) -> bool:
    """Compute the chosen runs' ``posture`` once into ``cache`` (a new DuckDB file) for every
    page of a report to read; False when the database has no crawl data to cache."""
    if not run_ids:
        return False
    # Row order inside the cache does not matter (every report query orders or aggregates):
    # not preserving it lets DuckDB write in parallel with less memory.
    con = duckdb.connect(str(cache), config={"memory_limit": CACHE_MEMORY_LIMIT,
                                             "preserve_insertion_order": False})
    try:
        con.execute(f"ATTACH {_sql_string(db_path)} AS src (READ_ONLY)")
        has = con.execute("SELECT count(*) FROM duckdb_views() WHERE database_name = 'src'"
                          " AND view_name = 'posture'").fetchall()[0][0]
        if not has:
            return False
        con.register("_report_runs", pd.DataFrame({"run_id": list(run_ids)}))
        con.execute("CREATE TABLE posture AS SELECT * FROM src.posture"
                    " WHERE run_id IN (SELECT run_id FROM _report_runs)")
        return True
    finally:
        con.close()


def resolve_db_path(db_path: str) -> str:
    """A notebook's database: absolute as given; a relative path that does not exist from
    the working directory (JupyterLab starts in notebooks/) is read from the repository root."""
    if not db_path:
        return ""  # the repository's default database (ReportContext.open)
    path = Path(db_path)
    if path.is_absolute() or path.exists():
        return str(path)
    return str(REPO_ROOT / path)


@dataclass
class ReportContext:
    """One notebook's view of the database and of the report folder."""

    con: duckdb.DuckDBPyConnection
    notebook: str
    db_path: str
    month: str
    crawl_runs: pd.DataFrame          # selected crawl runs, oldest first
    lab_runs: pd.DataFrame            # lab evidence (ingest, lab, sample) runs
    parameters: dict[str, Any]
    output_dir: Path | None
    local_simulation: bool = False
    data_note: str = ""
    rank_buckets: tuple[int, ...] = (1000, 10_000, 100_000, 1_000_000)
    lab_id: str = ""
    db_label: str = ""
    month_given: bool = False
    key_figures: dict[str, Any] = field(default_factory=dict)
    simulation_reasons: list[str] = field(default_factory=list)
    _provenance: dict[str, Any] | None = None
    _figure_checks: dict[str, Any] = field(default_factory=dict)

    # -- opening ----------------------------------------------------------
    @classmethod
    def from_parameters(cls, notebook: str, parameters: dict[str, Any], *,
                        materialise: str = "all") -> "ReportContext":
        """Open from a notebook's parameters (pass ``globals()``): the one place that reads
        them, fills defaults and resolves the default database relative to the repository."""
        p = {k: parameters.get(k, v) for k, v in PARAMETERS.items()}
        return cls.open(
            notebook, resolve_db_path(p["db_path"]), run_ids=p["run_ids"], month=p["month"],
            rank_buckets=p["rank_buckets"], lab_id=p["lab_id"], output_dir=p["output_dir"],
            local_simulation=p["local_simulation"], data_note=p["data_note"],
            db_label=p["db_label"], posture_cache=p["posture_cache"], materialise=materialise)

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
        db_label: str = "",
        posture_cache: str = "",
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
        ``posture_cache``: a DuckDB file holding those runs' posture, computed once for the
        whole report (:func:`write_posture_cache`); every page then reads it instead.
        With ``month`` given, the lab pages read only the test messages sent in it.
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
        con = duckdb.connect(str(db_path), read_only=True, config={"memory_limit": MEMORY_LIMIT})
        month_given = bool(month)
        runs, month = _crawl_runs(con, str(db_path), run_ids, month)
        lab_runs = con.execute(
            "SELECT run_id, kind, started_at, status, input_list, tool_version,"
            " CAST(inputs AS VARCHAR) AS inputs, CAST(parameters AS VARCHAR) AS parameters FROM runs"
            f" WHERE kind IN {LAB_RUN_KINDS} ORDER BY started_at, run_id").df()
        if lab_id:
            lab_runs = lab_runs[(lab_runs["run_id"] == lab_id) | (lab_runs["kind"] == "sample")]
            lab_runs = lab_runs.reset_index(drop=True)
        ctx = cls(
            con=con, notebook=notebook, db_path=str(db_path), month=month,
            crawl_runs=runs, lab_runs=lab_runs,
            parameters={"db_path": relative_db_path(str(db_path), db_label), "run_ids": list(run_ids),
                        "month": month, "rank_buckets": list(rank_buckets), "lab_id": lab_id},
            output_dir=Path(output_dir) if output_dir else None,
            local_simulation=local_simulation, data_note=data_note,
            rank_buckets=tuple(int(b) for b in rank_buckets), lab_id=lab_id, db_label=db_label,
            month_given=month_given,
        )
        ctx._decide_simulation()
        if month_given:
            ctx._restrict_lab_to_month()
        if posture_cache:
            ctx._read_posture_cache(posture_cache)
        elif materialise != "none":
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

    def _read_posture_cache(self, path: str) -> None:
        """A temporary view ``posture`` over the report's posture cache shadows the view."""
        self.con.execute(f"ATTACH {_sql_string(path)} AS report_cache (READ_ONLY)")
        self.con.execute("CREATE TEMP VIEW posture AS SELECT * FROM report_cache.posture")

    def _restrict_lab_to_month(self) -> None:
        """Lab pages for an asked month: a temporary ``lab_deliveries`` holding only the test
        messages sent in it shadows the view, so every lab view reads that month only."""
        if not self.has_relation("lab_deliveries"):
            return
        start, end = month_bounds(self.month)
        self.con.execute("CREATE TEMP TABLE lab_deliveries AS SELECT * FROM main.lab_deliveries"
                         " WHERE sent_at >= $s AND sent_at < $e", {"s": start, "e": end})

    def _decide_simulation(self) -> None:
        """Local simulation when the caller says so or the stored run metadata shows it."""
        runs = [*self.crawl_runs.assign(kind="crawl").to_dict("records"), *self.lab_runs.to_dict("records")]
        addresses: list[str] = []
        if self.has_relation("lab_deliveries"):
            addresses = [r[0] for r in self.con.execute(
                "SELECT DISTINCT address FROM main.lab_deliveries WHERE address IS NOT NULL LIMIT 1000"
            ).fetchall()]
        self.simulation_reasons = simulation_reasons(runs, addresses)
        self.local_simulation = bool(self.local_simulation or self.simulation_reasons)

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
    def lab_period(self) -> tuple[Any, Any, int]:
        """First and last send of the lab's test messages this page reads, and their number."""
        if not self.has_relation("lab_deliveries"):
            return None, None, 0
        row = self.con.execute("SELECT min(sent_at), max(sent_at), count(*) FROM lab_deliveries").fetchone()
        return row[0], row[1], int(row[2])

    def lab_period_text(self) -> str:
        """Which period the lab figures cover, in words."""
        first, last, n = self.lab_period()
        scope = (f"the test messages sent in {self.month}" if self.month_given
                 else "all lab evidence in the database (no --month asked)")
        if not n:
            return f"Lab pages cover {scope}: there are none."
        fmt = "%Y-%m-%d %H:%M UTC"
        return (f"Lab pages cover {scope}: {n:,} test messages sent "
                f"{pd.Timestamp(first).tz_convert('UTC').strftime(fmt)} to "
                f"{pd.Timestamp(last).tz_convert('UTC').strftime(fmt)}.")

    def timers(self) -> pd.DataFrame:
        """The lab senders' queue timers as stored with the runs' provenance (may be empty)."""
        rows = [vars(t) for t in lab_timers(self.lab_runs.to_dict("records"))]
        return pd.DataFrame(rows, columns=["profile", "name", "value", "run_id"])

    def provenance(self) -> dict[str, Any]:
        """Everything a reader needs to trace the page back to its data (cached per page)."""
        if self._provenance is None:
            self._provenance = build_provenance(self)
        return self._provenance

    def banner(self) -> None:
        """Show the provenance box every page starts with (and save it as JSON)."""
        p = self.provenance()
        _display(_html(provenance_box(p)))
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

    def footer(self, *, lab: bool = False, citation: str = "") -> Footer:
        """The footer of this page's figures: the run (or the lab period) and the simulation label."""
        if lab:
            first, last, _ = self.lab_period()
            runs = ", ".join(r for r, k in zip(self.lab_runs["run_id"], self.lab_runs["kind"]) if k != "sample")
            period = self.month if self.month_given else (
                f"{pd.Timestamp(first).tz_convert('UTC'):%Y-%m-%d}" if first is not None else self.month)
            source = f"lab evidence {runs or 'none'}, messages of {period}"
        else:
            source = f"crawl run {self.current_run or 'none'} (report month {self.month})"
        return Footer(source=f"MTA-STS Observatory \u00b7 {source}", simulation=self.local_simulation,
                      citation=citation)

    def table(self, df: pd.DataFrame, name: str, *, caption: str = "", citation: str = "",
              max_rows: int = 200, paper: bool = False, display: pd.DataFrame | None = None,
              handle: Any = None) -> None:
        """Show ``df`` (or its ``display`` form) escaped through pandas' Styler, and write ``df``
        whole as ``tables/<notebook>_<name>.csv``; with ``paper``, also as CSV and LaTeX
        (booktabs) under ``paper/tables/``. With ``handle`` (``display(..., display_id=True)``)
        the table replaces what that output shows, e.g. from a widget's callback."""
        path = self._path("tables", name, ".csv")
        if path is not None:
            df.to_csv(path, index=False)
            if paper:
                write_paper_table(df, self.output_dir / "paper" / "tables" / path.stem, caption, citation)
        markup = html_table(df if display is None else display, caption=caption, max_rows=max_rows,
                            table_id=f"{self.notebook}_{name}")
        if citation:
            markup += f'<p class="citation">Source: {esc(citation)}</p>'
        _display(_html(markup), handle)

    def figure(self, fig: Any, name: str, *, citation: str = "", lab: bool = False,
               caption: str = "") -> None:
        """Footer, then PNG (200 dpi), SVG and PDF under ``figures/`` (the PDF also under
        ``paper/figures/``); show it, and close it."""
        import matplotlib.pyplot as plt

        footer = self.footer(lab=lab, citation=citation)
        png = self._path("figures", name, ".png")
        if png is not None:
            add_footer(fig, footer)
            self._figure_checks[name] = review(fig)
            self._write_json("figure_checks", self._figure_checks)
            files = save(fig, png.with_suffix(""))
            paper = self.output_dir / "paper" / "figures"
            paper.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(files[2], paper / files[2].name)
            _display(_png(files[0], width=int(fig.get_size_inches()[0] * 100)))
        else:
            add_footer(fig, footer)
            _display(fig)
        plt.close(fig)
        if caption:
            _display(_html(f'<p class="caption">{esc(caption)}</p>'))
        if citation:
            _display(_html(f'<p class="citation">Source of the published figures: {esc(citation)}</p>'))

    def empty(self, what: str, why: str) -> None:
        """An empty section: say in words why there is no figure or table."""
        _display(_html(f'<p class="note empty"><strong>{esc(what)}:</strong> {esc(why)}</p>'))

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
