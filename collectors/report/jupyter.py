"""SQL cells and interactive tables for the tutorial: jupysql's ``%sql`` on a DuckDB connection.

jupysql talks to the DuckDB connection the page already holds (no second
connection, no SQLAlchemy URL). It comes with ploomber's usage statistics and
version check, which would call out to the internet: both are switched off here,
before the extension loads, because this project sends nothing anywhere.
"""

from __future__ import annotations

import os
from typing import Any

# ploomber-core (a jupysql dependency) reads these before any telemetry or version check.
_QUIET_ENV = {"PLOOMBER_STATS_ENABLED": "false", "PLOOMBER_VERSION_CHECK_DISABLED": "true"}


def enable_sql_cells(con: Any, alias: str = "observatory") -> None:
    """Load ``%sql``/``%%sql`` in this kernel on ``con``; a query's result is a DataFrame.

    ``%sql df << SELECT ...`` keeps the result as ``df``; ``{{name}}`` substitutes a
    Python variable (jupysql's templating), ``:name`` binds it as a parameter.
    """
    from IPython import get_ipython
    from IPython.utils.capture import capture_output

    os.environ.update(_QUIET_ENV)
    shell = get_ipython()
    if shell is None:
        raise RuntimeError("SQL cells need an IPython kernel (JupyterLab, nbconvert, papermill)")
    with capture_output():  # its tips about configuration files, not about the data
        shell.run_line_magic("load_ext", "sql")
    shell.run_line_magic("config", "SqlMagic.autopandas = True")
    shell.run_line_magic("config", "SqlMagic.displaycon = False")
    shell.run_line_magic("config", "SqlMagic.feedback = 0")
    shell.user_ns[f"_{alias}_con"] = con
    shell.run_line_magic("sql", f"_{alias}_con --alias {alias}")


def enable_interactive_tables() -> None:
    """Show DataFrames as searchable, sortable tables (itables), with the JavaScript
    bundled in the notebook so it works offline and in the exported HTML."""
    import itables

    itables.init_notebook_mode(connected=False)
