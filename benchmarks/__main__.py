"""Run the benchmarks: ``python -m benchmarks [NAME ...]`` (default: all ``*_bench.py``;
``ingest`` is ``ingest_bench``). Options go to a benchmark run alone: ``python -m benchmarks.NAME ...``.

Each benchmark is its own script, run in its own process so that peak-memory
figures are not polluted by the others; results go to stdout and to
``benchmarks/results/<name>.json`` when the script writes them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    available = sorted(p.stem for p in HERE.glob("*_bench.py"))
    # `make bench BENCH=ingest` as well as BENCH=ingest_bench
    wanted = [w if w in available or f"{w}_bench" not in available else f"{w}_bench" for w in argv] or available
    unknown = [w for w in wanted if w not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}",
              file=sys.stderr)
        return 2
    failed = []
    for name in wanted:
        print(f"== {name} ==", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"], cwd=HERE.parent)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
