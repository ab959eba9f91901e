"""``mtasts report``: render the notebooks into reports/ (not defined yet)."""

from __future__ import annotations

import argparse

from collectors.cli.common import CliError, add_db_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render the study's report (not defined yet)",
                       description="Render every notebook through papermill into reports/<month>/.")
    add_db_option(p)
    p.add_argument("--month", metavar="YYYY-MM", help="the month to report")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    raise CliError(
        "no report is defined yet: the notebooks and 'mtasts report' come with the "
        "reports issue; nothing was rendered",
        exit_code=3,
    )
