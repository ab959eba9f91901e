"""Reports: the notebooks rendered through papermill into ``reports/<month>/``.

Public API for notebooks: :class:`ReportContext` (runs, SQL, escaped tables,
figures, key figures), :mod:`reference` (published figures with citations)
and :mod:`escape`, :func:`data_dictionary`. For ``mtasts report`` and ``make sample``:
:func:`render_report` (the ``NOTEBOOKS``, in index order), :func:`write_sample`,
:func:`import_sample` (``SAMPLE_DIR``: the embedded sample).
"""

from collectors.report import escape, reference
from collectors.report.context import ReportContext
from collectors.report.dictionary import data_dictionary
from collectors.report.sample import SAMPLE_DIR, SampleError, import_sample, read_metadata, write_sample

__all__ = [
    "NOTEBOOKS",
    "ReportContext",
    "SAMPLE_DIR",
    "SampleError",
    "data_dictionary",
    "escape",
    "import_sample",
    "read_metadata",
    "reference",
    "render_report",
    "write_sample",
]

# The notebooks a report renders, in the order the index lists them.
NOTEBOOKS = ("adoption", "providers", "notifications", "explore")


def render_report(*args, **kwargs):  # noqa: D401 - thin lazy import (papermill is heavy)
    """See :func:`collectors.report.render.render_report`."""
    from collectors.report.render import render_report as _render

    return _render(*args, **kwargs)
