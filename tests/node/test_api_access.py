"""Sign-in, throttling, and the role matrix: each role may do its work and nothing else."""

import re
from datetime import timedelta

import pytest

from edge_node.errors import NotSignedIn
from edge_node.seed import DEMO_PIN
from edge_node.services import staff
from edge_node.web.endpoint import REGISTRY
from sync_protocol.timeutil import utc_now

ROLES = ("admin", "registrar", "doctor", "pharmacist")


def test_sign_in_returns_a_token_and_pins_are_hashed(client, seeded, store):
    response = client.post("/api/v1/auth/sign-in", json={"username": "doctor", "pin": "2222"})
    assert response.status_code == 200
    me = client.get("/api/v1/auth/me",
                    headers={"Authorization": f"Bearer {response.json['token']}"})
    assert me.json["role"] == "doctor"
    hashes = [r["pin_hash"] for r in store.query("SELECT pin_hash FROM staff")]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert not any(pin in h for h in hashes for pin in DEMO_PIN.values())


def test_wrong_pin_is_refused_and_throttled(client, seeded):
    for _ in range(staff.MAX_FAILURES):
        wrong = client.post("/api/v1/auth/sign-in", json={"username": "doctor", "pin": "0000"})
        assert wrong.status_code == 401
    right = client.post("/api/v1/auth/sign-in", json={"username": "doctor", "pin": "2222"})
    assert right.status_code == 429
    other = client.post("/api/v1/auth/sign-in", json={"username": "registrar", "pin": "1111"})
    assert other.status_code == 200


def test_throttle_expires_after_the_window(store, seeded):
    for _ in range(staff.MAX_FAILURES):
        with pytest.raises(NotSignedIn):
            staff.sign_in(store, "doctor", "0000")
    later = utc_now() + staff.FAILURE_WINDOW + timedelta(seconds=1)
    assert staff.sign_in(store, "doctor", "2222", now=later)["role"] == "doctor"


def test_sign_out_and_expiry_end_the_session(client, store, seeded):
    token = client.post("/api/v1/auth/sign-in",
                        json={"username": "registrar", "pin": "1111"}).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    client.post("/api/v1/auth/sign-out", headers=headers)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    fresh = staff.sign_in(store, "registrar", "1111")["token"]
    with pytest.raises(NotSignedIn):
        staff.actor_for_token(store, fresh, now=utc_now() + staff.TOKEN_TTL + timedelta(1))


@pytest.mark.parametrize("spec", [s for s in REGISTRY if not s.public],
                         ids=lambda s: f"{s.method} {s.rule}")
def test_every_non_public_endpoint_needs_sign_in(client, spec):
    url = re.sub(r"<(?:\w+:)?\w+>", "01ARZ3NDEKTSV4RRFFQ69G5FAV", spec.rule)
    response = client.open(url, method=spec.method, json={})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "not_signed_in"


def requests_for(seeded):
    patient = seeded["patient_rows"][0]["patient_id"]
    return {
        "register facility": ("POST", "/api/v1/facilities", {
            "code": "NEW-1", "name": "Yangi", "kind": "pharmacy", "region": "TAS"}, {"admin"}),
        "register doctor": ("POST", "/api/v1/practitioners", {
            "facility_id": seeded["facility_id"], "full_name": "Dr New",
            "specialty": "therapy"}, {"admin"}),
        "create staff": ("POST", "/api/v1/staff", {
            "username": "newbie", "full_name": "N", "role": "registrar", "pin": "4321"},
            {"admin"}),
        "register patient": ("POST", "/api/v1/patients", {
            "full_name": "Test Bemor", "phone": "+998901119988", "document": "AZ7777777",
            "birth_date": "1980-01-01", "sex": "male", "facility_id": seeded["facility_id"]},
            {"registrar", "doctor"}),
        "find patient": ("GET", f"/api/v1/patients?pinfl={seeded['patients'][0]['pinfl']}",
                         None, {"registrar", "doctor", "admin", "pharmacist"}),
        "list appointments": ("GET", f"/api/v1/appointments?patient_id={patient}", None,
                              {"registrar", "doctor", "admin"}),
        "record visit": ("POST", "/api/v1/visits", {
            "patient_id": patient, "diagnoses": [{"code": "J06.9"}]}, {"doctor"}),
        "record lab result": ("POST", "/api/v1/lab-results", {
            "patient_id": patient, "test": "Hb", "value": "130"}, {"doctor"}),
        "read card": ("GET", f"/api/v1/patients/{patient}/card?reason=visit", None, {"doctor"}),
        "card audit": ("GET", f"/api/v1/patients/{patient}/card-reads", None, {"admin"}),
        "export log": ("GET", "/api/v1/events", None, {"admin"}),
        "list staff": ("GET", "/api/v1/staff", None, {"admin"}),
    }


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(requests_for({
    "patient_rows": [{"patient_id": "x"}], "facility_id": "x", "patients": [{"pinfl": "x"}]})))
def test_role_matrix(client, auth, seeded, role, action):
    method, url, payload, allowed = requests_for(seeded)[action]
    response = client.open(url, method=method, json=payload, headers=auth(role))
    if role in allowed:
        assert response.status_code in (200, 201), response.json
    else:
        assert response.status_code == 403, response.json
        assert response.json["error"]["code"] == "forbidden"
