"""What people do at the nodes of a sync test: a free slot, a backlog
of patients from a long outage, doctors registered region-wide."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from helpers.sync_world import Node
from sync_protocol.identifiers import make_pinfl, new_ulid
from sync_protocol.timeutil import to_instant


def free_slot(node: Node, *, hours_ahead: int = 2, index: int = 0) -> tuple[str, str]:
    """(practitioner, start) of a free future slot of the node's doctors."""
    after = to_instant(datetime.now(UTC) + timedelta(hours=hours_ahead))
    rows = node.store.query(
        "SELECT s.practitioner_id, s.starts_at FROM slots s WHERE s.starts_at > ? AND NOT "
        "EXISTS (SELECT 1 FROM appointments a WHERE a.practitioner_id = s.practitioner_id AND "
        "a.starts_at = s.starts_at AND a.status IN ('booked', 'checked_in', 'completed', "
        "'no_show')) ORDER BY s.starts_at, s.practitioner_id", (after,))
    row = rows[index % len(rows)]
    return row["practitioner_id"], row["starts_at"]


def next_second() -> None:
    """Instants are kept to the second: let the next event fall in a later second, so
    "before" and "after" hold by every clock the hub may compare (HLC or instants)."""
    time.sleep(1.02 - time.time() % 1)


def pack_expiry() -> str:
    return (date.today() + timedelta(days=365)).isoformat()


def add_backlog(node: Node, count: int) -> None:
    """`count` patients registered in one transaction: a clinic that worked through a long
    outage (the services would commit, and fsync, each one)."""
    born = date(1980, 5, 17)
    with node.store.transaction() as tx:
        for i in range(count):
            patient_id = new_ulid()
            tx.append("PatientRegistered", {
                "patient_id": patient_id, "med_id": "MED-" + patient_id[-10:],
                "full_name": f"Bemor {i:05d}", "birth_date": born.isoformat(), "sex": "female",
                "phone": "+998901234567", "facility_id": node.facility_id,
                "pinfl": make_pinfl(born, "female", f"{500 + i // 999:03d}",
                                    f"{1 + i % 999:03d}")})


def add_doctors(node: Node, count: int) -> None:
    """`count` doctors registered at the node's facility: region-wide registry events that
    every node of the region pulls."""
    with node.store.transaction() as tx:
        for i in range(count):
            tx.append("PractitionerRegistered", {
                "practitioner_id": new_ulid(), "facility_id": node.facility_id,
                "full_name": f"Shifokor {i:05d}", "specialty": "therapy",
                "is_family_doctor": False})
