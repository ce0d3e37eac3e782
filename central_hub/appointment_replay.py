"""The hub's slots and appointments: published slots, and every booking replayed by the rules.

Part of the projection hook (central_hub.projections.ProjectionHook, which also owns the
tables' schema). The hub replays, in clock order, every appointment that shares a slot with
the batch's, so the earlier (hlc, origin) keeps a slot and the other booking is 'bumped',
whichever arrived first; the node replays the same way (edge_node.slot_projection): both
sides run sync_protocol.slot_replay.replay_appointments. Each slot claim is kept with the
clock of its release (cancel or move) for conflict detection (central_hub.conflicts).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sync_protocol.event_names import APPOINTMENT_BOOKED, APPOINTMENT_RESCHEDULED
from sync_protocol.events import Event
from sync_protocol.slot_replay import HOLDING, clock_order, replay_appointments, slot_key
from sync_protocol.timeutil import from_instant, to_instant

from .storage import Tx

log = logging.getLogger(__name__)

# Re-exported for central_hub.conflicts and the tests: the rule itself is sync_protocol's.
__all__ = ["HOLDING", "project_appointments", "project_slots", "replay_appointments",
           "slot_key"]
# Appointments sharing slots are replayed together; a chain of moves longer than this many
# hops is cut (it would take years of rescheduling to reach it).
MAX_CLOSURE_ROUNDS = 8


def project_slots(tx: Tx, events: list[Event]) -> None:
    rows: list[tuple[str, ...]] = []
    for e in events:
        p = e.payload
        minutes = p["slot_minutes"]
        rows.extend((p["practitioner_id"], start,
                     to_instant(from_instant(start) + timedelta(minutes=minutes)), p["facility_id"],
                     p["schedule_id"]) for start in p["starts"])
    tx.insert_many("hub_slots", ("practitioner_id", "starts_at", "ends_at", "facility_id",
                                 "schedule_id"), rows,
                   "ON CONFLICT (practitioner_id, starts_at) DO NOTHING")


APPOINTMENT_EVENT_COLUMNS = ("event_id", "appointment_id", "type", "hlc", "origin",
                             "patient_id", "practitioner_id", "facility_id", "starts_at",
                             "channel", "queue_number", "reason")


def project_appointments(tx: Tx, events: list[Event]) -> None:
    if not events:
        return
    tx.append_rows("hub_appointment_events", APPOINTMENT_EVENT_COLUMNS, [
        (e.id, e.payload["appointment_id"], e.type, e.hlc, e.origin, e.payload.get("patient_id"),
         e.payload.get("practitioner_id"), e.payload.get("facility_id"),
         e.payload.get("starts_at"), e.payload.get("channel"), e.payload.get("queue_number"),
         e.payload.get("reason")) for e in events])
    rows = _closure(tx, {e.payload["appointment_id"] for e in events})
    appointments, claims = replay_appointments(rows)
    # Appointments whose every event is in this batch have no row yet: append those.
    batch = {e.id for e in events}
    seen_before = {r["appointment_id"] for r in rows if r["event_id"] not in batch}
    columns = ("appointment_id", "patient_id", "practitioner_id", "facility_id", "starts_at",
               "channel", "status", "queue_number", "cancel_reason", "booked_hlc",
               "booked_origin", "bumped_by")
    upserts = [tuple(a[c] for c in columns) for _, a in sorted(appointments.items())]
    tx.append_rows("hub_appointments", columns,
                   [r for r in upserts if r[0] not in seen_before])
    tx.insert_many("hub_appointments", columns, [r for r in upserts if r[0] in seen_before],
                   "ON CONFLICT (appointment_id) DO UPDATE SET " + ", ".join(
                       f"{c} = excluded.{c}" for c in columns[1:]))
    _delete_in(tx, "hub_appointment_claims", "appointment_id", sorted(seen_before))
    claim_columns = ("event_id", "appointment_id", "slot", "practitioner_id", "starts_at",
                     "facility_id", "patient_id", "hlc", "origin", "release_hlc",
                     "release_origin", "release_event_id")
    tx.append_rows("hub_appointment_claims", claim_columns,
                   [tuple(c[k] for k in claim_columns) for c in claims])


def _delete_in(tx: Tx, table: str, column: str, values: Sequence[str]) -> None:
    for start in range(0, len(values), 500):
        chunk = values[start:start + 500]
        tx.execute(f"DELETE FROM {table} WHERE {column} IN ({', '.join('?' * len(chunk))})",  # noqa: S608 - names are code constants
                   chunk)


def _closure(tx: Tx, appointment_ids: set[str]) -> list[dict[str, Any]]:
    """The events of these appointments and of every appointment that shares a slot with
    them, transitively: together they decide who holds each of those slots."""
    rows: dict[str, dict[str, Any]] = {}
    loaded: set[str] = set()
    slots_seen: set[str] = set()
    wanted = set(appointment_ids)
    for _ in range(MAX_CLOSURE_ROUNDS):
        fresh = wanted - loaded
        if not fresh:
            break
        for row in tx.query_in("SELECT * FROM hub_appointment_events WHERE appointment_id IN "
                               "({ids})", fresh):
            rows[row["event_id"]] = row
        loaded |= fresh
        slots = {slot for slot in _claimed_slots(rows.values()) if slot not in slots_seen}
        slots_seen |= slots
        for row in tx.query_in("SELECT DISTINCT appointment_id FROM hub_appointment_claims "
                               "WHERE slot IN ({ids})", slots):
            wanted.add(row["appointment_id"])
    else:
        log.warning("appointment closure cut after %s rounds", MAX_CLOSURE_ROUNDS)
    return list(rows.values())


def _claimed_slots(rows: Iterable[dict[str, Any]]) -> set[str]:
    doctor: dict[str, str] = {}
    out = set()
    for row in sorted(rows, key=clock_order):
        if row["type"] not in (APPOINTMENT_BOOKED, APPOINTMENT_RESCHEDULED):
            continue
        who = row["practitioner_id"] or doctor.get(row["appointment_id"])
        if who:
            doctor[row["appointment_id"]] = who
            out.add(slot_key(who, row["starts_at"]))
    return out


