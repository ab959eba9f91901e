"""lab_ingest's public surface: a small ``__all__`` (as httpx's ``test_exported_members``),
and nothing outside the package imports anything else of it."""

from __future__ import annotations

import ast

import collectors.lab_ingest as lab_ingest
from support import REPO_ROOT


def test_exported_members() -> None:
    assert lab_ingest.__all__ == sorted(lab_ingest.__all__)
    for name in lab_ingest.__all__:
        member = getattr(lab_ingest, name)
        assert not name.startswith("_")
        module = getattr(member, "__module__", None)
        if module is not None and not isinstance(member, (tuple, bool, str)):
            assert module.startswith("collectors.lab_ingest."), (name, module)


def test_outside_the_package_only_public_names_are_imported() -> None:
    """Code, benchmarks, scripts and notebooks (and the tests of other packages) import
    ``from collectors.lab_ingest import <a name in __all__>``, never a module inside it."""
    roots = [REPO_ROOT / d for d in ("collectors", "benchmarks", "scripts", "notebooks", "tests")]
    offenders = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            inside = (REPO_ROOT / "collectors" / "lab_ingest") in path.parents or \
                (REPO_ROOT / "tests" / "lab_ingest") in path.parents
            if inside:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    if node.module.startswith("collectors.lab_ingest."):
                        offenders.append((str(path.relative_to(REPO_ROOT)), node.module))
                    elif node.module == "collectors.lab_ingest":
                        offenders += [(str(path.relative_to(REPO_ROOT)), a.name) for a in node.names
                                      if a.name not in lab_ingest.__all__]
                elif isinstance(node, ast.Import):
                    offenders += [(str(path.relative_to(REPO_ROOT)), a.name) for a in node.names
                                  if a.name.startswith("collectors.lab_ingest.")]
    assert not offenders
