"""SMART Backend Services at the hub: no read without a token from a valid assertion, scopes
limit resource types, regions limit records, every read is audited."""

import time
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from helpers.fhir import TOKEN_PATH, auth, get_token, make_client, new_key, validate

from central_hub.fhir.access import disable_client, register_client
from central_hub.fhir.errors import BadRegistration


def token_error(http, form):
    response = http.post(TOKEN_PATH, data=form)
    assert response.status_code in (400, 401), response.get_json()
    return response.status_code, response.get_json()["error"]


SQLITE_ONLY = pytest.mark.parametrize("storage_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
@pytest.mark.parametrize("alg", ["ES256", "ES384", "RS384"])
def test_each_smart_algorithm_gets_a_token(hub_app, alg, caplog):
    caplog.set_level("DEBUG")
    storage = hub_app.extensions["dmed_hub"].storage
    client = make_client(storage, f"client-{alg.lower()}", alg=alg,
                         scopes="system/Patient.read")
    http = hub_app.test_client()
    response = http.post(TOKEN_PATH, data=client.form())
    answer = response.get_json()
    assert response.status_code == 200, answer
    assert answer["token_type"] == "bearer" and answer["expires_in"] == 300
    assert answer["scope"] == "system/Patient.read"
    assert answer["access_token"] not in caplog.text  # never logged
    with storage.reader() as tx:  # kept as a hash only
        assert tx.query("SELECT * FROM fhir_tokens WHERE token_hash = ?",
                        (answer["access_token"],)) == []
    assert http.get("/fhir/r4/Patient", headers=auth(answer["access_token"])).status_code == 200


def test_no_access_without_a_valid_assertion(fhir_seeded):
    http, storage, client, _ = fhir_seeded
    assert http.get("/fhir/r4/Patient").status_code == 401
    for header in ("Bearer nonsense", "Basic abc", "Bearer "):
        response = http.get("/fhir/r4/Patient", headers={"Authorization": header})
        assert response.status_code == 401
        assert validate(response.get_json())["issue"][0]["code"] == "login"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    now = int(time.time())
    bad = {
        "someone else's key": client.assertion(key=new_key("ES256")),
        "expired": client.assertion(exp=now - 600),
        "too far ahead": client.assertion(exp=now + 3600),
        "wrong audience": client.assertion(aud="https://elsewhere/token"),
        "sub differs": client.assertion(sub="other-client"),
        "unknown client": client.assertion(iss="nobody", sub="nobody"),
        "no jti": client.assertion(jti=None),
        "alg none": client.assertion().rsplit(".", 1)[0].replace(
            client.assertion().split(".")[0], "eyJhbGciOiJub25lIn0") + ".",
        "RS384 claimed for an EC key": client.assertion(alg="RS384", key=new_key("RS384")),
        "not a JWT": "abc.def",
    }
    for what, assertion in bad.items():
        status, error = token_error(http, client.form(assertion))
        assert (status, error) == (401, "invalid_client"), what
    replayed = client.assertion()
    assert http.post(TOKEN_PATH, data=client.form(replayed)).status_code == 200
    assert token_error(http, client.form(replayed)) == (401, "invalid_client")
    form = client.form()
    form["grant_type"] = "password"
    assert token_error(http, form) == (400, "unsupported_grant_type")
    # a disabled client's tokens stop working at once
    disable_client(storage, client.client_id)
    assert http.get("/fhir/r4/Patient", headers=auth(client.token)).status_code == 401
    assert token_error(http, client.form()) == (401, "invalid_client")


def test_a_client_cannot_read_outside_its_scopes(fhir_seeded):
    http, storage, _, ids = fhir_seeded
    pharmacy_fund = make_client(storage, "fund", scopes="system/MedicationDispense.read "
                                "system/MedicationRequest.read", regions="TAS")
    token = get_token(http, pharmacy_fund)
    for path in ("Patient", f"Patient/{ids['patient']}", "Provenance", "Encounter"):
        response = http.get(f"/fhir/r4/{path}", headers=auth(token))
        assert response.status_code == 403, path
        assert validate(response.get_json())["issue"][0]["code"] == "forbidden"
    assert http.get("/fhir/r4/MedicationDispense", headers=auth(token)).status_code == 200
    # a scope it was not registered for is not granted
    response = http.post(TOKEN_PATH, data=pharmacy_fund.form(scope="system/Patient.read"))
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_scope")
    narrowed = get_token(http, pharmacy_fund, scope="system/MedicationDispense.read")
    response = http.get("/fhir/r4/MedicationRequest", headers=auth(narrowed))
    assert response.status_code == 403


def test_a_client_sees_only_the_regions_of_its_registration(fhir_seeded):
    http, storage, _, ids = fhir_seeded
    samarkand = make_client(storage, "sam-stats", regions="SAM")
    tashkent = make_client(storage, "tas-stats", regions="TAS")
    sam_token, tas_token = get_token(http, samarkand), get_token(http, tashkent)

    def ids_of(token, resource_type):
        bundle = http.get(f"/fhir/r4/{resource_type}?_count=500", headers=auth(token)).get_json()
        return {e["resource"]["id"] for e in bundle.get("entry", [])}

    # the SAM pharmacy's dispense is in SAM; the TAS pharmacy's and the patients are in TAS
    assert ids_of(sam_token, "MedicationDispense") == {ids["sam_dispense_event"]}
    assert ids_of(tas_token, "MedicationDispense") == {ids["dispense_event"]}
    assert ids_of(sam_token, "Patient") == set()
    assert ids["patient"] in ids_of(tas_token, "Patient")
    assert ids_of(sam_token, "Organization") == {ids["sam"]}
    response = http.get(f"/fhir/r4/Patient/{ids['patient']}", headers=auth(sam_token))
    assert response.status_code == 404  # not revealed: out of its regions


def test_every_read_is_audited_with_client_type_and_count(fhir_seeded):
    http, storage, client, ids = fhir_seeded
    http.get("/fhir/r4/MedicationRequest?_count=2", headers=auth(client.token))
    http.get(f"/fhir/r4/Patient/{ids['patient']}", headers=auth(client.token))
    with storage.reader() as tx:
        rows = tx.query("SELECT client_id, interaction, resource_type, count, detail FROM "
                        "fhir_audit ORDER BY id")
    assert rows[-2:] == [
        {"client_id": client.client_id, "interaction": "search-type",
         "resource_type": "MedicationRequest", "count": 2, "detail": "_count=2"},
        {"client_id": client.client_id, "interaction": "read", "resource_type": "Patient",
         "count": 1, "detail": ""}]


@SQLITE_ONLY
@pytest.mark.parametrize("change, field", [
    ({"client_id": "A"}, "client_id"), ({"scopes": "user/Patient.read"}, "scopes"),
    ({"scopes": "system/Bogus.read"}, "scopes"), ({"regions": "tas"}, "regions"),
    ({"regions": ""}, "regions"), ({"pem": b"not a key"}, "public_key"),
    ({"name": " "}, "name"),
])
def test_registration_refuses_bad_input_and_changes_nothing(storage, change, field):
    key = new_key("ES256").public_key()
    pem = key.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    args = {"client_id": "fund", "name": "Fund", "pem": pem, "scopes": "system/*.read",
            "regions": "TAS", **change}
    with pytest.raises(BadRegistration) as caught:
        register_client(storage, args["client_id"], args["name"], args["pem"], args["scopes"],
                        args["regions"], datetime.now(UTC))
    assert caught.value.field == field
    with storage.reader() as tx:
        assert tx.query("SELECT * FROM fhir_clients") == []
