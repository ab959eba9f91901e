"""``mtasts crawl LIST | --resume RUN``: the MTA-STS / TLS-RPT posture of a domain list."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import math
import sys
from pathlib import Path

from collectors.cli.common import CliError, add_db_option, open_db
from collectors.store import file_fingerprint


def _number(value: str, convert: type[int] | type[float], what: str) -> float:
    """``value`` as an int or a finite float, or the argparse error that says what was expected."""
    try:
        n = convert(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not {what}: {value}") from exc
    if isinstance(n, float) and not math.isfinite(n):  # "nan"/"inf" parse but bound nothing
        raise argparse.ArgumentTypeError(f"not {what}: {value}")
    return n


def _positive_int(value: str) -> int:
    n = int(_number(value, int, "an integer"))
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return n


def _port(value: str) -> int:
    n = _positive_int(value)
    if n > 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value}")
    return n


def _seconds(value: str) -> float:
    n = _number(value, float, "a number of seconds")
    if not 0 < n <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds: {value}")
    return n


def _rate(value: str) -> float:
    n = _number(value, float, "a rate")
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 = unlimited): {value}")
    return n


def add_network_options(p: argparse.ArgumentParser, *, probe_option: bool = True) -> None:
    """How to reach the network: the flags 'mtasts crawl' and 'mtasts check' share."""
    p.add_argument("--resolver", metavar="IP[:PORT]",
                   help="recursive (validating) resolver to ask (default: resolv.conf's nameserver)")
    p.add_argument("--ca-bundle", metavar="FILE", help="PEM trust anchors (default: the system store)")
    p.add_argument("--https-port", type=_port, metavar="N", help="port of every policy fetch (default 443)")
    p.add_argument("--smtp-port", type=_port, metavar="N", help="port of every SMTP probe (default 25)")
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                   help="total bound of one policy fetch or SMTP probe (default 10)")
    p.add_argument("--dns-timeout", type=_seconds, metavar="SECONDS",
                   help="per-attempt DNS timeout; 3 attempts (default 2)")
    if not probe_option:   # a command that always probes
        return
    p.add_argument("--probe-smtp", action="store_true", default=None,
                   help="also probe each distinct MX host once: EHLO, STARTTLS, certificate, QUIT")


def _simulated_date(value: str) -> "dt.datetime":
    try:
        day = dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value}") from exc
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "crawl", help="observe the MTA-STS/TLS-RPT posture of a domain list into the store",
        description=(
            "Crawl a top list (a Tranco/Cloudflare Radar/Majestic CSV, a plain list, or "
            "tranco:latest|tranco:DATE|tranco:ID through the tranco package's cache) and store "
            "raw observations; 'mtasts export posture' writes the per-domain verdicts."),
    )
    p.add_argument("list", nargs="?", metavar="LIST",
                   help="list file, tranco:ID, or - for domains on standard input; omit with --resume")
    add_db_option(p)
    p.add_argument("--top", type=_positive_int, metavar="N", help="only the first N entries of the list")
    p.add_argument("--resume", metavar="RUN",
                   help="finish an interrupted run (an id or 'latest') with the run's own list and "
                        "settings. With --resume, --top is refused; --https-port, --smtp-port and "
                        "--probe-smtp must equal the run's (a run measures one way); --tranco-cache "
                        "says where to find the run's Tranco list if it must be read again (checked "
                        "against its SHA-256); every other option applies to the rest of the run and "
                        "is kept for later resumes")
    add_network_options(p)
    p.add_argument("--concurrency", type=_positive_int, metavar="N", help="domains in flight (default 500)")
    p.add_argument("--rate", type=_rate, metavar="QPS", help="global DNS query rate limit (default: none)")
    p.add_argument("--per-host", type=_positive_int, metavar="N",
                   help="parallel connections to one policy/MX address (default 8)")
    p.add_argument("--domain-timeout", type=_seconds, metavar="SECONDS",
                   help="bound of one domain's whole observation, waiting for an address included "
                        "(default: 4 DNS lookups with every attempt + 3 x --timeout)")
    p.add_argument("--breaker-threshold", type=_positive_int, metavar="N",
                   help="unanswered connections in a row after which an address is not contacted "
                        "(its domains: host_unresponsive) until a trial after --breaker-cooldown (default 3)")
    p.add_argument("--breaker-cooldown", type=_seconds, metavar="SECONDS",
                   help="how long an unresponsive address is left alone before one trial (default 60)")
    p.add_argument("--tranco-cache", metavar="DIR",
                   help="cache folder of the tranco package (only with a tranco:ID list)")
    dist = p.add_argument_group("distributed crawl (Dask; docs/cluster.md)")
    where = dist.add_mutually_exclusive_group()
    where.add_argument("--cluster", metavar="ADDRESS",
                       help="shard the crawl over an existing Dask scheduler (tcp://host:8786)")
    where.add_argument("--workers", type=_positive_int, metavar="N",
                       help="shard the crawl over a local Dask cluster of N worker processes")
    dist.add_argument("--shard-store", metavar="PATH_OR_URL",
                      help="where workers write Parquet partitions: a path or fsspec URL every "
                           "worker reaches (default: runs/<run_id>/ beside the database)")
    dist.add_argument("--shard-size", type=_positive_int, metavar="N",
                      help="domains per shard (default: about 4 shards per worker thread, 100-50000)")
    p.add_argument("--weights", metavar="CSV",
                   help="sampling weights of a stratified list (domain,stratum,weight; e.g. the testbed's "
                        "weights.csv): stored with the run, used by every rate of the report")
    p.add_argument("--simulated-date", type=_simulated_date, metavar="YYYY-MM-DD",
                   help="date the run at this day instead of now: for a testbed world that simulates "
                        "another month (the real start time is kept in the run's parameters)")
    prog = p.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None,
                      help="show the progress bar even when stderr is not a terminal")
    prog.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=_crawl)


def settings_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The crawl settings the network flags set (None: not given)."""
    names = ("https_port", "smtp_port", "timeout", "dns_timeout", "concurrency", "rate", "per_host",
             "probe_smtp", "domain_timeout", "breaker_threshold", "breaker_cooldown")
    return {"ca_bundle": str(Path(args.ca_bundle).resolve()) if args.ca_bundle else None,
            **{name: getattr(args, name, None) for name in names}}


def stdin_list(db: str) -> Path:
    """``mtasts crawl -``: the list read from standard input, kept as a file beside the
    database (``runs/stdin-<sha256>.txt``) so that --resume finds it again."""
    data = sys.stdin.buffer.read()
    if not data.strip():
        raise CliError("no domains on standard input (one a line)")
    folder = Path(db).resolve().parent / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"stdin-{hashlib.sha256(data).hexdigest()[:16]}.txt"
    path.write_bytes(data)
    return path


# What a run measures: a resumed run that changed them would mix two measurements.
_MEASUREMENT = (("https_port", "--https-port"), ("smtp_port", "--smtp-port"), ("probe_smtp", "--probe-smtp"))


def _refuse_changed_measurement(run_id: str, stored: object, overrides: dict[str, object]) -> None:
    """One line when --resume asks a run to measure otherwise than it began (same value: fine)."""
    for name, flag in _MEASUREMENT:
        given, before = overrides.get(name), getattr(stored, name)
        if given is not None and given != before:
            shown = "off" if before is False else before
            raise CliError(f"{flag} differs from run {run_id}'s ({shown}): a run measures one way; "
                           f"resume without it, or start a new crawl")


def _run_list_name(store, run_id: str, tranco_cache: str | None) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    """The run's recorded list (its name as given, its SHA-256); refuses --tranco-cache for a
    run whose list is not a Tranco list."""
    from collectors.crawl import is_tranco_spec

    recorded = store.run_inputs(run_id) or [{}]
    name, sha = str(recorded[0].get("name", "")), recorded[0].get("sha256")
    if tranco_cache and not is_tranco_spec(name):
        raise CliError(f"--tranco-cache applies to a tranco:ID list; run {run_id} crawls {name or 'a file'}")
    return name, sha


def _resume_list(store, run_id: str, source: str | None, tranco_cache: str | None) -> str | None:  # type: ignore[no-untyped-def]
    """Where to read the list of a run killed before its list was loaded: from --tranco-cache
    for a Tranco run when given, else where the run found it; refused when the file there is
    not the list the run started with (its SHA-256)."""
    from collectors.crawl import InputError, resolve_tranco

    name, sha = _run_list_name(store, run_id, tranco_cache)
    if tranco_cache:
        try:
            source = str(resolve_tranco(name, tranco_cache).resolve())
        except InputError as exc:
            raise CliError(str(exc)) from exc
    if source and Path(source).is_file() and sha and file_fingerprint(Path(source))[0] != sha:
        raise CliError(f"the list at {source} is not the one run {run_id} started with (SHA-256 differs)")
    return source


def resolver_of(args: argparse.Namespace) -> tuple[str, int] | None:
    """--resolver, else the system's (resolv.conf); a bad value is a CliError."""
    from collectors.crawl import ResolverConfigError, parse_resolver, system_resolver

    try:
        if args.resolver:
            return parse_resolver(args.resolver)
        return system_resolver()
    except ResolverConfigError as exc:
        raise CliError(str(exc)) from exc


def _crawl(args: argparse.Namespace) -> int:
    from collectors.crawl import format_summary, input_loaded, run_crawl

    _refuse_bad_arguments(args)
    weights = _read_weights(Path(args.weights)) if args.weights else None
    with open_db(args.db) as store:
        run, settings, source, top = _resume(store, args) if args.resume else _start(store, args, weights)
        if not input_loaded(store, run.run_id):
            _load_list(store, run, source, top)
        if args.cluster or args.workers:
            stats, summary = _crawl_on_cluster(args, store, run, settings)
        else:
            stats, summary = run_crawl(store, run, settings, progress=args.progress)
    print(format_summary(run.run_id, summary, stats))
    return 0


def _refuse_bad_arguments(args: argparse.Namespace) -> None:
    """One line for options that contradict each other, before the database is opened."""
    from collectors.crawl import is_tranco_spec

    if args.ca_bundle and not Path(args.ca_bundle).is_file():
        raise CliError(f"no such CA bundle: {args.ca_bundle}")
    if args.resume and args.list:
        raise CliError("give either LIST or --resume RUN, not both")
    if not args.resume and not args.list:
        raise CliError("missing LIST (a list file or tranco:ID), or --resume RUN")
    if args.resume and args.top:
        raise CliError("--top applies to a new crawl; --resume RUN keeps the run's own list (drop --top)")
    for given, flag in ((args.weights, "--weights"), (args.simulated_date, "--simulated-date")):
        if args.resume and given:
            raise CliError(f"{flag} applies to a new crawl; --resume RUN keeps the run's own")
    if args.weights and not Path(args.weights).is_file():
        raise CliError(f"no such weights file: {args.weights}")
    if not (args.cluster or args.workers):
        for given, flag in ((args.shard_store, "--shard-store"), (args.shard_size, "--shard-size")):
            if given:
                raise CliError(f"{flag} applies to a distributed crawl: add --workers N or --cluster ADDRESS")
    if args.list and args.tranco_cache and not is_tranco_spec(args.list):
        raise CliError(f"--tranco-cache applies to a tranco:ID list, not {args.list}")


def _resume(store, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """An interrupted run taken up again with its own list and settings: (run, settings, where
    its list is, its --top). The options given now apply to the rest of the run."""
    from collectors.crawl import CrawlSettings, input_loaded

    run = store.get_run(args.resume, kind="crawl")
    if run is None:
        raise CliError(f"no crawl run {args.resume!r} in {args.db}")
    params = dict(run.parameters)
    stored = CrawlSettings.from_parameters(params.get("settings", {}))
    overrides = settings_overrides(args)
    _refuse_changed_measurement(run.run_id, stored, overrides)
    if args.resolver:
        overrides["resolver"] = resolver_of(args)
    settings = CrawlSettings.from_parameters(params.get("settings", {}), **overrides)
    source = params.get("source")
    if not input_loaded(store, run.run_id):
        source = _resume_list(store, run.run_id, source, args.tranco_cache)
    elif args.tranco_cache:
        _run_list_name(store, run.run_id, args.tranco_cache)  # refused unless a Tranco run
    # the options given now apply to the rest of the run: a later --resume keeps them
    params["settings"] = settings.to_parameters()
    run = store.resume_run(run, params)
    print(f"resuming {run.run_id}", file=sys.stderr)
    return run, settings, source, params.get("top")


def _start(store, args: argparse.Namespace, weights=None):  # type: ignore[no-untyped-def]
    """A new run of the list given: (run, settings, where its list is, --top); recorded with
    its list's hash, its settings and, when given, its sampling weights and simulated date."""
    from collectors.crawl import InputError, is_tranco_spec, resolve_tranco
    from collectors.crawl import CrawlSettings

    source = str(stdin_list(args.db)) if args.list == "-" else args.list
    top = args.top
    try:
        path = resolve_tranco(source, args.tranco_cache) if is_tranco_spec(source) else Path(source)
    except InputError as exc:
        raise CliError(str(exc)) from exc
    if not path.is_file():
        raise CliError(f"no such list file: {source}")
    sha, size = file_fingerprint(path)
    settings = CrawlSettings(resolver=resolver_of(args), **{  # type: ignore[arg-type]
        k: v for k, v in settings_overrides(args).items() if v is not None})
    inputs = [{"name": str(source), "sha256": sha, "bytes": size}]
    parameters: dict[str, object] = {"source": str(path.resolve()), "top": top,
                                     "settings": settings.to_parameters()}
    if args.weights:
        w_sha, w_size = file_fingerprint(Path(args.weights))
        inputs.append({"name": str(args.weights), "sha256": w_sha, "bytes": w_size, "role": "weights"})
    if args.simulated_date:
        parameters["simulated_date"] = args.simulated_date.date().isoformat()
        parameters["wall_clock_started_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
    run = store.start_run("crawl", source + (f" (top {top})" if top else ""), inputs=inputs,
                          parameters=parameters, started_at=args.simulated_date)
    if weights is not None:
        _store_weights(store, run, weights)
    print(f"run {run.run_id}", file=sys.stderr)
    return run, settings, source, top


def _load_list(store, run, source: str | None, top: int | None) -> None:  # type: ignore[no-untyped-def]
    """The run's list into the store (once per run: a resumed run whose list is loaded skips this)."""
    from collectors.crawl import InputError
    from collectors.crawl import load_input
    from collectors.crawl import read_list_or_zone

    path = Path(source) if source else None
    if path is None or not path.is_file():
        raise CliError(f"the list of run {run.run_id} is gone ({source}); cannot load it")
    try:
        counts = load_input(store, run, read_list_or_zone(path, top=top), str(source))
    except InputError as exc:
        raise CliError(str(exc)) from exc
    print(f"input: {counts.entries:,} entries, {counts.accepted:,} domains, "
          f"{counts.quarantined:,} quarantined"
          + (f" ({', '.join(f'{k}={v:,}' for k, v in sorted(counts.reasons.items()))})"
             if counts.reasons else ""), file=sys.stderr)


def _read_weights(path: Path):  # type: ignore[no-untyped-def]
    """A domain,stratum,weight CSV as an Arrow table, checked before the run starts (a bad row
    is refused with its content: a weight must be a number > 0, a domain a valid name)."""
    import duckdb
    import pyarrow as pa

    from collectors.crawl import normalise_domain

    try:
        con = duckdb.connect()
        rows = con.execute(
            "SELECT domain, stratum, weight FROM read_csv(?, header = true,"
            " columns = {'domain': 'VARCHAR', 'stratum': 'VARCHAR', 'weight': 'DOUBLE'})", [str(path)]).fetchall()
    except duckdb.Error as exc:
        raise CliError(f"unreadable weights file {path}: {str(exc).splitlines()[0]}") from exc
    names, strata, weights = [], [], []
    for domain, stratum, weight in rows:
        name, _ = normalise_domain(domain or "")
        if name is None or not stratum or weight is None or not weight > 0:
            raise CliError(f"weights file {path}: bad row {domain!r},{stratum!r},{weight!r} (weight must be > 0)")
        names.append(name)
        strata.append(stratum)
        weights.append(float(weight))
    if len(set(names)) != len(names):
        raise CliError(f"weights file {path}: a domain is listed twice")
    return pa.table({"domain": names, "stratum": strata, "weight": weights})


def _store_weights(store, run, table) -> None:  # type: ignore[no-untyped-def]
    """The run's sampling weights (migration 007), with the run's provenance."""
    prov = run.provenance()
    store.con.register("_weights", table)
    try:
        store.con.execute("INSERT INTO crawl_weights SELECT ?, ?, ?, ?, domain, stratum, weight FROM _weights",
                          [prov["run_id"], prov["observed_at"], prov["input_list"], prov["tool_version"]])
    finally:
        store.con.unregister("_weights")


def _crawl_on_cluster(args: argparse.Namespace, store, run, settings):  # type: ignore[no-untyped-def]
    """The pending domains as shards on Dask (collectors.crawl.distributed)."""
    from collectors.crawl.distributed import (
        ClusterError, ShardStore, dashboard_link, open_client, run_distributed,
    )

    default_store = Path(args.db).resolve().parent / "runs"
    shard_store = ShardStore.at(args.shard_store or default_store)
    try:
        with open_client(args.cluster, args.workers) as client:
            link = dashboard_link(client)
            print(f"dask dashboard: {link or 'not served (install bokeh)'}", file=sys.stderr)
            print(f"shards: {shard_store.url}/{run.run_id}/", file=sys.stderr)
            outcome, summary = run_distributed(
                store, run, settings, client, shard_store, shard_size=args.shard_size,
                progress=args.progress, worker_resolver=bool(args.cluster and not args.resolver))
    except ClusterError as exc:
        raise CliError(f"{exc}; run {run.run_id} stays pending (mtasts crawl --resume {run.run_id})") from exc
    if outcome.failed:
        shards = ", ".join(str(s) for s, _ in outcome.failed[:5])
        raise CliError(f"{len(outcome.failed)} shard(s) failed ({shards}: {outcome.failed[0][1]}); "
                       f"finish with: mtasts crawl --resume {run.run_id} --workers N", exit_code=1)
    return outcome.stats, summary

