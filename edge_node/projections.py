"""Projections: how each event changes the node's tables.

The tables are a cache of the log: ``NodeStore.rebuild_projections`` empties them and applies
every event again, and must arrive at the same state. So a handler reads nothing but its
event and the tables, never the clock or the wall time.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sync_protocol.conflicts import (
    OPEN,
)
from sync_protocol.event_names import (
    ALLERGY_RECORDED,
    ALLERGY_RETRACTED,
    CHRONIC_CONDITION_SET,
    CONFLICT_RAISED,
    CONFLICT_STATE_CHANGED,
    FACILITY_DETAILS_CHANGED,
    FACILITY_REGISTERED,
    LAB_RESULT_RECORDED,
    MEDICATION_DISPENSED,
    ORDER_RECORDED,
    PAPER_DISPENSE_RECORDED,
    PAPER_PAD_ALLOCATED,
    PATIENT_FIELD_CHANGED,
    PATIENT_PHONE_CONFIRMED,
    PATIENT_REGISTERED,
    PRACTITIONER_REGISTERED,
    PRESCRIPTION_CANCELLED,
    PRESCRIPTION_ISSUED,
    REMOTE_PRESCRIPTION_DECIDED,
    REMOTE_PRESCRIPTION_REQUESTED,
    SLOTS_PUBLISHED,
    VISIT_RECORDED,
)
from sync_protocol.events import Event
from sync_protocol.hlc import HlcTimestamp
from sync_protocol.names import name_key
from sync_protocol.slot_replay import APPOINTMENT_EVENTS
from sync_protocol.timeutil import from_instant, to_instant

from . import facility_projection, slot_projection

log = logging.getLogger(__name__)

Handler = Callable[[sqlite3.Connection, Event], None]
HANDLERS: dict[str, Handler] = {}


def handles(event_type: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[event_type] = fn
        return fn
    return register


def apply(conn: sqlite3.Connection, event: Event) -> None:
    handler = HANDLERS.get(event.type)
    if handler is None:
        # Types this node keeps but does not project (e.g. another package's) stay in the log.
        log.debug("no projection for %s", event.type)
        return
    handler(conn, event)


# The INSERT of each (table, columns, conflict key) a handler writes, made once: a catch-up
# runs the same few statements a hundred thousand times.
_INSERTS: dict[tuple[str, tuple[str, ...], str | None], str] = {}


def _insert_sql(table: str, row: dict, key: str | None) -> str:
    shape = (table, tuple(row), key)
    sql = _INSERTS.get(shape)
    if sql is None:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        # Applying the same event twice changes nothing; any other constraint still raises.
        target = key or next(iter(row))
        sql = _INSERTS[shape] = (f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
                                 f" ON CONFLICT ({target}) DO NOTHING")
    return sql


def _insert(conn: sqlite3.Connection, table: str, row: dict, key: str | None = None) -> None:
    conn.execute(_insert_sql(table, row, key), tuple(row.values()))


def _insert_many(conn: sqlite3.Connection, table: str, rows: list[dict],
                 key: str | None = None) -> None:
    """`_insert` of each row in order, as one statement (the rows share their columns)."""
    if rows:
        conn.executemany(_insert_sql(table, rows[0], key), [tuple(r.values()) for r in rows])


@handles(FACILITY_REGISTERED)
def _facility(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    _insert(conn, "facilities", {"facility_id": p["facility_id"], "code": p["code"],
                                 "name": p["name"], "kind": p["kind"], "region": p["region"],
                                 "address": p.get("address")})


@handles(PRACTITIONER_REGISTERED)
def _practitioner(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    _insert(conn, "practitioners", {
        "practitioner_id": p["practitioner_id"], "facility_id": p["facility_id"],
        "full_name": p["full_name"], "specialty": p["specialty"],
        "is_family_doctor": int(p["is_family_doctor"])})


@handles(SLOTS_PUBLISHED)
def _slots(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    length = timedelta(minutes=p["slot_minutes"])
    conn.executemany(
        "INSERT OR IGNORE INTO slots (practitioner_id, starts_at, ends_at, facility_id,"
        " schedule_id) VALUES (?, ?, ?, ?, ?)",
        [(p["practitioner_id"], start, to_instant(from_instant(start) + length),
          p["facility_id"], p["schedule_id"]) for start in p["starts"]],
    )


@handles(PATIENT_REGISTERED)
def _patient(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    _insert(conn, "patients", {
        "patient_id": p["patient_id"], "med_id": p["med_id"], "pinfl": p.get("pinfl"),
        "document": p.get("document"), "full_name": p["full_name"],
        "birth_date": p["birth_date"], "sex": p["sex"],
        "phone": p.get("phone"),  # optional: patients without a phone
        "name_key": name_key(p["full_name"]),
        "facility_id": p["facility_id"], "family_doctor_id": p.get("family_doctor_id"),
        "registered_hlc": event.hlc})


@handles(PATIENT_FIELD_CHANGED)
def _patient_field(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    field = p["field"]
    clock = conn.execute("SELECT hlc, origin FROM patient_field_clock WHERE patient_id = ? AND"
                         " field = ?", (p["patient_id"], field)).fetchone()
    # Field-level last-writer-wins by (clock, origin): the same winner in any arrival order.
    if clock is not None and (clock["hlc"], clock["origin"]) >= (event.hlc, event.origin):
        return
    conn.execute("INSERT INTO patient_field_clock (patient_id, field, hlc, origin) VALUES"
                 " (?, ?, ?, ?) ON CONFLICT (patient_id, field) DO UPDATE SET"
                 " hlc = excluded.hlc, origin = excluded.origin",
                 (p["patient_id"], field, event.hlc, event.origin))
    if field not in _PATIENT_COLUMNS:
        return
    extra = {"phone": ", phone_confirmed = 0", "full_name": ", name_key = ?"}.get(field, "")
    keys = (name_key(p["value"] or ""),) if field == "full_name" else ()
    conn.execute(f"UPDATE patients SET {field} = ?{extra} WHERE patient_id = ?",  # noqa: S608
                 (p["value"], *keys, p["patient_id"]))


_PATIENT_COLUMNS = {"full_name", "phone", "document", "facility_id", "family_doctor_id"}


@handles(PATIENT_PHONE_CONFIRMED)
def _phone_confirmed(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    conn.execute("UPDATE patients SET phone_confirmed = 1 WHERE patient_id = ? AND phone = ?",
                 (p["patient_id"], p["phone"]))


@handles(VISIT_RECORDED)
def _visit(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    _insert(conn, "visits", {
        "visit_id": p["visit_id"], "patient_id": p["patient_id"],
        "practitioner_id": p["practitioner_id"], "facility_id": p["facility_id"],
        "appointment_id": p.get("appointment_id"), "occurred_at": p["occurred_at"],
        "complaints": p.get("complaints"), "notes": p.get("notes")})
    for diagnosis in p["diagnoses"]:
        _insert(conn, "diagnoses", {"visit_id": p["visit_id"], "code": diagnosis["code"],
                                    "description": diagnosis.get("description"),
                                    "is_primary": int(diagnosis["primary"])},
                key="visit_id, code")


@handles(ORDER_RECORDED)
def _order(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    _insert(conn, "orders", {"order_id": p["order_id"], "visit_id": p["visit_id"],
                             "patient_id": p["patient_id"], "kind": p["kind"],
                             "text": p["text"]})


@handles(LAB_RESULT_RECORDED)
def _lab_result(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    _insert(conn, "lab_results", {
        "result_id": p["result_id"], "patient_id": p["patient_id"],
        "order_id": p.get("order_id"), "test": p["test"], "value": p["value"],
        "unit": p.get("unit"), "reference_range": p.get("reference_range"),
        "flag": p.get("flag"), "observed_at": p["observed_at"]})


@handles(CHRONIC_CONDITION_SET)
def _chronic(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    row = conn.execute("SELECT hlc, origin FROM chronic_conditions WHERE patient_id = ? AND"
                       " code = ?", (p["patient_id"], p["code"])).fetchone()
    if row is not None and (row["hlc"], row["origin"]) >= (event.hlc, event.origin):
        return
    conn.execute("INSERT INTO chronic_conditions (patient_id, code, active, hlc, origin) VALUES"
                 " (?, ?, ?, ?, ?) ON CONFLICT (patient_id, code) DO UPDATE SET"
                 " active = excluded.active, hlc = excluded.hlc, origin = excluded.origin",
                 (p["patient_id"], p["code"], int(p["active"]), event.hlc, event.origin))


@handles(ALLERGY_RECORDED)
def _allergy(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    _insert(conn, "allergies", {
        "allergy_id": p["allergy_id"], "patient_id": p["patient_id"], "kind": p["kind"],
        "substance_type": p["substance_type"], "substance": p["substance"],
        "reaction": p["reaction"], "severity": p.get("severity"),
        "recorded_at": p["recorded_at"], "recorded_by": p.get("practitioner_id"),
        "hlc": event.hlc})
    _apply_retraction(conn, p["allergy_id"])


@handles(ALLERGY_RETRACTED)
def _allergy_retracted(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    # Retracted twice (two nodes): the earlier clock's reason stands, in any arrival order.
    conn.execute("INSERT INTO allergy_retractions (allergy_id, retracted_at, reason, hlc, origin)"
                 " VALUES (?, ?, ?, ?, ?) ON CONFLICT (allergy_id) DO UPDATE SET"
                 " retracted_at = excluded.retracted_at, reason = excluded.reason,"
                 " hlc = excluded.hlc, origin = excluded.origin"
                 " WHERE (excluded.hlc, excluded.origin) < (allergy_retractions.hlc,"
                 " allergy_retractions.origin)",
                 (p["allergy_id"], p["retracted_at"], p["reason"], event.hlc, event.origin))
    _apply_retraction(conn, p["allergy_id"])


def _apply_retraction(conn: sqlite3.Connection, allergy_id: str) -> None:
    conn.execute("UPDATE allergies SET (retracted_at, retract_reason) = (SELECT retracted_at,"
                 " reason FROM allergy_retractions r WHERE r.allergy_id = allergies.allergy_id)"
                 " WHERE allergy_id = ? AND EXISTS (SELECT 1 FROM allergy_retractions r WHERE"
                 " r.allergy_id = allergies.allergy_id)", (allergy_id,))


_ITEM_KEY = "prescription_id, item_no"


def _prescription_rows(p: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The prescriptions row and prescription_items rows of a PrescriptionIssued payload."""
    row = {
        "prescription_id": p["prescription_id"], "number": p["number"], "kind": p["kind"],
        "patient_id": p["patient_id"], "pinfl": p["pinfl"], "facility_id": p["facility_id"],
        "practitioner_id": p["practitioner_id"], "issued_at": p["issued_at"],
        "not_before": p["not_before"], "expires_at": p["expires_at"],
        "chronic": int(p["chronic"]), "qr": p.get("qr"), "paper_serial": p.get("paper_serial"),
        "paper_reason": p.get("paper_reason"), "entered_at": p.get("entered_at"),
        "patient_document": p.get("patient_document")}
    items = [{
        "prescription_id": p["prescription_id"], "item_no": item["item_no"],
        "inn": item["inn"], "form": item["form"], "strength": item["strength"],
        "unit": item.get("unit"), "quantity": item["quantity"], "dosage": item.get("dosage"),
        "repeats": item["repeats"],
        "min_days_between_fills": item["min_days_between_fills"]} for item in p["items"]]
    return row, items


def _cancel(conn: sqlite3.Connection, prescription_id: str, hlc: str, payload: str) -> None:
    conn.execute("UPDATE prescriptions SET status = 'cancelled', cancelled_at = ?,"
                 " cancel_reason = ? WHERE prescription_id = ?",
                 (HlcTimestamp.parse(hlc).to_instant(), json.loads(payload)["reason"],
                  prescription_id))


def _dispense_row(event: Event) -> dict[str, Any]:
    p = event.payload
    # Every dispense is kept, even one beyond what remains: the drug was handed over.
    return {
        "dispense_id": p["dispense_id"], "prescription_id": p["prescription_id"],
        "item_no": p["item_no"], "quantity": p["quantity"], "product": p["product"],
        "batch": p["batch"], "expiry": p["expiry"], "dispensed_at": p["dispensed_at"],
        "facility_id": p["facility_id"], "mode": p["mode"],
        "fill_number": p.get("fill_number"), "pharmacist": p.get("pharmacist"),
        "origin": event.origin}


@handles(CONFLICT_RAISED)
def _conflict(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    _insert(conn, "conflicts", {
        "conflict_id": p["conflict_id"], "kind": p["kind"], "subject_id": p["subject_id"],
        "details": json.dumps({**p["details"], "event_ids": p["event_ids"]}, sort_keys=True),
        "state": OPEN, "raised_at": event.timestamp.to_instant()})


@handles(CONFLICT_STATE_CHANGED)
def _conflict_state(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    conn.execute("UPDATE conflicts SET state = ?, state_changed_at = ?, state_changed_by = ?,"
                 " note = ? WHERE conflict_id = ?",
                 (p["state"], event.timestamp.to_instant(), p["by"], p["note"],
                  p["conflict_id"]))


@handles(PAPER_PAD_ALLOCATED)
def _pad(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    _insert(conn, "paper_pads", {"pad_id": p["pad_id"], "facility_id": p["facility_id"],
                                 "series": p["series"], "first_serial": p["first_serial"],
                                 "last_serial": p["last_serial"]})


@handles(PAPER_DISPENSE_RECORDED)
def _paper_dispense(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    _insert(conn, "paper_dispenses", {
        "dispense_id": p["dispense_id"], "facility_id": p["facility_id"],
        "paper_serial": p.get("paper_serial"), "prescription_number": p.get("prescription_number"),
        "prescription_id": p.get("prescription_id"),
        "patient_document": p.get("patient_document"), "pinfl": p.get("pinfl"),
        "dispensed_at": p["dispensed_at"], "entered_at": p["entered_at"],
        "paper_reason": p["paper_reason"], "items": json.dumps(p["items"], sort_keys=True),
        "origin": event.origin})


@handles(REMOTE_PRESCRIPTION_REQUESTED)
def _requested(conn: sqlite3.Connection, event: Event) -> None:
    p = event.payload
    conn.execute(
        "INSERT INTO remote_requests (request_id, patient_id, facility_id, practitioner_id,"
        " requested_by, request_text, phone, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (request_id) DO NOTHING",
        (p["request_id"], p["patient_id"], p["facility_id"], p.get("practitioner_id"),
         p["requested_by"], p["request_text"], p.get("phone"), event.timestamp.to_instant()))
    # A decision that arrived first (sync delivers in any order) still applies.
    for row in conn.execute(f"SELECT * FROM events WHERE type = '{REMOTE_PRESCRIPTION_DECIDED}' AND"  # noqa: S608
                            " json_extract(payload, '$.request_id') = ?", (p["request_id"],)):
        _decide(conn, json.loads(row["payload"]), row["hlc"], row["origin"])


@handles(REMOTE_PRESCRIPTION_DECIDED)
def _decided(conn: sqlite3.Connection, event: Event) -> None:
    _decide(conn, event.payload, event.hlc, event.origin)


def _decide(conn: sqlite3.Connection, p: dict[str, Any], hlc: str, origin: str) -> None:
    """The earliest decision by (clock, origin) is in force; a later one (two doctors on two
    nodes at once) stays in the log and is shown at the hub."""
    conn.execute(
        "UPDATE remote_requests SET status = ?, decided_by = ?, decided_at = ?,"
        " decided_hlc = ?, decided_origin = ?, prescription_id = ?, pickup_code = ?, note = ?"
        " WHERE request_id = ? AND (decided_hlc IS NULL OR (decided_hlc, decided_origin) >"
        " (?, ?))",
        (p["decision"], p["practitioner_id"], HlcTimestamp.parse(hlc).to_instant(), hlc,
         origin, p.get("prescription_id"), p.get("pickup_code"), p.get("note"),
         p["request_id"], hlc, origin))


# -- Runs of events, applied together ------------------------------------------------------
# A catch-up applies pages of up to a thousand events, most of them prescriptions and
# dispenses in any mix. A run of consecutive events whose types have a batch handler is
# written with one executemany per table and type instead of a statement per row, to the same
# result as `apply` event by event: a batch handler inserts only rows keyed by its own events
# into its own tables (a repeat changes nothing), or sets a prescription's cancellation from
# the log (the earliest in force, whatever the order), and reads only the log, so the types
# of a run commute, and each type's events keep their order.
BatchHandler = Callable[[sqlite3.Connection, list[Event]], None]
BATCH_HANDLERS: dict[str, BatchHandler] = {}
LOOKUP_CHUNK = 500  # bound parameters per look-up, far below SQLite's limit


def apply_all(conn: sqlite3.Connection, events: list[Event]) -> None:
    """`apply` each event in order; runs of batch-handled types go to their handlers whole."""
    run: dict[str, list[Event]] = {}
    for event in events:
        if event.type in BATCH_HANDLERS:
            run.setdefault(event.type, []).append(event)
            continue
        _apply_run(conn, run)
        apply(conn, event)
    _apply_run(conn, run)


def _apply_run(conn: sqlite3.Connection, run: dict[str, list[Event]]) -> None:
    for kind, events in run.items():
        BATCH_HANDLERS[kind](conn, events)
    run.clear()


def _prescriptions(conn: sqlite3.Connection, events: list[Event]) -> None:
    rows: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for event in events:
        row, its = _prescription_rows(event.payload)
        rows.append(row)
        items.extend(its)
    _insert_many(conn, "prescriptions", rows)
    _insert_many(conn, "prescription_items", items, key=_ITEM_KEY)
    _apply_earliest_cancellations(conn, [row["prescription_id"] for row in rows])


def _cancellations(conn: sqlite3.Connection, events: list[Event]) -> None:
    """The earliest cancellation (by clock) of a prescription is the one in force, whenever
    it arrives, as at the hub: a later one, or one applied later, changes nothing."""
    _apply_earliest_cancellations(conn, [event.payload["prescription_id"] for event in events])


def _apply_earliest_cancellations(conn: sqlite3.Connection, prescription_ids: list[str]) -> None:
    """Mark each prescription held here cancelled by its earliest cancellation in the log (the
    events being applied are in the log already)."""
    ids = list(dict.fromkeys(prescription_ids))
    earliest: dict[str, tuple[str, str]] = {}  # prescription -> its first cancellation
    for begin in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[begin:begin + LOOKUP_CHUNK]
        marks = ", ".join("?" * len(chunk))
        sql = ("SELECT json_extract(payload, '$.prescription_id'), hlc, payload"  # noqa: S608
               f" FROM events WHERE type = '{PRESCRIPTION_CANCELLED}' AND"
               f" json_extract(payload, '$.prescription_id') IN ({marks}) ORDER BY hlc")
        for pid, hlc, payload in conn.execute(sql, chunk).fetchall():
            if pid not in earliest:
                earliest[pid] = (hlc, payload)
    for pid, (hlc, payload) in earliest.items():
        _cancel(conn, pid, hlc, payload)


def _dispenses(conn: sqlite3.Connection, events: list[Event]) -> None:
    _insert_many(conn, "dispenses", [_dispense_row(event) for event in events])


BATCH_HANDLERS[PRESCRIPTION_ISSUED] = _prescriptions
BATCH_HANDLERS[PRESCRIPTION_CANCELLED] = _cancellations
BATCH_HANDLERS[MEDICATION_DISPENSED] = _dispenses


def _alone(batch: BatchHandler) -> Handler:
    return lambda conn, event: batch(conn, [event])


# One rule for an event alone and in a run (a cancellation that arrived first still wins).
for _kind, _batch in BATCH_HANDLERS.items():
    HANDLERS[_kind] = _alone(_batch)


# Handlers kept in their own modules (which import nothing of this one).
HANDLERS[FACILITY_DETAILS_CHANGED] = facility_projection.facility_details
# Every appointment event re-decides the slots its appointment named, as the hub's replay does.
for _kind in APPOINTMENT_EVENTS:
    HANDLERS[_kind] = slot_projection.apply_appointment_event
