"""requirements.lock, environment.yml and pyproject.toml must agree."""

from __future__ import annotations

import re
import tomllib

import yaml

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        m = _PIN.match(line.strip())
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def _environment() -> dict[str, str]:
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for spec in dep.get("pip", []):
                m = _PIN.match(spec)
                assert m, f"environment.yml pip entry is not an exact pin: {spec}"
                pins[_norm(m.group(1))] = m.group(2)
    return pins


def _direct() -> set[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        names += extra
    return {_norm(re.split(r"[<>=!~ \[]", n, maxsplit=1)[0]) for n in names}


def test_every_lock_line_is_an_exact_pin():
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert _PIN.match(line), f"not an exact pin: {line}"


def test_environment_yml_matches_lock():
    lock, env = _lock(), _environment()
    drift = {n: (v, lock.get(n)) for n, v in env.items() if lock.get(n) != v}
    assert not drift, f"environment.yml and requirements.lock disagree (env, lock): {drift}"


def test_every_direct_dependency_is_pinned_in_both():
    lock, env = _lock(), _environment()
    missing_lock = sorted(_direct() - lock.keys())
    missing_env = sorted(_direct() - env.keys())
    assert not missing_lock, f"direct dependencies missing from requirements.lock: {missing_lock}"
    assert not missing_env, f"direct dependencies missing from environment.yml: {missing_env}"


def test_python_version_agrees():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert "3.11" in project["requires-python"]
