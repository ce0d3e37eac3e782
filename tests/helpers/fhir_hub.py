"""A hub seeded with one of everything its FHIR API serves, and reading it back: the
resource types, the seeding through signed pushes, paging through a search, bulk export's
kick-off, status and NDJSON files. The fixture `fhir_seeded` (tests/hub/conftest.py) is
built on it.

Imported by test modules, so it opts out of assertion rewriting (PYTEST_DONT_REWRITE).
"""

from __future__ import annotations

import json

from helpers.fhir import auth, validate
from helpers.hub import SimNode, body_of, instant
from sync_protocol.identifiers import new_ulid

TYPES = ("Patient", "Practitioner", "Organization", "Location", "Appointment", "Encounter",
         "Condition", "Observation", "MedicationRequest", "MedicationDispense",
         "AllergyIntolerance", "Provenance")


def push_all(*nodes: SimNode) -> None:
    for node in nodes:
        results = body_of(node.push())["results"]
        assert {r["status"] for r in results} <= {"accepted", "duplicate"}, results


def seed(nodes) -> dict:
    """A clinic with a doctor, slots, two patients (one with a document and no phone), a
    booking, a visit with two diagnoses, two lab results, an e-prescription dispensed in
    part at two pharmacies (one in region SAM), a cancelled one and a paper one."""
    clinic, pharmacy, sam = nodes["clinic"], nodes["pharmacy"], nodes["sam_pharmacy"]
    ids: dict = {"clinic_node": clinic.node_id, "pharmacy_node": pharmacy.node_id,
                 "clinic": clinic.register_facility(), "pharmacy": pharmacy.register_facility(),
                 "sam": sam.register_facility()}
    doctor = ids["doctor"] = clinic.register_practitioner()
    starts = [instant(1 + i / 96) for i in range(3)]
    clinic.emit("SlotsPublished", {"schedule_id": new_ulid(), "practitioner_id": doctor,
                                   "facility_id": ids["clinic"], "slot_minutes": 20,
                                   "starts": starts})
    patient = ids["patient"] = clinic.register_patient()
    ids["pinfl"] = clinic.log[-1]["payload"]["pinfl"]
    ids["no_phone"] = new_ulid()
    clinic.emit("PatientRegistered", {
        "patient_id": ids["no_phone"], "med_id": "MED-NOPHONE", "full_name": "Karimova Zuhra",
        "birth_date": "1950-07-02", "sex": "female", "phone": "+998901112233",
        "facility_id": ids["clinic"], "document": "AB1234567"})
    clinic.change_patient(ids["no_phone"], "phone", None)
    ids["appointment"] = clinic.emit("AppointmentBooked", {
        "appointment_id": new_ulid(), "patient_id": patient, "practitioner_id": doctor,
        "facility_id": ids["clinic"], "starts_at": starts[0], "channel": "kiosk",
    })["payload"]["appointment_id"]
    ids["visit"] = new_ulid()
    clinic.emit("VisitRecorded", {
        "visit_id": ids["visit"], "patient_id": patient, "practitioner_id": doctor,
        "facility_id": ids["clinic"], "occurred_at": instant(), "appointment_id":
        ids["appointment"], "complaints": "yo'tal", "diagnoses": [
            {"code": "J06.9", "primary": True, "description": "O'tkir respirator infeksiya"},
            {"code": "I10", "primary": False}]})
    ids["lab"] = clinic.emit("LabResultRecorded", {
        "result_id": new_ulid(), "patient_id": patient, "test": "Glucose", "value": "5.4",
        "unit": "mmol/L", "reference_range": "3.9-5.5", "flag": "normal",
        "observed_at": instant()})["id"]
    ids["lab_text"] = clinic.emit("LabResultRecorded", {
        "result_id": new_ulid(), "patient_id": patient, "test": "HIV", "value": "manfiy",
        "observed_at": instant()})["id"]
    ids["rx"] = clinic.prescribe(patient, doctor)
    ids["rx_cancelled"] = clinic.prescribe(patient, doctor)
    clinic.cancel_prescription(ids["rx_cancelled"])
    ids["rx_paper"] = new_ulid()
    clinic.emit("PrescriptionIssued", {
        "prescription_id": ids["rx_paper"], "number": "RX-PAPER", "kind": "paper",
        "patient_id": patient, "pinfl": ids["pinfl"], "facility_id": ids["clinic"],
        "practitioner_id": doctor, "issued_at": instant(-1), "not_before": instant(-1),
        "expires_at": instant(20), "chronic": True, "paper_serial": "TAS-0000123",
        "paper_reason": "outage", "entered_at": instant(),
        "items": [{"item_no": 1, "inn": "Metformin", "form": "tablet", "strength": "500 mg",
                   "quantity": 60, "repeats": 2, "min_days_between_fills": 25,
                   "dosage": "1 x 2", "unit": "tablet", "atc": "A10BA02"}]})
    seed_allergies(clinic, ids)
    push_all(clinic)
    ids["dispense"] = pharmacy.dispense(ids["rx"])
    ids["dispense_event"] = pharmacy.log[-1]["id"]
    push_all(pharmacy)
    sam.emit("MedicationDispensed", {
        "dispense_id": new_ulid(), "prescription_id": ids["rx_paper"], "item_no": 1,
        "quantity": 30, "product": "Metformin 500", "batch": "M-9", "expiry": "2028-05-31",
        "dispensed_at": instant(), "facility_id": ids["sam"], "mode": "online_claimed",
        "pharmacist": "Usmonov Akmal"})
    ids["sam_dispense_event"] = sam.log[-1]["id"]
    push_all(sam)
    return ids


def seed_allergies(clinic, ids) -> None:
    """An allergy to an INN (in the drug catalogue), one to an ATC class, a retracted
    intolerance, and one of the other patient's."""
    def record(patient, kind, substance_type, substance, **extra):
        allergy_id = new_ulid()
        clinic.emit("AllergyRecorded", {
            "allergy_id": allergy_id, "patient_id": patient, "kind": kind,
            "substance_type": substance_type, "substance": substance,
            "reaction": "toshma", "recorded_at": instant(), **extra})
        return allergy_id
    ids["allergy_inn"] = record(ids["patient"], "allergy", "inn", "amoxicillin",
                                severity="severe", practitioner_id=ids["doctor"])
    ids["allergy_atc"] = record(ids["patient"], "allergy", "atc", "J01C")
    ids["allergy_retracted"] = record(ids["patient"], "intolerance", "inn", "ibuprofen",
                                      severity="mild")
    clinic.emit("AllergyRetracted", {"allergy_id": ids["allergy_retracted"],
                                     "patient_id": ids["patient"], "retracted_at": instant(),
                                     "reason": "entered in error: another patient"})
    ids["allergy_other"] = record(ids["no_phone"], "allergy", "inn", "Unknownium")


def fetch_all(http, token, resource_type, query=""):
    """Every resource of a search, following next links; each page validated."""
    url = f"/fhir/r4/{resource_type}?{query}"
    found = []
    for _ in range(100):
        response = http.get(url, headers=auth(token))
        assert response.status_code == 200, response.get_json()
        assert response.content_type == "application/fhir+json"
        bundle = validate(response.get_json())
        found += [validate(e["resource"]) for e in bundle.get("entry", [])]
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            return found
        url = following[0].replace("http://localhost", "")
    raise AssertionError("paging never ended")


def by_id(resources):
    return {r["id"]: r for r in resources}


ASYNC = {"Prefer": "respond-async"}


def kick_off(http, token, query=""):
    return http.get(f"/fhir/r4/$export{query}", headers={**auth(token), **ASYNC})


def finished(app, http, token, location):
    app.extensions["dmed_fhir"].wait(60)
    response = http.get(location.replace("http://localhost", ""), headers=auth(token))
    assert response.status_code == 200, (response.status_code, response.data)
    return response.get_json()


def lines(http, token, url):
    with http.get(url.replace("http://localhost", ""), headers=auth(token)) as response:
        assert response.status_code == 200
        assert response.mimetype == "application/fhir+ndjson"
        return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
