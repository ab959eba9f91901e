"""Shared pieces of the command line: the user-error type and common options."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import duckdb

from collectors.store import DEFAULT_DB_PATH, SchemaError, Store, is_month, open_store




class CliError(Exception):
    """A user's mistake or an unusable input: printed as one line, exit code 2."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=os.environ.get("MTASTS_DB", str(DEFAULT_DB_PATH)),
        metavar="PATH",
        help="DuckDB database file (default: $MTASTS_DB or %(default)s)",
    )


def open_db(path: str, *, must_exist: bool = False, read_only: bool = False) -> Store:
    """Open the store for a command, turning every failure into a one-line CliError."""
    if must_exist and not Path(path).exists():
        raise CliError(f"no database at {path} (create one with 'mtasts db init --db {path}')")
    try:
        return open_store(path, migrate=not read_only, read_only=read_only)
    except SchemaError as exc:
        raise CliError(str(exc)) from exc
    except duckdb.IOException as exc:
        raise CliError(f"cannot open database {path}: {str(exc).splitlines()[0]}") from exc
    except duckdb.Error as exc:
        raise CliError(f"database {path} is not usable: {str(exc).splitlines()[0]}") from exc


def existing_file(value: str) -> Path:
    """argparse type: a readable regular file."""
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"is a directory, not a file: {value}")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot read: {value}")
    return path


def month_arg(value: str) -> str:
    """argparse type: a month as YYYY-MM (two-digit month)."""
    if not is_month(value):
        raise argparse.ArgumentTypeError(f"month must be YYYY-MM, not {value!r}")
    return value
