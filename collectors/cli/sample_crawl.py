"""The crawl part of the embedded sample (``mtasts lab sample --only crawl``): twelve monthly
crawl runs of one evolving testbed population, each through the real testbed with
``--probe-smtp``, dated at the month it simulates, with the panel's sampling weights.

Also the step both parts share: starting the sample database from the committed sample
without the other part's rows, so the crawl part and the lab part are rebuilt separately.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any, Callable

import duckdb

MONTHS = 12
DAY_OF_MONTH = 1   # each simulated crawl is dated the first of its month (never after today)


def simulated_months(today: dt.date, months: int = MONTHS) -> list[dt.date]:
    """The first days of the ``months`` months ending with ``today``'s month, oldest first."""
    out = []
    year, month = today.year, today.month
    for _ in range(months):
        out.append(dt.date(year, month, DAY_OF_MONTH))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def drop_part(db: Path, part: str) -> int:
    """Delete the rows of one part from a sample database: ``crawl`` (crawl runs) or ``lab``
    (every other run, and lab_settings). Returns the number of runs removed."""
    con = duckdb.connect(str(db))
    try:
        where = "kind = 'crawl'" if part == "crawl" else "kind <> 'crawl'"
        runs = [r for (r,) in con.execute(f"SELECT run_id FROM runs WHERE {where}").fetchall()]
        tables = [t for (t,) in con.execute(
            "SELECT DISTINCT c.table_name FROM information_schema.columns c"
            " JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_type = 'BASE TABLE'"
            " WHERE c.column_name = 'run_id' AND c.table_name <> 'runs'").fetchall()]
        con.execute("BEGIN TRANSACTION")
        for table in tables:
            con.execute(f'DELETE FROM "{table}" WHERE run_id IN (SELECT run_id FROM runs WHERE {where})')
        if part == "lab":
            con.execute("DELETE FROM lab_settings")
        con.execute(f"DELETE FROM runs WHERE {where}")
        con.execute("COMMIT")
        return len(runs)
    finally:
        con.close()


def crawl_part(workdir: Path, db: Path, *, population: int, seed: int, mix: str,
               run_step: Callable[[list[str], str, Path], None],
               relative: Callable[[list[str], Path], list[str]]) -> dict[str, Any]:
    """Crawl months 0..11 of the population into ``db`` (in ``workdir``); the details for the metadata."""
    from collectors.testbed import Testbed, generate_population
    from collectors.testbed import planted_events
    from collectors.testbed import sampling_weights, write_weights

    cli = [sys.executable, "-m", "collectors.cli"]
    weights = workdir / "weights.csv"
    write_weights(sampling_weights(population, seed, mix), weights)
    days = simulated_months(dt.datetime.now(dt.timezone.utc).date())
    planted: dict[str, int] = {}
    for month, day in enumerate(days):
        scenario = generate_population(population, seed=seed, mix=mix, month=month)
        listing = workdir / "population.txt"
        listing.write_text("".join(f"{d.name}\n" for d in scenario.domains))
        for _, event in planted_events(population, seed, mix, month):
            planted[event] = planted.get(event, 0) + 1
        world = Testbed(scenario, workdir / "testbed", mode="netns", netns_name="mtasts-sample-tb").up()
        try:
            run_step(world.exec_prefix() + cli + [
                "crawl", listing.name, "--db", db.name, "--probe-smtp", "--no-progress",
                "--weights", weights.name, "--simulated-date", day.isoformat(),
                *relative(world.crawler_args(), workdir)], f"crawl month {month} ({day:%Y-%m})", workdir)
        finally:
            world.down()
    return {"population": population, "seed": seed, "mix": mix, "months": [d.isoformat() for d in days],
            "weights": "stratified: see data/sample/README.md", "planted_events": planted}
