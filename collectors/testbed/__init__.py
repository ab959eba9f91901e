"""The testbed: a scenario becomes a little internet of real servers (Knot DNS, Unbound,
nginx, an asyncio SMTP server) on loopback or inside a network namespace.

    from collectors.testbed import Testbed, load_catalogue
    with Testbed(load_catalogue(), workdir, mode="loopback").up() as world:
        run(["mtasts", "crawl", ..., *world.crawler_args()])

See docs/testbed.md for the scenario format, the address plan and the two modes.
"""

from collectors.testbed.catalogue import load_catalogue
from collectors.testbed.population import generate_population
from collectors.testbed.scenario import Domain, MxHost, MxRecord, PolicyHost, Scenario, ScenarioError
from collectors.testbed.world import Testbed, TestbedError, World

__all__ = [
    "Domain", "MxHost", "MxRecord", "PolicyHost", "Scenario", "ScenarioError",
    "Testbed", "TestbedError", "World", "generate_population", "load_catalogue",
]
