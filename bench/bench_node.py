"""Local write and read rates of a node: booking with its event, and card reads.

Run: .venv/bin/python bench/bench_node.py [--bookings 2000] [--reads 2000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from datetime import time as clock_time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report  # noqa: E402
from edge_node.services import appointments, card, clinical, facilities, patients, scheduling  # noqa: E402
from edge_node.services.access import SYSTEM, Actor  # noqa: E402
from edge_node.store import NodeStore  # noqa: E402
from sync_protocol.identifiers import make_pinfl  # noqa: E402
from sync_protocol.timeutil import local_date, utc_now  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = NodeStore(Path(tmp) / "bench.db")
        store.initialise("bench-node")
        registrar = Actor("bench-registrar", "registrar")
        facility = facilities.register_facility(store, SYSTEM, code="B1", name="Bench",
                                                kind="clinic", region="TAS")
        doctors = [facilities.register_practitioner(store, SYSTEM, facility_id=facility,
                                                    full_name=f"Doctor {i}", specialty="therapy")
                   for i in range(10)]
        first = local_date(utc_now()) + timedelta(days=1)
        for d in doctors:
            scheduling.publish_schedule(store, SYSTEM, practitioner_id=d, first_day=first,
                                        days=30, weekdays=tuple(range(7)), start=clock_time(8),
                                        end=clock_time(20), slot_minutes=10)
        slots = [(r["practitioner_id"], r["starts_at"]) for r in store.query(
            "SELECT practitioner_id, starts_at FROM slots ORDER BY starts_at")]

        start = time.perf_counter()
        people = [patients.register_patient(
            store, registrar, full_name=f"Bemor {i}", phone=f"+99890{i:07d}",
            facility_id=facility, pinfl=make_pinfl(date(1960, 1, 1) + timedelta(days=i % 20000),
                                                   "male", serial=f"{i % 999 + 1:03d}",
                                                   district=f"{i // 999 % 999 + 1:03d}"),
        )["patient_id"] for i in range(args.bookings)]
        register_s = time.perf_counter() - start

        start = time.perf_counter()
        for i, patient in enumerate(people):
            doctor, when = slots[i]
            appointments.book(store, registrar, patient_id=patient, practitioner_id=doctor,
                              starts_at=when, channel="kiosk")
        booking_s = time.perf_counter() - start

        doctor = Actor("bench-doctor", "doctor", practitioner_id=doctors[0])
        sample = people[:200]
        for patient in sample:
            for code in ("I10", "E11.9", "J06.9"):
                clinical.record_visit(store, doctor, patient_id=patient,
                                      diagnoses=[{"code": code}])
        rng = random.Random(7)
        start = time.perf_counter()
        for _ in range(args.reads):
            card.read_card(store, doctor, rng.choice(sample), "visit")
        read_s = time.perf_counter() - start
        store.close()

    report("node_local_rates", [
        {"operation": "register patient (+event, +SMS queued)", "count": args.bookings,
         "seconds": register_s, "per_second": args.bookings / register_s},
        {"operation": "book appointment (+event)", "count": args.bookings,
         "seconds": booking_s, "per_second": args.bookings / booking_s},
        {"operation": "read card (3 visits, audited)", "count": args.reads,
         "seconds": read_s, "per_second": args.reads / read_s},
    ], {"note": "SQLite WAL, synchronous=FULL: every write is fsynced as a confirmed write must"})


if __name__ == "__main__":
    main()
