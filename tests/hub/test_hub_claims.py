"""Claims at the hub (issue 13): grant or refuse atomically against every dispense and held
claim, consumed by the dispense that names it, released by the node or by expiry, kept across
a restart, and pulled by the region's other pharmacies. Both backends."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from helpers.hub import SimNode, body_of

from central_hub import claims
from central_hub.composition import open_storage
from provisioning.pki import create_node
from sync_protocol import claims as rules
from sync_protocol.certificates import NodeKind
from sync_protocol.identifiers import new_ulid
from sync_protocol.wire import CLAIM_PATH, CLAIM_RELEASE_PATH, CLAIM_STATUS_PATH

PHARMACY2_ID = "tas-pharmacy-0002"


@pytest.fixture
def rx_world(world, hub_app, nodes):
    """A TAS clinic with a pushed prescription (20 capsules, one fill) and two TAS
    pharmacies, each with its facility registered at the hub."""
    second = create_node(world.pki.region, PHARMACY2_ID, "TAS-APT-77", NodeKind.PHARMACY)
    hub_app.extensions["dmed_hub"].trust.import_list(_with(world, second.cert))
    pharmacy2 = SimNode(second, hub_app.test_client())
    clinic = nodes["clinic"]
    clinic.register_facility()
    patient = clinic.register_patient()
    rx = clinic.prescribe(patient, clinic.register_practitioner())
    for node, name in ((clinic, None), (nodes["pharmacy"], "Dorixona Shifo"),
                       (pharmacy2, "Dorixona Sog'lom")):
        if name:
            node.register_facility(name=name)
        assert body_of(node.push())["acked_seq"] == len(node.log)
    return {"rx": rx, "one": nodes["pharmacy"], "two": pharmacy2, "clinic": clinic,
            "sam": nodes["sam_pharmacy"]}


def _with(world, cert):
    trust = world.fresh_trust_list()
    trust.add_certificate(cert)
    return trust


def post(node: SimNode, path: str, data: dict):
    body = json.dumps(data).encode()
    return node.client.post(path, data=body, headers={
        "Content-Type": "application/json", **node.headers("POST", path, body)})


def ask(node: SimNode, rx: str, quantity: int = 20, item_no: int = 1) -> dict:
    response = post(node, CLAIM_PATH, {"prescription_id": rx, "facility_id": node.facility_id,
                                       "items": [{"item_no": item_no, "quantity": quantity}]})
    assert response.status_code == 200, body_of(response)
    return body_of(response)


def claim_rows(storage) -> list[dict]:
    with storage.reader() as tx:
        return tx.query("SELECT * FROM hub_claims ORDER BY granted_at")


def test_first_claim_granted_second_refused_with_where_and_when(rx_world, storage):
    one, two, rx = rx_world["one"], rx_world["two"], rx_world["rx"]
    granted = ask(one, rx)
    assert granted["granted"] is True
    assert granted["remaining"] == [{"item_no": 1, "inn": "Amoxicillin", "remaining_total": 0,
                                     "room_in_fill": 0}]
    refused = ask(two, rx)
    assert refused["granted"] is False and refused["reason"] == rules.NOTHING_LEFT
    [held] = refused["claims"]
    assert held["facility_name"] == "Dorixona Shifo" and held["quantity"] == 20
    assert held["claim_id"] == granted["claim_id"]
    assert [r["claim_id"] for r in claim_rows(storage)] == [granted["claim_id"]]


def test_dispense_consumes_its_claim_and_the_refusal_names_the_dispense(rx_world, storage):
    one, two, rx = rx_world["one"], rx_world["two"], rx_world["rx"]
    granted = ask(one, rx, quantity=15)
    one.dispense(rx)  # quantity 20 in the helper; make it the claimed 15 with the claim id
    one.log.pop()
    one.emit("MedicationDispensed", {
        "dispense_id": new_ulid(), "prescription_id": rx, "item_no": 1, "quantity": 15,
        "product": "Amoksitsillin 500", "batch": "B-1", "expiry": "2028-01-31",
        "dispensed_at": "2026-01-01T08:00:00Z", "mode": "online_claimed",
        "facility_id": one.facility_id, "claim_id": granted["claim_id"]})
    assert body_of(one.push())["acked_seq"] == len(one.log)
    # The claim is consumed: the 15 count once, as dispensed; 5 remain for anyone.
    status = body_of(post(two, CLAIM_STATUS_PATH, {"prescription_id": rx}))
    assert status["claims"] == []
    assert [(d["facility_name"], d["quantity"], d["dispensed_at"]) for d in status["dispensed"]] \
        == [("Dorixona Shifo", 15, "2026-01-01T08:00:00Z")]
    assert status["remaining"][0]["remaining_total"] == 5
    refused = ask(two, rx, quantity=6)
    assert refused["reason"] == rules.MORE_THAN_REMAINS
    assert ask(two, rx, quantity=5)["granted"] is True


def test_release_frees_the_claim_only_for_its_own_node(rx_world, storage):
    one, two, rx = rx_world["one"], rx_world["two"], rx_world["rx"]
    claim_id = ask(one, rx)["claim_id"]
    stolen = body_of(post(two, CLAIM_RELEASE_PATH, {"claim_id": claim_id}))
    assert stolen == {"released": False}
    assert ask(two, rx)["granted"] is False
    assert body_of(post(one, CLAIM_RELEASE_PATH, {"claim_id": claim_id})) == {"released": True}
    assert ask(two, rx)["granted"] is True


def test_an_expired_claim_is_released_and_a_restart_keeps_a_held_one(rx_world, storage,
                                                                     storage_url):
    one, two, rx = rx_world["one"], rx_world["two"], rx_world["rx"]
    ask(one, rx)
    storage.close()
    reopened = open_storage(storage_url)  # a hub restarted: the claim is in its database
    try:
        now = datetime.now(UTC)
        asked = rules.ClaimRequest(rx, two.facility_id, ((1, 20),))
        held = claims.claim(reopened, two.identity, asked, now, None)
        assert held["granted"] is False and held["claims"][0]["facility_name"] == \
            "Dorixona Shifo"
        later = now + timedelta(seconds=rules.CLAIM_TTL_SECONDS + 1)
        assert claims.claim(reopened, two.identity, asked, later, None)["granted"] is True
    finally:
        reopened.close()


def test_a_granted_claim_reaches_the_regions_pharmacies_by_pull(rx_world):
    one, two, sam, rx = rx_world["one"], rx_world["two"], rx_world["sam"], rx_world["rx"]
    claim_id = ask(one, rx, quantity=10)["claim_id"]
    two.sync_down()
    claimed = [e for e in two.received.values() if e["type"] == "PrescriptionClaimed"]
    assert [(e["payload"]["claim_id"], e["payload"]["items"], e["payload"]["facility_name"])
            for e in claimed] == [(claim_id, [{"item_no": 1, "quantity": 10}],
                                   "Dorixona Shifo")]
    sam.register_facility()
    sam.push()
    sam.sync_down()
    assert not [e for e in sam.received.values() if e["type"] == "PrescriptionClaimed"]


def test_cancelled_expired_and_unknown_prescriptions_are_refused(rx_world, storage):
    one, clinic, rx = rx_world["one"], rx_world["clinic"], rx_world["rx"]
    assert ask(one, new_ulid())["reason"] == rules.UNKNOWN_PRESCRIPTION
    assert ask(one, rx, item_no=2)["reason"] == rules.UNKNOWN_ITEM
    expired = clinic.prescribe(clinic.register_patient(), clinic.register_practitioner(),
                               days_valid=-1)
    clinic.cancel_prescription(rx)
    clinic.push()
    assert ask(one, rx)["reason"] == rules.CANCELLED
    assert ask(one, expired)["reason"] == rules.OUTSIDE_VALIDITY
    assert claim_rows(storage) == []


@pytest.mark.parametrize("data, field", [
    ({"prescription_id": "x", "items": [{"item_no": 1, "quantity": 1}]}, "prescription_id"),
    ({"items": [{"item_no": 9, "quantity": 1}]}, "items"),
    ({"items": [{"item_no": 1, "quantity": 0}]}, "items"),
    ({"items": []}, "items"),
])
def test_a_bad_claim_is_refused_with_its_field_and_changes_nothing(rx_world, storage, data,
                                                                   field):
    one = rx_world["one"]
    body = {"prescription_id": rx_world["rx"], "facility_id": one.facility_id, **data}
    response = post(one, CLAIM_PATH, body)
    assert response.status_code == 400
    assert body_of(response)["error"]["code"] == "claim_invalid"
    assert body_of(response)["error"]["field"] == field
    assert claim_rows(storage) == []


def test_unsigned_or_foreign_facility_claims_are_refused(rx_world, storage):
    one, two, rx = rx_world["one"], rx_world["two"], rx_world["rx"]
    body = json.dumps({"prescription_id": rx, "facility_id": one.facility_id,
                       "items": [{"item_no": 1, "quantity": 1}]}).encode()
    assert one.client.post(CLAIM_PATH, data=body).status_code == 401
    response = post(two, CLAIM_PATH, {"prescription_id": rx, "facility_id": one.facility_id,
                                      "items": [{"item_no": 1, "quantity": 1}]})
    assert response.status_code == 403
    clinic = rx_world["clinic"]
    response = post(clinic, CLAIM_PATH, {"prescription_id": rx, "facility_id": clinic.facility_id,
                                         "items": [{"item_no": 1, "quantity": 1}]})
    assert response.status_code == 403  # only pharmacies claim
    assert post(clinic, CLAIM_STATUS_PATH, {"prescription_id": rx}).status_code == 403
    assert claim_rows(storage) == []


def test_the_node_and_the_hub_name_the_hub_origin_alike():
    from central_hub.rights import HUB_ORIGIN
    assert rules.HUB_ORIGIN == HUB_ORIGIN


def test_twenty_concurrent_claims_on_either_backend_grant_exactly_one(rx_world, storage):
    """The decision holds the writer lock (PostgreSQL: an advisory lock) across check and
    grant: no two threads both see the prescription unclaimed."""
    one, two, rx = rx_world["one"], rx_world["two"], rx_world["rx"]
    barrier = threading.Barrier(20)
    answers = []

    def attempt(node):
        asked = rules.ClaimRequest(rx, node.facility_id, ((1, 20),))
        barrier.wait()
        answers.append(claims.claim(storage, node.identity, asked, datetime.now(UTC), None))

    threads = [threading.Thread(target=attempt, args=((one, two)[i % 2],)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a["granted"] for a in answers) == [False] * 19 + [True]
    assert {a["reason"] for a in answers if not a["granted"]} == {rules.NOTHING_LEFT}
    assert len(claim_rows(storage)) == 1
