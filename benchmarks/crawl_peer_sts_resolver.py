"""Peer for the crawl benchmark: postfix-mta-sts-resolver's ``STSResolver.resolve`` over a list,
100 domains at a time (as its daemon would), run by the interpreter that has the package
(Debian's python3: ``python3 crawl_peer_sts_resolver.py LIST [TIMEOUT]``). Prints one JSON line:
domains, seconds, cpu seconds, and per-domain results (mode or the failure) for agreement tables.
"""

import asyncio
import json
import resource
import sys
import time


async def _main(domains, timeout):
    from postfix_mta_sts_resolver.resolver import STSResolver

    resolver = STSResolver(loop=asyncio.get_running_loop(), timeout=timeout)
    results = {}

    async def one(domain):
        try:
            status, policy = await resolver.resolve(domain)
            mode = policy[1].get("mode") if policy and len(policy) > 1 and isinstance(policy[1], dict) else None
            results[domain] = [status.name, mode]
        except Exception as exc:  # the peer's own failures are data too
            results[domain] = ["EXCEPTION", type(exc).__name__]

    for i in range(0, len(domains), 100):
        await asyncio.gather(*(one(d) for d in domains[i:i + 100]))
    return results


def main():
    path = sys.argv[1]
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
    with open(path, encoding="utf-8") as fh:
        domains = [line.strip().split(",")[-1] for line in fh if line.strip()]
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    results = asyncio.run(_main(domains, timeout))
    seconds = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(json.dumps({"domains": len(domains), "seconds": seconds, "cpu": cpu, "results": results}))


if __name__ == "__main__":
    main()
