"""The hub's projections: patients, slots, appointments, prescriptions and dispenses as tables.

Maintained by an ingest hook (`ProjectionHook`) in the batch's transaction. Every table is a
function of the *set* of events, never of their arrival order, so the hub agrees with a node
that applied the same events in any order the sync allows:

- patients: field-level last writer wins by (hlc, origin); every value, with its origin and
  clock, stays in `hub_patient_history` (DESIGN 7.2: never hide a loser).
- slots and appointments: replayed in clock order by central_hub.appointment_replay (the
  earlier (hlc, origin) keeps a slot, as on the node); their tables' schema is here.
- prescriptions: status from the earliest cancellation (by clock), whenever it arrives.
- dispenses and paper dispenses: every one kept, keyed by event id; nothing is ever dropped.

SNAPSHOT_TABLES name the shared records in the node's table and column names, so a test
compares hub and node row by row (central_hub.composition.snapshot; central_hub.snapshots).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sync_protocol.event_names import (
    APPOINTMENT_BOOKED,
    APPOINTMENT_CANCELLED,
    APPOINTMENT_CHECKED_IN,
    APPOINTMENT_COMPLETED,
    APPOINTMENT_NO_SHOW,
    APPOINTMENT_RESCHEDULED,
    MEDICATION_DISPENSED,
    PAPER_DISPENSE_RECORDED,
    PATIENT_FIELD_CHANGED,
    PATIENT_PHONE_CONFIRMED,
    PATIENT_REGISTERED,
    PRESCRIPTION_CANCELLED,
    PRESCRIPTION_ISSUED,
    SLOTS_PUBLISHED,
)
from sync_protocol.event_types import PATIENT_FIELDS as PATIENT_FIELD_NAMES
from sync_protocol.events import Event
from sync_protocol.hlc import HlcTimestamp

from .appointment_replay import project_appointments, project_slots
from .hub_events import HUB_ORIGIN
from .ingest import StoredEvent, projected_through
from .routing import row_event
from .snapshots import SnapshotTable
from .storage import Migration, Storage, Tx

log = logging.getLogger(__name__)

COMPONENT = "projections"
PROJECTIONS_V1 = """
-- Current patient records (registered = 0: edits seen before the registration itself).
-- clocks: JSON object field -> [hlc, origin, value] of each field's winning write, so a batch
-- decides last-writer-wins from one row per patient.
CREATE TABLE hub_patients (
    patient_id TEXT PRIMARY KEY, registered INTEGER NOT NULL, med_id TEXT, pinfl TEXT,
    document TEXT, full_name TEXT, birth_date TEXT, sex TEXT, phone TEXT,
    facility_id TEXT, family_doctor_id TEXT, phone_confirmed INTEGER NOT NULL DEFAULT 0,
    registered_hlc TEXT, clocks TEXT NOT NULL
);
CREATE INDEX hub_patients_by_facility ON hub_patients (facility_id);
CREATE INDEX hub_patients_by_pinfl ON hub_patients (pinfl);
-- Every value an editable patient field ever had: registration, edits (with what the
-- editor saw as `previous`) and phone confirmations (field 'phone_confirmed', value the phone).
CREATE TABLE hub_patient_history (
    event_id TEXT NOT NULL, field TEXT NOT NULL, patient_id TEXT NOT NULL,
    source TEXT NOT NULL, value TEXT, previous TEXT, has_previous INTEGER NOT NULL,
    hlc TEXT NOT NULL, origin TEXT NOT NULL,
    PRIMARY KEY (event_id, field)
);
CREATE INDEX hub_patient_history_by_patient ON hub_patient_history (patient_id, field);
CREATE TABLE hub_slots (
    practitioner_id TEXT NOT NULL, starts_at TEXT NOT NULL, ends_at TEXT NOT NULL,
    facility_id TEXT NOT NULL, schedule_id TEXT NOT NULL,
    PRIMARY KEY (practitioner_id, starts_at)
);
CREATE TABLE hub_appointment_events (
    event_id TEXT PRIMARY KEY, appointment_id TEXT NOT NULL, type TEXT NOT NULL,
    hlc TEXT NOT NULL, origin TEXT NOT NULL, patient_id TEXT, practitioner_id TEXT,
    facility_id TEXT, starts_at TEXT, channel TEXT, queue_number INTEGER, reason TEXT
);
CREATE INDEX hub_appointment_events_by_appointment ON hub_appointment_events (appointment_id);
CREATE TABLE hub_appointments (
    appointment_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, practitioner_id TEXT NOT NULL,
    facility_id TEXT NOT NULL, starts_at TEXT NOT NULL, channel TEXT NOT NULL,
    status TEXT NOT NULL, queue_number INTEGER, cancel_reason TEXT,
    booked_hlc TEXT NOT NULL, booked_origin TEXT NOT NULL, bumped_by TEXT
);
CREATE INDEX hub_appointments_by_slot ON hub_appointments (practitioner_id, starts_at);
CREATE INDEX hub_appointments_by_facility ON hub_appointments (facility_id);
-- One row per time an appointment took a slot (booking or move), released by its next
-- cancel or move. slot = practitioner_id || '@' || starts_at.
CREATE TABLE hub_appointment_claims (
    event_id TEXT PRIMARY KEY, appointment_id TEXT NOT NULL, slot TEXT NOT NULL,
    practitioner_id TEXT NOT NULL, starts_at TEXT NOT NULL, facility_id TEXT NOT NULL,
    patient_id TEXT NOT NULL, hlc TEXT NOT NULL, origin TEXT NOT NULL,
    release_hlc TEXT, release_origin TEXT, release_event_id TEXT
);
CREATE INDEX hub_appointment_claims_by_slot ON hub_appointment_claims (slot);
CREATE INDEX hub_appointment_claims_by_appointment ON hub_appointment_claims (appointment_id);
CREATE TABLE hub_prescriptions (
    prescription_id TEXT PRIMARY KEY, event_id TEXT NOT NULL, hlc TEXT NOT NULL,
    origin TEXT NOT NULL, number TEXT NOT NULL, kind TEXT NOT NULL, patient_id TEXT NOT NULL,
    pinfl TEXT NOT NULL, facility_id TEXT NOT NULL, practitioner_id TEXT NOT NULL,
    issued_at TEXT NOT NULL, not_before TEXT NOT NULL, expires_at TEXT NOT NULL,
    chronic INTEGER NOT NULL, qr TEXT, paper_serial TEXT, paper_reason TEXT, entered_at TEXT,
    patient_document TEXT, status TEXT NOT NULL, cancelled_at TEXT, cancel_reason TEXT,
    cancel_event_id TEXT
);
CREATE INDEX hub_prescriptions_by_facility ON hub_prescriptions (facility_id);
CREATE TABLE hub_prescription_items (
    prescription_id TEXT NOT NULL, item_no INTEGER NOT NULL, inn TEXT NOT NULL,
    form TEXT NOT NULL, strength TEXT NOT NULL, unit TEXT, quantity INTEGER NOT NULL,
    dosage TEXT, repeats INTEGER NOT NULL, min_days_between_fills INTEGER NOT NULL,
    PRIMARY KEY (prescription_id, item_no)
);
CREATE TABLE hub_prescription_cancellations (
    event_id TEXT PRIMARY KEY, prescription_id TEXT NOT NULL, hlc TEXT NOT NULL,
    origin TEXT NOT NULL, cancelled_at TEXT NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX hub_prescription_cancellations_by_rx
    ON hub_prescription_cancellations (prescription_id);
CREATE TABLE hub_dispenses (
    event_id TEXT PRIMARY KEY, dispense_id TEXT NOT NULL, hlc TEXT NOT NULL,
    origin TEXT NOT NULL, prescription_id TEXT NOT NULL, item_no INTEGER NOT NULL,
    quantity INTEGER NOT NULL, product TEXT NOT NULL, batch TEXT NOT NULL,
    expiry TEXT NOT NULL, dispensed_at TEXT NOT NULL, facility_id TEXT NOT NULL,
    mode TEXT NOT NULL, fill_number INTEGER, pharmacist TEXT, claim_id TEXT
);
CREATE INDEX hub_dispenses_by_rx ON hub_dispenses (prescription_id, item_no);
CREATE INDEX hub_dispenses_by_dispense ON hub_dispenses (dispense_id);
CREATE INDEX hub_dispenses_by_facility ON hub_dispenses (facility_id);
CREATE TABLE hub_paper_dispenses (
    event_id TEXT PRIMARY KEY, dispense_id TEXT NOT NULL, hlc TEXT NOT NULL,
    origin TEXT NOT NULL, facility_id TEXT NOT NULL, paper_serial TEXT,
    prescription_number TEXT, prescription_id TEXT, patient_document TEXT, pinfl TEXT,
    dispensed_at TEXT NOT NULL, entered_at TEXT NOT NULL, paper_reason TEXT NOT NULL,
    items TEXT NOT NULL, pharmacist TEXT
);
CREATE INDEX hub_paper_dispenses_by_rx ON hub_paper_dispenses (prescription_id);
CREATE INDEX hub_paper_dispenses_by_serial ON hub_paper_dispenses (paper_serial)
"""
MIGRATIONS = (Migration(COMPONENT, 1, PROJECTIONS_V1),)  # listed by central_hub.composition

PATIENT_TYPES = (PATIENT_REGISTERED, PATIENT_FIELD_CHANGED, PATIENT_PHONE_CONFIRMED)
APPOINTMENT_TYPES = (APPOINTMENT_BOOKED, APPOINTMENT_CANCELLED, APPOINTMENT_RESCHEDULED,
                     APPOINTMENT_CHECKED_IN, APPOINTMENT_COMPLETED, APPOINTMENT_NO_SHOW)
PRESCRIPTION_TYPES = (PRESCRIPTION_ISSUED, PRESCRIPTION_CANCELLED, MEDICATION_DISPENSED,
                      PAPER_DISPENSE_RECORDED)
PROJECTED_TYPES = frozenset((*PATIENT_TYPES, *APPOINTMENT_TYPES, *PRESCRIPTION_TYPES,
                             SLOTS_PUBLISHED))
# Patient columns a registration sets; edits may change the PATIENT_FIELDS among them, whose
# every value is kept in hub_patient_history (the FIXED_COLUMNS are in the registration).
PATIENT_COLUMNS = ("med_id", "pinfl", "document", "full_name", "birth_date", "sex", "phone",
                   "facility_id", "family_doctor_id")
PATIENT_FIELDS = tuple(PATIENT_FIELD_NAMES)
FIXED_COLUMNS = tuple(c for c in PATIENT_COLUMNS if c not in PATIENT_FIELDS)
PHONE_CONFIRMED = "phone_confirmed"



def hlc_instant(hlc: str) -> str:
    return HlcTimestamp.parse(hlc).to_instant()


class BatchHook:
    """An ingest hook (central_hub.ingest.Hook) that applies the events of its types as a set.

    Hooks run in order over the whole batch, so a later hook (conflicts) sees what an earlier
    one (projections) made of all of it.
    """

    types: frozenset[str] = frozenset()

    def apply(self, tx: Tx, events: list[Event]) -> None:
        raise NotImplementedError

    def __call__(self, tx: Tx, stored: list[StoredEvent]) -> None:
        events = [s.event for s in stored if s.event.type in self.types]
        if events:
            self.apply(tx, events)


class ProjectionHook(BatchHook):
    """The ingest hook that keeps the hub_* projection tables."""

    types = PROJECTED_TYPES

    def apply(self, tx: Tx, events: list[Event]) -> None:
        by_type: dict[str, list[Event]] = {}
        for event in events:
            by_type.setdefault(event.type, []).append(event)

        def of(*types: str) -> list[Event]:
            return [e for t in types for e in by_type.get(t, ())]

        project_patients(tx, of(*PATIENT_TYPES))
        project_slots(tx, of(SLOTS_PUBLISHED))
        project_appointments(tx, of(*APPOINTMENT_TYPES))
        project_prescriptions(tx, of(PRESCRIPTION_ISSUED, PRESCRIPTION_CANCELLED))
        project_dispenses(tx, of(MEDICATION_DISPENSED), of(PAPER_DISPENSE_RECORDED))


# -- patients -----------------------------------------------------------------------------

def project_patients(tx: Tx, events: list[Event]) -> None:
    if not events:
        return
    history, fixed = [], []  # fixed: what no edit can change (not kept in the history)
    for e in events:
        p = e.payload
        if e.type == PATIENT_REGISTERED:
            history.extend((e.id, name, p["patient_id"], e.type, p[name], None, 0, e.hlc,
                            e.origin) for name in PATIENT_FIELDS if name in p)
            fixed.extend((p["patient_id"], name, e.hlc, e.origin, p[name])
                         for name in FIXED_COLUMNS if name in p)
        elif e.type == PATIENT_FIELD_CHANGED:
            history.append((e.id, p["field"], p["patient_id"], e.type, p["value"],
                            p.get("previous"), int("previous" in p), e.hlc, e.origin))
        else:
            history.append((e.id, PHONE_CONFIRMED, p["patient_id"], e.type, p["phone"], None,
                            0, e.hlc, e.origin))
    # Each event reaches the hooks once (ingest stores an id once): plain appends (COPY).
    tx.append_rows("hub_patient_history", ("event_id", "field", "patient_id", "source",
                                           "value", "previous", "has_previous", "hlc",
                                           "origin"), history)
    patients = {e.payload["patient_id"] for e in events}
    current = {r["patient_id"]: r for r in tx.query_in(
        "SELECT patient_id, registered_hlc, clocks FROM hub_patients WHERE patient_id IN "
        "({ids})", patients)}
    state = {pid: (json.loads(r["clocks"]), r["registered_hlc"]) for pid, r in current.items()}
    writes = [(pid, name, hlc, origin, value, source)
              for _, name, pid, source, value, _, _, hlc, origin in history]
    writes += [(*row, PATIENT_REGISTERED) for row in fixed]
    for pid, name, hlc, origin, value, source in writes:
        clocks, registered = state.setdefault(pid, ({}, None))
        known = clocks.get(name)
        # the greatest (hlc, origin) wins, so the order of arrival does not matter
        if known is None or (hlc, origin) > (known[0], known[1]):
            clocks[name] = [hlc, origin, value]
        if source == PATIENT_REGISTERED and (registered is None or hlc < registered):
            state[pid] = (clocks, hlc)
    columns = ("patient_id", "registered", *PATIENT_COLUMNS, PHONE_CONFIRMED, "registered_hlc",
               "clocks")
    rows = [_patient_row(pid, *state[pid]) for pid in sorted(patients)]
    tx.append_rows("hub_patients", columns, [r for r in rows if r[0] not in current])
    tx.insert_many("hub_patients", columns, [r for r in rows if r[0] in current],
                   "ON CONFLICT (patient_id) DO UPDATE SET " + ", ".join(
                       f"{c} = excluded.{c}" for c in columns[1:]))


def _patient_row(patient_id: str, clocks: dict[str, list], registered: str | None) -> tuple:
    values = [clocks[c][2] if c in clocks else None for c in PATIENT_COLUMNS]
    phone, confirmed = clocks.get("phone"), clocks.get(PHONE_CONFIRMED)
    # Confirmed: the latest confirmation is of the current phone and came after it was set.
    is_confirmed = bool(phone and confirmed and confirmed[2] == phone[2] and
                        (confirmed[0], confirmed[1]) > (phone[0], phone[1]))
    return (patient_id, int(registered is not None), *values, int(is_confirmed), registered,
            json.dumps(clocks, sort_keys=True))


# -- prescriptions and dispenses ----------------------------------------------------------

PRESCRIPTION_COLUMNS = ("prescription_id", "event_id", "hlc", "origin", "number", "kind",
                        "patient_id", "pinfl", "facility_id", "practitioner_id", "issued_at",
                        "not_before", "expires_at", "chronic", "qr", "paper_serial",
                        "paper_reason", "entered_at", "patient_document", "status")
ITEM_COLUMNS = ("prescription_id", "item_no", "inn", "form", "strength", "unit", "quantity",
                "dosage", "repeats", "min_days_between_fills")


def project_prescriptions(tx: Tx, events: list[Event]) -> None:
    issued = [e for e in events if e.type == PRESCRIPTION_ISSUED]
    cancelled = [e for e in events if e.type == PRESCRIPTION_CANCELLED]
    if issued:
        # A prescription id is issued once; should one come again, the first stored stays.
        held = {r["prescription_id"] for r in tx.query_in(
            "SELECT prescription_id FROM hub_prescriptions WHERE prescription_id IN ({ids})",
            {e.payload["prescription_id"] for e in issued})}
        rows, items = [], []
        for e in issued:
            p = {**e.payload, "event_id": e.id, "hlc": e.hlc, "origin": e.origin,
                 "status": "active"}
            if p["prescription_id"] in held:
                log.warning("prescription %s issued again by event %s; the first stays",
                            p["prescription_id"], e.id)
                continue
            held.add(p["prescription_id"])
            p["chronic"] = int(p["chronic"])
            rows.append(tuple(p.get(c) for c in PRESCRIPTION_COLUMNS))
            items.extend(tuple({**i, "prescription_id": p["prescription_id"]}.get(c)
                               for c in ITEM_COLUMNS) for i in e.payload["items"])
        tx.append_rows("hub_prescriptions", PRESCRIPTION_COLUMNS, rows)
        tx.append_rows("hub_prescription_items", ITEM_COLUMNS, items)
    tx.append_rows("hub_prescription_cancellations", ("event_id", "prescription_id", "hlc",
                                                      "origin", "cancelled_at", "reason"),
                   [(e.id, e.payload["prescription_id"], e.hlc, e.origin, hlc_instant(e.hlc),
                     e.payload["reason"]) for e in cancelled])
    # The earliest cancellation (by clock) is the one in force, whichever came first.
    touched = {e.payload["prescription_id"] for e in events}
    first: dict[str, dict[str, Any]] = {}
    for row in tx.query_in("SELECT * FROM hub_prescription_cancellations WHERE "
                           "prescription_id IN ({ids})", touched):
        known = first.get(row["prescription_id"])
        if known is None or (row["hlc"], row["origin"]) < (known["hlc"], known["origin"]):
            first[row["prescription_id"]] = row
    tx.executemany("UPDATE hub_prescriptions SET status = 'cancelled', cancelled_at = ?, "
                   "cancel_reason = ?, cancel_event_id = ? WHERE prescription_id = ?",
                   [(r["cancelled_at"], r["reason"], r["event_id"], pid)
                    for pid, r in sorted(first.items())])


DISPENSE_COLUMNS = ("event_id", "dispense_id", "hlc", "origin", "prescription_id", "item_no",
                    "quantity", "product", "batch", "expiry", "dispensed_at", "facility_id",
                    "mode", "fill_number", "pharmacist", "claim_id")
PAPER_COLUMNS = ("event_id", "dispense_id", "hlc", "origin", "facility_id", "paper_serial",
                 "prescription_number", "prescription_id", "patient_document", "pinfl",
                 "dispensed_at", "entered_at", "paper_reason", "items", "pharmacist")


def project_dispenses(tx: Tx, dispensed: list[Event], paper: list[Event]) -> None:
    """Every dispense is kept, even one beyond the prescription: the drug was handed over."""
    def row(e: Event, columns: tuple[str, ...]) -> tuple:
        p = {**e.payload, "event_id": e.id, "hlc": e.hlc, "origin": e.origin}
        if "items" in columns:  # stored as the node stores it, so snapshots compare equal
            p["items"] = json.dumps(e.payload["items"], sort_keys=True)
        return tuple(p.get(c) for c in columns)

    tx.append_rows("hub_dispenses", DISPENSE_COLUMNS, [row(e, DISPENSE_COLUMNS) for e in dispensed])
    tx.append_rows("hub_paper_dispenses", PAPER_COLUMNS, [row(e, PAPER_COLUMNS) for e in paper])


def rebuild(storage: Storage, chunk: int = 5000) -> int:
    """Empty the projection tables and apply the whole log again; return events applied."""
    tables = ("hub_patients", "hub_patient_history", "hub_slots", "hub_appointment_events",
              "hub_appointments", "hub_appointment_claims", "hub_prescriptions",
              "hub_prescription_items", "hub_prescription_cancellations", "hub_dispenses",
              "hub_paper_dispenses")
    hook, count, after = ProjectionHook(), 0, 0
    with storage.transaction(projector=True) as tx:
        tx.hold_writer_lock()  # neither pushes nor the projector run meanwhile
        # up to the projector's cursor: what waits beyond it gets all its hooks in its turn
        through = projected_through(tx)
        for table in tables:
            tx.execute(f"DELETE FROM {table}")  # noqa: S608 - names are code constants
        while True:
            rows = tx.query("SELECT * FROM events WHERE position > ? AND position <= ? AND "
                            "origin <> ? ORDER BY position LIMIT ?",
                            (after, through, HUB_ORIGIN, chunk))
            if not rows:
                return count
            after = rows[-1]["position"]
            events = [row_event(r) for r in rows if r["type"] in PROJECTED_TYPES]
            hook.apply(tx, events)
            count += len(events)



# -- snapshots ----------------------------------------------------------------------------

_RX_AT = ("(facility_id = ? OR prescription_id IN (SELECT prescription_id FROM hub_dispenses "
          "WHERE facility_id = ?))")
# The shared records, in the node's table and column names (edge_node.migrations), so the
# node-side equivalent is a plain SELECT of the same columns. phone_confirmed is left out:
# the node also sets it locally (kiosk sign-in), which is not a synced fact.
SNAPSHOT_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": ("patient_id", "med_id", "pinfl", "document", "full_name", "birth_date", "sex",
                 "phone", "facility_id", "family_doctor_id", "registered_hlc"),
    "patient_field_clock": ("patient_id", "field", "hlc", "origin"),
    "slots": ("practitioner_id", "starts_at", "ends_at", "facility_id", "schedule_id"),
    "appointments": ("appointment_id", "patient_id", "practitioner_id", "facility_id",
                     "starts_at", "channel", "status", "queue_number", "cancel_reason",
                     "booked_hlc", "booked_origin"),
    "prescriptions": ("prescription_id", "number", "kind", "patient_id", "pinfl", "facility_id",
                      "practitioner_id", "issued_at", "not_before", "expires_at", "chronic",
                      "qr", "status", "cancelled_at", "cancel_reason", "paper_serial",
                      "paper_reason", "entered_at", "patient_document"),
    "prescription_items": ITEM_COLUMNS,
    "dispenses": ("dispense_id", "prescription_id", "item_no", "quantity", "product", "batch",
                  "expiry", "dispensed_at", "facility_id", "mode", "fill_number", "pharmacist",
                  "origin"),
    "paper_dispenses": ("dispense_id", "facility_id", "paper_serial", "prescription_number",
                        "prescription_id", "patient_document", "pinfl", "dispensed_at",
                        "entered_at", "paper_reason", "items", "origin"),
}
SNAPSHOT_KEYS: dict[str, tuple[str, ...]] = {
    "patients": ("patient_id",), "patient_field_clock": ("patient_id", "field"),
    "slots": ("practitioner_id", "starts_at"), "appointments": ("appointment_id",),
    "prescriptions": ("prescription_id",), "prescription_items": ("prescription_id", "item_no"),
    "dispenses": ("dispense_id",), "paper_dispenses": ("dispense_id",),
}
# Per table: FROM (and WHERE) of the hub's query, and its filter for one facility.
_SNAPSHOT_FROM: dict[str, tuple[str, str]] = {
    "patients": ("hub_patients WHERE registered = 1", "facility_id = ?"),
    # the node keeps the clock of the last edit per field (registration sets none)
    "patient_field_clock": (
        f"hub_patient_history h WHERE source = '{PATIENT_FIELD_CHANGED}' AND NOT EXISTS (SELECT 1 "  # noqa: S608
        "FROM hub_patient_history l WHERE l.patient_id = h.patient_id AND l.field = h.field "
        f"AND l.source = '{PATIENT_FIELD_CHANGED}' AND (l.hlc > h.hlc OR (l.hlc = h.hlc AND "
        "l.origin > h.origin)))",
        "patient_id IN (SELECT patient_id FROM hub_patients WHERE facility_id = ?)"),
    "slots": ("hub_slots", "facility_id = ?"),
    "appointments": ("hub_appointments", "facility_id = ?"),
    "prescriptions": ("hub_prescriptions", _RX_AT),
    "prescription_items": ("hub_prescription_items", f"prescription_id IN (SELECT "  # noqa: S608 - constants
                           f"prescription_id FROM hub_prescriptions WHERE {_RX_AT})"),
    "dispenses": ("hub_dispenses", "(facility_id = ? OR prescription_id IN (SELECT "
                  "prescription_id FROM hub_prescriptions WHERE facility_id = ?))"),
    "paper_dispenses": ("hub_paper_dispenses", "facility_id = ?"),
}


# The projections' shared tables, as central_hub.composition lists them for snapshots.
SNAPSHOT_TABLES = tuple(SnapshotTable(table, SNAPSHOT_KEYS[table], columns, *_SNAPSHOT_FROM[table])
                        for table, columns in SNAPSHOT_COLUMNS.items())
