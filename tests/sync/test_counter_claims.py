"""Pharmacies claim at the hub before they dispense (issue 13), node and hub together
in-process (the real HubClient, signing and hub app; helpers.transports.FlaskTransport).

Online a dispense is claimed and recorded as online_claimed with the claim id; a second
pharmacy is refused with where and when; a claim pulled by another pharmacy bounds it after it
goes offline; a silent hub is given up on within the claim timeout, the pharmacist dispenses
offline under the amber verdict, and the over-dispensing conflict is raised as before."""

from __future__ import annotations

import json
import re
import socket
import time
from types import SimpleNamespace

import pytest
from helpers.enrolments import CLINIC, PHARMACY, PHARMACY2
from helpers.node import AMOXICILLIN
from helpers.sync_world import Hub, Node
from helpers.ui import post, staff_sign_in, text_of  # noqa: F401

from edge_node.services import dispensing, online_dispense, prescribing
from edge_node.sync.client import CLAIM_TIMEOUT_SECONDS
from edge_node.trust_store import current_trust_list

pytestmark = pytest.mark.usefixtures("catalogues")

HUB_URL = "http://hub.invalid"  # never resolved: the transport carries it in-process
PACK = {"product": "Amoksil", "batch": "B2311", "expiry": "2031-01-31"}


@pytest.fixture
def world(tmp_path, sync_pki, node_templates):
    hub = Hub.start(tmp_path, sync_pki, serve=False)
    clinic = Node.start(CLINIC, tmp_path, sync_pki, node_templates, HUB_URL, web=False,
                        transport=hub.transport())
    one, two = (Node.start(role, tmp_path, sync_pki, node_templates, HUB_URL,
                           transport=hub.transport()) for role in (PHARMACY, PHARMACY2))
    patient = clinic.store.one("SELECT patient_id FROM patients ORDER BY pinfl")
    rx = prescribing.issue_prescription(clinic.store, clinic.actor("doctor"),
                                        clinic.credentials, patient_id=patient["patient_id"],
                                        items=[AMOXICILLIN])
    for node in (clinic, one, two):
        assert node.sync()["ok"]
    yield SimpleNamespace(hub=hub, clinic=clinic, one=one, two=two, rx=rx)
    for node in (clinic, one, two):
        node.close()
    hub.close()


@pytest.fixture
def silent_hub():
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def give(node: Node, rx: dict, quantity: int = 20, **extra):
    return online_dispense.dispense_with_hub(
        node.store, node.actor("pharmacist"), node.client, config=node.app.config,
        prescription_id=rx["prescription_id"], item_no=1, quantity=quantity, code=rx["qr"],
        **PACK, **extra)


def own_dispenses(node: Node) -> list[dict]:
    return [json.loads(r["payload"]) for r in node.store.query(
        "SELECT payload FROM events WHERE origin = ? AND type = 'MedicationDispensed'",
        (node.node_id,))]


def hub_claims(hub: Hub) -> list[dict]:
    with hub.storage.reader() as tx:
        return tx.query("SELECT * FROM hub_claims")


def test_online_the_first_is_granted_and_recorded_online_the_second_refused(world):
    result = give(world.one, world.rx)
    [claim] = hub_claims(world.hub)
    assert result["mode"] == "online_claimed" and result["claim_id"] == claim["claim_id"]
    [event] = own_dispenses(world.one)
    assert (event["mode"], event["claim_id"]) == ("online_claimed", claim["claim_id"])
    with pytest.raises(online_dispense.ClaimRefused) as refused:
        give(world.two, world.rx)
    held = refused.value.answer["claims"][0]
    assert (held["facility_id"], held["facility_name"]) == (world.one.facility_id,
                                                           "7-son dorixona")
    assert refused.value.params["where"] == "7-son dorixona"
    assert own_dispenses(world.two) == []
    # The dispense reaches the hub and consumes the claim: the refusal now names the dispense.
    assert world.one.sync()["ok"]
    with pytest.raises(online_dispense.ClaimRefused) as refused:
        give(world.two, world.rx)
    answer = refused.value.answer
    assert answer["claims"] == []
    assert [(d["facility_name"], d["quantity"], d["mode"]) for d in answer["dispensed"]] == \
        [("7-son dorixona", 20, "online_claimed")]
    assert refused.value.params["when"] == event["dispensed_at"]
    assert world.two.sync()["ok"]
    assert world.hub.conflicts() == []


def test_a_claim_pulled_before_going_offline_still_counts(world):
    granted = world.one.client.claim(dispensing_claim(world))
    assert granted["granted"]
    assert world.two.sync()["ok"]  # pulls PrescriptionClaimed
    world.two.go_offline()
    verdict = dispensing.record_scan(world.two.store, world.two.actor("pharmacist"),
                                    current_trust_list(world.two.store,
                                                       world.two.credentials), world.rx["qr"])
    assert verdict.code == "already_dispensed"
    assert [(c["facility_id"], c["quantity"]) for c in verdict.claims] == \
        [(world.one.facility_id, 20)]
    with pytest.raises(dispensing.Conflict) as refused:
        give(world.two, world.rx, offline=True)
    assert refused.value.code == "more_than_remains"
    assert own_dispenses(world.two) == []


def dispensing_claim(world):
    from sync_protocol.claims import ClaimRequest
    return ClaimRequest(world.rx["prescription_id"], world.one.facility_id, ((1, 20),))


def test_a_silent_hub_is_given_up_then_an_offline_dispense_raises_the_conflict(world,
                                                                               silent_hub):
    give(world.one, world.rx)
    assert world.one.sync()["ok"]
    world.two.client.base_url = silent_hub  # two has not pulled one's dispense
    started = time.monotonic()
    with pytest.raises(online_dispense.HubSilent):
        give(world.two, world.rx)
    waited = time.monotonic() - started
    assert CLAIM_TIMEOUT_SECONDS * 0.9 <= waited < CLAIM_TIMEOUT_SECONDS + 1.5
    assert own_dispenses(world.two) == []
    result = give(world.two, world.rx, offline=True)
    assert result["mode"] == "offline"
    [event] = own_dispenses(world.two)
    assert event["mode"] == "offline" and "claim_id" not in event
    world.two.go_online()
    assert world.two.sync()["ok"]
    [conflict] = world.hub.conflicts()
    assert conflict["kind"] == "over_dispensing"
    assert conflict["details"]["dispensed_by_facility"] == {world.one.facility_id: 20,
                                                            world.two.facility_id: 20}


# -- the counter screens ---------------------------------------------------------------------

def counter(node: Node):
    client = node.app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    staff_sign_in(client, "pharmacist")
    return client


def scan(client, code: str) -> str:
    post(client, "/ui/counter/scan", {"code": code})
    return client.get("/ui/counter/").text


def verdict_of(html: str) -> str | None:
    match = re.search(r'class="panel verdict verdict-(\w+)" id="verdict" data-verdict="(\w+)"',
                      html)
    return f"{match.group(2)}/{match.group(1)}" if match else None


def verdict_text(html: str) -> str:
    return text_of(html.split('id="verdict"')[1].split("<table")[0])


def dispense_form(html: str) -> dict[str, str]:
    form = re.search(r'<form[^>]*data-dispense="1"[^>]*>(.*?)</form>', html, re.S).group(1)
    return dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form))


def test_counter_online_grant_shows_the_hubs_remainder_and_records_online(world):
    one = counter(world.one)
    page = scan(one, world.rx["qr"])
    assert verdict_of(page) == "valid/ok"
    assert "The hub: 20" in text_of(page)
    form = dispense_form(page)
    assert form["mode"] == "online"
    response = post(one, "/ui/counter/dispense", {**form, "quantity": "20", **PACK})
    assert response.status_code == 302
    assert [e["mode"] for e in own_dispenses(world.one)] == ["online_claimed"]


def test_counter_shows_a_refusal_in_words_and_the_hubs_verdict(world):
    two = counter(world.two)
    page = scan(two, world.rx["qr"])
    form = dispense_form(page)  # shown while nothing was claimed yet
    give(world.one, world.rx)
    response = post(two, "/ui/counter/dispense", {**form, "quantity": "20", **PACK})
    assert response.status_code == 409
    assert "Refused by the hub: being dispensed at 7-son dorixona (claimed at" in \
        text_of(response.text)
    assert own_dispenses(world.two) == []
    assert world.one.sync()["ok"]
    page = scan(two, world.rx["qr"])
    assert verdict_of(page) == "valid/warn"  # valid here, but the hub says nothing remains
    assert "Already dispensed elsewhere" in page
    assert re.search(r"Dispensed at 7-son dorixona on \d+ \w+ \d{4}, \d\d:\d\d",
                     verdict_text(page))
    assert 'data-dispense="1"' not in page


def test_counter_offline_node_shows_amber_and_dispenses_offline(world):
    world.two.go_offline()
    assert not world.two.sync()["ok"]
    two = counter(world.two)
    page = scan(two, world.rx["qr"])
    assert verdict_of(page) == "valid/warn"
    assert "Valid here" in page
    assert re.search(r"Dispensing at other pharmacies since \d+ \w+ \d{4}, \d\d:\d\d is not"
                     r" known", verdict_text(page))
    form = dispense_form(page)
    assert form["mode"] == "offline" and "data-dispense-offline" in page
    response = post(two, "/ui/counter/dispense", {**form, "quantity": "20", **PACK})
    assert response.status_code == 302
    assert [e["mode"] for e in own_dispenses(world.two)] == ["offline"]
    assert hub_claims(world.hub) == []


def test_a_claim_is_released_when_the_local_dispense_fails(world, monkeypatch):
    def failing(*_args, **_kwargs):
        raise dispensing.ValidationFailed("The node could not record it", field="batch")
    monkeypatch.setattr(online_dispense.dispensing, "dispense", failing)
    with pytest.raises(dispensing.ValidationFailed):
        give(world.one, world.rx)
    [claim] = hub_claims(world.hub)
    assert claim["released_at"] is not None  # freed at once, not left to expire
    monkeypatch.undo()
    assert give(world.two, world.rx)["mode"] == "online_claimed"


def test_nothing_is_claimed_for_more_than_remains_here(world):
    with pytest.raises(dispensing.Conflict) as refused:
        give(world.one, world.rx, quantity=21)
    assert refused.value.code == "more_than_remains"
    assert hub_claims(world.hub) == []
    give(world.one, world.rx)
    with pytest.raises(dispensing.Conflict) as refused:
        give(world.one, world.rx)
    assert refused.value.code == "already_dispensed"
    assert refused.value.params["where"] == "7-son dorixona"
    assert len(hub_claims(world.hub)) == 1


def test_the_api_says_the_hub_timed_out_then_dispenses_offline(world, silent_hub):
    client = world.two.app.test_client()
    token = client.post("/api/v1/auth/sign-in", json={"username": "pharmacist",
                                                      "pin": "3333"}).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    client.post("/api/v1/pharmacy/verify", json={"code": world.rx["qr"]}, headers=headers)
    world.two.client.base_url = silent_hub
    body = {"prescription_id": world.rx["prescription_id"], "item_no": 1, "quantity": 20,
            "code": world.rx["qr"], **PACK}
    response = client.post("/api/v1/pharmacy/dispense", json=body, headers=headers)
    assert response.status_code == 504
    assert response.json["error"]["code"] == "hub_timeout"
    assert own_dispenses(world.two) == []
    response = client.post("/api/v1/pharmacy/dispense", json={**body, "offline": True},
                           headers=headers)
    assert response.status_code == 201 and response.json["mode"] == "offline"
    assert [e["mode"] for e in own_dispenses(world.two)] == ["offline"]


def test_a_node_known_offline_dispenses_offline_without_waiting_for_the_hub(world):
    world.two.go_offline()
    assert not world.two.sync()["ok"]
    started = time.monotonic()
    result = give(world.two, world.rx)  # offline not said: the node's sync state decides
    assert result["mode"] == "offline"
    assert time.monotonic() - started < CLAIM_TIMEOUT_SECONDS
    assert hub_claims(world.hub) == []


def test_the_hub_judges_a_prescription_it_lacks_from_the_scanned_code(world):
    patient = world.clinic.store.one("SELECT patient_id FROM patients ORDER BY pinfl")
    unsynced = prescribing.issue_prescription(
        world.clinic.store, world.clinic.actor("doctor"), world.clinic.credentials,
        patient_id=patient["patient_id"], items=[AMOXICILLIN])  # the clinic does not sync
    for node in (world.one, world.two):  # each pharmacist scans it
        dispensing.record_scan(node.store, node.actor("pharmacist"),
                              current_trust_list(node.store, node.credentials), unsynced["qr"])
    assert give(world.one, unsynced)["mode"] == "online_claimed"
    with pytest.raises(online_dispense.ClaimRefused) as refused:
        give(world.two, unsynced)
    assert refused.value.answer["reason"] == "nothing_left"
    with pytest.raises(online_dispense.ClaimRefused) as refused:
        give(world.two, {**unsynced, "qr": None}, quantity=1)
    assert refused.value.answer["reason"] == "unknown_prescription"


def test_counter_a_cancellation_the_node_has_not_pulled_is_refused_in_words(world):
    two = counter(world.two)
    page = scan(two, world.rx["qr"])
    form = dispense_form(page)
    prescribing.cancel_prescription(world.clinic.store, world.clinic.actor("doctor"),
                                    world.rx["prescription_id"], reason="allergy")
    assert world.clinic.sync()["ok"]  # the hub knows; pharmacy two has not pulled
    response = post(two, "/ui/counter/dispense", {**form, "quantity": "20", **PACK})
    assert response.status_code == 409
    assert "The hub refused: the doctor cancelled this prescription" in text_of(response.text)
    page = scan(two, world.rx["qr"])
    assert verdict_of(page) == "valid/bad"
    assert "The hub says the doctor cancelled it: do not dispense." in verdict_text(page)
    assert 'data-dispense="1"' not in page
    assert own_dispenses(world.two) == []
