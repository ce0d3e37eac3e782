"""Typed payload builders (sync_protocol.payloads): the same shapes the schemas define, and
the same dicts on the wire as before they existed."""

from __future__ import annotations

import inspect
from typing import get_type_hints

import pytest

from sync_protocol import event_names as ev
from sync_protocol import payloads
from sync_protocol.errors import PayloadInvalid
from sync_protocol.event_types import SCHEMAS, validate_payload

ULID_A, ULID_B, ULID_C = "01HZY0000000000000000000AA", "01HZY0000000000000000000BB", \
    "01HZY0000000000000000000CC"
BUILDERS = [
    (ev.PATIENT_REGISTERED, payloads.patient_registered, payloads.PatientRegistered),
    (ev.APPOINTMENT_BOOKED, payloads.appointment_booked, payloads.AppointmentBooked),
    (ev.APPOINTMENT_CANCELLED, payloads.appointment_cancelled, payloads.AppointmentCancelled),
    (ev.PRESCRIPTION_ISSUED, payloads.prescription_issued, payloads.PrescriptionIssued),
    (ev.PRESCRIPTION_CANCELLED, payloads.prescription_cancelled,
     payloads.PrescriptionCancelled),
    (ev.MEDICATION_DISPENSED, payloads.medication_dispensed, payloads.MedicationDispensed),
    (ev.ALLERGY_RECORDED, payloads.allergy_recorded, payloads.AllergyRecorded),
    (ev.CONFLICT_RAISED, payloads.conflict_raised, payloads.ConflictRaised),
    (ev.CONFLICT_STATE_CHANGED, payloads.conflict_state_changed,
     payloads.ConflictStateChanged),
    (ev.PRESCRIPTION_CLAIMED, payloads.prescription_claimed, payloads.PrescriptionClaimed),
]


def _object_schema(event_type: str) -> dict:
    schema = SCHEMAS[(event_type, 1)]
    return schema["allOf"][0] if "allOf" in schema else schema


@pytest.mark.parametrize("event_type, builder, typed", BUILDERS, ids=[b[0] for b in BUILDERS])
def test_builder_fields_are_the_schemas(event_type, builder, typed):
    schema = _object_schema(event_type)
    params = inspect.signature(builder).parameters.values()
    assert {p.name for p in params} == set(schema["properties"])
    assert {p.name for p in params if p.default is inspect.Parameter.empty} == set(
        schema["required"])
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    assert set(get_type_hints(typed)) == set(schema["properties"])
    assert typed.__required_keys__ == frozenset(schema["required"])


def test_item_fields_are_the_schemas():
    item = SCHEMAS[(ev.PRESCRIPTION_ISSUED, 1)]["properties"]["items"]["items"]
    params = inspect.signature(payloads.prescription_item).parameters.values()
    assert {p.name for p in params} == set(item["properties"])
    assert {p.name for p in params if p.default is inspect.Parameter.empty} == set(
        item["required"])


ITEM = {"item_no": 1, "inn": "Amoxicillin", "form": "capsule", "strength": "500 mg",
        "quantity": 20, "repeats": 0, "min_days_between_fills": 0, "dosage": "",
        "unit": "capsule", "atc": "J01CA04"}
# What the node put on the wire before the builders (frozen by hand): optional fields it
# had no value for are absent, never null.
GOLDEN = [
    (ev.PATIENT_REGISTERED, payloads.patient_registered(
        patient_id=ULID_A, med_id="MED-000000000A", full_name="Ali Valiyev",
        birth_date="1990-05-01", sex="male", facility_id=ULID_B, pinfl="31505901230015",
        phone=None),
     {"patient_id": ULID_A, "med_id": "MED-000000000A", "full_name": "Ali Valiyev",
      "birth_date": "1990-05-01", "sex": "male", "facility_id": ULID_B,
      "pinfl": "31505901230015"}),
    (ev.APPOINTMENT_CANCELLED, payloads.appointment_cancelled(appointment_id=ULID_A),
     {"appointment_id": ULID_A}),
    (ev.APPOINTMENT_CANCELLED, payloads.appointment_cancelled(appointment_id=ULID_A,
                                                              reason="ill"),
     {"appointment_id": ULID_A, "reason": "ill"}),
    (ev.PRESCRIPTION_ISSUED, payloads.prescription_issued(
        prescription_id=ULID_A, number="RX-1", kind="paper", patient_id=ULID_B,
        pinfl="31505901230015", facility_id=ULID_C, practitioner_id=ULID_C,
        issued_at="2026-12-01T05:00:00Z", not_before="2026-12-01T05:00:00Z",
        expires_at="2026-12-11T05:00:00Z", chronic=False,
        items=[payloads.prescription_item(**ITEM)], paper_serial="AA-17",
        paper_reason="outage", entered_at="2026-12-02T05:00:00Z", patient_document=None),
     {"prescription_id": ULID_A, "number": "RX-1", "kind": "paper", "patient_id": ULID_B,
      "pinfl": "31505901230015", "facility_id": ULID_C, "practitioner_id": ULID_C,
      "issued_at": "2026-12-01T05:00:00Z", "not_before": "2026-12-01T05:00:00Z",
      "expires_at": "2026-12-11T05:00:00Z", "chronic": False, "items": [ITEM],
      "paper_serial": "AA-17", "paper_reason": "outage", "entered_at": "2026-12-02T05:00:00Z"}),
    (ev.MEDICATION_DISPENSED, payloads.medication_dispensed(
        dispense_id=ULID_A, prescription_id=ULID_B, item_no=1, quantity=10,
        product="Amoksitsillin 500", batch="B-1", expiry="2030-01-31",
        dispensed_at="2026-12-01T06:00:00Z", facility_id=ULID_C, mode="offline",
        fill_number=1, pharmacist="Dilnoza", claim_id=None),
     {"dispense_id": ULID_A, "prescription_id": ULID_B, "item_no": 1, "quantity": 10,
      "product": "Amoksitsillin 500", "batch": "B-1", "expiry": "2030-01-31",
      "dispensed_at": "2026-12-01T06:00:00Z", "facility_id": ULID_C, "mode": "offline",
      "fill_number": 1, "pharmacist": "Dilnoza"}),
    (ev.ALLERGY_RECORDED, payloads.allergy_recorded(
        allergy_id=ULID_A, patient_id=ULID_B, kind="allergy", substance_type="atc",
        substance="J01C", reaction="rash", recorded_at="2026-12-01T05:00:00Z",
        severity="severe"),
     {"allergy_id": ULID_A, "patient_id": ULID_B, "kind": "allergy", "substance_type": "atc",
      "substance": "J01C", "reaction": "rash", "recorded_at": "2026-12-01T05:00:00Z",
      "severity": "severe"}),
    (ev.PRESCRIPTION_CLAIMED, payloads.prescription_claimed(
        claim_id=ULID_A, prescription_id=ULID_B, facility_id=ULID_C,
        items=[{"item_no": 1, "quantity": 5}], granted_at="2026-12-01T06:00:00Z",
        expires_at="2026-12-01T06:05:00Z", facility_name=None),
     {"claim_id": ULID_A, "prescription_id": ULID_B, "facility_id": ULID_C,
      "items": [{"item_no": 1, "quantity": 5}], "granted_at": "2026-12-01T06:00:00Z",
      "expires_at": "2026-12-01T06:05:00Z"}),
]


@pytest.mark.parametrize("event_type, built, expected", GOLDEN,
                         ids=[f"{g[0]}-{i}" for i, g in enumerate(GOLDEN)])
def test_builders_make_the_frozen_wire_shape(event_type, built, expected):
    assert built == expected
    validate_payload(event_type, 1, built)


def test_a_misspelt_field_fails_where_the_event_is_made():
    with pytest.raises(TypeError, match="reson"):
        payloads.appointment_cancelled(appointment_id=ULID_A, reson="ill")  # type: ignore


def test_the_schema_still_judges_values():
    built = payloads.appointment_booked(
        appointment_id=ULID_A, patient_id=ULID_B, practitioner_id=ULID_C, facility_id=ULID_C,
        starts_at="2026-12-01 05:00", channel="kiosk")
    with pytest.raises(PayloadInvalid, match="starts_at"):
        validate_payload(ev.APPOINTMENT_BOOKED, 1, built)
