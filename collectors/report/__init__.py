"""Reports: the notebooks rendered through papermill into ``reports/<month>/``.

Public API for notebooks: :class:`ReportContext` (runs, SQL, escaped tables,
figures, key figures, provenance), :mod:`charts` (the figures), :mod:`compare`
(ours beside the published tables), :mod:`stats` (Wilson intervals), :mod:`reference`
(published figures with citations) and :mod:`escape`, :func:`data_dictionary`. For
``mtasts report`` and ``make sample``: :func:`render_report` (the ``NOTEBOOKS``, in index
order), :func:`write_sample`, :func:`import_sample` (``SAMPLE_DIR``: the embedded sample); for
``make lab`` and notebooks opened without a database: :func:`default_database`,
:func:`materialise_sample` (into ``SAMPLE_DB``); for students' notebooks: :func:`enable_sql_cells`,
:func:`enable_interactive_tables`.
"""

from collectors.report import charts, compare, escape, reference, stats
from collectors.report.context import ReportContext
from collectors.report.database import SAMPLE_DB, DefaultDatabase, default_database, materialise_sample
from collectors.report.dictionary import data_dictionary, dictionary_markdown, show_dictionary
from collectors.report.jupyter import enable_interactive_tables, enable_sql_cells
from collectors.report.sample import SAMPLE_DIR, SampleError, import_sample, read_metadata, write_sample

__all__ = [
    "NOTEBOOKS",
    "DefaultDatabase",
    "ReportContext",
    "SAMPLE_DB",
    "SAMPLE_DIR",
    "SampleError",
    "charts",
    "compare",
    "data_dictionary",
    "default_database",
    "dictionary_markdown",
    "enable_interactive_tables",
    "enable_sql_cells",
    "escape",
    "import_sample",
    "materialise_sample",
    "read_metadata",
    "reference",
    "render_report",
    "show_dictionary",
    "stats",
    "write_sample",
]

# The notebooks a report renders, in the order the index lists them.
NOTEBOOKS = ("adoption", "providers", "notifications", "explore")


def render_report(*args, **kwargs):  # noqa: D401 - thin lazy import (papermill is heavy)
    """See :func:`collectors.report.render.render_report`."""
    from collectors.report.render import render_report as _render

    return _render(*args, **kwargs)
