"""FHIR AllergyIntolerance from the hub's allergy projection: mapping of INN and ATC-class
substances and of retractions, search by patient, scopes, Provenance and $export. On both
backends."""

from helpers.fhir import auth, get_token, make_client, validate
from helpers.fhir_hub import by_id, fetch_all, finished, kick_off, lines

from central_hub.fhir import systems


def status(resource, element):
    return resource[element]["coding"][0]["code"]


def test_allergies_map_validate_and_read_back(fhir_seeded):
    http, _, client, ids = fhir_seeded
    found = by_id(fetch_all(http, client.token, "AllergyIntolerance"))
    assert set(found) == {ids["allergy_inn"], ids["allergy_atc"], ids["allergy_retracted"],
                          ids["allergy_other"]}
    inn = found[ids["allergy_inn"]]
    assert inn["code"] == {"coding": [{"system": systems.ATC, "code": "J01CA04"}],
                           "text": "amoxicillin"}
    assert inn["type"] == "allergy" and inn["category"] == ["medication"]
    assert status(inn, "clinicalStatus") == "active"
    assert status(inn, "verificationStatus") == "confirmed"
    assert inn["reaction"] == [{"manifestation": [{"text": "toshma"}], "severity": "severe"}]
    assert inn["patient"] == {"reference": f"Patient/{ids['patient']}"}
    assert inn["recorder"] == {"reference": f"Practitioner/{ids['doctor']}"}
    assert inn["recordedDate"] and inn["meta"]["lastUpdated"]
    atc = found[ids["allergy_atc"]]
    assert atc["code"]["coding"] == [{"system": systems.ATC, "code": "J01C"}]
    assert "recorder" not in atc and "severity" not in atc["reaction"][0]
    retracted = found[ids["allergy_retracted"]]
    assert retracted["type"] == "intolerance"
    assert status(retracted, "clinicalStatus") == "inactive"
    assert "another patient" in retracted["note"][0]["text"]
    assert "coding" not in found[ids["allergy_other"]]["code"]  # not in the catalogue
    for allergy_id, expected in found.items():
        response = http.get(f"/fhir/r4/AllergyIntolerance/{allergy_id}",
                            headers=auth(client.token))
        assert response.status_code == 200
        assert validate(response.get_json()) == expected


def test_search_by_patient_returns_exactly_theirs(fhir_seeded):
    http, _, client, ids = fhir_seeded
    mine = fetch_all(http, client.token, "AllergyIntolerance", f"patient={ids['patient']}")
    assert {r["id"] for r in mine} == {ids["allergy_inn"], ids["allergy_atc"],
                                       ids["allergy_retracted"]}
    other = fetch_all(http, client.token, "AllergyIntolerance",
                      f"patient=Patient/{ids['no_phone']}&_count=1")
    assert [r["id"] for r in other] == [ids["allergy_other"]]


def test_provenance_stands_behind_each_allergy(fhir_seeded):
    http, _, client, ids = fhir_seeded
    behind = fetch_all(http, client.token, "Provenance",
                       f"target=AllergyIntolerance/{ids['allergy_retracted']}")
    assert len(behind) == 2
    assert all(p["target"] == [{"reference": f"AllergyIntolerance/{ids['allergy_retracted']}"}]
               for p in behind)


def test_scope_needed(fhir_seeded):
    http, storage, _, ids = fhir_seeded
    narrow = make_client(storage, "patients-only", scopes="system/Patient.read")
    token = get_token(http, narrow)
    assert http.get("/fhir/r4/AllergyIntolerance", headers=auth(token)).status_code == 403
    assert http.get(f"/fhir/r4/AllergyIntolerance/{ids['allergy_inn']}",
                    headers=auth(token)).status_code == 403
    allowed = make_client(storage, "allergies", scopes="system/AllergyIntolerance.read")
    token = get_token(http, allowed)
    assert http.get("/fhir/r4/AllergyIntolerance", headers=auth(token)).status_code == 200
    metadata = http.get("/fhir/r4/metadata").get_json()
    assert "AllergyIntolerance" in {r["type"] for r in metadata["rest"][0]["resource"]}


def test_export_includes_allergies(hub_app, fhir_seeded):
    http, _, client, ids = fhir_seeded
    response = kick_off(http, client.token, "?_type=AllergyIntolerance")
    assert response.status_code == 202
    manifest = finished(hub_app, http, client.token, response.headers["Content-Location"])
    (output,) = manifest["output"]
    exported = [validate(r) for r in lines(http, client.token, output["url"])]
    assert {r["id"] for r in exported} == {ids["allergy_inn"], ids["allergy_atc"],
                                           ids["allergy_retracted"], ids["allergy_other"]}


def test_region_least_knowledge_as_patient(fhir_seeded):
    http, storage, _, ids = fhir_seeded
    tashkent = get_token(http, make_client(storage, "tas-allergies", regions="TAS"))
    samarkand = get_token(http, make_client(storage, "sam-allergies", regions="SAM"))
    patients = {r["id"] for r in fetch_all(http, tashkent, "Patient")}
    assert ids["patient"] in patients
    assert len(fetch_all(http, tashkent, "AllergyIntolerance")) == 4
    assert fetch_all(http, samarkand, "AllergyIntolerance") == []
    assert http.get(f"/fhir/r4/AllergyIntolerance/{ids['allergy_inn']}",
                    headers=auth(samarkand)).status_code == 404
