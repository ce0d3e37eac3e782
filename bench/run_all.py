"""`make bench`: run every benchmark under bench/ with small defaults, one after another."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Installs its peer from PyPI into a venv of its own on first use: run by hand (README).
NEEDS_NETWORK = {"bench_peer_morango.py"}
TOTAL_LIMIT_S = 600
# Sizes for `make bench` where a script's own default is the size its issue set its target at
# (the figures are rates or ratios, so a smaller run is judged the same way).
SMALLER = {"bench_sync.py": ["--events", "40000", "--naive-events", "1000"]}


def main() -> int:
    failed, took = [], {}
    for script in sorted(HERE.glob("bench_*.py")):
        if script.name in NEEDS_NETWORK:
            continue
        print(f"\n=== {script.name} ===", flush=True)
        start = time.monotonic()
        command = [sys.executable, str(script), *SMALLER.get(script.name, [])]
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(script.name)
        took[script.name] = time.monotonic() - start
    # `make bench` must end within TOTAL_LIMIT_S (issue 17): what each one took, to see why not.
    print("\nseconds per benchmark:")
    for name, seconds in took.items():
        print(f"  {name:<28} {seconds:7.1f}")
    total = sum(took.values())
    verdict = "within" if total <= TOTAL_LIMIT_S else "OVER"
    print(f"  {'total':<28} {total:7.1f} ({verdict} the limit of {TOTAL_LIMIT_S} s)")
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
