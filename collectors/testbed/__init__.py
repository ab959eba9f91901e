"""The testbed: a scenario becomes a little internet of real servers (Knot DNS, Unbound,
nginx, an asyncio SMTP server) on loopback or inside a network namespace.

    from collectors.testbed import Testbed, load_catalogue
    with Testbed(load_catalogue(), workdir, mode="loopback").up() as world:
        run(["mtasts", "crawl", ..., *world.crawler_args()])

See docs/testbed.md for the scenario format, the address plan and the two modes.
``AUTHORITATIVE`` is the plan's address of the authoritative server (Knot DNS), ``WEB`` its
nginx (every policy host); :func:`load_mixes` gives the population mixes. The
audit lab runs on this machinery too: :mod:`netns` (namespaces, ``call_in``),
:mod:`processes` (daemons by PID file, liveness, stopping) and the private CA (:class:`Pki`).
An evolving population (docs/testbed.md): :func:`generate_population` with ``month``, the
events planted between two months (:func:`planted_events`), and a stratified mix's sampling
weights (:func:`sampling_weights`, :func:`write_weights`, :func:`stratified_adoption`).
"""

from collectors.testbed import netns, processes
from collectors.testbed.catalogue import load_catalogue
from collectors.testbed.netns import NetnsError, call_in
from collectors.testbed.pki import Pki
from collectors.testbed.plan import AUTHORITATIVE, WEB
from collectors.testbed.evolution import planted_events
from collectors.testbed.population import generate_population, load_mixes, stratified_adoption
from collectors.testbed.scenario import Domain, MxHost, MxRecord, PolicyHost, Scenario, ScenarioError
from collectors.testbed.selfcheck import check_world, sample_domains
from collectors.testbed.strata import Weight, sampling_weights, write_weights
from collectors.testbed.world import Testbed, TestbedError, World

__all__ = [
    "AUTHORITATIVE", "Domain", "MxHost", "MxRecord", "NetnsError", "Pki", "PolicyHost", "Scenario",
    "ScenarioError", "Testbed", "TestbedError", "World", "call_in", "check_world", "generate_population",
    "WEB", "Weight", "load_catalogue", "load_mixes", "netns", "planted_events", "processes", "sample_domains", "sampling_weights",
    "stratified_adoption", "write_weights",
]
