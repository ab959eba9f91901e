"""Benchmark: CPU per policy fetch (RFC 8461 3.3) of three HTTP/1.1 clients, same run,
same server: the hand-written parser the fetch had before (read from git history), the
fetch on h11 (the product's, ``collectors.crawl.policy_fetch``) and the same fetch on
httpx (its ``sni_hostname`` and ``trace`` request extensions; a client kept for the run,
no keep-alive, so every fetch is a new TLS connection as in the crawl).

The server is the testbed's nginx (a loopback world: its own processes, so the CPU
measured here is the client's alone); each client makes the same fetches of valid
policies, ``--concurrency`` at a time, in alternating rounds; the median round counts.

Run:  .venv/bin/python -m benchmarks.fetch_bench [--fetches 2000] [--rounds 3] [--before REV]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

REPO = Path(__file__).resolve().parents[1]
FETCH_MODULE = "collectors/crawl/policy_fetch.py"
Fetch = Callable[[str, str, int, ssl.SSLContext], Awaitable[str]]


def hand_written_revision() -> str:
    """The newest revision whose policy fetch parsed HTTP by hand (before h11)."""
    revs = subprocess.run(["git", "log", "--format=%H", "--", FETCH_MODULE], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout.split()
    for rev in revs:
        text = _source(rev)
        if "import h11" not in text:
            return rev
    raise SystemExit("no hand-written policy fetch in the history")


def _source(rev: str) -> str:
    return subprocess.run(["git", "show", f"{rev}:{FETCH_MODULE}"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout


def _load(rev: str, workdir: Path) -> Any:
    path = workdir / f"policy_fetch_{rev[:10]}.py"
    path.write_text(_source(rev))
    spec = importlib.util.spec_from_file_location(f"policy_fetch_{rev[:10]}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def module_fetch(fetch_policy: Any) -> Fetch:
    """A fetch function (``fetch_policy`` of a revision of collectors/crawl/policy_fetch.py)."""
    async def fetch(host: str, address: str, port: int, ctx: ssl.SSLContext) -> str:
        r = await fetch_policy(host, address, port=port, context=ctx, timeout=10)
        return r.outcome
    return fetch


def httpx_fetch(ctx: ssl.SSLContext) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    """The policy fetch on httpx: the address in the URL, the name as Host and SNI, the
    phases from the trace extension, the body streamed and capped, no redirects."""
    import httpx

    client = httpx.AsyncClient(verify=ctx, http2=False, follow_redirects=False, trust_env=False,
                               limits=httpx.Limits(max_keepalive_connections=0), timeout=10)

    async def fetch(host: str, address: str, port: int, _ctx: ssl.SSLContext) -> str:
        phase = ["connect"]

        async def trace(name: str, info: dict[str, Any]) -> None:
            if name.endswith(".started"):
                phase[0] = name.rsplit(".", 1)[0]

        request = client.build_request(
            "GET", f"https://{address}:{port}/.well-known/mta-sts.txt",
            headers={"Host": host, "Accept": "text/plain, */*;q=0.1", "Accept-Encoding": "identity",
                     "Connection": "close"},
            extensions={"sni_hostname": host, "trace": trace})
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError:
            return f"error during {phase[0]}"
        try:
            if response.status_code != 200:
                return "http_error"
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > 65536:
                    return "too_large"
            return "ok"
        finally:
            await response.aclose()

    return fetch, client.aclose


async def _round(fetch: Fetch, targets: list[str], address: str, port: int, ctx: ssl.SSLContext,
                 concurrency: int) -> tuple[float, dict[str, int]]:
    outcomes: dict[str, int] = {}
    queue = iter(targets)

    async def worker() -> None:
        for host in queue:
            outcome = await fetch(host, address, port, ctx)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu, outcomes


async def measure(clients: dict[str, Fetch], targets: list[str], address: str, port: int,
                  ctx: ssl.SSLContext, rounds: int, concurrency: int) -> dict[str, Any]:
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    outcomes: dict[str, dict[str, int]] = {}
    for r in range(rounds):
        order = list(clients) if r % 2 == 0 else list(reversed(clients))
        for name in order:
            seconds, outcomes[name] = await _round(clients[name], targets, address, port, ctx, concurrency)
            cpu[name].append(seconds)
    return {name: {"cpu_us_per_fetch": statistics.median(v) / len(targets) * 1e6,
                   "rounds_us": [round(x / len(targets) * 1e6, 1) for x in v], "outcomes": outcomes[name]}
            for name, v in cpu.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fetches", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--domains", type=int, default=50)
    ap.add_argument("--before", help="the revision of the hand-written fetch (default: found in git log)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    from collectors.crawl import client_context, fetch_policy
    from collectors.testbed import WEB, Testbed, generate_population

    work = Path(tempfile.mkdtemp(prefix="fetch-bench-"))
    before = args.before or hand_written_revision()
    scenario = generate_population(args.domains, seed=1, mix={"valid-enforce": 1})
    hosts = [f"mta-sts.{d.name}" for d in scenario.domains]
    targets = [hosts[i % len(hosts)] for i in range(args.fetches)]
    world = Testbed(scenario, work / "world", mode="loopback").up()
    try:
        ctx = client_context(str(world.ca_bundle))

        async def run() -> dict[str, Any]:
            via_httpx, close = httpx_fetch(ctx)
            clients = {f"hand-written ({before[:10]})": module_fetch(_load(before, work).fetch_policy),
                       "h11 (now)": module_fetch(fetch_policy), "httpx": via_httpx}
            try:
                return await measure(clients, targets, WEB, world.https_port, ctx, args.rounds, args.concurrency)
            finally:
                await close()

        results = asyncio.run(run())
    finally:
        world.down()
    print(f"\npolicy fetch CPU ({args.fetches:,} fetches a round, {args.concurrency} at a time, median of "
          f"{args.rounds} rounds; nginx on loopback, new TLS connection each)")
    base = next(iter(results.values()))["cpu_us_per_fetch"]
    for name, r in results.items():
        print(f"  {name:<28} {r['cpu_us_per_fetch']:>8.0f} us/fetch  {r['cpu_us_per_fetch'] / base:>5.2f}x"
              f"  rounds {r['rounds_us']}  outcomes {r['outcomes']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
