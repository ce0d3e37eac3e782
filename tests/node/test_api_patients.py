"""The JSON API for registration, lookup, edits and the audited medical card."""

from datetime import date

import pytest
from helpers.node import snapshot

from sync_protocol.identifiers import make_pinfl, pinfl_check_digit

GOOD = make_pinfl(date(1990, 6, 15), "female", "261", "377")


def body(seeded, **changes):
    return {"full_name": "Saidova Kamola", "phone": "+998 90 765 43 21",
            "facility_id": seeded["facility_id"], "pinfl": GOOD, **changes}


def with_check(first13):
    return first13 + str(pinfl_check_digit(first13))


def test_register_creates_card_and_queues_sms(client, auth, seeded, store):
    response = client.post("/api/v1/patients", json=body(seeded), headers=auth("registrar"))
    assert response.status_code == 201, response.json
    patient_id = response.json["patient_id"]
    assert response.json["med_id"].startswith("MED-")
    row = store.one("SELECT * FROM patients WHERE patient_id = ?", (patient_id,))
    assert (row["pinfl"], row["phone"], row["birth_date"], row["sex"]) == (
        GOOD, "+998907654321", "1990-06-15", "female")
    sms = store.one("SELECT * FROM sms_outbox ORDER BY id DESC LIMIT 1")
    assert sms["phone"] == "+998907654321" and sms["sent_at"] is None


@pytest.mark.parametrize(("pinfl", "code"), [
    ("4150690261", "invalid_pinfl_length"),
    ("41506902613A7X", "invalid_pinfl_digits"),
    (with_check("8150690261377"), "invalid_pinfl_century"),
    (with_check("4310290261377"), "invalid_pinfl_birth_date"),
    (with_check("4150690000377"), "invalid_pinfl_district"),
    (with_check("4150690261000"), "invalid_pinfl_serial"),
    (GOOD[:13] + str((int(GOOD[13]) + 3) % 10), "invalid_pinfl_check_digit"),
])
def test_wrong_pinfl_is_refused_with_its_part_and_changes_nothing(client, auth, seeded, store,
                                                                  pinfl, code):
    headers = auth("registrar")
    before = snapshot(store)
    response = client.post("/api/v1/patients", json=body(seeded, pinfl=pinfl), headers=headers)
    assert response.status_code == 422
    error = response.json["error"]
    assert (error["code"], error["field"]) == (code, "pinfl")
    assert "PINFL" in error["message"]
    assert snapshot(store) == before


@pytest.mark.parametrize(("changes", "field", "status"), [
    ({"phone": "+7 495 123 45 67"}, "phone", 422),
    ({"phone": "hello"}, "phone", 422),
    ({"document": "12345"}, "document", 422),
    ({"full_name": "X"}, "full_name", 422),
    ({"facility_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "facility_id", 404),
    ({"unexpected": "field"}, "body", 422),
])
def test_bad_registration_fields_are_refused(client, auth, seeded, store, changes, field,
                                             status):
    headers = auth("registrar")
    before = snapshot(store)
    response = client.post("/api/v1/patients", json=body(seeded, **changes), headers=headers)
    assert response.status_code == status, response.json
    assert response.json["error"]["field"] == field
    assert snapshot(store) == before


def test_registering_the_same_pinfl_twice_is_a_conflict(client, auth, seeded):
    headers = auth("registrar")
    assert client.post("/api/v1/patients", json=body(seeded), headers=headers).status_code == 201
    again = client.post("/api/v1/patients", json=body(seeded, phone="+998901110000"),
                        headers=headers)
    assert again.status_code == 409
    assert again.json["error"]["field"] == "pinfl"


def test_registration_by_document_needs_birth_date_and_sex(client, auth, seeded):
    headers = auth("registrar")
    payload = body(seeded, document="AE1234500")
    del payload["pinfl"]
    missing = client.post("/api/v1/patients", json=payload, headers=headers)
    assert missing.status_code == 422 and missing.json["error"]["field"] == "birth_date"
    payload.update(birth_date="1970-01-02", sex="male")
    assert client.post("/api/v1/patients", json=payload, headers=headers).status_code == 201


def test_phone_confirmation_with_the_sms_code(client, auth, seeded, store, monkeypatch):
    from edge_node.services import patients
    monkeypatch.setattr(patients.secrets, "randbelow", lambda n: 424242)
    created = client.post("/api/v1/patients", json=body(seeded), headers=auth("registrar"))
    patient_id = created.json["patient_id"]
    assert "424242" in store.one("SELECT body FROM sms_outbox ORDER BY id DESC")["body"]
    url = f"/api/v1/patients/{patient_id}/phone/confirm"
    wrong = client.post(url, json={"code": "000000"}, headers=auth("registrar"))
    assert wrong.status_code == 422 and wrong.json["error"]["code"] == "code_wrong"
    assert client.post(url, json={"code": "424242"}, headers=auth("registrar")).status_code == 200
    assert store.one("SELECT phone_confirmed FROM patients WHERE patient_id = ?",
                     (patient_id,))["phone_confirmed"] == 1


def test_five_wrong_codes_void_the_code(client, auth, seeded, monkeypatch):
    from edge_node.services import patients
    monkeypatch.setattr(patients.secrets, "randbelow", lambda n: 123456)
    patient_id = client.post("/api/v1/patients", json=body(seeded),
                             headers=auth("registrar")).json["patient_id"]
    url = f"/api/v1/patients/{patient_id}/phone/confirm"
    for _ in range(patients.MAX_CODE_ATTEMPTS):
        client.post(url, json={"code": "999999"}, headers=auth("registrar"))
    blocked = client.post(url, json={"code": "123456"}, headers=auth("registrar"))
    assert blocked.status_code == 429


def test_find_by_pinfl_and_document(client, auth, seeded):
    patient = seeded["patients"][0]
    by_pinfl = client.get(f"/api/v1/patients?pinfl={patient['pinfl']}", headers=auth("registrar"))
    by_doc = client.get(f"/api/v1/patients?document={patient['document'].lower()}",
                        headers=auth("pharmacist"))
    assert by_pinfl.json["full_name"] == by_doc.json["full_name"] == patient["full_name"]
    missing = client.get(f"/api/v1/patients?pinfl={GOOD}", headers=auth("registrar"))
    assert missing.status_code == 404


def test_patch_changes_fields_one_event_each(client, auth, seeded, store):
    patient_id = seeded["patient_rows"][0]["patient_id"]
    before = len(store.events())
    response = client.patch(f"/api/v1/patients/{patient_id}",
                            json={"phone": "+998901234000", "full_name": "Rahimov Bobur A."},
                            headers=auth("registrar"))
    assert response.status_code == 200, response.json
    changed = store.events()[before:]
    assert sorted(e.payload["field"] for e in changed) == ["full_name", "phone"]
    assert response.json["phone_confirmed"] is False


def test_opening_a_card_is_audited(client, auth, seeded, store):
    patient_id = seeded["patient_rows"][0]["patient_id"]
    client.post("/api/v1/visits", json={"patient_id": patient_id,
                                        "diagnoses": [{"code": "I10"}]}, headers=auth("doctor"))
    response = client.get(f"/api/v1/patients/{patient_id}/card?reason=visit",
                          headers=auth("doctor"))
    assert response.status_code == 200
    assert response.json["visits"][0]["diagnoses"][0]["code"] == "I10"
    reads = store.query("SELECT * FROM card_reads WHERE patient_id = ?", (patient_id,))
    assert len(reads) == 1
    assert (reads[0]["role"], reads[0]["reason"]) == ("doctor", "visit")
    trail = client.get(f"/api/v1/patients/{patient_id}/card-reads", headers=auth("admin"))
    assert trail.json["reads"][0]["reason"] == "visit"


def test_card_needs_a_reason(client, auth, seeded, store):
    patient_id = seeded["patient_rows"][0]["patient_id"]
    response = client.get(f"/api/v1/patients/{patient_id}/card", headers=auth("doctor"))
    assert response.status_code == 422 and response.json["error"]["field"] == "reason"
    assert store.query("SELECT * FROM card_reads") == []


@pytest.mark.parametrize("role", ["pharmacist", "registrar", "admin"])
def test_only_doctors_read_diagnoses(client, auth, seeded, store, role):
    patient_id = seeded["patient_rows"][0]["patient_id"]
    client.post("/api/v1/visits", json={"patient_id": patient_id,
                                        "diagnoses": [{"code": "E11.9"}]}, headers=auth("doctor"))
    response = client.get(f"/api/v1/patients/{patient_id}/card?reason=visit", headers=auth(role))
    assert response.status_code == 403
    assert "E11" not in response.get_data(as_text=True)
    assert store.query("SELECT * FROM card_reads") == []


def test_unknown_icd10_code_is_refused(client, auth, seeded, store):
    patient_id = seeded["patient_rows"][0]["patient_id"]
    headers = auth("doctor")
    before = snapshot(store)
    response = client.post("/api/v1/visits", json={"patient_id": patient_id,
                                                   "diagnoses": [{"code": "Q99.99"}]},
                           headers=headers)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "unknown_icd10"
    assert "Q99.99" in response.json["error"]["message"]
    assert snapshot(store) == before


def test_visit_order_and_lab_result_reach_the_card(client, auth, seeded):
    patient_id = seeded["patient_rows"][2]["patient_id"]
    doctor = auth("doctor")
    visit = client.post("/api/v1/visits", json={
        "patient_id": patient_id, "complaints": "Bosh og'rig'i",
        "diagnoses": [{"code": "i10", "primary": True}, {"code": "E119"}]}, headers=doctor)
    assert visit.status_code == 201, visit.json
    order = client.post(f"/api/v1/visits/{visit.json['visit_id']}/orders",
                        json={"kind": "lab", "text": "Qonda glyukoza"}, headers=doctor)
    lab = client.post("/api/v1/lab-results", json={
        "patient_id": patient_id, "order_id": order.json["order_id"], "test": "Glucose",
        "value": "7.8", "unit": "mmol/L", "reference_range": "3.9-5.5", "flag": "high"},
        headers=doctor)
    assert lab.status_code == 201, lab.json
    card = client.get(f"/api/v1/patients/{patient_id}/card?reason=follow_up",
                      headers=doctor).json
    assert [d["code"] for d in card["visits"][0]["diagnoses"]] == ["I10", "E11.9"]
    assert card["visits"][0]["orders"][0]["text"] == "Qonda glyukoza"
    assert card["lab_results"][0]["flag"] == "high"


@pytest.mark.parametrize(("language", "expected"), [("uz", "JShShIR"), ("ru", "ПИНФЛ"),
                                                     ("en", "PINFL")])
def test_errors_speak_the_requested_language(client, auth, seeded, language, expected):
    response = client.post("/api/v1/patients", json=body(seeded, pinfl="123"),
                           headers={**auth("registrar"), "Accept-Language": language})
    assert expected in response.json["error"]["message"]


def test_uzbek_is_the_default_language(client, auth, seeded):
    del client.environ_base["HTTP_ACCEPT_LANGUAGE"]
    response = client.post("/api/v1/patients", json=body(seeded, pinfl="123"),
                           headers=auth("registrar"))
    assert "JShShIR" in response.json["error"]["message"]
