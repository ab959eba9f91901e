"""Peer for the crawl benchmark: checkdmarc's MTA-STS and TLS-RPT checks, one domain after
another as its CLI does. Run by an interpreter that has checkdmarc (a benchmark-only
dependency: ``pip install checkdmarc`` into a separate venv):
``python crawl_peer_checkdmarc.py LIST [TIMEOUT]``. Prints one JSON line like the other peer.
"""

import json
import resource
import sys
import time


def main():
    from checkdmarc.mta_sts import check_mta_sts
    from checkdmarc.smtp_tls_reporting import check_smtp_tls_reporting

    path = sys.argv[1]
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    with open(path, encoding="utf-8") as fh:
        domains = [line.strip().split(",")[-1] for line in fh if line.strip()]
    results = {}
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    for domain in domains:
        sts = check_mta_sts(domain, timeout=timeout)
        rpt = check_smtp_tls_reporting(domain, timeout=timeout)
        policy = sts.get("policy") or {}
        results[domain] = {
            "sts_valid": bool(sts.get("valid")),
            "sts_error": (sts.get("error") or "")[:120],
            "mode": policy.get("mode") if isinstance(policy, dict) else None,
            "tlsrpt_valid": bool(rpt.get("valid")),
        }
    seconds = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(json.dumps({"domains": len(domains), "seconds": seconds, "cpu": cpu, "results": results}))


if __name__ == "__main__":
    main()
