"""Pulls: each node gets what its facility needs and nothing more, page by page, resumably."""

import pytest
from helpers.hub import body_of

from central_hub.hub_events import HUB_ORIGIN, emit_hub_event
from sync_protocol.identifiers import new_ulid
from sync_protocol.wire import MAX_BATCH_BYTES, json_size


def pushed(node):
    response = node.push()
    assert response.status_code == 200, body_of(response)
    assert all(r["status"] != "refused" for r in body_of(response)["results"])


def types_received(node):
    return sorted(e["type"] for e in node.received.values())


@pytest.fixture
def region(nodes):
    """TAS: a clinic with a doctor, a patient and a prescription; a second clinic and a
    pharmacy of TAS; a pharmacy of SAM. Everyone has registered and pushed."""
    clinic = nodes["clinic"]
    clinic.register_facility()
    clinic.doctor = clinic.register_practitioner()
    clinic.patient = clinic.register_patient()
    clinic.rx = clinic.prescribe(clinic.patient, clinic.doctor)
    pushed(clinic)
    for name in ("clinic2", "pharmacy", "sam_pharmacy"):
        nodes[name].register_facility()
        pushed(nodes[name])
    return nodes


def test_a_pharmacy_gets_registrations_and_prescriptions_of_its_region_only(region):
    pharmacy = region["pharmacy"]
    pharmacy.sync_down()
    assert types_received(pharmacy) == ["FacilityRegistered", "FacilityRegistered",
                                        "PractitionerRegistered", "PrescriptionIssued"]
    assert region["clinic"].patient not in {e["payload"].get("patient_id")
                                            for e in pharmacy.received.values()
                                            if e["type"] == "PatientRegistered"}


def test_a_pharmacy_of_another_region_gets_nothing_of_a_foreign_region(region):
    sam = region["sam_pharmacy"]
    assert sam.sync_down() == []
    region["clinic"].cancel_prescription(region["clinic"].rx)
    pushed(region["clinic"])
    assert sam.sync_down() == []


def test_a_clinic_gets_only_its_own_patients(region):
    clinic, clinic2 = region["clinic"], region["clinic2"]
    clinic2.sync_down()
    assert types_received(clinic2) == ["FacilityRegistered", "FacilityRegistered",
                                       "PractitionerRegistered"]
    # A patient registered at the first clinic but attached to the second one is theirs.
    theirs = clinic.register_patient(facility_id=clinic2.facility_id)
    clinic.book(theirs, clinic.doctor)
    clinic.book(clinic.patient, clinic.doctor)
    pushed(clinic)
    got = [clinic.received.get(i) or next(e for e in clinic.log if e["id"] == i)
           for i in clinic2.sync_down()]
    assert [(e["type"], e["payload"]["patient_id"]) for e in got] == [
        ("PatientRegistered", theirs), ("AppointmentBooked", theirs)]


def test_a_node_never_gets_its_own_events_back(region):
    clinic = region["clinic"]
    clinic.sync_down()
    own = {e["id"] for e in clinic.log}
    assert own.isdisjoint(clinic.received)
    assert types_received(clinic) == ["FacilityRegistered", "FacilityRegistered"]


def test_cancellations_and_dispenses_reach_the_pharmacies_of_the_region(region):
    clinic, pharmacy, clinic2 = region["clinic"], region["pharmacy"], region["clinic2"]
    pharmacy.sync_down()
    clinic.cancel_prescription(clinic.rx)
    pushed(clinic)
    region["sam_pharmacy"].dispense(clinic.rx)  # a patient from TAS at a SAM pharmacy
    pushed(region["sam_pharmacy"])
    assert types_received(pharmacy)[-1] == "PrescriptionIssued"
    new = [pharmacy.received[i]["type"] for i in pharmacy.sync_down()]
    assert new == ["PrescriptionCancelled", "MedicationDispensed"]
    clinic.sync_down()
    assert "MedicationDispensed" in types_received(clinic)
    clinic2.sync_down()
    assert "MedicationDispensed" not in types_received(clinic2)


def test_expired_prescriptions_are_not_sent_to_pharmacies(region):
    clinic, pharmacy = region["clinic"], region["pharmacy"]
    expired = clinic.prescribe(clinic.patient, clinic.doctor, days_valid=-2)
    valid = clinic.prescribe(clinic.patient, clinic.doctor, days_valid=60)
    pushed(clinic)
    pharmacy.sync_down()
    prescriptions = {e["payload"]["prescription_id"] for e in pharmacy.received.values()
                     if e["type"] == "PrescriptionIssued"}
    assert prescriptions == {clinic.rx, valid}
    assert expired not in prescriptions


def test_a_dispense_that_arrives_before_its_prescription_reaches_the_clinic_later(region):
    clinic, pharmacy = region["clinic"], region["pharmacy"]
    clinic.sync_down()
    offline_rx = clinic.prescribe(clinic.patient, clinic.doctor)  # not pushed yet
    pharmacy.dispense(offline_rx)  # the patient showed the QR code at the pharmacy
    pushed(pharmacy)
    assert clinic.sync_down() == []  # the hub cannot tell yet whose prescription it is
    pushed(clinic)
    (dispense,) = [clinic.received[i] for i in clinic.sync_down()]
    assert dispense["payload"]["prescription_id"] == offline_rx


def test_a_transferred_patient_brings_their_history_to_the_new_clinic(region):
    clinic, clinic2 = region["clinic"], region["clinic2"]
    clinic.book(clinic.patient, clinic.doctor)
    pushed(clinic)
    clinic2.sync_down()
    history = {e["id"] for e in clinic.log if e["type"] in (
        "PatientRegistered", "PrescriptionIssued", "AppointmentBooked")}
    assert history.isdisjoint(clinic2.received)
    clinic.change_patient(clinic.patient, "facility_id", clinic2.facility_id)
    pushed(clinic)
    clinic2.sync_down()
    assert history | {clinic.log[-1]["id"]} <= set(clinic2.received)
    # The first clinic still hears about the patient's profile, not their new care.
    clinic2.register_practitioner()
    clinic2.book(clinic.patient, clinic2.log[-1]["payload"]["practitioner_id"])
    clinic2.change_patient(clinic.patient, "phone", "+998935551122")
    pushed(clinic2)
    clinic.sync_down()
    assert [clinic.received[e["id"]]["type"] for e in clinic2.log[-1:]] == \
        ["PatientFieldChanged"]
    assert clinic2.log[-2]["id"] not in clinic.received


def test_a_transfer_in_the_same_batch_brings_the_batchs_earlier_history_too(region):
    clinic, clinic2 = region["clinic"], region["clinic2"]
    clinic.book(clinic.patient, clinic.doctor)
    clinic.change_patient(clinic.patient, "facility_id", clinic2.facility_id)
    pushed(clinic)  # one batch: the booking is routed before the hub learns of the transfer
    clinic2.sync_down()
    history = {e["id"] for e in clinic.log if e["type"] in (
        "PatientRegistered", "PrescriptionIssued", "AppointmentBooked", "PatientFieldChanged")}
    assert len(history) >= 4 and history <= set(clinic2.received)


@pytest.mark.parametrize("limit, max_bytes", [(7, MAX_BATCH_BYTES), (1000, 1024), (1, 1024)])
def test_pages_resume_from_the_cursor_with_no_loss_or_duplicate(region, limit, max_bytes):
    clinic, clinic2 = region["clinic"], region["clinic2"]
    for _ in range(40):
        clinic.register_patient(facility_id=clinic2.facility_id)
    pushed(clinic)
    registrations = clinic.log[:2] + region["pharmacy"].log[:1]  # facilities and doctors
    expected = [e["id"] for e in registrations + clinic.log[4:]]
    delivered, pages = [], 0
    while True:
        page = body_of(clinic2.pull(limit=limit, max_bytes=max_bytes))
        # The connection drops before the page is stored: the same cursor gives the same page.
        assert body_of(clinic2.pull(limit=limit, max_bytes=max_bytes)) == page
        pages += 1
        assert len(page["events"]) <= limit
        if len(page["events"]) > 1:
            assert json_size(page) <= max_bytes
        delivered += [item["event"]["id"] for item in page["events"]]
        clinic2.cursor = page["next"]
        if not page["more"]:
            break
    assert sorted(delivered) == sorted(expected)
    assert len(set(delivered)) == len(delivered)
    assert pages > 1
    # At the head, pulling again changes nothing.
    again = body_of(clinic2.pull())
    assert (again["events"], again["more"], again["next"]) == ([], False, again["head"])


def test_events_are_delivered_in_global_order(region):
    clinic, clinic2 = region["clinic"], region["clinic2"]
    for _ in range(5):
        clinic.register_patient(facility_id=clinic2.facility_id)
    pushed(clinic)
    positions = [i["position"] for i in body_of(clinic2.pull())["events"]]
    assert positions == sorted(positions)


def test_a_cursor_past_the_head_is_refused(region):
    response = region["clinic"].pull(after=10**9)
    assert response.status_code == 409
    assert body_of(response)["error"]["code"] == "cursor_ahead"


def test_a_pull_cannot_ask_for_another_scope(region):
    pharmacy = region["pharmacy"]
    target = f"/sync/v1/pull?after=0&facility_id={region['clinic'].facility_id}"
    headers = pharmacy.headers("GET", target, b"")
    response = pharmacy.client.get(target, headers=headers)
    assert response.status_code == 400
    assert body_of(response)["error"]["code"] == "unknown_parameter"


def test_hub_events_reach_the_facilities_they_name(region, storage):
    clinic, pharmacy, clinic2 = region["clinic"], region["pharmacy"], region["clinic2"]
    for node in (clinic, pharmacy, clinic2):
        node.sync_down()
    conflict = new_ulid()
    with storage.transaction() as tx:
        raised = emit_hub_event(tx, "ConflictRaised", {
            "conflict_id": conflict, "kind": "over_dispensing", "subject_id": clinic.rx,
            "event_ids": [clinic.log[-1]["id"]],
            "facility_ids": [clinic.facility_id, pharmacy.facility_id], "details": {}})
        emit_hub_event(tx, "ConflictStateChanged", {
            "conflict_id": conflict, "state": "acknowledged", "by": "Central staff",
            "note": "Pharmacist called"}, after_hlc=raised.event.hlc)
    for node in (clinic, pharmacy):
        got = [node.received[i] for i in node.sync_down()]
        assert [(e["origin"], e["seq"], e["type"]) for e in got] == [
            (HUB_ORIGIN, 1, "ConflictRaised"), (HUB_ORIGIN, 2, "ConflictStateChanged")]
        assert got[1]["hlc"] > got[0]["hlc"]
    assert clinic2.sync_down() == []


def test_nodes_cannot_push_hub_events(region):
    clinic = region["clinic"]
    clinic.emit("ConflictStateChanged", {"conflict_id": new_ulid(), "state": "resolved",
                                         "by": "Registrar", "note": "done"})
    results = body_of(clinic.push())["results"]
    assert (results[-1]["status"], results[-1]["code"]) == ("refused", "not_permitted")
