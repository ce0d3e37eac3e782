"""Shared output for benchmarks: JSON first (for machines), then a table (for people)."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "machine": platform.machine(), "speed_probe_s": speed_probe()}


def speed_probe() -> float:
    """Seconds for a fixed pure-Python loop (best of 3): the same shared 2-core machines have
    run it 2.5x slower on one day than on another, so figures from different runs are
    compared through this."""
    def loop() -> None:
        total = 0
        for i in range(2_000_000):
            total += i
    return round(min(timed(loop, 1) for _ in range(3)), 3)


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Seconds for ``repeat`` calls."""
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return time.perf_counter() - start


def report(name: str, rows: list[dict], extra: dict | None = None) -> None:
    print(json.dumps({"benchmark": name, "machine": machine(), "results": rows,
                      **(extra or {})}, indent=2))
    if not rows:
        return
    columns = list(rows[0])
    widths = [max(len(str(c)), *(len(_fmt(r[c])) for r in rows)) for c in columns]
    print()
    print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(_fmt(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 100 else f"{value:.3f}"
    return str(value)
