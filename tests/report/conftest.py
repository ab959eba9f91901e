"""Report fixtures: each notebook runs once per database (papermill kernels are slow
to start), session-scoped; the tests then read the rendered folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from report_fixture import build_crawl_db  # noqa: E402

SAMPLE_NOTE = "Synthetic observations for the report tests."


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """Two synthetic crawl runs and lab tables, passed through the sample format
    (write_sample, import_sample) and rendered once as a local simulation."""
    from collectors.report import import_sample, render_report, write_sample

    root = tmp_path_factory.mktemp("report")
    built = build_crawl_db(root / "built.duckdb", n=2000, runs=2)
    write_sample(root / "built.duckdb", root / "sample", produced_by="tests/report",
                 description=SAMPLE_NOTE, details={"fixture": "report_fixture"})
    db = root / "imported.duckdb"
    meta = import_sample(db, root / "sample")
    result = render_report(db, root / "reports", local_simulation=True, data_note=SAMPLE_NOTE)
    return {"db": db, "result": result, "out": result.out_dir, "meta": meta, **built}
