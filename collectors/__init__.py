"""MTA-STS Observatory: measure SMTP transport security (RFC 8461, RFC 8460).

The subpackages follow the data flow; which may import which is the dependency rule
in README.md ("The dependency rule"), enforced by tests/test_architecture.py.
"""

from pathlib import Path

__version__ = "0.1.0"

# The repository checkout this package runs from: where data/, notebooks/ and lab/ live.
REPO_ROOT = Path(__file__).resolve().parent.parent
