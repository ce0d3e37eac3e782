"""Odd records still give valid FHIR R4 (hypothesis): a patient without phone or without
PINFL, cancelled, paper, partly, fully and over-dispensed prescriptions of several items,
text and numeric lab values, visits with no diagnosis. Each example adds records to one
seeded hub (SQLite) and reads them back through the API."""

from datetime import date

import pytest
from helpers.fhir import auth, get_token, make_client, validate
from helpers.hub import SimNode, body_of, instant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central_hub.fhir import systems
from central_hub.web.app import create_app
from sync_protocol.identifiers import make_pinfl, new_ulid

item = st.fixed_dictionaries({
    "quantity": st.integers(1, 100), "repeats": st.integers(0, 3),
    "dispensed": st.lists(st.integers(1, 120), max_size=3),
    "dosage": st.one_of(st.none(), st.text("abc 123x", min_size=1, max_size=20)),
    "unit": st.sampled_from([None, "tablet", "ml"]),
    "atc": st.sampled_from([None, "J01CA04", "A10BA02"]),
})
record = st.fixed_dictionaries({
    "pinfl": st.booleans(), "document": st.booleans(), "phone_removed": st.booleans(),
    "name": st.sampled_from(["Rahimov", "Rahimov Bobur", "Rahimova Dilnoza Ali qizi"]),
    "sex": st.sampled_from(["male", "female"]),
    "paper": st.booleans(), "cancelled": st.booleans(), "chronic": st.booleans(),
    "items": st.lists(item, min_size=1, max_size=3),
    "lab": st.sampled_from(["5.4", "12", "manfiy", "1,5", "<0.1"]),
    "flag": st.sampled_from([None, "normal", "low", "high", "abnormal"]),
    "diagnoses": st.lists(st.sampled_from(["J06.9", "I10", "E11.9", "K29"]), max_size=3,
                          unique=True),
})


@pytest.fixture
def hub(world, tmp_path):
    app = create_app({"TESTING": True, "DATABASE": f"sqlite:///{tmp_path / 'hub.db'}",
                      "FHIR_EXPORT_DIR": str(tmp_path / "exports")})
    hub_state = app.extensions["dmed_hub"]
    hub_state.trust.import_list(world.fresh_trust_list(), accept_roots=True)
    http = app.test_client()
    clinic = SimNode(world.pki.clinic, http)
    pharmacy = SimNode(world.pki.pharmacy, http)
    clinic.register_facility()
    pharmacy.register_facility()
    clinic.doctor = clinic.register_practitioner()
    push(clinic, 0)
    push(pharmacy, 0)
    client = make_client(hub_state.storage, "odd-cases")
    token = get_token(http, client)
    yield http, clinic, pharmacy, token
    hub_state.storage.close()


def push(node: SimNode, since: int) -> None:
    results = body_of(node.push(node.log[since:]))["results"]
    assert {r["status"] for r in results} == {"accepted"}, results


def read(http, token, path):
    response = http.get(f"/fhir/r4/{path}", headers=auth(token))
    assert response.status_code == 200, (path, response.get_json())
    return validate(response.get_json())


@settings(max_examples=30, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=record)
def test_odd_records_map_to_valid_fhir(hub, case):
    http, clinic, pharmacy, token = hub
    start_clinic, start_pharmacy = len(clinic.log), len(pharmacy.log)
    patient, pinfl = new_ulid(), make_pinfl(date(1970, 5, 17), case["sex"])
    registration = {"patient_id": patient, "med_id": f"MED-{patient[-8:]}",
                    "full_name": case["name"], "birth_date": "1970-05-17", "sex": case["sex"],
                    "phone": "+998901234567", "facility_id": clinic.facility_id}
    if case["pinfl"] or not case["document"]:
        registration["pinfl"] = pinfl
    if case["document"]:
        registration["document"] = "AC7654321"
    clinic.emit("PatientRegistered", registration)
    if case["phone_removed"]:
        clinic.change_patient(patient, "phone", None)
    rx = new_ulid()
    items = [{"item_no": n, "inn": "Amoxicillin", "form": "capsule", "strength": "500 mg",
              "quantity": i["quantity"], "repeats": i["repeats"], "min_days_between_fills": 0,
              **{k: i[k] for k in ("dosage", "unit", "atc") if i[k]}}
             for n, i in enumerate(case["items"], start=1)]
    issued = {"prescription_id": rx, "number": f"RX-{rx[-6:]}", "kind": "e",
              "patient_id": patient, "pinfl": pinfl, "facility_id": clinic.facility_id,
              "practitioner_id": clinic.doctor, "issued_at": instant(-1),
              "not_before": instant(-1), "expires_at": instant(30), "chronic": case["chronic"],
              "items": items}
    if case["paper"]:
        issued.update(kind="paper", paper_serial=f"TAS-{rx[-7:]}", paper_reason="emergency",
                      entered_at=instant())
    clinic.emit("PrescriptionIssued", issued)
    if case["cancelled"]:
        clinic.cancel_prescription(rx)
    visit = new_ulid()
    clinic.emit("VisitRecorded", {
        "visit_id": visit, "patient_id": patient, "practitioner_id": clinic.doctor,
        "facility_id": clinic.facility_id, "occurred_at": instant(),
        "diagnoses": [{"code": c, "primary": n == 0} for n, c in enumerate(case["diagnoses"])]})
    lab = clinic.emit("LabResultRecorded", {
        "result_id": new_ulid(), "patient_id": patient, "test": "Glucose", "value": case["lab"],
        "observed_at": instant(), **({"flag": case["flag"]} if case["flag"] else {})})["id"]
    push(clinic, start_clinic)
    dispenses = {}
    for n, i in enumerate(case["items"], start=1):
        for quantity in i["dispensed"]:
            dispenses[pharmacy.emit("MedicationDispensed", {
                "dispense_id": new_ulid(), "prescription_id": rx, "item_no": n,
                "quantity": quantity, "product": "Amoksitsillin 500", "batch": "B-1",
                "expiry": "2028-01-31", "dispensed_at": instant(), "mode": "offline",
                "facility_id": pharmacy.facility_id})["id"]] = (n, quantity)
    if dispenses:
        push(pharmacy, start_pharmacy)

    found = read(http, token, f"Patient/{patient}")
    assert ("telecom" in found) is not case["phone_removed"]
    assert ({i["system"] for i in found["identifier"]} >= {systems.PINFL}) is (
        "pinfl" in registration)
    for n, i in enumerate(case["items"], start=1):
        request = read(http, token, f"MedicationRequest/{rx}-{n}")
        handed = sum(i["dispensed"])
        expected = ("cancelled" if case["cancelled"] else "completed"
                    if handed >= i["quantity"] * (i["repeats"] + 1) else "active")
        assert request["status"] == expected
        medium = [e["valueCode"] for e in request["extension"] if e["url"] == systems.EXT_MEDIUM]
        assert medium == ["paper" if case["paper"] else "electronic"]
        assert len([e for e in request["extension"] if e["url"] == systems.EXT_DISPENSED_AS]) \
            == len(i["dispensed"])
    for event_id, (n, quantity) in dispenses.items():
        dispense = read(http, token, f"MedicationDispense/{event_id}")
        assert dispense["quantity"]["value"] == quantity
        assert dispense["authorizingPrescription"][0]["reference"] == \
            f"MedicationRequest/{rx}-{n}"
        assert dispense["subject"]["reference"] == f"Patient/{patient}"
    encounter = read(http, token, f"Encounter/{visit}")
    assert len(encounter.get("diagnosis", [])) == len(case["diagnoses"])
    for n in range(1, len(case["diagnoses"]) + 1):
        read(http, token, f"Condition/{visit}-{n}")
    observation = read(http, token, f"Observation/{lab}")
    assert ("valueQuantity" in observation) is (case["lab"] in ("5.4", "12", "1,5"))
    trail = http.get(f"/fhir/r4/Provenance?target=MedicationRequest/{rx}-1",
                     headers=auth(token)).get_json()
    assert len(trail["entry"]) == 1 + case["cancelled"]
    for entry in trail["entry"]:
        validate(entry["resource"])
