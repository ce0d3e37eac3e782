"""FHIR Bulk Data $export: an asynchronous job, status polling, one NDJSON file per type
(every line a valid resource), `_type` and `_since`, the owner's token only; and the same
offline through `dmed-hub fhir-export`."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from helpers.fhir import auth, get_token, make_client, new_key, validate
from helpers.fhir_hub import TYPES, finished, kick_off, lines, push_all

from central_hub.cli import main


def test_export_writes_every_type_as_valid_ndjson(hub_app, fhir_seeded):
    http, storage, client, ids = fhir_seeded
    response = kick_off(http, client.token)
    assert response.status_code == 202
    location = response.headers["Content-Location"]
    manifest = finished(hub_app, http, client.token, location)
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert sorted(o["type"] for o in manifest["output"]) == sorted(TYPES)
    for output in manifest["output"]:
        resources = [validate(r) for r in lines(http, client.token, output["url"])]
        assert len(resources) == output["count"] > 0, output["type"]
        assert {r["resourceType"] for r in resources} == {output["type"]}
        searched = http.get(f"/fhir/r4/{output['type']}?_count=500",
                            headers=auth(client.token)).get_json()
        assert sorted(r["id"] for r in resources) == sorted(
            e["resource"]["id"] for e in searched["entry"]), output["type"]
    with storage.reader() as tx:
        audited = tx.query("SELECT resource_type, count FROM fhir_audit WHERE interaction = "
                           "'export' AND client_id = ?", (client.client_id,))
    assert {r["resource_type"]: r["count"] for r in audited} == {
        o["type"]: o["count"] for o in manifest["output"]}

    # only the job's owner, with a token, gets the status and the files
    other = make_client(storage, "someone-else")
    other_token = get_token(http, other)
    path = location.replace("http://localhost", "")
    assert http.get(path, headers=auth(other_token)).status_code == 404
    file_path = manifest["output"][0]["url"].replace("http://localhost", "")
    assert http.get(file_path).status_code == 401
    assert http.get(file_path, headers=auth(other_token)).status_code == 404
    assert http.delete(path, headers=auth(client.token)).status_code == 202
    assert http.get(path, headers=auth(client.token)).status_code == 404


def test_export_type_and_since(hub_app, fhir_seeded, nodes):
    http, storage, client, ids = fhir_seeded
    response = kick_off(http, client.token, "?_type=MedicationRequest,MedicationDispense")
    manifest = finished(hub_app, http, client.token, response.headers["Content-Location"])
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts == {"MedicationRequest": 3, "MedicationDispense": 2}

    later = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = kick_off(http, client.token, f"?_type=Patient,Provenance&_since={later}")
    manifest = finished(hub_app, http, client.token, response.headers["Content-Location"])
    assert {o["type"]: o["count"] for o in manifest["output"]} == {"Patient": 0,
                                                                    "Provenance": 0}
    # a later change brings its record back: the cancelled prescription, the edited patient
    time.sleep(1.1)  # _since has whole seconds: start after the seed's last second
    mark = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    nodes["clinic"].cancel_prescription(ids["rx"])
    nodes["clinic"].change_patient(ids["no_phone"], "full_name", "Karimova Zuhra Olim qizi")
    push_all(nodes["clinic"])
    response = kick_off(http, client.token, f"?_type=Patient,MedicationRequest,Provenance,"
                        f"MedicationDispense&_since={mark}")
    manifest = finished(hub_app, http, client.token, response.headers["Content-Location"])
    changed = {o["type"]: [r["id"] for r in lines(http, client.token, o["url"])]
               for o in manifest["output"]}
    assert changed["MedicationRequest"] == [f"{ids['rx']}-1"]
    assert changed["Patient"] == [ids["no_phone"]]
    assert changed["MedicationDispense"] == []
    assert len(changed["Provenance"]) == 2  # the two new events
    earlier = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = kick_off(http, client.token, f"?_type=Patient&_since={earlier}")
    manifest = finished(hub_app, http, client.token, response.headers["Content-Location"])
    assert manifest["output"][0]["count"] == 2


def test_export_refuses_what_it_cannot_do(fhir_seeded):
    http, storage, client, _ = fhir_seeded
    assert http.get("/fhir/r4/$export", headers=auth(client.token)).status_code == 400
    for query in ("?_since=yesterday", "?_since=2026-01-01T00:00:00", "?_type=Bogus",
                  "?_elements=id", "?_outputFormat=text/csv"):
        response = kick_off(http, client.token, query)
        assert response.status_code == 400, query
        assert validate(response.get_json())["resourceType"] == "OperationOutcome"
    narrow = make_client(storage, "narrow", scopes="system/Patient.read")
    token = get_token(http, narrow)
    assert kick_off(http, token, "?_type=Provenance").status_code == 403
    assert kick_off(http, None).status_code == 401


@pytest.mark.parametrize("storage_url", ["sqlite"], indirect=True)
def test_cli_registers_clients_and_exports_offline(hub_app, fhir_seeded, storage_url,
                                                   tmp_path):
    from cryptography.hazmat.primitives import serialization
    http, storage, client, ids = fhir_seeded
    key = tmp_path / "fund.pem"
    key.write_bytes(new_key("ES384").public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    runner = CliRunner()
    result = runner.invoke(main, ["fhir-client-add", "--db", storage_url, "--client-id",
                                  "fund", "--name", "Insurance fund", "--public-key", str(key),
                                  "--scopes", "system/MedicationDispense.read",
                                  "--regions", "TAS SAM"])
    assert result.exit_code == 0, result.output
    assert "ES384" in result.output
    result = runner.invoke(main, ["fhir-client-add", "--db", storage_url, "--client-id",
                                  "fund2", "--name", "x", "--public-key", str(key),
                                  "--scopes", "user/Patient.read", "--regions", "TAS"])
    assert result.exit_code != 0 and "Scope user/Patient.read" in result.output
    listed = runner.invoke(main, ["fhir-clients", "--db", storage_url]).output
    assert "fund\tInsurance fund\tES384\tsystem/MedicationDispense.read\tSAM TAS\tactive" in listed

    assert runner.invoke(main, ["fhir-client-disable", "--db", storage_url, "--client-id",
                                "fund"]).exit_code == 0
    assert "SAM TAS\tdisabled" in runner.invoke(main, ["fhir-clients", "--db",
                                                       storage_url]).output
    result = runner.invoke(main, ["fhir-client-disable", "--db", storage_url, "--client-id",
                                  "nobody"])
    assert result.exit_code != 0 and "no FHIR client nobody" in result.output

    out = tmp_path / "export"
    result = runner.invoke(main, ["fhir-export", "--db", storage_url, "--out", str(out),
                                  "--type", "MedicationDispense,Patient"])
    assert result.exit_code == 0, result.output
    dispenses = [validate(json.loads(line)) for line in
                 (out / "MedicationDispense.ndjson").read_text().splitlines()]
    assert {d["id"] for d in dispenses} == {ids["dispense_event"], ids["sam_dispense_event"]}
    assert len((out / "Patient.ndjson").read_text().splitlines()) == 2
    result = runner.invoke(main, ["fhir-export", "--db", storage_url, "--out", str(out),
                                  "--since", "soon"])
    assert result.exit_code != 0 and "_since" in result.output
