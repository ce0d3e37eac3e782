"""FHIR R4 from the hub: every resource validates, search and paging, strict parameters
(400, never 500), SMART backend-services access with scopes and regions, audit of reads.
On both backends."""

from datetime import UTC, datetime

import pytest
from helpers.fhir import auth, validate
from helpers.fhir_hub import TYPES, by_id, fetch_all
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central_hub.fhir import systems


def ext(resource, url):
    return [e for e in resource.get("extension", []) if e["url"] == url]


def test_every_resource_of_a_seeded_hub_validates_and_reads_back(fhir_seeded):
    http, _, client, ids = fhir_seeded
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


def test_search_parameters_find_what_they_say(fhir_seeded):
    http, _, client, ids = fhir_seeded
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


def test_bad_search_parameters_answer_400_operation_outcome(fhir_seeded):
    """One fhir_seeded hub per backend for all of them (seeding is the slow part)."""
    http, _, client, _ = fhir_seeded
    for query in BAD_QUERIES:
        response = http.get(f"/fhir/r4/{query}", headers=auth(client.token))
        assert response.status_code == 400, (query, response.get_json())
        outcome = validate(response.get_json())
        assert outcome["resourceType"] == "OperationOutcome", query
        assert outcome["issue"][0]["severity"] == "error", query


def test_unknown_type_or_id_answers_404_operation_outcome(fhir_seeded):
    http, _, client, _ = fhir_seeded
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
def test_no_search_answers_500(fhir_seeded, resource_type, args):
    http, _, client, _ = fhir_seeded
    response = http.get(f"/fhir/r4/{resource_type}", query_string=args,
                        headers=auth(client.token))
    assert response.status_code in (200, 400, 404), (args, response.get_json())
    body = validate(response.get_json())
    assert body["resourceType"] == ("Bundle" if response.status_code == 200
                                    else "OperationOutcome")
