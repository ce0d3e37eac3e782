"""Shared output for benchmarks: JSON first (for machines), then a table (for people)."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "machine": platform.machine()}


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
