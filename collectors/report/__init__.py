"""Reports: the notebooks rendered through papermill into ``reports/<month>/``.

Public API for notebooks: :class:`ReportContext` (runs, SQL, escaped tables,
figures, key figures, provenance), :mod:`charts` (the figures), :mod:`compare`
(ours beside the published tables), :mod:`stats` (Wilson intervals),
:mod:`reference` (published figures with citations) and :mod:`escape`. For ``mtasts report`` and ``make sample``:
:func:`render_report`, :func:`write_sample`, :func:`import_sample`.
"""

from collectors.report import charts, compare, escape, reference, stats
from collectors.report.context import ReportContext
from collectors.report.sample import SampleError, import_sample, read_metadata, write_sample

__all__ = [
    "NOTEBOOKS",
    "ReportContext",
    "SampleError",
    "charts",
    "compare",
    "escape",
    "import_sample",
    "read_metadata",
    "reference",
    "render_report",
    "stats",
    "write_sample",
]

# The notebooks a report renders, in the order the index lists them.
NOTEBOOKS = ("adoption", "providers", "notifications", "explore")


def render_report(*args, **kwargs):  # noqa: D401 - thin lazy import (papermill is heavy)
    """See :func:`collectors.report.render.render_report`."""
    from collectors.report.render import render_report as _render

    return _render(*args, **kwargs)
