"""``mtasts lab``: the audit lab on this machine (``up``, ``send``, ``status``, ``down``).

Each subcommand is one ``_add_<name>(subparsers)`` function listed in ``_SUBCOMMANDS``;
other subcommands of the lab group (the ledger's ``addresses`` and ``sent``) are added
the same way, by appending their function to that tuple.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from collectors import REPO_ROOT
from collectors.cli.common import CliError
from collectors.cli.lab_ledger import add_addresses, add_sent
from collectors.cli.lab_status import add_serve_status, add_watch
from collectors.cli.lab_verify import add_verify

# The built-in sender profiles (collectors.lab.design.BUILTIN_PROFILES), named here so that
# building the parser does not import the lab.
PROFILE_NAMES = ("postfix-mta-sts", "postfix-opportunistic", "postfix-mta-sts-primed", "postfix-dane",
                  "exim", "exim-dane-required")
SAMPLE_WORKDIR = Path("/var/tmp/mtasts-sample")


def _workdir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default=os.environ.get("MTASTS_LAB_WORKDIR", "data/runs/lab"),
                        metavar="DIR", help="the lab's work directory (default: $MTASTS_LAB_WORKDIR "
                                            "or %(default)s); evidence goes to DIR/evidence")


def _lab(args: argparse.Namespace, **kwargs):
    from collectors.lab import Lab

    return Lab(Path(args.workdir), netns_name=getattr(args, "netns", None) or _state_netns(args), **kwargs)


def _state_netns(args: argparse.Namespace) -> str:
    from collectors.lab import DEFAULT_NETNS, LabState

    state = LabState.load(Path(args.workdir).resolve())
    return state.netns if state else DEFAULT_NETNS


def _lab_errors(fn):
    """Run a subcommand, turning the lab's errors into one-line CLI errors."""
    def wrapped(args: argparse.Namespace) -> int:
        from collectors.lab import LabError, TemplateError
        from collectors.testbed import NetnsError, TestbedError

        try:
            return fn(args)
        except (LabError, NetnsError, TemplateError, TestbedError) as exc:
            raise CliError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    return wrapped


# -- up -------------------------------------------------------------------------------------------

def _add_up(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="start the lab (root): receivers A-F, policy server, DNS, senders",
                       description="Start the whole lab in a network namespace: real Postfix receivers "
                                   "A-F, the policy server, the TLS-RPT endpoint, DNS and CA from the "
                                   "testbed, and the sender profiles with short queue timers.")
    _workdir_option(p)
    p.add_argument("--netns", default=None, help="namespace name (default: mtasts-lab)")
    p.add_argument("--base", default=None, metavar="DOMAIN",
                   help="base domain: lab domains are <label>.audit.DOMAIN (default: lab.test)")
    p.add_argument("--profiles", default=",".join(PROFILE_NAMES),
                   help="comma-separated built-in sender profiles to start (default: all, %(default)s; "
                        "the Exim ones need scripts/install-system-deps)")
    p.add_argument("--delay-warning", default="1m", metavar="TIME",
                   help="senders' delay_warning_time (Postfix units; default %(default)s)")
    p.add_argument("--queue-lifetime", default="3m", metavar="TIME",
                   help="senders' maximal/bounce_queue_lifetime (default %(default)s)")
    p.set_defaults(func=_lab_errors(_cmd_up))


def _cmd_up(args: argparse.Namespace) -> int:
    from collectors.lab import QueueTimers

    profiles = tuple(p.strip() for p in args.profiles.split(",") if p.strip())
    timers = QueueTimers(delay_warning_time=args.delay_warning, maximal_queue_lifetime=args.queue_lifetime)
    lab = _lab(args, base=args.base, timers=timers, profiles=profiles)
    state = lab.up()
    print(f"lab up in {state.startup_seconds:.1f} s: namespace {state.netns}, "
          f"domains <label>.audit.{state.base}, profiles {', '.join(state.profiles)}")
    print(f"evidence: {lab.evidence.root}")
    print(f"shell: ip netns exec {state.netns} bash")
    return 0


# -- send -----------------------------------------------------------------------------------------

def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _add_send(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("send", help="send test messages to every lab server through a sender profile",
                       description="Send N rounds of one fresh test address per lab server through a "
                                   "sender profile, and record each accepted message in the ledger "
                                   "(evidence/ledger.csv).")
    _workdir_option(p)
    p.add_argument("--profile", required=True,
                   help=f"{', '.join(PROFILE_NAMES)}, or external (with --via)")
    p.add_argument("--rounds", type=int, default=1, help="rounds of messages (default: 1)")
    p.add_argument("--interval", type=float, default=0.0, metavar="SECONDS",
                   help="pause between rounds (default: 0)")
    p.add_argument("--prime-cache", action=argparse.BooleanOptionalAction, default=False,
                   help="make the sender's MTA-STS resolver fetch every policy before sending "
                        "(default: no, the first message triggers the fetch)")
    p.add_argument("--via", type=_host_port, default=None, metavar="HOST:PORT",
                   help="external profile: the SMTP submission address of the sender under test "
                        "(reachable inside the lab namespace)")
    p.add_argument("--provider", default=None, help="provider name in the ledger (default: the profile)")
    p.add_argument("--from", dest="from_addr", default=None, metavar="ADDRESS",
                   help="envelope and header sender (default: the profile's test account)")
    p.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                   help="then wait until the sender's queues are empty (delivered or bounced)")
    p.set_defaults(func=_lab_errors(_cmd_send))


def _cmd_send(args: argparse.Namespace) -> int:
    lab = _lab(args)
    results = lab.send(args.profile, args.rounds, prime_cache=args.prime_cache, submit_to=args.via,
                       provider=args.provider, from_addr=args.from_addr, interval=args.interval)
    accepted = sum(r.accepted for r in results)
    for r in results:
        if not r.accepted:
            print(f"not accepted: {r.to_addr}: {r.response}")
    print(f"{accepted} of {len(results)} messages accepted by {args.profile}; ledger: {lab.evidence.ledger}")
    if args.wait:
        t0 = time.monotonic()
        settled = lab.wait_until_settled(args.wait)
        print(f"queues {'empty' if settled else 'still not empty'} after {time.monotonic() - t0:.0f} s")
        if not settled:
            return 1
    return 0 if accepted == len(results) else 1


# -- status ---------------------------------------------------------------------------------------

def _add_status(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="what runs, what is queued, what evidence exists")
    _workdir_option(p)
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=_lab_errors(_cmd_status))


def _cmd_status(args: argparse.Namespace) -> int:
    status = _lab(args).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0 if status.get("up") else 1
    if not status.get("up"):
        print(f"no lab is up in {status['workdir']}")
        return 1
    print(f"lab up: namespace {status['netns']}, domains <label>.audit.{status['base']}, "
          f"since {status['started_at']}")
    for name, info in status["processes"].items():
        print(f"  {name:28} {'running' if info['running'] else 'STOPPED':8} pid {info['pid']}")
    for name, count in status.get("queued", {}).items():
        print(f"  queue {name:22} {count} message(s)")
    for name, count in status["evidence"].items():
        print(f"  {name:28} {count}")
    print("ingest with: mtasts ingest " + " ".join(status["ingest"]))
    return 0


# -- down -----------------------------------------------------------------------------------------

def _add_down(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("down", help="stop everything 'up' started and remove the namespace")
    _workdir_option(p)
    p.set_defaults(func=_lab_errors(_cmd_down))


def _cmd_down(args: argparse.Namespace) -> int:
    problems = _lab(args).down()
    for problem in problems:
        print(f"mtasts lab down: {problem}")
    if problems:
        return 1
    print("lab down")
    return 0


# -- sample ---------------------------------------------------------------------------------------

def _add_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="rebuild data/sample/ from a lab run and a year of testbed crawls (root)",
                       description="Run the local lab (every built-in sender profile) and twelve monthly "
                                   "crawls of an evolving testbed population, ingest what they produce, and export "
                                   "the database as the embedded sample, labelled a local simulation. "
                                   "This is what 'make sample' runs; nothing in the sample is typed by hand.")
    p.add_argument("--out", default=None, metavar="DIR", help="sample folder (default: data/sample)")
    p.add_argument("--only", choices=("crawl", "lab"), default=None,
                   help="rebuild only this part; the other is kept from the committed sample")
    p.add_argument("--population", type=int, default=4620, metavar="N",
                   help="domains in the crawled evolving testbed population (default: %(default)s)")
    p.add_argument("--seed", type=int, default=2024, help="population seed (default: %(default)s)")
    p.add_argument("--mix", default="panel", help="population mix (default: %(default)s, stratified)")
    p.add_argument("--rounds", type=int, default=2, help="rounds sent by each profile (default: %(default)s)")
    p.add_argument("--interval", type=float, default=60.0, metavar="SECONDS",
                   help="pause between rounds (default: %(default)s)")
    p.add_argument("--workdir", default=str(SAMPLE_WORKDIR), metavar="DIR",
                   help="work directory, emptied first (default: %(default)s: the same on every machine, "
                        "since Postfix's log lines name it and they go into the sample)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (evidence, database)")
    p.set_defaults(func=_lab_errors(_cmd_sample))


def _cmd_sample(args: argparse.Namespace) -> int:
    import shutil

    from collectors.cli.sample_crawl import crawl_part, drop_part
    from collectors.report import SAMPLE_DIR, import_sample, read_metadata, write_sample

    if os.geteuid() != 0:
        raise CliError("'mtasts lab sample' needs root (the lab and the testbed run in network namespaces)")
    clock = time.monotonic()
    workdir = _sample_workdir(Path(args.workdir).resolve())
    db = workdir / "sample.duckdb"
    out = Path(args.out) if args.out else SAMPLE_DIR
    details: dict = {}
    try:
        if args.only:  # start from the committed sample without the part rebuilt now
            details = dict(read_metadata(out).get("details") or {})
            import_sample(db, out)
            drop_part(db, args.only)
        if args.only != "crawl":
            details.update(_sample_lab(args, workdir, db))
        if args.only != "lab":
            details["testbed"] = crawl_part(workdir, db, population=args.population, seed=args.seed,
                                            mix=args.mix, run_step=_run_step, relative=_relative)
        profiles = ", ".join(details.get("lab", {}).get("profiles", []))
        metadata = write_sample(
            db, out, produced_by="make sample (mtasts lab sample)",
            description=("Local simulation: the MTA-STS audit lab (real Postfix receivers A-F in a "
                         f"DNSSEC-signed zone with TLSA records; senders: {profiles}) run in a network "
                         "namespace, and twelve monthly crawls of an evolving testbed population "
                         "(stratified, weighted); no real domain or provider. No sender here sends TLS-RPT "
                         "reports (Postfix 3.7 and Exim 4.96 have none): the sample's TLS-RPT evidence is "
                         "published reports."),
            details=details)
        print(f"sample written to {out}: {sum(metadata['tables'].values())} rows in "
              f"{len(metadata['tables'])} tables (local simulation)")
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"make sample took {time.monotonic() - clock:.0f} s")
    return 0


def _sample_workdir(workdir: Path) -> Path:
    """The sample's work directory, emptied (only if a previous sample made it)."""
    import shutil

    if workdir.is_symlink():
        raise CliError(f"{workdir} is a symbolic link; give a plain directory")
    marker = workdir / ".mtasts-sample"
    if workdir.exists() and any(workdir.iterdir()):
        if not marker.exists():
            raise CliError(f"{workdir} is not empty and not a previous sample work directory; not touching it")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    marker.touch()
    workdir.chmod(0o755)  # the lab's recorder runs unprivileged
    return workdir


def _sample_lab(args: argparse.Namespace, workdir: Path, db: Path) -> dict:
    """The lab part of the sample: run the lab's sender profiles, ingest the evidence into ``db``;
    the details for the sample's metadata."""
    import sys
    from dataclasses import asdict
    from datetime import datetime, timezone

    from collectors.lab import BUILTIN_PROFILES, Lab, QueueTimers

    timers = QueueTimers()
    cli = [sys.executable, "-m", "collectors.cli"]
    started = datetime.now(timezone.utc)
    lab = Lab(workdir / "lab", netns_name="mtasts-sample-lab", timers=timers)
    lab.up()
    try:
        # Every built-in profile (Postfix: MTA-STS lazy and primed, opportunistic, DANE;
        # Exim: default and DANE required), round by round, so the interval passes once.
        sent = dict.fromkeys((p.name for p in BUILTIN_PROFILES), 0)
        for number in range(1, args.rounds + 1):
            for profile in sent:
                sent[profile] += sum(r.accepted for r in lab.send(profile, 1))
            print(f"lab: round {number} sent {sum(sent.values())} messages so far", flush=True)
            if number < args.rounds:
                time.sleep(args.interval)
        lifetime = timers.seconds("maximal_queue_lifetime")
        if not lab.wait_until_settled(lifetime + 180):
            raise CliError(f"the lab's queues did not empty: {lab.queued()}")
        lab_senders = lab.state.senders if lab.state else {}
    finally:
        problems = lab.down()
        if problems:
            print("lab down: " + "; ".join(problems), file=sys.stderr)
    # Paths relative to the work directory: the sample records its inputs' names, and
    # no path of this machine belongs in the repository.
    inputs = [str(p.relative_to(workdir)) for p in lab.evidence.ingest_inputs()]
    inputs += _published_tlsrpt(workdir)
    _run_step(cli + ["ingest", "--db", db.name, "--year", str(started.year), *inputs], "ingest", workdir)
    return {"lab": {"profiles": list(sent), "messages_sent": sent, "rounds": args.rounds,
                    "interval_s": args.interval, "timers": asdict(timers), "senders": lab_senders,
                    "base_domain": lab.names.base, "started_at": started.isoformat(timespec="seconds"),
                    "tlsrpt_evidence": (f"published reports of ../shared/external/tlsrpt, copied to "
                                        f"{PUBLISHED_TLSRPT}/: no lab sender sends TLS-RPT (Postfix 3.7 "
                                        "and Debian's Exim 4.96 have none)")}}


PUBLISHED_TLSRPT = "published-tlsrpt"   # the sample's TLS-RPT evidence: published reports, so named


def _published_tlsrpt(workdir: Path) -> list[str]:
    """Copy the published TLS-RPT reports of ``../shared/external/tlsrpt`` (the sample's
    TLS-RPT evidence, since no lab sender sends reports) into ``workdir/published-tlsrpt``
    and return their paths relative to ``workdir`` (so no path of this machine is stored)."""
    import shutil

    source = REPO_ROOT.parent / "shared" / "external" / "tlsrpt"
    target = workdir / PUBLISHED_TLSRPT
    copied = []
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.suffix in (".json", ".eml", ".gz"):
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            copied.append(str(dest.relative_to(workdir)))
    return copied


def _relative(args: list[str], base: Path) -> list[str]:
    """Arguments naming files under ``base`` as paths relative to it."""
    out = []
    for arg in args:
        path = Path(arg)
        out.append(str(path.relative_to(base)) if path.is_absolute() and path.is_relative_to(base) else arg)
    return out


def _run_step(argv: list[str], what: str, cwd: Path) -> None:
    import subprocess

    print(f"{what}: {' '.join(argv[:8])} ...", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(argv, cwd=cwd, env=env)
    if done.returncode != 0:
        raise CliError(f"{what} failed (exit status {done.returncode})")


def _add_render(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="write the configuration of a lab on real hosts (zone, Postfix A-F, policies, nginx)",
        description="Render the lab's templates for a deployment on real hosts (docs/lab-deploy.md): "
                    "the zone audit.BASE, the main.cf/master.cf/aliases.regexp of receivers A-F, the "
                    "policies (CRLF), the nginx site of the policy server and TLS-RPT endpoint, the "
                    "systemd units of the TLS-RPT receiver and the live view, the recorder and receiver "
                    "programs, a certbot deploy hook, INSTALL.md and install.sh (where each "
                    "file goes), collect-evidence.sh and plan.json (what 'mtasts lab verify' checks a deployment "
                    "against), into OUT. Installs nothing.")
    p.add_argument("--base", required=True, metavar="DOMAIN", help="your base domain: the lab is audit.DOMAIN")
    for label in "abdef":
        p.add_argument(f"--{label}4", required=True, metavar="IPV4", help=f"server {label.upper()}'s IPv4 address")
    p.add_argument("--c6", required=True, metavar="IPV6", help="server C's IPv6 address (it has no IPv4)")
    p.add_argument("--policy4", required=True, metavar="IPV4", help="the policy server's IPv4 address")
    p.add_argument("--tlsrpt4", metavar="IPV4", help="the TLS-RPT endpoint's address (default: --policy4)")
    p.add_argument("--nameserver4", metavar="IPV4", help="your name server, if you serve the zone yourself")
    p.add_argument("--policy-id", metavar="ID", help="the _mta-sts record's id (default: today, YYYYMMDD)")
    p.add_argument("--serial", type=int, help="the zone serial (default: today, YYYYMMDD01)")
    p.add_argument("--tlsa", metavar="HEX",
                   help="TLSA 3 1 1 data of the MX hosts' key (hex SHA-256 of its SubjectPublicKeyInfo): "
                        "keeps the TLSA records for DANE senders; only in a DNSSEC-signed zone, and only if "
                        "renewals keep the key (certbot --reuse-key)")
    p.add_argument("--acme-live", default="/etc/letsencrypt/live", metavar="DIR",
                   help="where certbot keeps certificates (default /etc/letsencrypt/live)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder to write into (created)")
    p.add_argument("--force", action="store_true", help="overwrite files already in OUT")
    p.set_defaults(func=_cmd_render)


def _cmd_render(args: argparse.Namespace) -> int:
    from collectors.lab import PLAN_FILE, DeployPlan, plan_json, render_deployment

    extra = {k: v for k, v in (("policy_id", args.policy_id), ("serial", args.serial)) if v is not None}
    plan = DeployPlan(base=args.base.rstrip(".").lower(),
                      receivers_v4={label: getattr(args, f"{label}4") for label in "abdef"},
                      receiver_c_v6=args.c6, policy_v4=args.policy4, tlsrpt_v4=args.tlsrpt4,
                      nameserver_v4=args.nameserver4, acme_live=args.acme_live,
                      tlsa_association=args.tlsa.lower() if args.tlsa else None, **extra)
    problems = plan.problems()
    if problems:
        raise CliError("; ".join(problems))
    files = {**render_deployment(plan), PLAN_FILE: plan_json(plan)}   # plan.json: for 'mtasts lab verify'
    existing = [name for name in files if (args.out / name).exists()]
    if existing and not args.force:
        raise CliError(f"{args.out / existing[0]} exists (and {len(existing) - 1} more): use --force to overwrite")
    for name, text in files.items():
        target = args.out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, newline="")
    print(f"wrote {len(files)} files to {args.out}: {args.out / 'INSTALL.md'} says where each goes "
          f"(sh {args.out / 'install.sh'} on the lab host puts them there; docs/lab-deploy.md)")
    for name in files:
        print(f"  {name}")
    return 0


_SUBCOMMANDS = (_add_up, _add_send, _add_status, _add_down, _add_sample, add_addresses, add_sent, _add_render,
                add_serve_status, add_watch, add_verify)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lab", help="run the audit lab on this machine (up, send, status, down)",
        description="The MTA-STS audit lab on one machine: real Postfix receivers A-F and sender "
                    "profiles in a network namespace (root). See docs/lab-deploy.md for real hosts.")
    sub = parser.add_subparsers(dest="lab_command", metavar="SUBCOMMAND", parser_class=type(parser))
    sub.required = True
    for add in _SUBCOMMANDS:
        add(sub)
