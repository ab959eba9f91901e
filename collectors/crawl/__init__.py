"""The crawler: the MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) posture of a domain list.

Data flow: ``inputs`` (a top list, normalised, bad entries quarantined; ``zonefile``
for DNS zone files) -> ``observe`` (DNS through ``resolver``/``wire``, the policy
fetch through ``policy_fetch``, the optional SMTP probe through ``smtp_probe``) ->
``writer`` (raw rows into DuckDB in batches, one transaction per batch with the
completion markers) -> the ``posture`` view (collectors/store/views/010_crawl.sql)
classifies. ``runner`` ties these together for one run and for ``--resume``;
:mod:`collectors.crawl.distributed` runs the same crawler in shards on Dask.

``advice`` says what to fix for each finding (``mtasts check``); ``sanity`` is the monthly
job's gate (``DEFAULT_CANARIES``: domains whose answers are known) before a month is published.

The public names below load their module on first use, so importing the package (or
one of its modules) stays cheap for the command line.
"""

from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module that defines it.
_HOMES = {
    "CrawlSettings": "runner", "CrawlStats": "runner", "format_summary": "runner", "input_loaded": "runner",
    "load_input": "runner", "run_crawl": "runner", "summarise": "runner",
    "InputError": "inputs", "is_tranco_spec": "inputs", "resolve_tranco": "inputs",
    "ResolverConfigError": "resolver", "parse_resolver": "resolver", "system_resolver": "resolver",
    "ZoneStats": "zonefile", "read_list_or_zone": "zonefile",
    "InputEntry": "inputs", "normalise_domain": "inputs", "advise": "advice",
    "DEFAULT_CANARIES": "sanity", "Canary": "sanity", "check_run": "sanity",
    "fetch_policy": "policy_fetch", "client_context": "tlsinfo",
}

__all__ = sorted(_HOMES, key=str.casefold)


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"collectors.crawl.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
