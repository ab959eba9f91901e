"""Benchmark: the crawl sharded on a Dask LocalCluster with 1, 2 and 4 worker processes,
beside the single-machine crawl of the same list in the same world (its peer).

* No delay (loopback world, default mix, no --probe-smtp): CPU-bound. For each
  configuration: wall time of the whole command (cluster start included), the crawl
  phase's rate (the run summary's session seconds: shards crawled and registered), and
  the CPU of the whole process tree (driver, scheduler, nannies, workers) per domain.
* Latency (the testbed's latency mode, ``--latency-ms``, default 50): the single-machine
  crawl's mean per-domain wall time (``duration_ms``) and rate, to derive the concurrency
  a latency-bound crawl needs (Little's law) for the 87-million-domain estimate in
  docs/cluster.md.

This machine has 2 cores: more than 2 worker processes cannot add CPU, only overhead.

Run:  .venv/bin/python -m benchmarks.cluster_bench [--size 20000] [--workers 1,2,4]
      [--latency-ms 50] [--latency-size 10000] [--workdir DIR] [--json FILE]
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
from pathlib import Path
from typing import Any

import duckdb

MTASTS = str(Path(sys.executable).parent / "mtasts")
HERE = Path(__file__).resolve().parent


def _world(n: int, workdir: Path, latency_ms: int) -> tuple[Any, Path]:
    from collectors.testbed import Testbed, generate_population

    scenario = generate_population(n, seed=1)
    workdir.mkdir(parents=True, exist_ok=True)
    listing = workdir / "list.csv"
    listing.write_text("".join(f"{i},{d.name}\n" for i, d in enumerate(scenario.domains, 1)))
    t0 = time.monotonic()
    world = Testbed(scenario, workdir / "world", mode="loopback", latency_ms=latency_ms).up()
    print(f"  world of {n:,} domains up in {time.monotonic() - t0:.1f}s (loopback, latency {latency_ms} ms)",
          file=sys.stderr)
    return world, listing


def _crawl(world: Any, listing: Path, db: Path, extra: list[str]) -> dict[str, Any]:
    """One ``mtasts crawl`` under /usr/bin/time (CPU and peak RSS of the process tree)."""
    if db.exists():
        db.unlink()
    shutil.rmtree(db.parent / "runs", ignore_errors=True)
    timing = db.parent / "time.txt"
    cmd = [shutil.which("time") or "/usr/bin/time", "-f", "%e %U %S %M", "-o", str(timing),
           MTASTS, "crawl", str(listing), "--db", str(db), "--no-progress", *world.crawler_args(), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"crawl failed: {done.stderr[-2000:]}")
    wall, user, system, rss = timing.read_text().split()[-4:]
    con = duckdb.connect(str(db), read_only=True)
    summary = json.loads(con.execute("SELECT summary FROM runs").fetchone()[0])
    mean_ms, p99_ms = con.execute("SELECT avg(duration_ms), quantile_cont(duration_ms, 0.99)"
                                  " FROM crawl_observations").fetchone()
    # the shard tasks' own CPU (worker processes, no cluster start-up, no driver): the
    # marginal cost of a domain on a worker
    worker_cpu = con.execute("SELECT sum(cpu_seconds) / sum(domains) FROM crawl_shards").fetchone()[0] \
        if "distributed" in session_keys(summary) else None
    con.close()
    session = summary["session"]
    domains = session["domains"]
    cpu = float(user) + float(system)
    return {"domains": domains, "wall_s": float(wall), "crawl_s": session["seconds"],
            "rate_crawl": domains / session["seconds"], "rate_wall": domains / float(wall),
            "cpu_s": cpu, "cpu_ms_per_domain": 1000 * cpu / domains, "peak_rss_mb": int(rss) / 1024,
            "dns_queries": session["dns_queries"], "mean_domain_ms": mean_ms, "p99_domain_ms": p99_ms,
            "worker_cpu_ms_per_domain": 1000 * worker_cpu if worker_cpu is not None else None,
            "distributed": session.get("distributed")}


def session_keys(summary: dict[str, Any]) -> set[str]:
    return set(summary.get("session") or {})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--latency-size", type=int, default=10_000, help="0 skips the latency world")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--json", type=Path, default=HERE / "results" / "cluster_bench.json")
    args = ap.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "size": args.size, "no_delay": {},
                               "latency": {}}

    world, listing = _world(args.size, workdir / "nodelay", 0)
    try:
        runs = [("single", [])] + [(f"workers={n}", ["--workers", n]) for n in args.workers.split(",")]
        for name, extra in runs:
            r = _crawl(world, listing, workdir / "nodelay" / f"{name}.duckdb", extra)
            results["no_delay"][name] = r
            print(f"  {name:<10} crawl {r['rate_crawl']:7,.0f} dom/s  (whole command {r['rate_wall']:6,.0f} dom/s,"
                  f" {r['wall_s']:5.1f}s)  CPU {r['cpu_ms_per_domain']:.2f} ms/domain"
                  + (f" (in shard tasks {r['worker_cpu_ms_per_domain']:.2f})" if r["worker_cpu_ms_per_domain"] else "")
                  + "  peak RSS "
                  f"{r['peak_rss_mb']:.0f} MB", file=sys.stderr)
    finally:
        world.down()
    base = results["no_delay"]["single"]["rate_crawl"]
    for name, r in results["no_delay"].items():
        r["ratio_vs_single"] = r["rate_crawl"] / base

    if args.latency_size:
        world, listing = _world(args.latency_size, workdir / "latency", args.latency_ms)
        try:
            for name, extra in (("single", []), ("workers=2", ["--workers", "2"])):
                r = _crawl(world, listing, workdir / "latency" / f"{name}.duckdb", extra)
                results["latency"][name] = r
                print(f"  latency {args.latency_ms} ms {name:<10} {r['rate_crawl']:7,.0f} dom/s,"
                      f" mean {r['mean_domain_ms']:.0f} ms a domain (p99 {r['p99_domain_ms']:.0f}),"
                      f" CPU {r['cpu_ms_per_domain']:.2f} ms/domain",
                      file=sys.stderr)
        finally:
            world.down()
        results["latency"]["latency_ms"] = args.latency_ms

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps({k: {n: {m: round(v, 3) if isinstance(v, float) else v for m, v in r.items()
                              if m in ("rate_crawl", "rate_wall", "cpu_ms_per_domain", "ratio_vs_single",
                                       "worker_cpu_ms_per_domain", "mean_domain_ms", "p99_domain_ms")}
                          for n, r in results[k].items() if isinstance(r, dict)}
                      for k in ("no_delay", "latency")}, indent=1))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
