"""Booking: book, cancel, reschedule, check in, complete, no-show.

All checks run inside the write transaction, so two requests for one slot are serialised and
exactly one wins; the unique index on live appointments is the last line of defence.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import date, datetime, time, timedelta

from sync_protocol.event_names import (
    APPOINTMENT_BOOKED,
    APPOINTMENT_CANCELLED,
    APPOINTMENT_CHECKED_IN,
    APPOINTMENT_COMPLETED,
    APPOINTMENT_NO_SHOW,
    APPOINTMENT_RESCHEDULED,
)
from sync_protocol.identifiers import new_ulid
from sync_protocol.payloads import appointment_booked, appointment_cancelled
from sync_protocol.timeutil import TASHKENT, from_instant, local_date, to_instant, utc_now

from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..store import NodeStore, Transaction
from .access import Actor
from .patients import load_patient
from .records import AppointmentRecord, record

log = logging.getLogger(__name__)

CHANNELS = ("kiosk", "registry", "web", "call_centre")
LIVE = ("booked", "checked_in", "completed", "no_show")


def _instant(value: datetime | str, field: str = "starts_at") -> str:
    try:
        moment = value if isinstance(value, datetime) else from_instant(str(value))
        return to_instant(moment)
    except (ValueError, TypeError):
        raise ValidationFailed("Time must be an ISO 8601 instant with its zone", field=field,
                               code="bad_time") from None


def _require_booking_right(actor: Actor, patient_id: str) -> None:
    if actor.can("book"):
        return
    if actor.can("book_own") and actor.patient_id == patient_id:
        return
    raise Forbidden("You may only manage your own appointments", field="patient_id")


def _free_slot(tx: Transaction, practitioner_id: str, starts_at: str,
               now: datetime) -> sqlite3.Row:
    """The slot, if it exists, is still ahead and nobody holds it."""
    slot = tx.one("SELECT * FROM slots WHERE practitioner_id = ? AND starts_at = ?",
                  (practitioner_id, starts_at))
    if slot is None:
        raise NotFound("The doctor has no slot at this time", field="starts_at",
                       code="no_such_slot")
    if from_instant(starts_at) <= now:
        raise ValidationFailed("This time has already passed; choose a later one",
                               field="starts_at", code="slot_in_past")
    if tx.one("SELECT 1 FROM appointments WHERE practitioner_id = ? AND starts_at = ? AND"
              " status IN ('booked', 'checked_in', 'completed', 'no_show')",
              (practitioner_id, starts_at)):
        raise Conflict("This time is already booked; choose another", field="starts_at",
                       code="slot_taken")
    return slot


def book(store: NodeStore, actor: Actor, *, patient_id: str, practitioner_id: str,
         starts_at: datetime | str, channel: str, now: datetime | None = None) -> str:
    _require_booking_right(actor, patient_id)
    if channel not in CHANNELS:
        raise ValidationFailed("Channel must be one of %(channels)s", field="channel",
                               channels=", ".join(CHANNELS))
    start = _instant(starts_at)
    now = now or utc_now()
    appointment_id = new_ulid()
    with store.transaction() as tx:
        load_patient(tx.conn, patient_id)
        slot = _free_slot(tx, practitioner_id, start, now)
        day = local_date(from_instant(start))
        begin = datetime.combine(day, time(0), tzinfo=TASHKENT)
        if tx.one("SELECT 1 FROM appointments WHERE patient_id = ? AND practitioner_id = ? AND"
                  " status = 'booked' AND starts_at >= ? AND starts_at < ?",
                  (patient_id, practitioner_id, to_instant(begin),
                   to_instant(begin + timedelta(days=1)))):
            raise Conflict("The patient already has a booking with this doctor that day",
                           field="starts_at", code="already_booked_that_day")
        try:
            tx.append(APPOINTMENT_BOOKED, appointment_booked(
                appointment_id=appointment_id, patient_id=patient_id,
                practitioner_id=practitioner_id, facility_id=slot["facility_id"],
                starts_at=start, channel=channel))
        except sqlite3.IntegrityError:
            raise Conflict("This time is already booked; choose another", field="starts_at",
                           code="slot_taken") from None
    log.info("booked %s for %s at %s", appointment_id, practitioner_id, start)
    return appointment_id


def get_appointment(store: NodeStore, appointment_id: str) -> AppointmentRecord:
    return record(load_appointment(store.reader(), appointment_id), AppointmentRecord)


def load_appointment(conn: sqlite3.Connection, appointment_id: str) -> sqlite3.Row:
    """The appointment's row, read inside a service's transaction."""
    row = conn.execute("SELECT * FROM appointments WHERE appointment_id = ?",
                       (appointment_id,)).fetchone()
    if row is None:
        raise NotFound("Appointment %(id)s is not known on this node", field="appointment_id",
                       id=appointment_id)
    return row


def _booked(tx: Transaction, actor: Actor, appointment_id: str) -> sqlite3.Row:
    row = load_appointment(tx.conn, appointment_id)
    _require_booking_right(actor, row["patient_id"])
    if row["status"] != "booked":
        raise Conflict("The appointment is %(status)s and can no longer be changed",
                       field="appointment_id", code="not_booked", status=row["status"])
    return row


def cancel(store: NodeStore, actor: Actor, appointment_id: str, reason: str = "") -> None:
    with store.transaction() as tx:
        _booked(tx, actor, appointment_id)
        tx.append(APPOINTMENT_CANCELLED, appointment_cancelled(
            appointment_id=appointment_id, reason=str(reason)[:400] if reason else None))


def reschedule(store: NodeStore, actor: Actor, appointment_id: str, *,
               starts_at: datetime | str, practitioner_id: str | None = None,
               now: datetime | None = None) -> None:
    start = _instant(starts_at)
    with store.transaction() as tx:
        row = _booked(tx, actor, appointment_id)
        doctor = practitioner_id or row["practitioner_id"]
        _free_slot(tx, doctor, start, now or utc_now())
        payload = {"appointment_id": appointment_id, "starts_at": start}
        if doctor != row["practitioner_id"]:
            payload["practitioner_id"] = doctor
        tx.append(APPOINTMENT_RESCHEDULED, payload)


def check_in(store: NodeStore, actor: Actor, appointment_id: str,
             now: datetime | None = None) -> int:
    """Check in for today's visit; returns the queue number at that doctor today."""
    now = now or utc_now()
    with store.transaction() as tx:
        row = load_appointment(tx.conn, appointment_id)
        if not (actor.can("check_in") or actor.patient_id == row["patient_id"]):
            raise Forbidden("You may only check in for your own appointment")
        if row["status"] != "booked":
            raise Conflict("The appointment is %(status)s, not waiting for check-in",
                           field="appointment_id", code="not_booked", status=row["status"])
        today = local_date(now)
        if local_date(from_instant(row["starts_at"])) != today:
            raise ValidationFailed("Check-in is only possible on the day of the visit",
                                   field="appointment_id", code="not_today")
        begin = datetime.combine(today, time(0), tzinfo=TASHKENT)
        taken = tx.query("SELECT COALESCE(MAX(queue_number), 0) AS n FROM appointments WHERE"
                         " practitioner_id = ? AND starts_at >= ? AND starts_at < ?",
                         (row["practitioner_id"], to_instant(begin),
                          to_instant(begin + timedelta(days=1))))[0]
        number = taken["n"] + 1
        tx.append(APPOINTMENT_CHECKED_IN, {"appointment_id": appointment_id,
                                           "queue_number": number})
    return number


def complete(store: NodeStore, actor: Actor, appointment_id: str) -> None:
    actor.require("complete_visit")
    with store.transaction() as tx:
        row = load_appointment(tx.conn, appointment_id)
        if row["status"] not in ("booked", "checked_in"):
            raise Conflict("The appointment is %(status)s and cannot be completed",
                           field="appointment_id", code="not_open", status=row["status"])
        tx.append(APPOINTMENT_COMPLETED, {"appointment_id": appointment_id})


def mark_no_show(store: NodeStore, actor: Actor, appointment_id: str,
                 now: datetime | None = None) -> None:
    actor.require("check_in")
    with store.transaction() as tx:
        row = load_appointment(tx.conn, appointment_id)
        if row["status"] != "booked":
            raise Conflict("The appointment is %(status)s, not waiting", field="appointment_id",
                           code="not_booked", status=row["status"])
        if from_instant(row["starts_at"]) > (now or utc_now()):
            raise ValidationFailed("A no-show can be marked only after the appointment time",
                                   field="appointment_id", code="not_yet")
        tx.append(APPOINTMENT_NO_SHOW, {"appointment_id": appointment_id})


def list_appointments(store: NodeStore, actor: Actor, *, patient_id: str | None = None,
                      practitioner_id: str | None = None, day: date | None = None,
                      upcoming_only: bool = False) -> list[dict]:
    if actor.role == "patient":
        if patient_id is None or patient_id != actor.patient_id:
            raise Forbidden("You may only see your own appointments", field="patient_id")
    else:
        actor.require("view_schedule")
    sql = ("SELECT a.*, p.full_name AS practitioner_name, p.specialty FROM appointments a"
           " JOIN practitioners p USING (practitioner_id) WHERE 1=1")
    params: list = []
    if patient_id:
        sql += " AND a.patient_id = ?"
        params.append(patient_id)
    if practitioner_id:
        sql += " AND a.practitioner_id = ?"
        params.append(practitioner_id)
    if day is not None:
        begin = datetime.combine(day, time(0), tzinfo=TASHKENT)
        sql += " AND a.starts_at >= ? AND a.starts_at < ?"
        params += [to_instant(begin), to_instant(begin + timedelta(days=1))]
    if upcoming_only:
        sql += " AND a.status IN ('booked', 'checked_in') AND a.starts_at >= ?"
        params.append(to_instant(datetime.combine(local_date(utc_now()), time(0),
                                                  tzinfo=TASHKENT)))
    return [dict(r) for r in store.query(sql + " ORDER BY a.starts_at", tuple(params))]
