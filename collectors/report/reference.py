"""Published figures from ``data/reference/``, always handed out with their citation.

These numbers are never inputs to a measurement: notebooks show them beside
ours, and print the citation under every table or figure that uses them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from collectors import REPO_ROOT

REFERENCE_DIR = REPO_ROOT / "data" / "reference"


@dataclass(frozen=True)
class Reference:
    """A published table and where it comes from."""

    name: str
    table: pd.DataFrame
    citation: str


def citations(reference_dir: Path = REFERENCE_DIR) -> dict[str, str]:
    """File name -> citation, from ``sources.csv``."""
    with open(reference_dir / "sources.csv", newline="", encoding="utf-8") as fh:
        return {row["file"]: row["citation"] for row in csv.DictReader(fh)}


def load(name: str, reference_dir: Path = REFERENCE_DIR) -> Reference:
    """One reference table by name (with or without ``.csv``) and its citation."""
    file = name if name.endswith(".csv") else f"{name}.csv"
    cites = citations(reference_dir)
    if file not in cites:
        raise KeyError(f"{file} has no citation in {reference_dir / 'sources.csv'}")
    table = pd.read_csv(reference_dir / file, dtype=str, keep_default_na=False)
    return Reference(file.removesuffix(".csv"), table, cites[file])
