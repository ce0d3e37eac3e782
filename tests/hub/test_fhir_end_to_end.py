"""End to end over HTTP: a clinic prescribes, a pharmacy dispenses part of it while offline,
both sync with a hub served on loopback; a system with a SMART token then reads a
MedicationRequest and a MedicationDispense that reference each other and the Patient, with
Provenance back to both nodes' events (origin, sequence, hash as the nodes wrote them)."""

from datetime import date

import pytest
import requests
from helpers.enrolments import CLINIC, PHARMACY
from helpers.fhir import ASSERTION_TYPE, Client, new_key, validate
from helpers.node import AMOXICILLIN
from helpers.sync_world import BACKENDS, Hub, Node, hub_database
from helpers.workload import pack_expiry

from central_hub.fhir import systems
from central_hub.fhir.access import register_client
from edge_node.services import dispensing, patients, prescribing
from sync_protocol.certificates import kid_of
from sync_protocol.identifiers import make_pinfl
from sync_protocol.timeutil import utc_now


def synced(node: Node) -> None:
    report = node.sync()
    assert report["ok"], report


def ext(resource, url):
    return [e for e in resource.get("extension", []) if e["url"] == url]


@pytest.mark.parametrize("backend", BACKENDS)
def test_offline_dispense_reads_back_as_linked_fhir_with_provenance(
        backend, tmp_path, sync_pki, node_templates):
    with hub_database(backend, tmp_path) as db_url:
        hub = Hub.start(tmp_path, sync_pki, db_url=db_url)
        clinic = Node.start(CLINIC, tmp_path, sync_pki, node_templates, hub.url, web=False)
        pharmacy = Node.start(PHARMACY, tmp_path, sync_pki, node_templates, hub.url, web=False)
        try:
            run_scenario(hub, clinic, pharmacy)
        finally:
            for closing in (pharmacy, clinic, hub):
                closing.close()


def run_scenario(hub: Hub, clinic: Node, pharmacy: Node) -> None:
    for node in (clinic, pharmacy):
        synced(node)
    patient = patients.register_patient(
        clinic.store, clinic.actor("registrar"), full_name="Xolmatova Sevara Anvarovna",
        phone="+998901112233", facility_id=clinic.facility_id,
        pinfl=make_pinfl(date(1990, 4, 12), "female", "262", "417"))["patient_id"]
    rx = prescribing.issue_prescription(clinic.store, clinic.actor("doctor"),
                                        clinic.credentials, patient_id=patient,
                                        items=[AMOXICILLIN])["prescription_id"]
    synced(clinic)
    synced(pharmacy)  # the pharmacy learns of the prescription, then its link drops
    pharmacy.go_offline()
    dispensing.dispense(pharmacy.store, pharmacy.actor("pharmacist"),
                        facility_id=pharmacy.facility_id, prescription_id=rx, item_no=1,
                        quantity=8, product="Amoksitsillin 500", batch="B-7",
                        expiry=pack_expiry())
    assert not pharmacy.sync()["ok"]
    pharmacy.go_online()
    synced(pharmacy)
    synced(clinic)

    # a national system reads it through the FHIR API, over HTTP
    base = f"{hub.url}/fhir/r4"
    client = Client("pharmacovigilance", new_key("ES256"), "ES256", f"{base}/auth/token")
    register_client(hub.storage, client.client_id, "Pharmacovigilance centre",
                    client.public_pem(), "system/Patient.read system/MedicationRequest.read "
                    "system/MedicationDispense.read system/Provenance.read", "TAS", utc_now())
    answer = requests.post(f"{base}/auth/token", timeout=10, data={
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client.assertion()})
    assert answer.status_code == 200, answer.text
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    assert requests.get(f"{base}/MedicationRequest/{rx}-1", timeout=10).status_code == 401

    def get(path):
        response = requests.get(f"{base}/{path}", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/fhir+json")
        return validate(response.json())

    request = get(f"MedicationRequest/{rx}-1")
    bundle = get(f"MedicationDispense?prescription=MedicationRequest/{rx}-1")
    dispenses = [validate(e["resource"]) for e in bundle["entry"]]
    assert len(dispenses) == 1
    dispense = dispenses[0]
    found = get(f"Patient/{patient}")

    # they reference each other and the patient
    assert dispense["authorizingPrescription"] == [{"reference": f"MedicationRequest/{rx}-1"}]
    assert ext(request, systems.EXT_DISPENSED_AS)[0]["valueReference"] == {
        "reference": f"MedicationDispense/{dispense['id']}"}
    assert request["subject"] == dispense["subject"] == {"reference": f"Patient/{found['id']}"}
    assert request["status"] == "active" and dispense["quantity"]["value"] == 8  # partial
    assert ext(dispense, systems.EXT_DISPENSE_MODE)[0]["valueCode"] == "offline"
    assert dispense["performer"][0]["actor"] == {"reference":
                                                 f"Organization/{pharmacy.facility_id}"}
    assert ext(request, systems.EXT_SIGNING_NODE)[0]["valueIdentifier"]["value"] == \
        clinic.node_id
    assert ext(request, systems.EXT_SIGNING_CERT)[0]["valueString"] == \
        kid_of(clinic.credentials.cert).hex()

    # Provenance back to both nodes' events, as the nodes themselves wrote them
    history = {ref["reference"].split("/")[1] for ref in request["eventHistory"]}
    for event_id, node in ((dispense["id"], pharmacy), *(
            (i, clinic) for i in history if i != dispense["id"])):
        provenance = get(f"Provenance/{event_id}")
        written = node.store.one("SELECT origin, seq, hash FROM events WHERE id = ?",
                                 (event_id,))
        assert provenance["agent"][0]["who"]["identifier"] == {"system": systems.NODE_ID,
                                                              "value": written["origin"]}
        assert ext(provenance, systems.EXT_EVENT_SEQUENCE)[0]["valueInteger"] == written["seq"]
        assert ext(provenance, systems.EXT_EVENT_HASH)[0]["valueString"] == written["hash"]
    assert dispense["id"] in history and len(history) == 2
    trail = get(f"Provenance?target=MedicationDispense/{dispense['id']}")
    assert [e["resource"]["target"] for e in trail["entry"]] == [
        [{"reference": f"MedicationDispense/{dispense['id']}"}]]
    issued = get(f"Provenance?target=MedicationRequest/{rx}-1")
    assert [e["resource"]["agent"][0]["who"]["identifier"]["value"]
            for e in issued["entry"]] == [clinic.node_id]
