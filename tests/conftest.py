"""Shared test set-up: repo paths, the read-only ../shared data, a fresh store per test,
and the rule for tests that need root or real servers: skipped with a reason on a
laptop, but a failure under CI (CI=true), where .ci/run installs everything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import EXTERNAL_DIR, require_root, require_testbed_servers


@pytest.fixture(autouse=True)
def _root_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("root"):
        require_root()


@pytest.fixture(scope="session")
def external_dir() -> Path:
    assert EXTERNAL_DIR.is_dir(), f"../shared/external is missing (expected at {EXTERNAL_DIR})"
    return EXTERNAL_DIR


@pytest.fixture
def store(tmp_path: Path):
    from collectors.store import open_store

    s = open_store(tmp_path / "test.duckdb")
    yield s
    s.close()


# ---- testbed worlds (issue 3; collectors/testbed) ---------------------------------------

def _testbed_mode() -> str:
    return "netns" if os.geteuid() == 0 else "loopback"


@pytest.fixture(scope="session")
def catalogue_world(tmp_path_factory: pytest.TempPathFactory):
    """The catalogue of edge cases served by real servers, for the whole session:
    in a network namespace of its own as root, else on loopback high ports."""
    require_testbed_servers()
    from collectors.testbed import Testbed, load_catalogue

    mode = _testbed_mode()
    name = f"mtasts-cat-{os.getpid()}" if mode == "netns" else None
    world = Testbed(load_catalogue(), tmp_path_factory.mktemp("catalogue-world"), mode=mode,
                    netns_name=name).up()
    yield world
    world.down()


@pytest.fixture
def make_world(tmp_path: Path):
    """``make_world(scenario, tmp_path=None, mode=None, latency_ms=0)`` -> a running World,
    stopped when the test ends (netns as root, else loopback, unless mode says otherwise)."""
    from collectors.testbed import Testbed

    worlds = []

    def make(scenario, path: Path | None = None, *, mode: str | None = None, latency_ms: int = 0):
        require_testbed_servers(latency=latency_ms > 0)
        mode = mode or _testbed_mode()
        if mode == "netns":
            require_root()
        workdir = Path(path or tmp_path) / f"world{len(worlds)}"
        name = f"mtasts-w{os.getpid()}-{len(worlds)}-{os.urandom(2).hex()}" if mode == "netns" else None
        world = Testbed(scenario, workdir, mode=mode, latency_ms=latency_ms, netns_name=name).up()
        worlds.append(world)
        return world

    yield make
    for w in worlds:
        w.down()
