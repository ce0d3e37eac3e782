"""Remote prescriptions for bedridden patients (1003 call centre): the operator's request
reaches the clinic by sync, the family doctor signs the prescription there (never the hub),
the patient is told by SMS, a pharmacy finds it by document and pickup code, and the operator
sees the state change."""

import re
from datetime import date

import pytest
import requests
from helpers.node import AMOXICILLIN, RemoteNode, receive, snapshot

from edge_node.errors import Conflict, Forbidden, NotFound, ValidationFailed
from edge_node.prescribing_rules import PrescriptionRuleError
from edge_node.services import remote_requests
from edge_node.services.sms import ConsoleSmsGateway, deliver_pending
from sync_protocol import qr
from sync_protocol.identifiers import make_pinfl, new_ulid


def request_event(hub, seeded, patient=0, **extra):
    return hub.event("RemotePrescriptionRequested", {
        "request_id": new_ulid(), "patient_id": seeded["patient_rows"][patient]["patient_id"],
        "facility_id": seeded["facility_id"], "requested_by": "Operator 1003-17",
        "request_text": "Qon bosimi dorisi tugadi, bemor yotoqda", **extra})


@pytest.fixture
def requested(store, seeded):
    hub = RemoteNode("hub:central")
    event = request_event(hub, seeded, phone="+998901112233")
    assert receive(store, [event]) == ["applied"]
    return hub, event.payload["request_id"]


def sms_to(store, phone):
    gateway = ConsoleSmsGateway()
    deliver_pending(store, gateway)
    return [body for to, body in gateway.sent if to == phone]


def test_the_doctor_approves_and_the_patient_gets_number_and_code(store, seeded, requested,
                                                                  actor_for,
                                                                  clinic_credentials, pki):
    _hub, request_id = requested
    doctor = actor_for("doctor")
    [waiting] = remote_requests.list_requests(store, doctor)
    assert (waiting["request_id"], waiting["status"]) == (request_id, "requested")
    result = remote_requests.approve(store, doctor, clinic_credentials, request_id,
                                     items=[AMOXICILLIN], note="3 kunlik")
    issued, decided = store.events()[-2:]
    assert (issued.type, decided.type) == ("PrescriptionIssued", "RemotePrescriptionDecided")
    assert issued.payload["remote_request_id"] == request_id
    assert decided.payload == {"request_id": request_id, "decision": "approved",
                               "practitioner_id": doctor.practitioner_id, "note": "3 kunlik",
                               "prescription_id": result["prescription_id"],
                               "pickup_code": result["pickup_code"]}
    # Signed on the clinic node, with its own key: any pharmacy verifies it offline.
    verified = qr.verify(result["qr"], pki.trust_list.nodes, require_prescription=True)
    assert verified.valid and verified.prescription.prescription_id == result["prescription_id"]
    [text] = sms_to(store, "+998901112233")
    assert result["number"] in text and result["pickup_code"] in text
    assert remote_requests.list_requests(store, doctor) == []
    with pytest.raises(Conflict) as again:
        remote_requests.approve(store, doctor, clinic_credentials, request_id,
                                items=[AMOXICILLIN])
    assert again.value.code == "already_decided"


def test_a_declined_request_tells_the_patient_at_their_own_phone(store, seeded, actor_for):
    hub = RemoteNode("hub:central")
    event = request_event(hub, seeded, patient=1)  # no phone given: the patient's own
    receive(store, [event])
    with pytest.raises(ValidationFailed):
        remote_requests.decline(store, actor_for("doctor"), event.payload["request_id"],
                                note=" ")
    remote_requests.decline(store, actor_for("doctor"), event.payload["request_id"],
                            note="Avval ko'rik kerak")
    [row] = remote_requests.list_requests(store, actor_for("doctor"), status="declined")
    assert (row["note"], row["prescription_id"]) == ("Avval ko'rik kerak", None)
    texts = sms_to(store, seeded["patient_rows"][1]["phone"])
    assert texts.count(remote_requests.DECLINED_SMS) == 1


MORPHINE = {**AMOXICILLIN, "inn": "morphine", "form": "injection", "strength": "10 mg/ml"}


@pytest.mark.parametrize(("who", "items", "error"), [
    ("registrar", [AMOXICILLIN], Forbidden),
    ("doctor", [MORPHINE], PrescriptionRuleError),  # never on an e-prescription
])
def test_only_a_doctor_decides_and_a_failed_approval_changes_nothing(
        store, seeded, requested, actor_for, clinic_credentials, who, items, error):
    _hub, request_id = requested
    before = snapshot(store)
    with pytest.raises(error):
        remote_requests.approve(store, actor_for(who), clinic_credentials, request_id,
                                items=items)
    assert snapshot(store) == before  # no prescription, no decision, no SMS


def test_a_decision_seen_before_its_request_still_applies_and_rebuilds(store, seeded):
    hub, clinic = RemoteNode("hub:central"), RemoteNode("tas-clinic-0009")
    event = request_event(hub, seeded)
    decision = clinic.event("RemotePrescriptionDecided", {
        "request_id": event.payload["request_id"], "decision": "declined",
        "practitioner_id": seeded["doctors"][0]["practitioner_id"], "note": "band"})
    receive(store, [decision, event])
    row = store.one("SELECT status, note FROM remote_requests")
    assert (row["status"], row["note"]) == ("declined", "band")
    before = snapshot(store)
    store.rebuild_projections()
    assert snapshot(store) == before


def test_a_pharmacy_finds_it_by_document_and_pickup_code(store, seeded, requested, actor_for,
                                                         clinic_credentials):
    _hub, request_id = requested
    result = remote_requests.approve(store, actor_for("doctor"), clinic_credentials, request_id,
                                     items=[AMOXICILLIN])
    document = seeded["patient_rows"][0]["document"]
    found = remote_requests.find_by_pickup_code(store, actor_for("pharmacist"),
                                                code=result["pickup_code"], document=document)
    assert [p["number"] for p in found["prescriptions"]] == [result["number"]]
    wrong = f"{(int(result['pickup_code']) + 1) % 10**6:06d}"
    with pytest.raises(NotFound):
        remote_requests.find_by_pickup_code(store, actor_for("pharmacist"), code=wrong,
                                            document=document)
    with pytest.raises(Forbidden):
        remote_requests.find_by_pickup_code(store, actor_for("registrar"),
                                            code=result["pickup_code"], document=document)


# -- end to end, over real HTTP -------------------------------------------------------------

def test_the_remote_path_end_to_end(network):
    clinic, pharmacy = network.clinic, network.pharmacy
    patient = dict(clinic.store.one("SELECT * FROM patients WHERE document = 'AC1112223'"))
    for node in (clinic, pharmacy):
        node.sync()  # the hub learns the facilities and the patient
    # The operator takes the call and records the request by PINFL.
    asked = network.hub_post("/api/v1/remote-requests", {
        "pinfl": patient["pinfl"], "request_text": "Amoksitsillin kerak, bemor yotoqda",
        "requested_by": "Operator 1003-17", "phone": "+998901112233"})
    assert (asked["state"], asked["facility_id"]) == ("requested", clinic.facility_id)
    assert asked["practitioner_id"] == patient["family_doctor_id"]  # the family doctor
    clinic.sync()
    [waiting] = clinic.get("/api/v1/remote-requests", as_="doctor")["requests"]
    assert waiting["request_id"] == asked["request_id"]
    approved = clinic.post(f"/api/v1/remote-requests/{asked['request_id']}/approve",
                           as_="doctor", expect=201,
                           json={"items": [AMOXICILLIN], "note": "7 kun"})
    # The patient's SMS, through the console adapter.
    gateway = ConsoleSmsGateway()
    deliver_pending(clinic.store, gateway)
    [text] = [body for phone, body in gateway.sent if phone == "+998901112233"]
    assert approved["number"] in text
    code = re.search(r"\b(\d{6})\b", text.replace(approved["number"], "")).group(1)
    # Sync: the operator sees the decision, the pharmacy the prescription.
    clinic.sync()
    state = network.hub_get(f"/api/v1/remote-requests/{asked['request_id']}")
    assert (state["state"], state["prescription_number"], state["note"]) == (
        "approved", approved["number"], "7 kun")
    page = requests.get(f"{network.hub.url}/call-centre?lang=uz", timeout=10).text
    assert "tasdiqlangan" in page and approved["number"] in page
    pharmacy.sync()
    found = pharmacy.get(f"/api/v1/pharmacy/pickup?document={patient['document']}&code={code}",
                         as_="pharmacist")
    [prescription] = found["prescriptions"]
    assert prescription["number"] == approved["number"]
    verdict = pharmacy.post("/api/v1/pharmacy/verify", json={"code": prescription["qr"]},
                            as_="pharmacist")
    assert verdict["verdict"] == "valid"


def test_the_operator_screen_form(network):
    clinic = network.clinic
    for node in (clinic, network.pharmacy):
        node.sync()
    patient = dict(clinic.store.one("SELECT * FROM patients WHERE document = 'AA1234567'"))
    operator = requests.Session()
    screen = operator.get(f"{network.hub.url}/call-centre?lang=ru", timeout=10)
    assert screen.status_code == 200 and "Колл-центр 1003" in screen.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', screen.text).group(1)
    form = {"pinfl": patient["pinfl"], "request_text": "Insulin", "requested_by": "Operator 5",
            "facility": "", "phone": ""}
    forged = requests.post(f"{network.hub.url}/call-centre", data={**form, "csrf": "x"},
                           timeout=10)
    assert forged.status_code == 400
    not_ascii = operator.post(f"{network.hub.url}/call-centre", data={**form, "csrf": "ключ"},
                              timeout=10)
    assert not_ascii.status_code == 400  # a clear refusal, not a server error
    bad = operator.post(f"{network.hub.url}/call-centre?lang=uz",
                        data={**form, "pinfl": "12345678901234", "csrf": csrf}, timeout=10)
    assert bad.status_code == 400 and "JShShIR" in bad.text
    sent = operator.post(f"{network.hub.url}/call-centre", data={**form, "csrf": csrf},
                         timeout=10, allow_redirects=False)
    assert sent.status_code == 303
    listed = network.hub_get("/api/v1/remote-requests")["requests"]
    assert [(r["pinfl"], r["state"], r["phone"]) for r in listed] == [
        (patient["pinfl"], "requested", patient["phone"])]
    unknown = network.hub_post("/api/v1/remote-requests", {
        "pinfl": make_pinfl(date(1970, 1, 1), "female", "111", "222"), "request_text": "x",
        "requested_by": "Operator 5"}, expect=404)
    assert unknown["error"]["field"] == "pinfl"
    elsewhere = network.hub_post("/api/v1/remote-requests", {
        "pinfl": patient["pinfl"], "facility_id": network.pharmacy.facility_id,
        "request_text": "x", "requested_by": "Operator 5"}, expect=400)
    assert elsewhere["error"]["field"] == "facility"
