"""Helpers for tests on a node's store: free slots, whole-database snapshots, and events
made as another node would make them."""

from __future__ import annotations

from datetime import timedelta

from sync_protocol.event_types import latest_version
from sync_protocol.events import GENESIS_HASH, seal
from sync_protocol.hlc import HlcTimestamp, wall_clock_ms
from sync_protocol.identifiers import new_ulid
from sync_protocol.timeutil import from_instant, local_date, to_instant, utc_now

# Items the node tests prescribe.
AMOXICILLIN = {"inn": "amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 20,
               "dosage": "1 kapsula kuniga 3 mahal, 7 kun"}
AMLODIPINE = {"inn": "amlodipine", "form": "tablet", "strength": "5 mg", "quantity": 30,
              "dosage": "1 tabletka kuniga 1 mahal"}


def future_slot(store, practitioner_id: str, days_ahead: int = 1, index: int = 0) -> str:
    """The ``index``-th slot of a doctor's first working day that begins wholly more than
    ``days_ahead`` days from now, so that slots 0, 1, 2… fall on one day whatever the hour
    the tests run at (the first slot after "now + 1 day" may be the day's last)."""
    earliest = utc_now() + timedelta(days=days_ahead)
    rows = store.query("SELECT starts_at FROM slots WHERE practitioner_id = ? AND starts_at > ?"
                       " ORDER BY starts_at", (practitioner_id, to_instant(earliest)))
    whole_day = [r["starts_at"] for r in rows
                 if local_date(from_instant(r["starts_at"])) > local_date(earliest)]
    return whole_day[index]


def snapshot(store):
    """Every table's rows, for 'nothing changed' assertions."""
    tables = [r["name"] for r in store.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {t: [tuple(r) for r in store.query(f"SELECT * FROM {t} ORDER BY 1")] for t in tables}


class RemoteNode:
    """Makes sealed events as another node would."""

    def __init__(self, origin, offset_ms=0):
        self.origin, self.seq, self.prev = origin, 0, GENESIS_HASH
        self.wall = wall_clock_ms() + offset_ms

    def event(self, event_type, payload):
        self.seq += 1
        self.wall += 1
        event = seal(id=new_ulid(), origin=self.origin, seq=self.seq,
                     hlc=HlcTimestamp(self.wall, 0), type=event_type,
                     version=latest_version(event_type), payload=payload, prev_hash=self.prev)
        self.prev = event.hash
        return event


def receive(store, events):
    with store.transaction() as tx:
        return [tx.receive(e) for e in events]


def booking(node, seeded, slot, patient_index):
    return node.event("AppointmentBooked", {
        "appointment_id": new_ulid(), "patient_id": seeded["patient_rows"][patient_index][
            "patient_id"], "practitioner_id": seeded["doctors"][0]["practitioner_id"],
        "facility_id": seeded["facility_id"], "starts_at": slot, "channel": "web"})
