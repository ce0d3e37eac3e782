"""Prescribing by INN on a clinic node: checked by the rules, signed into a QR code, recorded.

The QR code is signed with this node's key (its certificate carries the prescribing EKU), so
any pharmacy can verify it offline from the code alone.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, cast

from ulid import ULID

from sync_protocol import qr
from sync_protocol.certificates import EKU_PRESCRIBE, extended_key_usages
from sync_protocol.event_names import (
    CHRONIC_CONDITION_SET,
    PRESCRIPTION_CANCELLED,
    PRESCRIPTION_ISSUED,
)
from sync_protocol.events import Event
from sync_protocol.identifiers import new_ulid
from sync_protocol.payloads import (
    PrescriptionItem,
    prescription_cancelled,
    prescription_issued,
    prescription_item,
)
from sync_protocol.timeutil import to_instant, utc_now

from ..catalogue import Catalogue
from ..credentials import NodeCredentials
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..prescribing_rules import ItemRequest, PlannedItem, check_prescription
from ..store import NodeStore, Transaction
from .access import Actor
from .allergies import check_override, load_matching_allergies
from .clinical import icd10_description, normalise_icd10
from .patients import load_patient
from .records import PrescriptionRecord, record

log = logging.getLogger(__name__)

NUMBER_DIGITS = 15  # plus a Luhn check digit: 16 digits a pharmacist can type and check


def luhn_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def prescription_number(prescription_id: str) -> str:
    """A 16-digit number derived from the ULID, grouped 4-4-4-4, with a Luhn check digit."""
    body = f"{int(ULID.from_str(prescription_id)) % 10**NUMBER_DIGITS:0{NUMBER_DIGITS}d}"
    digits = body + luhn_digit(body)
    return "-".join(digits[i:i + 4] for i in range(0, 16, 4))


def is_valid_number(text: str) -> bool:
    digits = "".join(c for c in str(text) if c.isdigit())
    return len(digits) == 16 and luhn_digit(digits[:-1]) == digits[-1]


def _item_requests(items: Any) -> list[ItemRequest]:
    if not isinstance(items, list) or not items:
        raise ValidationFailed("A prescription needs at least one item", field="items")
    requests = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValidationFailed("Each item must be an object", field=f"items[{index}]")
        try:
            requests.append(ItemRequest(
                inn=str(item.get("inn", "")), form=str(item.get("form", "")),
                strength=str(item.get("strength", "")),
                # checked with the rest of the plan (check_prescription): a clear error
                quantity=cast(int, item.get("quantity")),
                dosage=str(item.get("dosage", "")), repeats=item.get("repeats", 0),
                min_days_between_fills=item.get("min_days_between_fills")))
        except TypeError:
            raise ValidationFailed("Item %(line)s is incomplete", field=f"items[{index}]",
                                   line=index + 1) from None
    return requests


def may_sign_prescriptions(credentials: NodeCredentials | None) -> bool:
    return credentials is not None and EKU_PRESCRIBE in extended_key_usages(credentials.cert)


def is_chronic(store: NodeStore, patient_id: str) -> bool:
    """Whether the patient has an active chronic condition (longer validity is possible)."""
    return load_chronic(store.reader(), patient_id)


def load_chronic(conn: sqlite3.Connection, patient_id: str) -> bool:
    """is_chronic, read inside a service's transaction."""
    return conn.execute("SELECT 1 FROM chronic_conditions WHERE patient_id = ? AND active = 1",
                        (patient_id,)).fetchone() is not None


def set_chronic_condition(store: NodeStore, actor: Actor, patient_id: str, code: str,
                          active: bool = True) -> None:
    """Mark a patient chronic for a diagnosis: long-validity prescriptions become possible."""
    actor.require("write_clinical")
    icd10_description(code)
    with store.transaction() as tx:
        load_patient(tx.conn, patient_id)
        tx.append(CHRONIC_CONDITION_SET, {"patient_id": patient_id,
                                          "code": normalise_icd10(code), "active": bool(active)})


def issue_prescription(store: NodeStore, actor: Actor, credentials: NodeCredentials, *,
                       patient_id: str,
                       items: list[dict], validity_days: int | None = None,
                       now: datetime | None = None,
                       allergy_override: str | None = None,
                       remote_request_id: str | None = None,
                       then: Callable[[Transaction, Event], None] | None = None) -> dict:
    """Check, sign and record; a drug matching a recorded allergy needs ``allergy_override``
    (the doctor's reason), kept on the prescription. A call-centre request's approval names
    the request (``remote_request_id``) and records its decision in ``then``, in the same
    transaction right after the prescription, so both commit together or not at all."""
    actor.require("prescribe")
    if not actor.practitioner_id:
        raise Forbidden("Only a doctor linked to a practitioner record can prescribe")
    if not may_sign_prescriptions(credentials):
        raise Forbidden("This node has no key that may sign prescriptions", code="no_signing_key")
    now = (now or utc_now()).replace(microsecond=0)
    requests = _item_requests(items)
    catalogue = Catalogue.load()
    prescription_id = new_ulid()
    number = prescription_number(prescription_id)
    with store.transaction() as tx:
        patient = load_patient(tx.conn, patient_id)
        if not patient["pinfl"]:
            raise ValidationFailed("An e-prescription is bound to the PINFL: record the "
                                   "patient's PINFL first", field="patient_id", code="no_pinfl")
        chronic = load_chronic(tx.conn, patient_id)
        plan = check_prescription(requests, catalogue, chronic, now, validity_days=validity_days)
        override = check_override(load_matching_allergies(
            tx.conn, patient_id, [(p.inn, p.atc) for p in plan.items]), allergy_override)
        facility = tx.one("SELECT f.facility_id, f.code FROM practitioners p JOIN facilities f"
                          " USING (facility_id) WHERE p.practitioner_id = ?",
                          (actor.practitioner_id,))
        if facility is None:
            raise NotFound("The doctor's facility is not known on this node",
                           field="practitioner_id")
        claims = qr.PrescriptionClaims(
            issuer=facility["code"], issued_at=now, not_before=plan.not_before,
            expires_at=plan.expires_at, prescription_id=prescription_id, pinfl=patient["pinfl"],
            prescriber=actor.practitioner_id, number=number, kind="e",
            items=tuple(qr.PrescriptionItemClaim(
                inn=p.inn, strength=p.strength, form=p.form, quantity=p.quantity,
                repeats=p.repeats, min_days_between_fills=p.min_days_between_fills or 0)
                for p in plan.items))
        code = qr.issue(claims, credentials.key, credentials.cert)
        event = tx.append(PRESCRIPTION_ISSUED, prescription_issued(
            prescription_id=prescription_id, number=number, kind="e",
            patient_id=patient_id, pinfl=patient["pinfl"],
            facility_id=facility["facility_id"], practitioner_id=actor.practitioner_id,
            issued_at=to_instant(now), not_before=to_instant(plan.not_before),
            expires_at=to_instant(plan.expires_at), chronic=plan.chronic, qr=code,
            patient_document=patient["document"] or None, allergy_override=override or None,
            items=plan_items(plan.items), remote_request_id=remote_request_id))
        if then is not None:
            then(tx, event)
    log.info("prescription %s issued by %s", number, actor.practitioner_id)
    return {"prescription_id": prescription_id, "number": number, "qr": code,
            "expires_at": to_instant(plan.expires_at), "validity_days": plan.validity_days,
            "limited_by": plan.limited_by}


def plan_items(items: Iterable[PlannedItem]) -> list[PrescriptionItem]:
    """The checked items of a prescription plan as the event carries them, numbered from 1."""
    return [prescription_item(item_no=i, inn=p.inn, form=p.form, strength=p.strength,
                              unit=p.unit, atc=p.atc, quantity=p.quantity, dosage=p.dosage,
                              repeats=p.repeats,
                              min_days_between_fills=p.min_days_between_fills or 0)
            for i, p in enumerate(items, start=1)]


def cancel_prescription(store: NodeStore, actor: Actor, prescription_id: str,
                        reason: str) -> None:
    """Only the prescriber cancels; a dispense already made stays (it is a physical fact)."""
    actor.require("prescribe")
    reason = str(reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why the prescription is cancelled", field="reason")
    with store.transaction() as tx:
        row = load_prescription(tx.conn, prescription_id)
        if row["practitioner_id"] != actor.practitioner_id:
            raise Forbidden("Only the prescribing doctor can cancel this prescription")
        if row["status"] == "cancelled":
            raise Conflict("The prescription is already cancelled", field="prescription_id",
                           code="already_cancelled")
        tx.append(PRESCRIPTION_CANCELLED, prescription_cancelled(
            prescription_id=prescription_id, reason=reason[:400]))


def get_prescription(store: NodeStore, prescription_id: str) -> PrescriptionRecord:
    return record(load_prescription(store.reader(), prescription_id), PrescriptionRecord)


def load_prescription(conn: sqlite3.Connection, prescription_id: str) -> sqlite3.Row:
    """The prescription's row, read inside a service's transaction."""
    row = conn.execute("SELECT * FROM prescriptions WHERE prescription_id = ?",
                       (prescription_id,)).fetchone()
    if row is None:
        raise NotFound("Prescription %(id)s is not known on this node",
                       field="prescription_id", id=prescription_id)
    return row


def _prescription_items(conn: sqlite3.Connection, prescription_id: str) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT * FROM prescription_items WHERE prescription_id = ? ORDER BY item_no",
        (prescription_id,))]


def patient_prescriptions(store: NodeStore, actor: Actor, patient_id: str) -> list[dict]:
    """A patient's prescriptions with their items (no diagnoses): kiosk, doctor, pharmacy."""
    _may_see_prescriptions(actor, patient_id)
    conn = store.reader()
    rows = conn.execute("SELECT * FROM prescriptions WHERE patient_id = ? ORDER BY issued_at"
                        " DESC", (patient_id,)).fetchall()
    return [_with_items(conn, r) for r in rows]


def prescription_with_items(store: NodeStore, actor: Actor, prescription_id: str) -> dict:
    """One prescription as patient_prescriptions gives it, by id; NotFound if not here."""
    conn = store.reader()
    row = load_prescription(conn, prescription_id)
    _may_see_prescriptions(actor, row["patient_id"])
    return _with_items(conn, row)


def _may_see_prescriptions(actor: Actor, patient_id: str) -> None:
    if actor.role == "patient":
        if actor.patient_id != patient_id:
            raise Forbidden("You may only see your own prescriptions", field="patient_id")
    elif not (actor.can("prescribe") or actor.can("dispense")):
        actor.require("prescribe")


def _with_items(conn: sqlite3.Connection, row: sqlite3.Row) -> dict:
    return {**dict(row), "chronic": bool(row["chronic"]),
            "items": _prescription_items(conn, row["prescription_id"])}
