"""Typed payload builders for the main events, the ones both node and hub read.

Each builder takes the payload's fields as keyword arguments (a misspelt or missing field is
a TypeError where the event is made, not a PayloadInvalid at the hub) and returns the dict
that goes on the wire, unchanged in shape: an optional field given as None is left out, as
the schemas (sync_protocol.event_types) have no nulls. The schemas still validate every
payload on write and on receipt; a test checks each builder's fields against its schema.
"""

# No `from __future__ import annotations` here: TypedDict reads NotRequired from evaluated
# annotations only, and the required keys are what the test compares with the schemas.
import logging
from typing import Any, NotRequired, TypedDict

log = logging.getLogger(__name__)


def _with_optional(payload: dict[str, Any], **optional: Any) -> Any:
    payload.update((name, value) for name, value in optional.items() if value is not None)
    return payload


class PatientRegistered(TypedDict):
    patient_id: str
    med_id: str
    full_name: str
    birth_date: str
    sex: str
    facility_id: str
    pinfl: NotRequired[str]
    document: NotRequired[str]
    family_doctor_id: NotRequired[str]
    phone: NotRequired[str]


def patient_registered(*, patient_id: str, med_id: str, full_name: str, birth_date: str,
                       sex: str, facility_id: str, pinfl: str | None = None,
                       document: str | None = None, family_doctor_id: str | None = None,
                       phone: str | None = None) -> PatientRegistered:
    """A PINFL or a document is required (the schema says which is missing)."""
    return _with_optional(
        {"patient_id": patient_id, "med_id": med_id, "full_name": full_name,
         "birth_date": birth_date, "sex": sex, "facility_id": facility_id},
        pinfl=pinfl, document=document, family_doctor_id=family_doctor_id, phone=phone)


class AppointmentBooked(TypedDict):
    appointment_id: str
    patient_id: str
    practitioner_id: str
    facility_id: str
    starts_at: str
    channel: str


def appointment_booked(*, appointment_id: str, patient_id: str, practitioner_id: str,
                       facility_id: str, starts_at: str, channel: str) -> AppointmentBooked:
    return {"appointment_id": appointment_id, "patient_id": patient_id,
            "practitioner_id": practitioner_id, "facility_id": facility_id,
            "starts_at": starts_at, "channel": channel}


class AppointmentCancelled(TypedDict):
    appointment_id: str
    reason: NotRequired[str]


def appointment_cancelled(*, appointment_id: str,
                          reason: str | None = None) -> AppointmentCancelled:
    return _with_optional({"appointment_id": appointment_id}, reason=reason)


class PrescriptionItem(TypedDict):
    item_no: int
    inn: str
    form: str
    strength: str
    quantity: int
    repeats: int
    min_days_between_fills: int
    dosage: NotRequired[str]
    unit: NotRequired[str]
    atc: NotRequired[str]


def prescription_item(*, item_no: int, inn: str, form: str, strength: str, quantity: int,
                      repeats: int, min_days_between_fills: int, dosage: str | None = None,
                      unit: str | None = None, atc: str | None = None) -> PrescriptionItem:
    return _with_optional(
        {"item_no": item_no, "inn": inn, "form": form, "strength": strength,
         "quantity": quantity, "repeats": repeats,
         "min_days_between_fills": min_days_between_fills},
        dosage=dosage, unit=unit, atc=atc)


class AllergyOverride(TypedDict):
    allergy_ids: list[str]
    reason: str


class PrescriptionIssued(TypedDict):
    prescription_id: str
    number: str
    kind: str
    patient_id: str
    pinfl: str
    facility_id: str
    practitioner_id: str
    issued_at: str
    not_before: str
    expires_at: str
    chronic: bool
    items: list[PrescriptionItem]
    qr: NotRequired[str]
    paper_serial: NotRequired[str]
    paper_reason: NotRequired[str]
    entered_at: NotRequired[str]
    remote_request_id: NotRequired[str]
    patient_document: NotRequired[str]
    allergy_override: NotRequired[AllergyOverride]


def prescription_issued(*, prescription_id: str, number: str, kind: str, patient_id: str,
                        pinfl: str, facility_id: str, practitioner_id: str, issued_at: str,
                        not_before: str, expires_at: str, chronic: bool,
                        items: list[PrescriptionItem], qr: str | None = None,
                        paper_serial: str | None = None, paper_reason: str | None = None,
                        entered_at: str | None = None, remote_request_id: str | None = None,
                        patient_document: str | None = None,
                        allergy_override: AllergyOverride | None = None) -> PrescriptionIssued:
    """An e-prescription (kind "e", with its signed `qr`) or a paper one entered late (kind
    "paper", with its pad serial, why paper was used and when it was entered)."""
    return _with_optional(
        {"prescription_id": prescription_id, "number": number, "kind": kind,
         "patient_id": patient_id, "pinfl": pinfl, "facility_id": facility_id,
         "practitioner_id": practitioner_id, "issued_at": issued_at, "not_before": not_before,
         "expires_at": expires_at, "chronic": chronic, "items": items},
        qr=qr, paper_serial=paper_serial, paper_reason=paper_reason, entered_at=entered_at,
        remote_request_id=remote_request_id, patient_document=patient_document,
        allergy_override=allergy_override)


class PrescriptionCancelled(TypedDict):
    prescription_id: str
    reason: str


def prescription_cancelled(*, prescription_id: str, reason: str) -> PrescriptionCancelled:
    return {"prescription_id": prescription_id, "reason": reason}


class MedicationDispensed(TypedDict):
    dispense_id: str
    prescription_id: str
    item_no: int
    quantity: int
    product: str
    batch: str
    expiry: str
    dispensed_at: str
    facility_id: str
    mode: str
    fill_number: NotRequired[int]
    pharmacist: NotRequired[str]
    claim_id: NotRequired[str]


def medication_dispensed(*, dispense_id: str, prescription_id: str, item_no: int,
                         quantity: int, product: str, batch: str, expiry: str,
                         dispensed_at: str, facility_id: str, mode: str,
                         fill_number: int | None = None, pharmacist: str | None = None,
                         claim_id: str | None = None) -> MedicationDispensed:
    """`mode` is "online_claimed" (with the hub's `claim_id`) or "offline"."""
    return _with_optional(
        {"dispense_id": dispense_id, "prescription_id": prescription_id, "item_no": item_no,
         "quantity": quantity, "product": product, "batch": batch, "expiry": expiry,
         "dispensed_at": dispensed_at, "facility_id": facility_id, "mode": mode},
        fill_number=fill_number, pharmacist=pharmacist, claim_id=claim_id)


class AllergyRecorded(TypedDict):
    allergy_id: str
    patient_id: str
    kind: str
    substance_type: str
    substance: str
    reaction: str
    recorded_at: str
    severity: NotRequired[str]
    practitioner_id: NotRequired[str]


def allergy_recorded(*, allergy_id: str, patient_id: str, kind: str, substance_type: str,
                     substance: str, reaction: str, recorded_at: str,
                     severity: str | None = None,
                     practitioner_id: str | None = None) -> AllergyRecorded:
    """`substance_type` "inn" names one drug, "atc" an ATC class (J01C: penicillins)."""
    return _with_optional(
        {"allergy_id": allergy_id, "patient_id": patient_id, "kind": kind,
         "substance_type": substance_type, "substance": substance, "reaction": reaction,
         "recorded_at": recorded_at},
        severity=severity, practitioner_id=practitioner_id)


# -- made by the hub, read by the nodes ---------------------------------------------------

class ConflictRaised(TypedDict):
    conflict_id: str
    kind: str
    subject_id: str
    event_ids: list[str]
    facility_ids: list[str]
    details: dict[str, Any]


def conflict_raised(*, conflict_id: str, kind: str, subject_id: str, event_ids: list[str],
                    facility_ids: list[str], details: dict[str, Any]) -> ConflictRaised:
    """`kind` is one of sync_protocol.conflicts.KINDS."""
    return {"conflict_id": conflict_id, "kind": kind, "subject_id": subject_id,
            "event_ids": event_ids, "facility_ids": facility_ids, "details": details}


class ConflictStateChanged(TypedDict):
    conflict_id: str
    state: str
    by: str
    note: str


def conflict_state_changed(*, conflict_id: str, state: str, by: str,
                           note: str) -> ConflictStateChanged:
    """`state` is one of sync_protocol.conflicts.REVIEW_STATES."""
    return {"conflict_id": conflict_id, "state": state, "by": by, "note": note}


class ClaimedItem(TypedDict):
    item_no: int
    quantity: int


class PrescriptionClaimed(TypedDict):
    claim_id: str
    prescription_id: str
    facility_id: str
    items: list[ClaimedItem]
    granted_at: str
    expires_at: str
    facility_name: NotRequired[str]


def prescription_claimed(*, claim_id: str, prescription_id: str, facility_id: str,
                         items: list[ClaimedItem], granted_at: str, expires_at: str,
                         facility_name: str | None = None) -> PrescriptionClaimed:
    return _with_optional(
        {"claim_id": claim_id, "prescription_id": prescription_id, "facility_id": facility_id,
         "items": items, "granted_at": granted_at, "expires_at": expires_at},
        facility_name=facility_name)
