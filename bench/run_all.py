"""`make bench`: run every benchmark under bench/ with small defaults, one after another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Installs its peer from PyPI into a venv of its own on first use: run by hand (README).
NEEDS_NETWORK = {"bench_peer_morango.py"}


def main() -> int:
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        if script.name in NEEDS_NETWORK:
            continue
        print(f"\n=== {script.name} ===", flush=True)
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
