"""MTA-STS Observatory: measure SMTP transport security (RFC 8461, RFC 8460).

Subpackages follow the data flow: ``rfc`` (pure parsers, no I/O), ``store``
(DuckDB schema and runs), ``crawl`` (internet posture collector),
``lab_ingest`` (audit-lab evidence), ``testbed`` (a simulated internet),
and ``cli`` (the only module that wires them together).
"""

from pathlib import Path

__version__ = "0.1.0"

# The repository checkout this package runs from: where data/, notebooks/ and lab/ live.
REPO_ROOT = Path(__file__).resolve().parent.parent
