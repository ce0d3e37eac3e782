"""FHIR R4 from the hub: every resource validates, search and paging, strict parameters
(400, never 500), SMART backend-services access with scopes and regions, audit of reads.
On both backends."""

from datetime import UTC, datetime

import pytest
from helpers.fhir import auth, get_token, make_client, validate
from helpers.hub import SimNode, body_of, instant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central_hub.fhir import systems
from central_hub.web.app import create_app
from sync_protocol.identifiers import new_ulid

TYPES = ("Patient", "Practitioner", "Organization", "Location", "Appointment", "Encounter",
         "Condition", "Observation", "MedicationRequest", "MedicationDispense",
         "AllergyIntolerance", "Provenance")


@pytest.fixture
def hub_app(storage, world, tmp_path):
    app = create_app({"TESTING": True, "FHIR_EXPORT_DIR": str(tmp_path / "exports")},
                     storage=storage)
    app.extensions["dmed_hub"].trust.import_list(world.fresh_trust_list(), accept_roots=True)
    yield app
    app.extensions["dmed_fhir"].wait()


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


@pytest.fixture
def seeded(hub_app, nodes):
    ids = seed(nodes)
    storage = hub_app.extensions["dmed_hub"].storage
    http = hub_app.test_client()
    everyone = make_client(storage, "national-registry")
    get_token(http, everyone)
    return http, storage, everyone, ids


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


def ext(resource, url):
    return [e for e in resource.get("extension", []) if e["url"] == url]


def test_every_resource_of_a_seeded_hub_validates_and_reads_back(seeded):
    http, _, client, ids = seeded
    everything = {t: fetch_all(http, client.token, t, "_count=2") for t in TYPES}
    assert all(everything[t] for t in TYPES), {t: len(v) for t, v in everything.items()}
    for resource_type, resources in everything.items():
        assert len(by_id(resources)) == len(resources), f"{resource_type}: an id twice"
        for resource in resources[:3]:
            response = http.get(f"/fhir/r4/{resource_type}/{resource['id']}",
                                headers=auth(client.token))
            assert response.status_code == 200, response.get_json()
            assert validate(response.get_json()) == resource

    patients = by_id(everything["Patient"])
    assert {"system": systems.PINFL, "value": ids["pinfl"], "use": "official"} in \
        patients[ids["patient"]]["identifier"]
    odd = patients[ids["no_phone"]]
    assert "telecom" not in odd and odd["gender"] == "female"
    assert [i["system"] for i in odd["identifier"]] == [systems.DOCUMENT, systems.MED_ID]

    requests = by_id(everything["MedicationRequest"])
    rx = requests[f"{ids['rx']}-1"]
    assert rx["status"] == "completed"  # all 20 handed over
    assert rx["subject"] == {"reference": f"Patient/{ids['patient']}"}
    assert ext(rx, systems.EXT_SIGNING_NODE)[0]["valueIdentifier"]["value"] == ids["clinic_node"]
    assert ext(rx, systems.EXT_DISPENSED_AS) == [{"url": systems.EXT_DISPENSED_AS,
                                                 "valueReference": {"reference":
                                                 f"MedicationDispense/{ids['dispense_event']}"}}]
    cancelled = requests[f"{ids['rx_cancelled']}-1"]
    assert cancelled["status"] == "cancelled" and cancelled["statusReason"]["text"] == "allergy"
    paper = requests[f"{ids['rx_paper']}-1"]
    assert ext(paper, systems.EXT_MEDIUM)[0]["valueCode"] == "paper"
    assert ext(paper, systems.EXT_PAPER_REASON)[0]["valueCode"] == "outage"
    assert paper["medicationCodeableConcept"]["coding"][0] == {
        "system": systems.ATC, "code": "A10BA02", "display": "Metformin"}
    assert paper["dispenseRequest"]["numberOfRepeatsAllowed"] == 2
    assert paper["courseOfTherapyType"]["coding"][0]["code"] == "continuous"
    assert paper["status"] == "active"  # 30 of 60 x 3 handed over: partly dispensed

    dispenses = by_id(everything["MedicationDispense"])
    partial = dispenses[ids["sam_dispense_event"]]
    assert partial["quantity"] == {"value": 30, "unit": "tablet"}
    assert partial["authorizingPrescription"] == [
        {"reference": f"MedicationRequest/{ids['rx_paper']}-1"}]
    assert partial["contained"][0]["batch"] == {"lotNumber": "M-9",
                                                "expirationDate": "2028-05-31"}
    assert ext(partial, systems.EXT_DISPENSE_MODE)[0]["valueCode"] == "online_claimed"
    assert ext(dispenses[ids["dispense_event"]], systems.EXT_DISPENSE_MODE)[0]["valueCode"] \
        == "offline"

    conditions = by_id(everything["Condition"])
    assert conditions[f"{ids['visit']}-1"]["code"]["coding"][0]["code"] == "J06.9"
    encounter = by_id(everything["Encounter"])[ids["visit"]]
    assert [d["condition"]["reference"] for d in encounter["diagnosis"]] == [
        f"Condition/{ids['visit']}-1", f"Condition/{ids['visit']}-2"]
    observations = by_id(everything["Observation"])
    assert observations[ids["lab"]]["valueQuantity"] == {"value": 5.4, "unit": "mmol/L"}
    assert observations[ids["lab_text"]]["valueString"] == "manfiy"
    appointment = by_id(everything["Appointment"])[ids["appointment"]]
    assert appointment["status"] == "booked" and appointment["end"] > appointment["start"]

    provenance = by_id(everything["Provenance"])[ids["dispense_event"]]
    assert provenance["target"] == [{"reference": f"MedicationDispense/{ids['dispense_event']}"}]
    assert provenance["agent"][0]["who"]["identifier"]["value"] == ids["pharmacy_node"]
    assert ext(provenance, systems.EXT_EVENT_SEQUENCE)[0]["valueInteger"] >= 1
    assert len(ext(provenance, systems.EXT_EVENT_HASH)[0]["valueString"]) == 64


def test_search_parameters_find_what_they_say(seeded):
    http, _, client, ids = seeded
    token = client.token
    found = fetch_all(http, token, "Patient", f"identifier={systems.PINFL}|{ids['pinfl']}")
    assert [p["id"] for p in found] == [ids["patient"]]
    found = fetch_all(http, token, "Patient", "identifier=AB1234567")
    assert [p["id"] for p in found] == [ids["no_phone"]]
    assert fetch_all(http, token, "Patient", f"identifier={systems.DOCUMENT}|AA0000000") == []

    mine = fetch_all(http, token, "MedicationRequest", f"patient=Patient/{ids['patient']}")
    assert len(mine) == 3
    found = fetch_all(http, token, "MedicationRequest",
                      f"patient={ids['patient']}&status=cancelled")
    assert [r["id"] for r in found] == [f"{ids['rx_cancelled']}-1"]
    today = datetime.now(UTC).date()
    found = fetch_all(http, token, "MedicationRequest", f"authoredon=lt{today}")
    assert [r["id"] for r in found] == [f"{ids['rx_paper']}-1"]
    found = fetch_all(http, token, "MedicationDispense",
                      f"patient={ids['patient']}&status=completed&whenhandedover=ge{today}")
    assert {r["id"] for r in found} == {ids["dispense_event"], ids["sam_dispense_event"]}
    found = fetch_all(http, token, "MedicationDispense",
                      f"prescription=MedicationRequest/{ids['rx_paper']}-1")
    assert [r["id"] for r in found] == [ids["sam_dispense_event"]]

    found = fetch_all(http, token, "Appointment", f"practitioner={ids['doctor']}&location="
                      f"Location/{ids['clinic']}&date=ge{today}")
    assert [a["id"] for a in found] == [ids["appointment"]]
    assert fetch_all(http, token, "Appointment", f"date=lt{today}") == []

    trail = fetch_all(http, token, "Provenance",
                      f"target=MedicationRequest/{ids['rx_cancelled']}-1")
    kinds = sorted(ext(p, systems.EXT_EVENT_TYPE)[0]["valueCode"] for p in trail)
    assert kinds == ["PrescriptionCancelled", "PrescriptionIssued"]

    response = http.get("/fhir/r4/Provenance?_count=3", headers=auth(token))
    bundle = response.get_json()
    assert len(bundle["entry"]) == 3
    assert [link["relation"] for link in bundle["link"]] == ["self", "next"]


BAD_QUERIES = [
    "Patient?birthdate=1990", "Patient?identifier=", "Patient?identifier=urn:x|1",
    "Patient?_count=0", "Patient?_count=abc", "Patient?_count=100000", "Patient?_offset=-1",
    "Patient?_id=not%20an%20id", "MedicationRequest?status=bogus",
    "MedicationRequest?authoredon=yesterday", "MedicationRequest?authoredon=ge2026-13-01",
    "MedicationRequest?patient=Practitioner/abc", "MedicationRequest?date=2026-01-01T10:00",
    "Appointment?date=2026-02-30", "Provenance?target=Nothing/1", "Patient?_format=xml",
    "Patient?identifier=" + "9" * 300, "Patient?_sort=name", "Patient?_id=a%0Bb",
    "Patient?na%0Cme=x",
]


def test_bad_search_parameters_answer_400_operation_outcome(seeded):
    """One seeded hub per backend for all of them (seeding is the slow part)."""
    http, _, client, _ = seeded
    for query in BAD_QUERIES:
        response = http.get(f"/fhir/r4/{query}", headers=auth(client.token))
        assert response.status_code == 400, (query, response.get_json())
        outcome = validate(response.get_json())
        assert outcome["resourceType"] == "OperationOutcome", query
        assert outcome["issue"][0]["severity"] == "error", query


def test_unknown_type_or_id_answers_404_operation_outcome(seeded):
    http, _, client, _ = seeded
    for path in ("Bogus", "Patient/01ARZ3NDEKTSV4RRFFQ69G5FAV", "Patient/1/_history",
                 "MedicationRequest/nodash", "MedicationRequest/a-" + "9" * 40,
                 "Condition/a-99999999999999999999"):
        response = http.get(f"/fhir/r4/{path}", headers=auth(client.token))
        assert response.status_code == 404, path
        assert validate(response.get_json())["issue"][0]["code"] == "not-found"
    huge = http.get("/fhir/r4/MedicationDispense?prescription=MedicationRequest/a-" + "9" * 30,
                    headers=auth(client.token))
    assert huge.status_code == 200 and "entry" not in huge.get_json()
    response = http.post("/fhir/r4/Patient", json={"resourceType": "Patient"},
                         headers=auth(client.token))
    assert response.status_code == 404  # read-only: nothing is created


def test_metadata_says_what_is_supported(hub_app):
    response = hub_app.test_client().get("/fhir/r4/metadata")
    statement = validate(response.get_json())
    assert statement["fhirVersion"] == "4.0.1" and statement["format"] == ["json"]
    served = {r["type"]: {p["name"] for p in r["searchParam"]}
              for r in statement["rest"][0]["resource"]}
    assert set(served) == set(TYPES)
    assert {"identifier", "_count"} <= served["Patient"]
    assert {"patient", "status", "authoredon", "date"} <= served["MedicationRequest"]
    assert {"date", "practitioner", "location"} <= served["Appointment"]
    smart = hub_app.test_client().get("/fhir/r4/.well-known/smart-configuration").get_json()
    assert smart["token_endpoint"] == "http://localhost/fhir/r4/auth/token"
    assert smart["token_endpoint_auth_signing_alg_values_supported"] == [
        "ES256", "ES384", "RS384"]


NAMES = ["_id", "_count", "_offset", "identifier", "patient", "status", "authoredon", "date",
         "whenhandedover", "prescription", "practitioner", "location", "target", "_format",
         "_sort", "name"]
VALUES = st.one_of(
    st.text(max_size=30), st.sampled_from(["ge2026-01-01", "lt2026-02-30", "Patient/x",
                                           "MedicationRequest/a-1", "a-b-c", "|", "||x",
                                           "0", "-1", "501", "eq", "ge", "active,bogus"]))


@pytest.mark.parametrize("storage_url", ["sqlite"], indirect=True)
@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resource_type=st.sampled_from([*TYPES, "Bogus"]),
       args=st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=4))
def test_no_search_answers_500(seeded, resource_type, args):
    http, _, client, _ = seeded
    response = http.get(f"/fhir/r4/{resource_type}", query_string=args,
                        headers=auth(client.token))
    assert response.status_code in (200, 400, 404), (args, response.get_json())
    body = validate(response.get_json())
    assert body["resourceType"] == ("Bundle" if response.status_code == 200
                                    else "OperationOutcome")
