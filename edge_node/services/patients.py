"""Patient registration, demographics edits and phone confirmation by SMS code."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sqlite3
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from sync_protocol.errors import ProtocolError
from sync_protocol.event_names import (
    PATIENT_FIELD_CHANGED,
    PATIENT_PHONE_CONFIRMED,
    PATIENT_REGISTERED,
)
from sync_protocol.identifiers import new_ulid, parse_document, parse_phone, parse_pinfl
from sync_protocol.payloads import patient_registered
from sync_protocol.timeutil import from_instant, local_date, to_instant, utc_now

from ..errors import Conflict, FieldErrors, NotFound, TooManyAttempts, ValidationFailed
from ..store import NodeStore, Transaction
from .access import Actor
from .facilities import load_facility, load_practitioner
from .records import PatientRecord, PatientSummary, record
from .sms import queue_sms

log = logging.getLogger(__name__)

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
# Six digits and five tries: a guess succeeds once in 200,000 attempts.
MAX_CODE_ATTEMPTS = 5
EDITABLE_FIELDS = ("full_name", "phone", "document", "facility_id", "family_doctor_id")
SMS_CODE_TEXT = ("DMED: tasdiqlash kodi %(code)s (10 daqiqa). "
                 "Код подтверждения %(code)s (10 минут).")


# Limits the forms repeat as maxlength (kiosk_ui reads these constants).
NAME_LENGTH = (2, 200)  # the event schema's NAME allows 200
PHONE_MAX_TYPED = 20  # "+998 (90) 123-45-67" with spaces and brackets
PINFL_MAX_TYPED = 17  # 14 digits and a few spaces
DOCUMENT_MAX_TYPED = 12  # AA 123-4567


def _name(value: str | None) -> str:
    name = " ".join(str(value or "").split())
    if not NAME_LENGTH[0] <= len(name) <= NAME_LENGTH[1]:
        raise ValidationFailed("Full name is required (2 to 200 characters)", field="full_name")
    return name


def register_patient(store: NodeStore, actor: Actor, *, full_name: str, facility_id: str,
                     phone: str | None = None, pinfl: str | None = None,
                     document: str | None = None, birth_date: date | str | None = None,
                     sex: str | None = None, family_doctor_id: str | None = None) -> dict:
    """Register a patient by PINFL or identity document; creates the MED-ID card. The phone is
    optional (DMED serves patients without one); when given, an SMS code confirms it. Every
    wrong field is reported at once (FieldErrors) so a form can mark them all."""
    actor.require("register_patient")
    payload: dict = {"patient_id": new_ulid(), "facility_id": facility_id}
    errors: list[ProtocolError] = []

    def check(key: str, parse: Callable[[Any], Any], value: Any) -> None:
        try:
            payload[key] = parse(value)
        except ProtocolError as e:
            errors.append(e)

    check("full_name", _name, full_name)
    if phone and str(phone).strip():
        check("phone", parse_phone, phone)
    if not pinfl and not document:
        errors.append(ValidationFailed("Give the PINFL or an identity document", field="pinfl"))
    if pinfl:
        check("pinfl", parse_pinfl, pinfl)
        if "pinfl" in payload:
            parsed = payload.pop("pinfl")
            payload.update(pinfl=parsed.digits, birth_date=parsed.birth_date.isoformat(),
                           sex=parsed.sex)
    else:
        check("birth_date", _birth_date, birth_date)
        check("sex", _sex, sex)
    if document:
        check("document", lambda text: str(parse_document(text)), document)
    if errors:
        raise errors[0] if len(errors) == 1 else FieldErrors(errors)
    if family_doctor_id:
        payload["family_doctor_id"] = family_doctor_id
    payload["med_id"] = "MED-" + payload["patient_id"][-10:]
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    with store.transaction() as tx:
        load_facility(tx.conn, facility_id)
        if family_doctor_id:
            load_practitioner(tx.conn, family_doctor_id)
        _refuse_duplicate(tx, payload.get("pinfl"), payload.get("document"))
        tx.append(PATIENT_REGISTERED, patient_registered(**payload))
        if "phone" in payload:
            _issue_code(tx, payload["patient_id"], payload["phone"], code)
    log.info("registered patient %s", payload["patient_id"])
    return {"patient_id": payload["patient_id"], "med_id": payload["med_id"]}


def _birth_date(value: date | str | None) -> str:
    try:
        born = value if isinstance(value, date) else date.fromisoformat(str(value or ""))
    except ValueError:
        raise ValidationFailed("Birth date is required as YYYY-MM-DD when there is no PINFL",
                               field="birth_date") from None
    if not date(1900, 1, 1) <= born <= local_date(utc_now()):
        raise ValidationFailed("Birth date is out of range", field="birth_date")
    return born.isoformat()


def _sex(value: str | None) -> str:
    if value not in ("male", "female"):
        raise ValidationFailed("Sex must be male or female when there is no PINFL", field="sex")
    return value


def _refuse_duplicate(tx: Transaction, pinfl: str | None, document: str | None) -> None:
    # The existing patient's id travels with the error: the form links to their page.
    found = pinfl and tx.one("SELECT patient_id FROM patients WHERE pinfl = ?", (pinfl,))
    if found:
        raise Conflict("A patient with this PINFL is already registered", field="pinfl",
                       code="duplicate_pinfl", existing_patient_id=found["patient_id"])
    found = document and tx.one("SELECT patient_id FROM patients WHERE document = ?",
                                (document,))
    if found:
        raise Conflict("A patient with this identity document is already registered",
                       field="document", code="duplicate_document",
                       existing_patient_id=found["patient_id"])


def _code_hash(patient_id: str, code: str) -> str:
    return hashlib.sha256(f"{patient_id}:{code}".encode()).hexdigest()


def _issue_code(tx: Transaction, patient_id: str, phone: str, code: str) -> None:
    tx.conn.execute(
        "INSERT INTO phone_codes (patient_id, phone, code_hash, expires_at, attempts)"
        " VALUES (?, ?, ?, ?, 0) ON CONFLICT (patient_id) DO UPDATE SET phone = excluded.phone,"
        " code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0",
        (patient_id, phone, _code_hash(patient_id, code), to_instant(utc_now() + CODE_TTL)))
    queue_sms(tx.conn, phone, SMS_CODE_TEXT % {"code": code}, "phone_code")


def resend_code(store: NodeStore, actor: Actor, patient_id: str) -> None:
    actor.require("edit_patient")
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    with store.transaction() as tx:
        patient = load_patient(tx.conn, patient_id)
        if not patient["phone"]:
            raise ValidationFailed("The patient has no phone number", field="phone",
                                   code="no_phone")
        _issue_code(tx, patient_id, patient["phone"], code)


def confirm_phone(store: NodeStore, patient_id: str, code: str) -> None:
    """Check the SMS code; five wrong tries void it."""
    with store.transaction() as tx:
        row = tx.one("SELECT * FROM phone_codes WHERE patient_id = ?", (patient_id,))
        if row is None:
            raise NotFound("No confirmation code is waiting for this patient", field="code")
        if row["attempts"] >= MAX_CODE_ATTEMPTS:
            raise TooManyAttempts("Too many wrong codes; ask for a new one", field="code")
        if from_instant(row["expires_at"]) < utc_now():
            raise ValidationFailed("The code has expired; ask for a new one", field="code",
                                   code="code_expired")
        correct = hmac.compare_digest(row["code_hash"], _code_hash(patient_id, str(code).strip()))
        if correct:
            tx.conn.execute("DELETE FROM phone_codes WHERE patient_id = ?", (patient_id,))
            tx.append(PATIENT_PHONE_CONFIRMED, {"patient_id": patient_id, "phone": row["phone"]})
        else:
            # The wrong try is counted (committed), then refused.
            tx.conn.execute("UPDATE phone_codes SET attempts = attempts + 1 WHERE patient_id = ?",
                            (patient_id,))
    if not correct:
        raise ValidationFailed("The code is wrong", field="code", code="code_wrong")


def change_patient_field(store: NodeStore, actor: Actor, patient_id: str, field: str,
                         value: str | None) -> None:
    """Change one field; recorded field by field so concurrent edits merge per field."""
    actor.require("edit_patient")
    if field not in EDITABLE_FIELDS:
        raise ValidationFailed("Field %(field)s cannot be changed", field="field",
                               code="field_not_editable")
    with store.transaction() as tx:
        patient = load_patient(tx.conn, patient_id)
        normalised = _normalise_field(tx, field, value)
        if patient[field] == normalised:
            return
        tx.append(PATIENT_FIELD_CHANGED, {"patient_id": patient_id, "field": field,
                                          "value": normalised, "previous": patient[field]})
        if field == "phone" and normalised:
            code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
            _issue_code(tx, patient_id, normalised, code)


def _normalise_field(tx: Transaction, field: str, value: str | None) -> str | None:
    if field == "full_name":
        return _name(value)
    if field == "phone":
        return parse_phone(value or "")
    if field == "document":
        document = str(parse_document(value or ""))
        _refuse_duplicate(tx, None, document)
        return document
    if field == "facility_id":
        return load_facility(tx.conn, value or "")["facility_id"]
    if not value:
        return None
    return load_practitioner(tx.conn, value)["practitioner_id"]


def get_patient(store: NodeStore, patient_id: str) -> PatientRecord:
    return record(load_patient(store.reader(), patient_id), PatientRecord)


def get_summary(store: NodeStore, patient_id: str) -> PatientSummary:
    """A patient's demographics (patient_summary) by id; NotFound if not on this node."""
    return patient_summary(load_patient(store.reader(), patient_id))


def load_patient(conn: sqlite3.Connection, patient_id: str) -> sqlite3.Row:
    """The patient's row, read inside a service's transaction."""
    row = conn.execute("SELECT * FROM patients WHERE patient_id = ?", (patient_id,)).fetchone()
    if row is None:
        raise NotFound("Patient %(id)s is not known on this node", field="patient_id",
                       id=patient_id)
    return row


def find_patient(store: NodeStore, actor: Actor, *, pinfl: str | None = None,
                 document: str | None = None) -> PatientSummary:
    """Look a patient up by PINFL or identity document (e.g. at the registry desk)."""
    if not (actor.can("view_patient") or actor.can("find_patient_for_dispensing")):
        actor.require("view_patient")
    if pinfl:
        row = store.one("SELECT * FROM patients WHERE pinfl = ?", (parse_pinfl(pinfl).digits,))
    elif document:
        row = store.one("SELECT * FROM patients WHERE document = ?",
                        (str(parse_document(document)),))
    else:
        raise ValidationFailed("Give a PINFL or an identity document", field="pinfl")
    if row is None:
        raise NotFound("No patient with this identifier on this node",
                       field="pinfl" if pinfl else "document")
    return patient_summary(row)


def patient_summary(row: sqlite3.Row | PatientRecord) -> PatientSummary:
    """Demographics only: what a registrar or pharmacist may see."""
    return PatientSummary(
        patient_id=row["patient_id"], med_id=row["med_id"], pinfl=row["pinfl"],
        document=row["document"], full_name=row["full_name"], birth_date=row["birth_date"],
        sex=row["sex"], phone=row["phone"], facility_id=row["facility_id"],
        family_doctor_id=row["family_doctor_id"],
        phone_confirmed=bool(row["phone_confirmed"]))
