"""The ``mtasts`` command: the one place that wires collectors, store and reports together.

Each subcommand lives in its own module here with a ``register(subparsers)``
function; a user's mistake raises :class:`CliError` and becomes one line on
stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from collectors import __version__
from collectors.cli.common import CliError

__all__ = ["CliError", "build_parser", "main"]

# Subcommand modules, in the order --help lists them (the data flow).
_COMMAND_MODULES = (
    "collectors.cli.db",
    "collectors.cli.testbed",
    "collectors.cli.ingest",
    "collectors.cli.crawl",
    "collectors.cli.check",
    "collectors.cli.export",
    "collectors.cli.lab",
    "collectors.cli.report",
    "collectors.cli.monthly",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line plus a hint."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``mtasts`` parser with every subcommand registered, in data-flow order."""
    parser = _Parser(
        prog="mtasts",
        description=(
            "MTA-STS Observatory: crawl domain lists for their MTA-STS (RFC 8461) and "
            "TLS-RPT (RFC 8460) posture, ingest audit-lab evidence, and render reports."
        ),
        epilog="Run 'mtasts COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"mtasts {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _discard_stdout() -> None:
    """Point stdout at /dev/null so that Python's final flush meets no closed pipe either."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # not a file (main() called in-process)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mtasts`` with ``argv``; the exit status (a user's mistake: one line on stderr)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:  # the reader went away (e.g. '| head'): stop quietly
        _discard_stdout()
        return 0
    except CliError as exc:
        print(f"mtasts: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError) as exc:
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"mtasts: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mtasts: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
