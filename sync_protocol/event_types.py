"""Every event type and the JSON Schema of its payload, validated on write and on receipt.

A type's schema version only ever grows; an old version stays here as long as any node in the
field may still send it.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

import fastjsonschema

from . import conflicts
from .errors import PayloadInvalid, UnknownEventType
from .event_names import (
    ALLERGY_RECORDED,
    ALLERGY_RETRACTED,
    APPOINTMENT_BOOKED,
    APPOINTMENT_CANCELLED,
    APPOINTMENT_CHECKED_IN,
    APPOINTMENT_COMPLETED,
    APPOINTMENT_NO_SHOW,
    APPOINTMENT_RESCHEDULED,
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
    PRESCRIPTION_CLAIMED,
    PRESCRIPTION_ISSUED,
    REMOTE_PRESCRIPTION_DECIDED,
    REMOTE_PRESCRIPTION_REQUESTED,
    SLOTS_PUBLISHED,
    VISIT_RECORDED,
)

log = logging.getLogger(__name__)

ULID = {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{26}$"}
PINFL = {"type": "string", "pattern": "^[1-6][0-9]{13}$"}
PHONE = {"type": "string", "pattern": r"^\+998[0-9]{9}$"}
DOCUMENT = {"type": "string", "pattern": "^[A-Z]{2}[0-9]{7}$"}
DATE = {"type": "string", "format": "date"}
# Instants are stored in UTC with a Z suffix, so they compare as strings and never carry a zone.
INSTANT = {"type": "string", "format": "date-time",
           "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"}
CODE = {"type": "string", "minLength": 1, "maxLength": 64}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
TEXT = {"type": "string", "maxLength": 4000}
ICD10 = {"type": "string", "pattern": r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$"}
CHANNEL = {"enum": ["kiosk", "registry", "web", "call_centre"]}
FACILITY_KIND = {"enum": ["clinic", "pharmacy"]}
SEX = {"enum": ["male", "female"]}
PATIENT_FIELDS = ["full_name", "phone", "document", "facility_id", "family_doctor_id"]
POSITIVE = {"type": "integer", "minimum": 1, "maximum": 100000}
COUNT = {"type": "integer", "minimum": 0, "maximum": 100}
# A week of slots for one doctor is a few hundred; a year's schedule must still fit one event.
MAX_SLOTS_PER_EVENT = 3000
PAPER_REASON = {"enum": ["outage", "emergency"]}
# Allergies and intolerances: to one INN or to an ATC class (level 2 to 5, e.g. J01C for
# penicillins, J01CA04 for amoxicillin). The reaction and reasons are short clinical notes.
MAX_CLINICAL_NOTE = 500
CLINICAL_NOTE = {"type": "string", "minLength": 1, "maxLength": MAX_CLINICAL_NOTE}
ATC_CLASS = {"type": "string", "pattern": r"^[A-Z][0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?$"}
ALLERGY_KIND = {"enum": ["allergy", "intolerance"]}
SEVERITY = {"enum": ["mild", "moderate", "severe"]}
MAX_OVERRIDDEN_ALLERGIES = 20
# Conflict classes of DESIGN.md section 5 (and a node identity clash, lesson 10).
CONFLICT_KINDS = list(conflicts.KINDS)


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": sorted(required),
        "additionalProperties": False,
    }


DIAGNOSIS = obj({"code": ICD10, "primary": {"type": "boolean"}}, {"description": TEXT})
PRESCRIPTION_ITEM = obj(
    {"item_no": {"type": "integer", "minimum": 1, "maximum": 5}, "inn": NAME, "form": NAME,
     "strength": NAME, "quantity": POSITIVE, "repeats": COUNT,
     "min_days_between_fills": {"type": "integer", "minimum": 0, "maximum": 90}},
    {"dosage": TEXT, "unit": CODE, "atc": CODE},
)

SCHEMAS: dict[tuple[str, int], dict[str, Any]] = {
    (FACILITY_REGISTERED, 1): obj(
        {"facility_id": ULID, "code": CODE, "name": NAME, "kind": FACILITY_KIND,
         "region": CODE},
        {"address": TEXT},
    ),
    (PRACTITIONER_REGISTERED, 1): obj(
        {"practitioner_id": ULID, "facility_id": ULID, "full_name": NAME, "specialty": CODE,
         "is_family_doctor": {"type": "boolean"}},
    ),
    (SLOTS_PUBLISHED, 1): obj(
        {"schedule_id": ULID, "practitioner_id": ULID, "facility_id": ULID,
         "slot_minutes": {"type": "integer", "minimum": 5, "maximum": 240},
         "starts": {"type": "array", "items": INSTANT, "maxItems": MAX_SLOTS_PER_EVENT,
                    "uniqueItems": True}},
    ),
    # allOf runs in order: a bad field is named before the "PINFL or document" rule.
    (PATIENT_REGISTERED, 1): {"allOf": [
        obj(
            {"patient_id": ULID, "med_id": CODE, "full_name": NAME, "birth_date": DATE,
             "sex": SEX, "facility_id": ULID},
            # The phone became optional (patients without one); old events all carry it.
            {"pinfl": PINFL, "document": DOCUMENT, "family_doctor_id": ULID, "phone": PHONE},
        ),
        {"anyOf": [{"required": ["pinfl"]}, {"required": ["document"]}]},
    ]},
    (PATIENT_FIELD_CHANGED, 1): obj(
        {"patient_id": ULID, "field": {"enum": PATIENT_FIELDS},
         "value": {"type": ["string", "null"], "maxLength": 200}},
        {"previous": {"type": ["string", "null"], "maxLength": 200}},
    ),
    (PATIENT_PHONE_CONFIRMED, 1): obj({"patient_id": ULID, "phone": PHONE}),
    (APPOINTMENT_BOOKED, 1): obj(
        {"appointment_id": ULID, "patient_id": ULID, "practitioner_id": ULID,
         "facility_id": ULID, "starts_at": INSTANT, "channel": CHANNEL},
    ),
    (APPOINTMENT_CANCELLED, 1): obj({"appointment_id": ULID}, {"reason": TEXT}),
    (APPOINTMENT_RESCHEDULED, 1): obj(
        {"appointment_id": ULID, "starts_at": INSTANT}, {"practitioner_id": ULID}),
    (APPOINTMENT_CHECKED_IN, 1): obj(
        {"appointment_id": ULID, "queue_number": {"type": "integer", "minimum": 1}}),
    (APPOINTMENT_COMPLETED, 1): obj({"appointment_id": ULID}),
    (APPOINTMENT_NO_SHOW, 1): obj({"appointment_id": ULID}),
    (VISIT_RECORDED, 1): obj(
        {"visit_id": ULID, "patient_id": ULID, "practitioner_id": ULID, "facility_id": ULID,
         "occurred_at": INSTANT,
         "diagnoses": {"type": "array", "items": DIAGNOSIS, "maxItems": 20}},
        {"appointment_id": ULID, "complaints": TEXT, "notes": TEXT},
    ),
    (ORDER_RECORDED, 1): obj(
        {"order_id": ULID, "visit_id": ULID, "patient_id": ULID,
         "kind": {"enum": ["lab", "imaging", "procedure", "referral", "advice"]},
         "text": {**TEXT, "minLength": 1}},
    ),
    (LAB_RESULT_RECORDED, 1): obj(
        {"result_id": ULID, "patient_id": ULID, "test": NAME,
         "value": {"type": "string", "minLength": 1, "maxLength": 200},
         "observed_at": INSTANT},
        {"order_id": ULID, "unit": CODE, "reference_range": CODE,
         "flag": {"enum": ["normal", "low", "high", "abnormal"]}},
    ),
    (PRESCRIPTION_ISSUED, 1): obj(
        {"prescription_id": ULID, "number": CODE, "kind": {"enum": ["e", "paper"]},
         "patient_id": ULID, "pinfl": PINFL, "facility_id": ULID, "practitioner_id": ULID,
         "issued_at": INSTANT, "not_before": INSTANT, "expires_at": INSTANT,
         "chronic": {"type": "boolean"},
         "items": {"type": "array", "items": PRESCRIPTION_ITEM, "minItems": 1, "maxItems": 5}},
        # Paper prescriptions are entered late: the serial from the pad, why paper was used,
        # and when it was entered (issued_at keeps the time written on the paper).
        {"qr": {"type": "string", "pattern": "^[0-9]+$", "maxLength": 7089},
         "paper_serial": CODE, "paper_reason": PAPER_REASON, "entered_at": INSTANT,
         "remote_request_id": ULID,
         # lets a pharmacy find the prescription by the ID card when there is no phone
         "patient_document": DOCUMENT,
         # the doctor prescribed despite the patient's recorded allergies: which, and why
         "allergy_override": obj(
             {"allergy_ids": {"type": "array", "items": ULID, "minItems": 1,
                              "maxItems": MAX_OVERRIDDEN_ALLERGIES},
              "reason": CLINICAL_NOTE})},
    ),
    (ALLERGY_RECORDED, 1): {"allOf": [
        obj({"allergy_id": ULID, "patient_id": ULID, "kind": ALLERGY_KIND,
             "substance_type": {"enum": ["inn", "atc"]}, "substance": NAME,
             "reaction": CLINICAL_NOTE, "recorded_at": INSTANT},
            {"severity": SEVERITY, "practitioner_id": ULID}),
        {"if": {"properties": {"substance_type": {"const": "atc"}}},
         "then": {"properties": {"substance": ATC_CLASS}}},
    ]},
    (ALLERGY_RETRACTED, 1): obj(
        {"allergy_id": ULID, "patient_id": ULID, "retracted_at": INSTANT,
         "reason": CLINICAL_NOTE}),
    (CHRONIC_CONDITION_SET, 1): obj(
        {"patient_id": ULID, "code": ICD10, "active": {"type": "boolean"}}),
    (PRESCRIPTION_CANCELLED, 1): obj(
        {"prescription_id": ULID, "reason": {**TEXT, "minLength": 1}}),
    (MEDICATION_DISPENSED, 1): obj(
        {"dispense_id": ULID, "prescription_id": ULID,
         "item_no": {"type": "integer", "minimum": 1, "maximum": 5}, "quantity": POSITIVE,
         "product": NAME, "batch": CODE, "expiry": DATE, "dispensed_at": INSTANT,
         "facility_id": ULID, "mode": {"enum": ["online_claimed", "offline"]}},
        {"fill_number": {"type": "integer", "minimum": 1}, "pharmacist": NAME,
         "claim_id": CODE},
    ),
    # Paper at the pharmacy: a dispense from the paper log, entered after the outage. It names
    # what the paper said (a pad serial or an e-prescription number) and reconciles at the hub.
    (PAPER_DISPENSE_RECORDED, 1): obj(
        {"dispense_id": ULID, "facility_id": ULID, "dispensed_at": INSTANT,
         "entered_at": INSTANT, "paper_reason": PAPER_REASON,
         "items": {"type": "array", "minItems": 1, "maxItems": 5, "items": obj(
             {"inn": NAME, "form": NAME, "strength": NAME, "quantity": POSITIVE,
              "product": NAME, "batch": CODE, "expiry": DATE})}},
        {"paper_serial": CODE, "prescription_number": CODE, "prescription_id": ULID,
         "patient_document": DOCUMENT, "pinfl": PINFL, "pharmacist": NAME},
    ),
    # Hub-origin events: pads allocated, conflicts and their review, remote requests.
    (PAPER_PAD_ALLOCATED, 1): obj(
        {"pad_id": ULID, "facility_id": ULID, "series": CODE,
         "first_serial": {"type": "integer", "minimum": 1},
         "last_serial": {"type": "integer", "minimum": 1}},
        {"allocated_by": NAME},
    ),
    (CONFLICT_RAISED, 1): obj(
        {"conflict_id": ULID, "kind": {"enum": CONFLICT_KINDS}, "subject_id": CODE,
         "event_ids": {"type": "array", "items": ULID, "minItems": 1, "maxItems": 50},
         "facility_ids": {"type": "array", "items": ULID, "maxItems": 10},
         "details": {"type": "object", "maxProperties": 30}},
    ),
    (CONFLICT_STATE_CHANGED, 1): obj(
        {"conflict_id": ULID, "state": {"enum": list(conflicts.REVIEW_STATES)}, "by": NAME,
         "note": {**TEXT, "minLength": 1}},
    ),
    (REMOTE_PRESCRIPTION_REQUESTED, 1): obj(
        {"request_id": ULID, "patient_id": ULID, "facility_id": ULID, "requested_by": NAME,
         "request_text": {**TEXT, "minLength": 1}},
        {"practitioner_id": ULID, "phone": PHONE},
    ),
    # The hub granted a pharmacy's claim on quantities of a prescription (online dispensing):
    # the region's other pharmacies learn of it by pull, so one offline afterwards still knows.
    (PRESCRIPTION_CLAIMED, 1): obj(
        {"claim_id": ULID, "prescription_id": ULID, "facility_id": ULID,
         "items": {"type": "array", "minItems": 1, "maxItems": 5, "items": obj(
             {"item_no": {"type": "integer", "minimum": 1, "maximum": 5},
              "quantity": POSITIVE})},
         "granted_at": INSTANT, "expires_at": INSTANT},
        {"facility_name": NAME},
    ),
    (REMOTE_PRESCRIPTION_DECIDED, 1): obj(
        {"request_id": ULID, "decision": {"enum": ["approved", "declined"]},
         "practitioner_id": ULID},
        {"prescription_id": ULID, "note": TEXT, "pickup_code": CODE},
    ),
    # A facility's details changed by its region: the region's signed record
    # (sync_protocol.facility_record), carried by the hub to the region's nodes.
    (FACILITY_DETAILS_CHANGED, 1): obj(
        {"facility_id": ULID, "revision": POSITIVE,
         "signed": {"type": "object", "maxProperties": 8}},
    ),
}

def _is_instant(value: str) -> bool:
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


# Compiled validators: the hub checks every event it ingests, and fastjsonschema's generated
# code is an order of magnitude faster than interpreting the schema each time.
_FORMATS = {"date-time": _is_instant, "date": _is_date}
_VALIDATORS = {key: fastjsonschema.compile(schema, formats=_FORMATS)
               for key, schema in SCHEMAS.items()}


def event_types() -> list[str]:
    return sorted({name for name, _ in SCHEMAS})


def latest_version(event_type: str) -> int:
    versions = [v for name, v in SCHEMAS if name == event_type]
    if not versions:
        raise UnknownEventType("Unknown event type %(type)s", field="type", type=event_type)
    return max(versions)


def validate_payload(event_type: str, version: int, payload: Any) -> None:
    """Raise UnknownEventType or PayloadInvalid (naming the first bad field) if it fails."""
    validator = _VALIDATORS.get((event_type, version))
    if validator is None:
        if not any(name == event_type for name, _ in SCHEMAS):
            raise UnknownEventType("Unknown event type %(type)s", field="type", type=event_type)
        raise UnknownEventType("Unknown version %(version)s of event type %(type)s",
                               field="version", type=event_type, version=version)
    try:
        validator(payload)
    except fastjsonschema.JsonSchemaValueException as error:
        where = ".".join(str(p) for p in (error.path or [])[1:]) or "payload"
        detail = str(error.message).removeprefix("data.").removeprefix("data ")
        if error.rule == "anyOf":  # only PatientRegistered has alternatives
            detail = "it needs a PINFL or an identity document"
        raise PayloadInvalid("Payload of %(type)s is invalid at %(where)s: %(detail)s",
                             field=where, type=event_type, where=where,
                             detail=detail[:200]) from None
