"""The electronic medical card (MED-ID): one read of everything, always audited."""

from __future__ import annotations

import logging

from sync_protocol.timeutil import to_instant, utc_now

from ..errors import Forbidden, ValidationFailed
from ..store import NodeStore
from .access import Actor
from .patients import load_patient, patient_summary

log = logging.getLogger(__name__)

READ_REASONS = ("visit", "consultation", "emergency", "patient_request", "follow_up")


def read_card(store: NodeStore, actor: Actor, patient_id: str, reason: str) -> dict:
    """The whole card; the read is recorded (who, when, why) in the same transaction."""
    if actor.role == "patient":
        if actor.patient_id != patient_id:
            raise Forbidden("You may only open your own card", field="patient_id")
        reason = "patient_request"
    else:
        actor.require("read_card")
    if reason not in READ_REASONS:
        raise ValidationFailed("Say why the card is opened: one of %(reasons)s", field="reason",
                               reasons=", ".join(READ_REASONS))
    with store.transaction() as tx:
        patient = load_patient(tx.conn, patient_id)
        tx.conn.execute(
            "INSERT INTO card_reads (patient_id, staff_id, role, reason, read_at) VALUES"
            " (?, ?, ?, ?, ?)", (patient_id, actor.actor_id, actor.role, reason,
                                 to_instant(utc_now())))
        visits = [dict(r) for r in tx.query(
            "SELECT v.*, p.full_name AS practitioner_name FROM visits v LEFT JOIN practitioners"
            " p USING (practitioner_id) WHERE v.patient_id = ? ORDER BY v.occurred_at DESC",
            (patient_id,))]
        for visit in visits:
            visit["diagnoses"] = [
                {"code": d["code"], "description": d["description"],
                 "primary": bool(d["is_primary"])}
                for d in tx.query("SELECT * FROM diagnoses WHERE visit_id = ? ORDER BY"
                                  " is_primary DESC, code", (visit["visit_id"],))]
            visit["orders"] = [dict(o) for o in tx.query(
                "SELECT order_id, kind, text FROM orders WHERE visit_id = ?",
                (visit["visit_id"],))]
        labs = [dict(r) for r in tx.query(
            "SELECT * FROM lab_results WHERE patient_id = ? ORDER BY observed_at DESC",
            (patient_id,))]
        appointments = [dict(r) for r in tx.query(
            "SELECT a.appointment_id, a.starts_at, a.status, a.channel, p.full_name AS"
            " practitioner_name, p.specialty FROM appointments a JOIN practitioners p USING"
            " (practitioner_id) WHERE a.patient_id = ? ORDER BY a.starts_at DESC",
            (patient_id,))]
        allergies = [dict(r) for r in tx.query(
            "SELECT * FROM allergies WHERE patient_id = ? ORDER BY retracted_at IS NOT NULL,"
            " recorded_at, allergy_id", (patient_id,))]
    log.info("card of %s opened by %s (%s)", patient_id, actor.actor_id, reason)
    return {"patient": patient_summary(patient), "visits": visits, "lab_results": labs,
            "appointments": appointments, "allergies": allergies}


def card_reads(store: NodeStore, actor: Actor, patient_id: str | None = None) -> list[dict]:
    """The audit trail; an admin reviews it, a patient sees who opened their own card."""
    if actor.role == "patient":
        patient_id = actor.patient_id
    else:
        actor.require("manage_staff")
    sql = "SELECT * FROM card_reads"
    params: tuple = ()
    if patient_id:
        sql += " WHERE patient_id = ?"
        params = (patient_id,)
    return [dict(r) for r in store.query(sql + " ORDER BY id DESC LIMIT 500", params)]
