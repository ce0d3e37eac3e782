"""The node's appointments table: who holds each slot, decided as the hub decides it.

Owns the projection of every appointment event (booked, rescheduled, checked in, completed,
no-show, cancelled) into ``appointments``. Applying an event re-decides, from the node's log,
every slot the event's appointment has named: the events of every appointment that has
claimed one of those slots are replayed in clock order by
sync_protocol.slot_replay.replay_appointments, the function the hub replays with, and each
appointment now on one of those slots gets the replay's row. So in any arrival order the
table equals the hub's clock-order replay (DESIGN 4.3): an earlier booking arriving late
bumps a later one, and its cancellation, arriving later still, gives the slot back if clock
order says the later booking came after the release.

Why replaying those slots is enough: an appointment's status on a slot depends only on the
events of the appointments that claimed that slot, so an event of appointment X can change
only the rows of appointments now on a slot X named (its bookings' and moves' doctors and
times), and all of those are replayed.

The event is in the log before it is applied (NodeStore records, then projects); events
refused for their clock are in the log but never applied, so they are left out here too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from sync_protocol.events import Event
from sync_protocol.slot_replay import (
    APPOINTMENT_EVENTS,
    CLAIMING,
    HOLDING,
    replay_appointments,
)

COLUMNS = ("appointment_id", "patient_id", "practitioner_id", "facility_id", "starts_at",
           "channel", "status", "queue_number", "cancel_reason", "booked_hlc", "booked_origin")
# Spelt out as in the partial indexes events_by_appointment / events_claim_by_start
# (migrations V13), so SQLite uses them.
_APPOINTMENT_TYPES = ", ".join(repr(t) for t in APPOINTMENT_EVENTS)
_CLAIM_TYPES = ", ".join(repr(t) for t in CLAIMING)
_NOT_REFUSED = ("NOT EXISTS (SELECT 1 FROM apply_failures f WHERE f.event_id = events.id"
                " AND f.kind = 'clock')")
_EVENTS_OF = (
    "SELECT id, origin, hlc, type, payload FROM events WHERE"  # noqa: S608 - constants
    f" type IN ({_APPOINTMENT_TYPES}) AND json_extract(payload, '$.appointment_id') IN"
    " ({marks}) AND " + _NOT_REFUSED)
_CLAIMANTS_AT = (
    "SELECT DISTINCT json_extract(payload, '$.appointment_id') FROM events WHERE"  # noqa: S608
    f" type IN ({_CLAIM_TYPES}) AND json_extract(payload, '$.starts_at') IN ({{marks}})"
    " AND " + _NOT_REFUSED)
_UPSERT = (
    f"INSERT INTO appointments ({', '.join(COLUMNS)}) VALUES"  # noqa: S608 - constants
    f" ({', '.join('?' for _ in COLUMNS)}) ON CONFLICT (appointment_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:]))


def apply_appointment_event(conn: sqlite3.Connection, event: Event) -> None:
    """Re-decide every slot `event`'s appointment has named, from the log (see above)."""
    appointment_id = event.payload["appointment_id"]
    own = _rows(conn, [appointment_id])
    claims = [r for r in own if r["type"] in CLAIMING and r["starts_at"]]
    starts = sorted({r["starts_at"] for r in claims})
    doctors = {r["practitioner_id"] for r in claims if r["practitioner_id"]}
    if not starts or not doctors:
        return  # nothing booked yet: its booking, when it arrives, replays this event too
    others = {row[0] for row in _chunked(conn, _CLAIMANTS_AT, starts)} - {appointment_id}
    state, _ = replay_appointments(own + _rows(conn, sorted(others)))
    slots = {(d, s) for d in doctors for s in starts}
    _write(conn, [a for a in state.values() if (a["practitioner_id"], a["starts_at"]) in slots])


def _rows(conn: sqlite3.Connection, ids: list[str]) -> list[dict[str, Any]]:
    """The appointment events of `ids` in the log (an event is logged before it is applied),
    as replay rows."""
    return [_row(row["id"], row["origin"], row["hlc"], row["type"], json.loads(row["payload"]))
            for row in _chunked(conn, _EVENTS_OF, ids)]


def _row(event_id: str, origin: str, hlc: str, kind: str, p: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id, "appointment_id": p["appointment_id"], "type": kind,
            "hlc": hlc, "origin": origin, "patient_id": p.get("patient_id"),
            "practitioner_id": p.get("practitioner_id"), "facility_id": p.get("facility_id"),
            "starts_at": p.get("starts_at"), "channel": p.get("channel"),
            "queue_number": p.get("queue_number"), "reason": p.get("reason")}


def _chunked(conn: sqlite3.Connection, sql: str, values: list[str]) -> Iterable[sqlite3.Row]:
    for begin in range(0, len(values), 500):
        chunk = values[begin:begin + 500]
        yield from conn.execute(sql.format(marks=", ".join("?" * len(chunk))), chunk)


def _write(conn: sqlite3.Connection, appointments: list[dict[str, Any]]) -> None:
    """Upsert the rows that changed, keeping the partial unique index appointments_one_per_slot
    valid after every statement: each changed row that holds a slot first lets go of it
    ('moving', as a reschedule steps off its old slot), then the rows that end not holding
    are written, then those that end holding (the replay gives a slot one holder at most)."""
    ids = [a["appointment_id"] for a in appointments]
    current = {row["appointment_id"]: tuple(row) for row in _chunked(
        conn, f"SELECT {', '.join(COLUMNS)} FROM appointments WHERE"  # noqa: S608
        " appointment_id IN ({marks})", ids)}
    changed = [values for values in (tuple(a[c] for c in COLUMNS) for a in appointments)
               if current.get(values[0]) != values]
    status = COLUMNS.index("status")
    conn.executemany("UPDATE appointments SET status = 'moving' WHERE appointment_id = ?",
                     [(values[0],) for values in changed
                      if values[0] in current and current[values[0]][status] in HOLDING])
    changed.sort(key=lambda values: values[status] in HOLDING)  # the holders last
    conn.executemany(_UPSERT, changed)
