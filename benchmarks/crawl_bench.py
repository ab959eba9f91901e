"""Benchmark: the crawler's throughput, CPU and peak memory on testbed worlds, and the peers.

* No delay: generated populations (default mix) of 10,000 and 100,000 domains; one crawl
  each without --probe-smtp, in a child process (its own peak RSS, CPU from rusage);
  domains/s, CPU per domain and per DNS query, peak RSS and its slope between the sizes.
* Latency: the testbed's latency mode (dnsdist, 50 ms per DNS answer) at 10,000 domains.
* Stalling host (issue 14): a world of 500 default-mix domains alone, then the same 500
  beside 2,000 domains whose one policy address stalls the TLS handshake, both crawled
  at ``--timeout 1`` in the same run: the second may take at most a few timeouts longer
  (the address's circuit opens after the first attempts; waiting domains yield).
* Peers on the same 10,000-domain world, same run: postfix-mta-sts-resolver's
  ``STSResolver.resolve`` 100 at a time (Debian's python3 has it), and checkdmarc's
  MTA-STS + TLS-RPT checks one domain after another (``--checkdmarc-python``: an
  interpreter with ``pip install checkdmarc``; a benchmark-only dependency). Peers need the
  standard ports, so they run in a namespace world (root); rootless runs skip them.
  Then a verdict-agreement table per testbed case.

Each world's resolver cache starts cold, so the first crawl is the conservative figure;
``--warm`` adds a second crawl of the same world.

Run:  .venv/bin/python -m benchmarks.crawl_bench [--sizes 10000,100000] [--latency-ms 50]
      [--stall 2000] [--stall-base 500] [--checkdmarc-python PATH] [--workdir DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import duckdb

REPO = Path(__file__).resolve().parents[1]
MTASTS = str(Path(sys.executable).parent / "mtasts")
HERE = Path(__file__).resolve().parent


def _world(n: int, workdir: Path, latency_ms: int, mode: str, seed: int = 1,
           mix: str | dict[str, float] = "default") -> tuple[Any, Path, Any]:
    from collectors.testbed import Testbed, generate_population

    scenario = generate_population(n, seed=seed, mix=mix)
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    listing = workdir / "list.csv"
    listing.write_text("".join(f"{i},{d.name}\n" for i, d in enumerate(scenario.domains, 1)))
    t0 = time.monotonic()
    name = f"crawlbench{os.getpid() % 1000}" if mode == "netns" else None
    world = Testbed(scenario, workdir / "world", mode=mode, latency_ms=latency_ms, netns_name=name).up()
    print(f"  world of {n:,} domains up in {time.monotonic() - t0:.1f}s ({mode}, latency {latency_ms} ms)",
          file=sys.stderr)
    return world, listing, scenario


def _timed(cmd: list[str], workdir: Path) -> dict[str, float]:
    """Run ``cmd`` under /usr/bin/time: wall, user, sys seconds and peak RSS (MB) of the child."""
    out = workdir / "time.txt"
    timer = shutil.which("time") or "/usr/bin/time"
    done = subprocess.run([timer, "-f", "%e %U %S %M", "-o", str(out), *cmd],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    (workdir / "stderr.txt").write_text(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed (stderr in {workdir / 'stderr.txt'}): {done.stderr[-1500:]}")
    wall, user, system, rss = out.read_text().split()[-4:]
    return {"wall": float(wall), "cpu": float(user) + float(system), "rss_mb": int(rss) / 1024,
            "stdout": done.stdout}


def crawl(world: Any, listing: Path, db: Path, extra: list[str] = ()) -> dict[str, Any]:
    if db.exists():
        db.unlink()
    cmd = [*world.exec_prefix(), MTASTS, "crawl", str(listing), "--db", str(db), "--no-progress",
           *world.crawler_args(), *extra]
    t = _timed(cmd, db.parent)
    con = duckdb.connect(str(db), read_only=True)
    summary = json.loads(con.execute("SELECT summary FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0])
    verdicts = {d: (f, m or "") for d, f, m in con.execute(
        "SELECT domain, policy_fetch, policy_mode FROM posture").fetchall()}
    con.close()
    s = summary["session"]
    return {
        "domains": s["domains"], "crawl_seconds": s["seconds"], "rate": s["domains"] / s["seconds"],
        "wall": t["wall"], "cpu": t["cpu"], "rss_mb": t["rss_mb"], "dns_queries": s["dns_queries"],
        "policy_fetches": s["policy_fetches"], "cpu_per_domain_us": t["cpu"] / s["domains"] * 1e6,
        "cpu_per_query_us": t["cpu"] / max(1, s["dns_queries"]) * 1e6, "verdicts": verdicts,
        # the crawl phase alone, as the peers measure themselves (no interpreter start-up,
        # no schema migration, no summary): the like-for-like figure for CPU per query
        "crawl_cpu": s.get("cpu_seconds"),
        "crawl_cpu_per_query_us": (s["cpu_seconds"] / max(1, s["dns_queries"]) * 1e6
                                   if s.get("cpu_seconds") is not None else None),
    }


def stall(base: int, stalled: int, workdir: Path, mode: str, timeout: float = 1.0) -> dict[str, Any]:
    """``base`` default-mix domains alone, then beside ``stalled`` domains whose policy
    host (one address) stalls the TLS handshake: wall seconds of each crawl, the
    difference in timeouts, and the stalled domains' verdicts."""
    from collectors.testbed import load_mixes

    default = load_mixes()["default"]
    scale = base / sum(default.values())
    worlds = {"fast": (base, "default"),
              "with_stall": (base + stalled, {**{c: w * scale for c, w in default.items()}, "fetch-stall": stalled})}
    out: dict[str, Any] = {"base": base, "stalled": stalled, "timeout": timeout}
    for label, (n, mix) in worlds.items():
        print(f"stalling host: {label}, {n:,} domains", file=sys.stderr)
        world, listing, scenario = _world(n, workdir / label, 0, mode, mix=mix)
        try:
            db = workdir / label / "crawl.duckdb"
            r = crawl(world, listing, db, ["--timeout", f"{timeout:g}"])
            cases = {d.name: d.case for d in scenario.domains}
            verdicts = Counter(f for d, (f, _m) in r["verdicts"].items() if cases[d] == "fetch-stall")
            con = duckdb.connect(str(db), read_only=True)
            slowest = con.execute("SELECT max(duration_ms) FROM crawl_observations").fetchone()[0]
            con.close()
            out[label] = {"domains": r["domains"], "crawl_seconds": r["crawl_seconds"], "wall": r["wall"],
                          "cpu": r["cpu"], "slowest_domain_s": (slowest or 0) / 1000,
                          "stalled_verdicts": dict(verdicts)}
        finally:
            world.down()
    out["added_seconds"] = out["with_stall"]["crawl_seconds"] - out["fast"]["crawl_seconds"]
    out["added_timeouts"] = out["added_seconds"] / timeout
    return out


def peer(world: Any, python: str, script: str, listing: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    cmd = [*world.exec_prefix(), "env", *(f"{k}={v}" for k, v in env.items()), python, str(HERE / script),
           str(listing), str(timeout)]
    t = _timed(cmd, listing.parent)
    data = json.loads(t["stdout"].strip().splitlines()[-1])
    data["rate"] = data["domains"] / data["seconds"]
    data["rss_mb"] = t["rss_mb"]
    return data


def _sample(listing: Path, n: int, out: Path) -> Path:
    lines = listing.read_text().splitlines()[:n]
    out.write_text("\n".join(lines) + "\n")
    return out


def agreement(scenario: Any, ours: dict[str, tuple[str, str]], resolver: dict[str, Any] | None,
              checkdmarc: dict[str, Any] | None) -> list[tuple[str, int, str, str, str]]:
    """Per catalogue case: our (policy_fetch, mode) vs the peers' reading, with counts."""
    by_case: dict[str, list[str]] = defaultdict(list)
    for d in scenario.domains:
        by_case[d.case].append(d.name)
    rows = []
    for case, names in sorted(by_case.items()):
        o = Counter(f"{ours[n][0]}/{ours[n][1] or '-'}" for n in names if n in ours).most_common(1)
        r = Counter(f"{resolver[n][0]}/{resolver[n][1] or '-'}" for n in names if resolver and n in resolver)
        c = Counter(f"{'valid' if checkdmarc[n]['sts_valid'] else 'invalid'}/{checkdmarc[n]['mode'] or '-'}"
                    for n in names if checkdmarc and n in checkdmarc)
        rows.append((case, len(names), o[0][0] if o else "?",
                     r.most_common(1)[0][0] if r else "-", c.most_common(1)[0][0] if c else "-"))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--latency-size", type=int, default=10000)
    ap.add_argument("--checkdmarc-python", default=os.environ.get("CHECKDMARC_PYTHON"),
                    help="an interpreter with checkdmarc installed (skipped without)")
    ap.add_argument("--resolver-python", default="/usr/bin/python3",
                    help="an interpreter with postfix_mta_sts_resolver (Debian's python3)")
    ap.add_argument("--checkdmarc-latency-sample", type=int, default=200)
    ap.add_argument("--warm", action="store_true", help="also a second (warm-cache) crawl per size")
    ap.add_argument("--stall", type=int, default=2000, help="domains on one stalling policy host (0: skip)")
    ap.add_argument("--stall-base", type=int, default=500, help="the healthy domains beside them")
    ap.add_argument("--workdir")
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    mode = "netns" if os.geteuid() == 0 else "loopback"
    base = Path(args.workdir or tempfile.mkdtemp(prefix="crawl-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    report: dict[str, Any] = {"mode": mode, "cpus": os.cpu_count(), "sizes": {}}
    agreement_rows = None
    for n in sizes:
        print(f"no delay, {n:,} domains", file=sys.stderr)
        world, listing, scenario = _world(n, base / f"n{n}", 0, mode)
        try:
            ours = crawl(world, listing, base / f"n{n}" / "crawl.duckdb")
            entry: dict[str, Any] = {"cold": {k: v for k, v in ours.items() if k != "verdicts"}}
            if args.warm:
                warm = crawl(world, listing, base / f"n{n}" / "crawl-warm.duckdb")
                entry["warm"] = {k: v for k, v in warm.items() if k != "verdicts"}
            if n == min(sizes) and mode == "netns":
                env = {"SSL_CERT_FILE": str(world.ca_bundle), "REQUESTS_CA_BUNDLE": str(world.ca_bundle)}
                res = chk = None
                if Path(args.resolver_python).exists():
                    try:
                        res = peer(world, args.resolver_python, "crawl_peer_sts_resolver.py", listing, env, 4)
                        entry["sts_resolver"] = {k: v for k, v in res.items() if k != "results"}
                        # its queries: the _mta-sts TXT of every domain, and where it found a
                        # record, the A and AAAA of the policy host (it counts none itself)
                        fetched = sum(1 for status, _mode in res["results"].values() if status != "NONE")
                        queries = res["domains"] + 2 * fetched
                        entry["sts_resolver"].update(
                            queries_estimated=queries, cpu_per_query_us=res["cpu"] / queries * 1e6,
                            ours_over_theirs_cpu_per_query=(ours["crawl_cpu_per_query_us"] or 0)
                            / (res["cpu"] / queries * 1e6))
                    except RuntimeError as exc:
                        entry["sts_resolver"] = {"error": str(exc)[:300]}
                if args.checkdmarc_python:
                    chk = peer(world, args.checkdmarc_python, "crawl_peer_checkdmarc.py", listing, env, 2)
                    entry["checkdmarc"] = {k: v for k, v in chk.items() if k != "results"}
                agreement_rows = agreement(scenario, ours["verdicts"], res and res["results"],
                                           chk and chk["results"])
            report["sizes"][n] = entry
        finally:
            world.down()

    if args.stall:
        report["stall"] = stall(args.stall_base, args.stall, base / "stall", mode)

    if args.latency_ms:
        n = args.latency_size
        print(f"latency {args.latency_ms} ms, {n:,} domains", file=sys.stderr)
        world, listing, _ = _world(n, base / f"lat{n}", args.latency_ms, mode)
        try:
            ours = crawl(world, listing, base / f"lat{n}" / "crawl.duckdb")
            entry = {"ours": {k: v for k, v in ours.items() if k != "verdicts"}}
            if args.checkdmarc_python and mode == "netns":
                sample = _sample(listing, args.checkdmarc_latency_sample, base / f"lat{n}" / "sample.csv")
                env = {"REQUESTS_CA_BUNDLE": str(world.ca_bundle)}
                chk = peer(world, args.checkdmarc_python, "crawl_peer_checkdmarc.py", sample, env, 2)
                entry["checkdmarc"] = {k: v for k, v in chk.items() if k != "results"}
            report["latency"] = entry
        finally:
            world.down()

    _print(report, agreement_rows)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


def _print(report: dict[str, Any], rows: list | None) -> None:
    print(f"\ncrawl benchmark ({report['mode']} world, {report['cpus']} CPUs, no --probe-smtp)")
    print(f"{'domains':>9} {'dom/s':>8} {'wall s':>7} {'cpu s':>7} {'cpu/dom us':>10} {'cpu/query us':>12}"
          f" {'queries':>9} {'fetches':>8} {'peak RSS MB':>11}")
    rss = []
    for n, e in report["sizes"].items():
        for label in ("cold", "warm"):
            c = e.get(label)
            if not c:
                continue
            print(f"{n:>9,} {c['rate']:>8,.0f} {c['wall']:>7.1f} {c['cpu']:>7.1f} {c['cpu_per_domain_us']:>10.0f}"
                  f" {c['cpu_per_query_us']:>12.1f} {c['dns_queries']:>9,} {c['policy_fetches']:>8,}"
                  f" {c['rss_mb']:>11.0f}  {label}")
            if label == "cold":
                rss.append((n, c["rss_mb"]))
    if len(rss) >= 2:
        (n0, r0), (n1, r1) = rss[0], rss[-1]
        print(f"peak RSS slope: {(r1 - r0) / ((n1 - n0) / 10000):.1f} MB per 10,000 domains")
    small = report["sizes"].get(min(report["sizes"])) if report["sizes"] else None
    if small:
        ours = small["cold"]
        for name in ("checkdmarc", "sts_resolver"):
            p = small.get(name)
            if p and "rate" in p:
                print(f"peer {name}: {p['rate']:,.0f} dom/s, cpu {p['cpu']:.1f}s "
                      f"({p['cpu'] / p['domains'] * 1e6:.0f} us/domain); ours/theirs rate "
                      f"{ours['rate'] / p['rate']:.2f}x, their cpu/domain / ours "
                      f"{(p['cpu'] / p['domains']) / (ours['cpu'] / ours['domains']):.2f}x")
            elif p:
                print(f"peer {name}: {p}")
            if p and "cpu_per_query_us" in p:
                print(f"CPU per DNS query: ours {ours['crawl_cpu_per_query_us']:.1f} us (crawl phase; "
                      f"{ours['cpu_per_query_us']:.1f} us with start-up), {name} {p['cpu_per_query_us']:.1f} us "
                      f"(~{p['queries_estimated']:,} queries): {p['ours_over_theirs_cpu_per_query']:.2f}x (goal <= 2x)")
    st = report.get("stall")
    if st:
        f, w = st["fast"], st["with_stall"]
        print(f"stalling host (--timeout {st['timeout']:g}): {st['base']:,} domains alone {f['crawl_seconds']:.1f}s "
              f"(slowest domain {f['slowest_domain_s']:.1f}s); with {st['stalled']:,} on a stalling address "
              f"{w['crawl_seconds']:.1f}s (slowest domain {w['slowest_domain_s']:.1f}s): "
              f"+{st['added_seconds']:.1f}s = {st['added_timeouts']:.1f} timeouts (goal: a few); "
              f"their verdicts {w['stalled_verdicts']}")
    lat = report.get("latency")
    if lat:
        o = lat["ours"]
        print(f"latency world: ours {o['rate']:,.0f} dom/s ({o['domains']:,} domains)")
        if "checkdmarc" in lat:
            c = lat["checkdmarc"]
            print(f"latency world: checkdmarc {c['rate']:,.1f} dom/s ({c['domains']} domains); "
                  f"ratio {o['rate'] / c['rate']:,.0f}x")
    if rows:
        print("\nverdict agreement per case (most common reading): ours policy_fetch/mode | "
              "STSResolver status/mode | checkdmarc valid/mode")
        for case, n, o, r, c in rows:
            print(f"  {case:<32} {n:>6}  {o:<24} {r:<16} {c}")


if __name__ == "__main__":
    sys.exit(main())
