"""Reports: the notebooks rendered through papermill into ``reports/<month>/``.

Public API for notebooks: :class:`ReportContext` (runs, SQL, escaped tables,
figures, key figures), :mod:`reference` (published figures with citations)
and :mod:`escape`. For ``mtasts report`` and ``make sample``:
:func:`render_report`, :func:`write_sample`, :func:`import_sample`; for ``make lab``
and notebooks opened without a database: :func:`default_database`, :func:`materialise_sample`.
"""

from collectors.report import escape, reference
from collectors.report.context import ReportContext
from collectors.report.database import DefaultDatabase, default_database, materialise_sample
from collectors.report.sample import SampleError, import_sample, read_metadata, write_sample

__all__ = [
    "NOTEBOOKS",
    "DefaultDatabase",
    "ReportContext",
    "SampleError",
    "default_database",
    "escape",
    "import_sample",
    "materialise_sample",
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
