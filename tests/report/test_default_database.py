"""A student's first run: notebooks opened without a database (JupyterLab's working
directory is notebooks/) find the repository's database, else the embedded sample,
materialised once as data/sample.duckdb and rebuilt when data/sample/ changes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from collectors.report import NOTEBOOKS, SampleError, default_database, materialise_sample
from collectors.report.database import OBSERVATORY_DB, SAMPLE_DB
from collectors.report.sample import SAMPLE_DIR
from support import REPO_ROOT


def test_sample_is_materialised_once_and_rebuilt_when_it_changes(tmp_path):
    sample = tmp_path / "sample"
    shutil.copytree(SAMPLE_DIR, sample)
    db = tmp_path / "out" / "sample.duckdb"
    assert materialise_sample(db, sample) is True
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM posture").fetchone()[0] > 0  # views re-created
    con.close()
    assert materialise_sample(db, sample) is False          # up to date: not rebuilt
    later = db.stat().st_mtime + 10
    os.utime(sample / "metadata.json", (later, later))      # data/sample/ changed
    assert materialise_sample(db, sample) is True
    assert not [p.name for p in db.parent.iterdir() if p.name.endswith((".new", ".wal"))]


def test_no_sample_is_a_clear_error(tmp_path):
    with pytest.raises(SampleError, match="no embedded sample"):
        materialise_sample(tmp_path / "x.duckdb", tmp_path / "nothing")
    assert not (tmp_path / "x.duckdb").exists()


def test_default_database_is_resolved_from_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # like JupyterLab in notebooks/: the working directory does not matter
    named = default_database({"MTASTS_DB": "data/mine.duckdb"})
    assert named.path == REPO_ROOT / "data" / "mine.duckdb" and not named.local_simulation
    assert default_database({"MTASTS_DB": str(tmp_path / "a.duckdb")}).path == tmp_path / "a.duckdb"
    if OBSERVATORY_DB.exists():
        pytest.skip("this checkout has its own data/observatory.duckdb, which is the default")
    default = default_database({})
    assert default.path == SAMPLE_DB and SAMPLE_DB.is_file()
    assert default.local_simulation and "Produced by" in default.data_note


@pytest.mark.slow
def test_every_notebook_runs_from_notebooks_with_no_parameter(tmp_path):
    """What a student does in JupyterLab: open a notebook and run all (no papermill parameters)."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    if OBSERVATORY_DB.exists():
        pytest.skip("this checkout has its own data/observatory.duckdb, which is the default")
    env_db = os.environ.pop("MTASTS_DB", None)
    try:
        for name in (*NOTEBOOKS, "tutorial"):
            source = REPO_ROOT / "notebooks" / f"{name}.py"
            if not source.exists():
                continue
            nb = jupytext.read(source)
            if name == "explore":  # a student moves the rank slider: the table follows
                nb.cells.append(nbformat.v4.new_code_cell("top.value = 100"))
            NotebookClient(nb, timeout=300, kernel_name="python3",
                           resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}}).execute()
            errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
            assert not errors, (name, errors)
            html = "".join(str(o.get("data", {}).get("text/html", "")) for c in nb.cells
                           for o in c.get("outputs", []))
            assert "Local simulation" in html, name
            if name == "explore":
                _assert_filter_follows_the_widgets(nb)
    finally:
        if env_db is not None:
            os.environ["MTASTS_DB"] = env_db


def _assert_filter_follows_the_widgets(nb) -> None:
    """The filter table is one output, updated in place when a widget changes (a display
    handle: no Output widget, whose mimic in headless runners can stall a cell until its
    timeout, nbclient issue 312), and shows the slider's rank bound."""
    tables = [str(o["data"]["text/html"]) for c in nb.cells for o in c.get("outputs", [])
              if "explore_filtered" in str(o.get("data", {}).get("text/html", ""))]
    assert len(tables) == 1, len(tables)
    assert 1 < tables[0].count("<tr") <= 1 + 100   # a header and at most the top 100 ranks
    assert "OutputModel" not in json.dumps(nb.metadata.get("widgets", {}))


def test_tutorial_is_paired_without_outputs_and_asks_ten_questions():
    import jupytext
    import nbformat

    text = jupytext.read(REPO_ROOT / "notebooks" / "tutorial.py")
    stored = nbformat.read(REPO_ROOT / "notebooks" / "tutorial.ipynb", as_version=4)
    assert [c.source for c in stored.cells] == [c.source for c in text.cells]
    assert all(c.outputs == [] for c in stored.cells if c.cell_type == "code")
    questions = [c for c in text.cells if c.cell_type == "markdown" and c.source.startswith("## ")]
    assert len(questions) == 10
    sql_cells = [c for c in text.cells if c.source.startswith("%%sql ")]
    assert len(sql_cells) == 10


def test_make_lab_materialises_the_sample_and_runs_as_root_too():
    import subprocess

    done = subprocess.run(["make", "-n", "lab"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    sample = next(i for i, line in enumerate(lines) if line.endswith("mtasts db sample"))
    lab = next(i for i, line in enumerate(lines) if "jupyter lab --notebook-dir=notebooks" in line)
    assert sample < lab
    assert ("--allow-root" in lines[lab]) == (os.geteuid() == 0)
