"""Benchmark `dmed-node backup` and `restore` against the bare SQLite online backup.

    .venv/bin/python bench/bench_backup.py [--mb 32] [--rounds 3]

A node database of about `mb` megabytes (patients registered through the service, so the log
and tables are real) is copied with the bare SQLite backup API (the reference, measured in
the same run), then backed up (snapshot + seal to the region's key) and restored (open +
every origin's chain verified). Prints JSON, then a table with each ratio to the reference.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edge_node import backup as backups
from edge_node.seed import seed_demo
from edge_node.services import patients, staff
from edge_node.services.clock import confirm_clock
from edge_node.store import NodeStore

PATIENTS_PER_MB = 850  # measured: a registered patient costs ~1.2 kB of log and tables


def build(path: Path, mb: int) -> NodeStore:
    store = NodeStore(path)
    store.initialise("bench-node")
    confirm_clock(store, "bench")
    seed_demo(store, days=1)
    registrar = staff.actor_for_staff(store.one("SELECT * FROM staff WHERE username = ?",
                                                ("registrar",)))
    facility = store.facility_id
    for n in range(mb * PATIENTS_PER_MB):
        patients.register_patient(store, registrar, full_name=f"Bench Patient {n}",
                                  phone="+998901112233", facility_id=facility,
                                  document=f"AB{n:07d}", birth_date="1990-01-01", sex="male")
    return store


def timed(fn, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        store = build(work_dir / "node.db", args.mb)
        size = store.path.stat().st_size
        counter = iter(range(10_000))

        def bare() -> None:
            source, dest = sqlite3.connect(store.path), sqlite3.connect(
                work_dir / f"bare-{next(counter)}.db")
            source.backup(dest)
            dest.close()
            source.close()

        made: list[Path] = []

        def sealed() -> None:
            made.append(backups.backup(store, work_dir / f"out-{next(counter)}", public).path)

        def restored() -> None:
            backups.restore(made[-1], private, work_dir / f"restored-{next(counter)}.db")

        results = {"bare_sqlite_backup": timed(bare, args.rounds),
                   "backup_sealed": timed(sealed, args.rounds),
                   "restore_verified": timed(restored, args.rounds)}
    reference = statistics.median(results["bare_sqlite_backup"])
    report = {"database_bytes": size, "events": args.mb * PATIENTS_PER_MB,
              "rounds": args.rounds,
              "median_seconds": {k: round(statistics.median(v), 4) for k, v in results.items()},
              "ratio_to_bare": {k: round(statistics.median(v) / reference, 2)
                                for k, v in results.items()},
              "mb_per_second": {k: round(size / 2**20 / statistics.median(v), 1)
                                for k, v in results.items()}}
    print(json.dumps(report, indent=2))
    print(f"\n{'operation':<22}{'median s':>10}{'MB/s':>8}{'x bare':>8}")
    for name in results:
        print(f"{name:<22}{report['median_seconds'][name]:>10}"
              f"{report['mb_per_second'][name]:>8}{report['ratio_to_bare'][name]:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
