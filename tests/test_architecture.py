"""The dependency rule of README.md ("The dependency rule"), read from the README itself and
enforced on every module of collectors/, benchmarks/ and notebooks/: which package may import
which (``importlib.import_module`` and ``__import__`` count), only ``__all__`` names across
packages, imported from the package itself, and no ``_private`` name imported from another
module. Each package's ``__all__`` names exist and are documented (after httpx's
``test_exported_members``)."""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import REPO_ROOT, readme_table

PACKAGE = REPO_ROOT / "collectors"
PACKAGES = ("rfc", "store", "crawl", "lab_ingest", "testbed", "lab", "report", "cli")
# A compiled extension is private to its Python wrapper (the README's one exception).
PRIVATE_EXTENSIONS = {("collectors.lab_ingest.postfix_fast", "collectors.lab_ingest._postfix_fast")}
# Imports against the rule in files that the lab_ingest split of issue 12 rewrites (another
# change owns them): file -> what it still imports. Each must still be there, so this only
# shrinks; once a file is fixed, its entry goes.
PENDING = {
    "tests/lab_ingest/test_ingest_speed_paths.py": {"collectors.lab_ingest.postfix_envelope._CLASSIC_TAIL",
                                                    "collectors.lab_ingest.postfix_envelope._fraction"},
}


def _pending(path: Path, what: str) -> bool:
    """True for an offence listed in PENDING (``what``: a module, or module.name)."""
    return what in PENDING.get(str(path.relative_to(REPO_ROOT)), ())


def test_pending_offences_are_still_there() -> None:
    """An entry of PENDING that no longer offends must go (the list only shrinks)."""
    for rel, offences in PENDING.items():
        imports = _imports(REPO_ROOT / rel)
        seen = {i.module for i in imports} | {f"{i.module}.{n}" for i in imports for n in i.names}
        assert offences <= seen, f"{rel}: {sorted(offences - seen)} fixed: remove from PENDING"


def _rule() -> dict[str, set[str]]:
    """The README's table: importer -> the packages it may import."""
    return {importer.strip("`").rstrip("/"): set(re.findall(r"`([a-z_]+)`", allowed)) & set(PACKAGES)
            for importer, allowed in readme_table("### The dependency rule")}


RULE = _rule()


@dataclass(frozen=True)
class Import:
    """One import a module makes: the module named, the names taken from it, where."""

    module: str
    names: tuple[str, ...]
    line: int


def _literal_strings(tree: ast.Module, node: ast.expr) -> list[str] | None:
    """The module names a dynamic import's argument can hold, or None when unreadable: a
    string, an f-string's constant head, a module-level tuple/list of strings, or the
    variable of a loop over one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return [str(node.values[0].value)]
    if isinstance(node, ast.Name):
        for loop in ast.walk(tree):   # for name in MODULES: import_module(name)
            if isinstance(loop, ast.For) and isinstance(loop.target, ast.Name) and loop.target.id == node.id:
                return _literal_strings(tree, loop.iter)
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id
                                                    for t in stmt.targets):
                value = stmt.value
                if isinstance(value, (ast.Tuple, ast.List)) and all(
                        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts):
                    return [e.value for e in value.elts]
    return None


@functools.lru_cache(maxsize=None)
def _imports(path: Path, root: Path = REPO_ROOT) -> list[Import]:
    """Every import of ``collectors`` in a file, relative ones resolved, dynamic ones read
    (a test's dynamic import of a computed name is left out: tests may import anything)."""
    tree = ast.parse(path.read_text(), str(path))
    here = _module_name(path, root)
    package = here.split(".") if path.name == "__init__.py" else here.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            found.append(Import(module, tuple(a.name for a in node.names), node.lineno))
        elif isinstance(node, ast.Import):
            found += [Import(a.name, (), node.lineno) for a in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and node.args:
                modules = _literal_strings(tree, node.args[0])
                if modules is None and path.relative_to(root).parts[0] == "tests":
                    continue
                assert modules is not None, f"{path}:{node.lineno}: a dynamic import the rule cannot read"
                found += [Import(m, (), node.lineno) for m in modules]
    return [i for i in found if i.module == "collectors" or i.module.startswith("collectors.")]


def _module_name(path: Path, root: Path = REPO_ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _owner(path: Path) -> str:
    """The importer a file is held as: its package, or benchmarks / notebooks."""
    rel = path.relative_to(REPO_ROOT).parts
    return rel[1] if rel[0] == "collectors" and len(rel) > 2 else rel[0]


def _package_of(module: str) -> str:
    """The subpackage a ``collectors...`` module belongs to ('' for the root itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _sources() -> list[Path]:
    return sorted([p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE]
                  + list((REPO_ROOT / "benchmarks").glob("*.py"))
                  + list((REPO_ROOT / "notebooks").glob("*.py")))


def test_the_rule_names_every_package_and_importer() -> None:
    assert set(RULE) == set(PACKAGES) | {"benchmarks", "notebooks"}
    assert RULE["rfc"] == RULE["store"] == RULE["testbed"] == set()
    assert RULE["crawl"] == RULE["lab_ingest"] == {"rfc", "store"}
    assert "cli" not in set().union(*(v for k, v in RULE.items() if k != "cli"))


@pytest.mark.parametrize("importer", sorted(PACKAGES) + ["benchmarks", "notebooks"])
def test_imports_follow_the_rule(importer: str) -> None:
    allowed = RULE[importer] | {importer, ""}      # '' = the collectors root (__version__, REPO_ROOT)
    offenders = {}
    for path in _sources():
        if _owner(path) != importer:
            continue
        bad = sorted({_package_of(i.module) for i in _imports(path)} - allowed)
        if bad:
            offenders[str(path.relative_to(REPO_ROOT))] = bad
    assert not offenders, f"imports against the README's dependency rule: {offenders}"


def test_the_reader_sees_dynamic_imports(tmp_path: Path) -> None:
    """The rule is not dodged by a string: import_module, __import__ and f-strings count."""
    pkg = tmp_path / "collectors" / "rfc"
    pkg.mkdir(parents=True)
    probe = pkg / "probe.py"
    probe.write_text("import importlib\nNAMES = ('collectors.store',)\n"
                     "importlib.import_module('collectors.crawl.runner')\n"
                     "__import__(f'collectors.lab.{x}')\nfor n in NAMES:\n    importlib.import_module(n)\n")
    found = {_package_of(i.module) for i in _imports(probe, tmp_path)}
    assert found == {"crawl", "lab", "store"}


@functools.lru_cache(maxsize=None)
def _public_packages() -> dict[str, list[str]]:
    """Each package (and crawl.distributed) that has an ``__all__``: its dotted name and names."""
    out = {}
    for init in sorted(PACKAGE.rglob("__init__.py")):
        if init.parent != PACKAGE:
            members = getattr(importlib.import_module(_module_name(init)), "__all__", None)
            if members is not None:
                out[_module_name(init)] = list(members)
    return out


def test_every_package_has_a_small_public_surface() -> None:
    surfaces = _public_packages()
    # lab_ingest gets its __init__ and __all__ with its split into modules (issue 12)
    expected = {f"collectors.{p}" for p in PACKAGES if p != "lab_ingest"} | {"collectors.crawl.distributed"}
    assert expected <= set(surfaces)
    for name, members in surfaces.items():
        assert members and len(members) == len(set(members)), name
        assert not [m for m in members if m.startswith("_")], name
        assert len(members) <= 40, f"{name}: {len(members)} names is not a small surface"


def _surface_for(module: str, surfaces: dict[str, list[str]]) -> str | None:
    """The public package an import of ``module`` goes through: the longest with an __all__."""
    through = [name for name in surfaces if module == name or module.startswith(name + ".")]
    return max(through, key=len) if through else None


@pytest.mark.parametrize("surface", sorted(_public_packages()))
def test_other_packages_import_only_public_names(surface: str) -> None:
    members = set(_public_packages()[surface])
    package = surface.split(".")[1]
    offenders = []
    for path in _sources():
        if _owner(path) == package:
            continue
        for imp in _imports(path):
            if _surface_for(imp.module, _public_packages()) != surface:
                continue
            where = f"{path.relative_to(REPO_ROOT)}:{imp.line}"
            if _pending(path, imp.module):
                continue
            if imp.module != surface:
                offenders.append(f"{where}: imports the internal module {imp.module}")
            elif not imp.names:
                offenders.append(f"{where}: import {imp.module} (import names from it)")
            else:
                offenders += [f"{where}: {n} is not in {surface}.__all__" for n in imp.names
                              if n not in members and not _pending(path, f"{imp.module}.{n}")]
    assert not offenders, "\n".join(offenders)


def test_no_private_name_is_imported_from_another_module() -> None:
    """Anywhere: the package, benchmarks, notebooks and the tests (a test uses what it tests
    through public names)."""
    offenders = []
    for path in _sources() + sorted((REPO_ROOT / "tests").rglob("*.py")):
        here = _module_name(path)
        for imp in _imports(path):
            private_module = any(part.startswith("_") for part in imp.module.split("."))
            if private_module and (here, imp.module) not in PRIVATE_EXTENSIONS:
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{imp.line}: module {imp.module}")
            offenders += [f"{path.relative_to(REPO_ROOT)}:{imp.line}: {imp.module}.{n}"
                          for n in imp.names if n.startswith("_") and not n.startswith("__")
                          and (here, f"{imp.module}.{n}") not in PRIVATE_EXTENSIONS
                          and not _pending(path, f"{imp.module}.{n}")]
    assert not offenders, "\n".join(offenders)


def _documented(obj: object, package: types.ModuleType) -> bool:
    """A module, class or function with its own docstring; a constant named in the package's."""
    if isinstance(obj, types.ModuleType) or inspect.isfunction(obj):
        return bool(inspect.getdoc(obj))
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__") or ""
        return bool(doc.strip()) and not doc.startswith(f"{obj.__name__}(")   # dataclass's generated one
    return False


@pytest.mark.parametrize("surface", sorted(_public_packages()))
def test_exported_members(surface: str) -> None:
    """Every ``__all__`` name exists and is documented (a constant: in the package docstring)."""
    package = importlib.import_module(surface)
    undocumented = []
    for name in package.__all__:
        obj = getattr(package, name)     # AttributeError: exported but missing
        if not _documented(obj, package) and name not in (package.__doc__ or ""):
            undocumented.append(name)
    assert not undocumented, f"{surface}: {undocumented} have no docstring"
