"""``mtasts testbed up [SCENARIO] | down | status | shell``: run a simulated internet.

``up`` serves the catalogue (default), a scenario YAML file, or a generated population
(``--population N``) with real servers, in a network namespace (root) or on loopback
high ports; it prints the crawl flags the world needs. ``down`` stops what ``up``
started; ``check`` runs the self-check. Both up and down are idempotent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from collectors.cli.common import CliError, existing_file

DEFAULT_WORKDIR = Path("data") / "testbed"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("testbed", help="run a simulated internet of real DNS/HTTPS/SMTP servers",
                       description="Run a testbed world: a scenario served by Knot DNS, Unbound, "
                                   "nginx and an SMTP listener, in a network namespace or on loopback.")
    tsub = p.add_subparsers(dest="testbed_command", metavar="ACTION")
    tsub.required = True

    def workdir_opt(q: argparse.ArgumentParser) -> None:
        q.add_argument("--workdir", type=Path, default=Path(os.environ.get("MTASTS_TESTBED", DEFAULT_WORKDIR)),
                       help="where configs, logs, keys and PID files live (default: $MTASTS_TESTBED or %(default)s)")

    up = tsub.add_parser("up", help="start a world (the catalogue unless told otherwise)")
    up.add_argument("scenario", nargs="?", type=existing_file, metavar="SCENARIO",
                    help="a scenario YAML file (default: the catalogue of edge cases)")
    up.add_argument("--population", type=int, metavar="N", help="serve N generated domains instead")
    up.add_argument("--seed", type=int, default=0, help="population seed (default: %(default)s)")
    up.add_argument("--mix", default="default",
                    help="population mix: default | stress | panel (default: %(default)s)")
    up.add_argument("--month", type=int, metavar="K",
                    help="serve month K (0, 1, ...) of the evolving population (docs/testbed.md); "
                         "writes the lifecycle events planted since month K-1 to events.csv")
    up.add_argument("--mode", choices=("netns", "loopback"), default=None,
                    help="netns (root: a namespace, standard ports) or loopback (high ports); default: netns as root")
    up.add_argument("--netns", default=None, metavar="NAME", help="namespace name (default: mtasts-testbed)")
    up.add_argument("--latency-ms", type=int, default=0, metavar="MS",
                    help="delay every DNS answer by MS milliseconds (dnsdist in front of the resolver)")
    up.add_argument("--json", action="store_true", help="print the world's status as JSON")
    workdir_opt(up)
    up.set_defaults(func=_up)

    down = tsub.add_parser("down", help="stop the world started in --workdir and remove its namespace")
    workdir_opt(down)
    down.set_defaults(func=_down)

    status = tsub.add_parser("status", help="show the world in --workdir: servers, addresses, crawl flags")
    status.add_argument("--json", action="store_true", help="print JSON")
    workdir_opt(status)
    status.set_defaults(func=_status)

    check = tsub.add_parser("check", help="self-check: plain clients confirm the servers serve the scenario")
    check.add_argument("--sample", type=int, default=500, metavar="N",
                       help="check one domain of every case plus N random ones (default: %(default)s; 0: all)")
    check.add_argument("--seed", type=int, default=0, help="seed of the sample (default: %(default)s)")
    workdir_opt(check)
    check.set_defaults(func=_check)

    shell = tsub.add_parser("shell", help="a shell inside the world's namespace (or with its flags, on loopback)")
    shell.add_argument("command", nargs=argparse.REMAINDER, help="a command to run instead of a shell")
    workdir_opt(shell)
    shell.set_defaults(func=_shell)


def _print_status(info: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(info, indent=2))
        return
    print(f"world:       {info['scenario']} ({info['domains']} domains), mode {info['mode']}"
          + (f", namespace {info['netns']}" if info["netns"] else ""))
    print(f"workdir:     {info['workdir']}")
    print(f"resolver:    {info['resolver']}" + (f" (+{info['latency_ms']} ms per answer)" if info["latency_ms"] else ""))
    print(f"ports:       https {info['https_port']}, smtp {info['smtp_port']}")
    print(f"CA bundle:   {info['ca_bundle']}")
    procs = ", ".join(f"{n} {p['pid']}{'' if p['running'] else ' (dead)'}" for n, p in info["processes"].items())
    print(f"processes:   {procs or '(none)'}")
    print(f"crawl flags: {' '.join(info['crawler_args'])}")
    if info["netns"]:
        print(f"try:         ip netns exec {info['netns']} dig mx valid-enforce.test")


def _up(args: argparse.Namespace) -> int:
    from collectors.testbed import ScenarioError, Testbed, TestbedError

    mode = args.mode or ("netns" if os.geteuid() == 0 else "loopback")
    if mode == "netns" and os.geteuid() != 0:
        raise CliError("--mode netns needs root (or use --mode loopback)")
    if args.population is not None and args.scenario is not None:
        raise CliError("give either a SCENARIO file or --population, not both")
    if args.month is not None and args.population is None:
        raise CliError("--month applies to a generated population (--population N)")
    if args.latency_ms < 0:
        raise CliError("--latency-ms must be >= 0")
    if args.population is not None:
        if args.population < 1:
            raise CliError("--population must be at least 1")
        if args.month is not None and args.month < 0:
            raise CliError("--month must be >= 0")
        source = {"kind": "population", "n": args.population, "seed": args.seed, "mix": args.mix,
                  "month": args.month}
    elif args.scenario is not None:
        source = {"kind": "file", "path": str(Path(args.scenario).resolve())}
    else:
        source = {"kind": "catalogue"}
    scenario = _scenario_from(source)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        world = Testbed(scenario, workdir, mode=mode, latency_ms=args.latency_ms, netns_name=args.netns).up()
    except (TestbedError, ScenarioError) as exc:
        raise CliError(str(exc), exit_code=1) from exc
    (workdir / "domains.txt").write_text("".join(d.name + "\n" for d in scenario.domains))
    if source["kind"] == "population":
        _write_population_files(source, workdir)
    (workdir / "source.json").write_text(json.dumps(source) + "\n")
    _print_status(world.status(), args.json)
    if not args.json:
        print(f"domain list: {workdir / 'domains.txt'}  (up in {world.startup_seconds:.1f} s)")
    return 0


def _scenario_from(source: dict):
    """The scenario a world serves, from how 'up' was asked for it (kept in source.json)."""
    from collectors.testbed import Scenario, ScenarioError, generate_population, load_catalogue

    try:
        if source["kind"] == "population":
            month = source.get("month")
            return generate_population(int(source["n"]), seed=int(source["seed"]), mix=source["mix"],
                                       month=None if month is None else int(month))
        if source["kind"] == "file":
            return Scenario.load(source["path"])
        return load_catalogue()
    except ScenarioError as exc:
        raise CliError(f"bad scenario: {exc}") from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # YAML that is not a scenario
        raise CliError(f"bad scenario file {source.get('path')}: {exc}") from exc


def _write_population_files(source: dict, workdir: Path) -> None:
    """weights.csv for a stratified mix (sampling weights, for ``mtasts crawl --weights``) and, for a month of an
    evolving population, events.csv: the lifecycle events planted since the month before."""
    from collectors.testbed import planted_events
    from collectors.testbed import sampling_weights, write_weights

    from collectors.testbed import stratified_adoption

    n, seed, mix = int(source["n"]), int(source["seed"]), source["mix"]
    weights = workdir / "weights.csv"
    weights.unlink(missing_ok=True)
    if stratified_adoption(mix) is not None:
        write_weights(sampling_weights(n, seed, mix), weights)
    events = workdir / "events.csv"
    events.unlink(missing_ok=True)
    if source.get("month") is not None:
        planted = planted_events(n, seed, mix, int(source["month"]))
        events.write_text("domain,event\n" + "".join(f"{d},{e}\n" for d, e in sorted(planted)))


def _check(args: argparse.Namespace) -> int:
    from collectors.testbed import check_world, sample_domains

    world = _load(args.workdir)
    if world is None or not world.is_running():
        raise CliError(f"no running world in {args.workdir} (start one with 'mtasts testbed up')", exit_code=3)
    try:
        source = json.loads((world.workdir / "source.json").read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"{world.workdir}/source.json is missing: was this world started by 'mtasts testbed up'?") from exc
    scenario = _scenario_from(source)
    if scenario.fingerprint() != world.fingerprint:
        raise CliError("the world no longer serves its scenario file as it is now; run 'mtasts testbed up' again")
    domains = sample_domains(scenario, args.sample, seed=args.seed) if args.sample > 0 else list(scenario.domains)
    results = check_world(world, scenario, domains)
    bad = {name: problems for name, problems in results.items() if problems}
    for name, problems in bad.items():
        for problem in problems:
            print(problem)
    print(f"checked {len(results)} of {len(scenario.domains)} domains: "
          f"{len(results) - len(bad)} as specified, {len(bad)} with problems")
    return 1 if bad else 0


def _load(workdir: Path):
    from collectors.testbed import World

    return World.load(workdir.resolve())


def _down(args: argparse.Namespace) -> int:
    world = _load(args.workdir)
    if world is None:
        from collectors.testbed import processes

        stopped = processes.stop(args.workdir.resolve() / "pids")
        print("no world running" + (f" (stopped leftovers: {', '.join(stopped)})" if stopped else ""))
        return 0
    world.down()
    print(f"stopped the world in {world.workdir}" + (f" and removed namespace {world.netns}" if world.netns else ""))
    return 0


def _status(args: argparse.Namespace) -> int:
    world = _load(args.workdir)
    if world is None:
        raise CliError(f"no world in {args.workdir} (start one with 'mtasts testbed up')", exit_code=3)
    info = world.status()
    info["running"] = world.is_running()
    _print_status(info, args.json)
    if not args.json:
        print(f"state:       {'running' if info['running'] else 'NOT running (some servers died; run up again)'}")
    return 0 if info["running"] else 1


def _shell(args: argparse.Namespace) -> int:
    world = _load(args.workdir)
    if world is None or not world.is_running():
        raise CliError(f"no running world in {args.workdir} (start one with 'mtasts testbed up')", exit_code=3)
    command = args.command or [os.environ.get("SHELL", "/bin/sh")]
    env = dict(os.environ)
    env["MTASTS_TESTBED_FLAGS"] = " ".join(world.crawler_args())
    env["MTASTS_TESTBED_CA"] = str(world.ca_bundle)
    if world.netns is None:
        print(f"loopback world: pass these flags to clients: {env['MTASTS_TESTBED_FLAGS']}", file=sys.stderr)
    argv = world.exec_prefix() + command
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        raise CliError(f"cannot run {argv[0]}: {exc.strerror}") from exc
    return 0  # pragma: no cover
