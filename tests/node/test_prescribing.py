"""Prescribing by INN on a clinic node: rules, signature, event, cancellation, roles."""

import pytest
from helpers.node import AMLODIPINE, AMOXICILLIN, snapshot

from edge_node.errors import Conflict, Forbidden
from edge_node.prescribing_rules import PrescriptionRuleError
from edge_node.services import prescribing
from sync_protocol import qr
from sync_protocol.timeutil import from_instant


def issue(store, actor_for, creds, patient, items, **kw):
    return prescribing.issue_prescription(store, actor_for("doctor"), creds, patient_id=patient,
                                          items=items, **kw)


def test_prescription_is_signed_recorded_and_verifiable(store, actor_for, clinic_credentials,
                                                        pki, patient):
    result = issue(store, actor_for, clinic_credentials, patient, [AMOXICILLIN])
    assert result["qr"].isdigit()
    assert prescribing.is_valid_number(result["number"])
    event = store.events()[-1]
    assert event.type == "PrescriptionIssued" and event.payload["qr"] == result["qr"]
    verdict = qr.verify(result["qr"], pki.trust_list.nodes, now=from_instant(
        event.payload["issued_at"]), require_prescription=True)
    assert verdict.valid
    claims = verdict.prescription
    assert claims.prescription_id == result["prescription_id"]
    assert claims.pinfl == store.one("SELECT pinfl FROM patients WHERE patient_id = ?",
                                     (patient,))["pinfl"]
    assert [i.inn for i in claims.items] == ["amoxicillin"]
    row = store.one("SELECT * FROM prescriptions WHERE prescription_id = ?",
                    (result["prescription_id"],))
    assert row["status"] == "active" and row["kind"] == "e"


def test_no_name_and_no_diagnosis_on_the_code(store, actor_for, clinic_credentials, pki,
                                              patient):
    result = issue(store, actor_for, clinic_credentials, patient, [AMOXICILLIN])
    claims = qr.verify(result["qr"], pki.trust_list.nodes).claims
    flat = repr(claims)
    name = store.one("SELECT full_name FROM patients WHERE patient_id = ?", (patient,))
    assert name["full_name"].split()[0] not in flat


def test_antibiotic_validity_is_short_and_chronic_validity_capped(store, actor_for,
                                                                   clinic_credentials, patient):
    short = issue(store, actor_for, clinic_credentials, patient, [AMOXICILLIN])
    assert short["validity_days"] == 10
    plain = issue(store, actor_for, clinic_credentials, patient, [AMLODIPINE])
    prescribing.set_chronic_condition(store, actor_for("doctor"), patient, "I10")
    chronic = issue(store, actor_for, clinic_credentials, patient, [AMLODIPINE])
    assert plain["validity_days"] < chronic["validity_days"] == 90
    with pytest.raises(PrescriptionRuleError) as caught:
        issue(store, actor_for, clinic_credentials, patient, [AMLODIPINE], validity_days=120)
    assert caught.value.code == "validity_exceeds_maximum"


@pytest.mark.parametrize(("items", "code"), [
    ([{**AMOXICILLIN, "inn": "morphine", "form": "injection", "strength": "10 mg/ml"}],
     "narcotic_not_e_prescribable"),
    ([AMOXICILLIN] * 6, "too_many_items"),
    ([{**AMOXICILLIN, "quantity": 0}], "quantity_not_positive"),
    ([{**AMOXICILLIN, "inn": "unobtainium"}], "unknown_drug"),
])
def test_rule_violations_change_nothing(store, actor_for, clinic_credentials, patient, items,
                                        code):
    before = snapshot(store)
    with pytest.raises(PrescriptionRuleError) as caught:
        issue(store, actor_for, clinic_credentials, patient, items)
    assert caught.value.code == code
    assert snapshot(store) == before


def test_a_pharmacy_node_cannot_sign(store, actor_for, pharmacy_credentials, patient):
    with pytest.raises(Forbidden) as caught:
        issue(store, actor_for, pharmacy_credentials, patient, [AMOXICILLIN])
    assert caught.value.code == "no_signing_key"


@pytest.mark.parametrize("role", ["registrar", "pharmacist", "admin"])
def test_only_doctors_prescribe(client, auth, seeded, role):
    response = client.post("/api/v1/prescriptions", headers=auth(role), json={
        "patient_id": seeded["patient_rows"][0]["patient_id"], "items": [AMOXICILLIN]})
    assert response.status_code == 403


def test_api_prescribe_qr_image_and_cancel(client, auth, seeded):
    patient = seeded["patient_rows"][1]["patient_id"]
    created = client.post("/api/v1/prescriptions", headers=auth("doctor"),
                          json={"patient_id": patient, "items": [AMOXICILLIN, AMLODIPINE]})
    assert created.status_code == 201, created.json
    rx = created.json["prescription_id"]
    svg = client.get(f"/api/v1/prescriptions/{rx}/qr.svg", headers=auth("doctor"))
    assert svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    listed = client.get(f"/api/v1/patients/{patient}/prescriptions", headers=auth("pharmacist"))
    assert [i["inn"] for i in listed.json["prescriptions"][0]["items"]] == [
        "amoxicillin", "amlodipine"]
    other = client.post(f"/api/v1/prescriptions/{rx}/cancel", headers=auth("doctor2"),
                        json={"reason": "xato"})
    assert other.status_code == 403
    done = client.post(f"/api/v1/prescriptions/{rx}/cancel", headers=auth("doctor"),
                       json={"reason": "Allergiya"})
    assert done.status_code == 200
    again = client.post(f"/api/v1/prescriptions/{rx}/cancel", headers=auth("doctor"),
                        json={"reason": "Allergiya"})
    assert again.status_code == 409


def test_cancelled_twice_is_refused_by_the_service(store, actor_for, clinic_credentials,
                                                   patient):
    rx = issue(store, actor_for, clinic_credentials, patient, [AMOXICILLIN])["prescription_id"]
    prescribing.cancel_prescription(store, actor_for("doctor"), rx, "duplicate")
    with pytest.raises(Conflict):
        prescribing.cancel_prescription(store, actor_for("doctor"), rx, "duplicate")


def test_prescription_number_check_digit_catches_typos():
    number = prescribing.prescription_number("01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert prescribing.is_valid_number(number)
    digits = number.replace("-", "")
    swapped = digits[:5] + digits[6] + digits[5] + digits[7:]
    if swapped != digits:
        assert not prescribing.is_valid_number(swapped)
    assert not prescribing.is_valid_number(digits[:-1] + str((int(digits[-1]) + 1) % 10))
