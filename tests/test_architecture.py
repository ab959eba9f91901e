"""Dependencies point one way: the RFC core imports nothing of ours, the store knows no
collector, crawl and lab ingest never import each other, only the CLI wires pieces
together, and notebooks use public names only (no ``_private`` helpers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from support import REPO_ROOT

PACKAGE = REPO_ROOT / "collectors"

# What each subpackage may import from the project (itself always allowed).
ALLOWED = {
    "rfc": set(),
    "store": set(),
    "crawl": {"rfc", "store"},
    "lab_ingest": {"rfc", "store"},
    "testbed": {"rfc"},
    "lab": {"lab_ingest", "testbed", "store", "rfc"},
    "report": {"store"},
}


def _project_imports(path: Path) -> set[str]:
    """The ``collectors.<sub>`` subpackages a module imports (``collectors`` itself: '')."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "collectors":
                found.add(parts[1] if len(parts) > 1 else "")
    return found


@pytest.mark.parametrize("sub", sorted(ALLOWED))
def test_subpackage_imports_only_what_it_may(sub: str) -> None:
    allowed = ALLOWED[sub] | {sub, ""}      # '' = the package root (its __version__)
    offenders = {}
    for path in sorted((PACKAGE / sub).rglob("*.py")):
        bad = _project_imports(path) - allowed
        if bad:
            offenders[str(path.relative_to(REPO_ROOT))] = sorted(bad)
    assert not offenders, f"imports against the dependency rules: {offenders}"


def test_nothing_but_the_cli_imports_the_cli() -> None:
    offenders = [str(p.relative_to(REPO_ROOT)) for p in PACKAGE.rglob("*.py")
                 if "cli" in _project_imports(p) and p.parent.name != "cli"]
    assert not offenders


def test_notebooks_use_public_names_only() -> None:
    notebooks = sorted((REPO_ROOT / "notebooks").glob("*.py"))
    assert notebooks
    for path in notebooks:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("collectors"):
                assert not any(part.startswith("_") for part in node.module.split(".")), (path, node.module)
                assert not any(a.name.startswith("_") for a in node.names), (path, [a.name for a in node.names])
