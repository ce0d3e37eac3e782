"""Conflicts at the node (DESIGN 5): what the hub raised about this facility's records, listed
read-only for staff, each role its kinds, with the review (who, when, why) and the events
involved in words; the count in the navigation; reviewing stays at the hub."""

from __future__ import annotations

import re

import pytest
from helpers.node import AMOXICILLIN, RemoteNode, receive
from helpers.ui import staff_sign_in, text_of, translated

from edge_node.errors import Forbidden, ValidationFailed
from edge_node.services import conflicts, dispensing, prescribing
from edge_node.services.access import Actor
from sync_protocol.identifiers import new_ulid

pytestmark = pytest.mark.usefixtures("catalogues")

REVIEWER = "Karimova Dilnoza (dkarimova)"
WHY = "Checked with the pharmacy: two tills, one patient"


@pytest.fixture
def world(store, seeded, actor_for, clinic_credentials):
    """An over-dispensing conflict naming this node's dispense (acknowledged at the hub, who
    and why) and a double booking naming an event this node never received (open)."""
    patient = seeded["patient_rows"][0]
    rx = prescribing.issue_prescription(store, actor_for("doctor"), clinic_credentials,
                                        patient_id=patient["patient_id"], items=[AMOXICILLIN])
    dispensing.dispense(store, actor_for("pharmacist"), facility_id=seeded["facility_id"],
                        prescription_id=rx["prescription_id"], item_no=1, quantity=20,
                        product="Amoksil", batch="B2311", expiry="2031-01-31")
    dispensed = store.events()[-1]
    assert dispensed.type == "MedicationDispensed"
    hub = RemoteNode("hub:central")
    over, double, elsewhere = new_ulid(), new_ulid(), new_ulid()
    events = [
        hub.event("ConflictRaised", {
            "conflict_id": over, "kind": "over_dispensing", "subject_id": rx["prescription_id"],
            "event_ids": [dispensed.id], "facility_ids": [seeded["facility_id"]],
            "details": {"prescribed": 20, "dispensed": 40}}),
        hub.event("ConflictRaised", {
            "conflict_id": double, "kind": "double_booking", "subject_id": "slot-1",
            "event_ids": [elsewhere], "facility_ids": [seeded["facility_id"]],
            "details": {}}),
        hub.event("ConflictStateChanged", {"conflict_id": over, "state": "acknowledged",
                                           "by": REVIEWER, "note": WHY}),
    ]
    assert receive(store, events) == ["applied"] * 3
    return {"over": over, "double": double, "rx": rx, "elsewhere": elsewhere}


def listed(html: str) -> set[str]:
    return set(re.findall(r'data-conflict="(\w+)"', html))


def nav_count(html: str) -> int | None:
    match = re.search(r'data-count="conflicts">(\d+)<', html)
    return int(match.group(1)) if match else None


@pytest.mark.parametrize(("who", "sees"), [
    ("pharmacist", {"over"}), ("registrar", {"double"}), ("doctor", {"over", "double"}),
    ("admin", {"over", "double"}),
])
def test_each_role_sees_the_kinds_of_its_work(client, world, who, sees):
    staff_sign_in(client, who)
    page = client.get("/ui/conflicts/?state=all")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert listed(page.text) == {world[k] for k in sees}
    # The navigation counts the open ones only (the over-dispensing one is acknowledged).
    assert nav_count(page.text) == (1 if "double" in sees else None)


def test_anonymous_is_sent_to_sign_in(client, world):
    response = client.get("/ui/conflicts/")
    assert response.status_code == 302 and "/ui/desk/sign-in" in response.headers["Location"]


def test_a_role_without_conflicts_is_refused_by_the_service(store, world):
    with pytest.raises(Forbidden):
        conflicts.list_conflicts(store, Actor("p1", "patient"))
    with pytest.raises(Forbidden):
        conflicts.count_conflicts(store, Actor("p1", "patient"))
    with pytest.raises(ValidationFailed):
        conflicts.list_conflicts(store, Actor("s1", "doctor"), state="closed")


@pytest.mark.parametrize("lang", ("uz", "ru", "en"))
def test_the_review_and_the_events_are_shown_in_words(client, world, lang):
    staff_sign_in(client, "pharmacist")
    page = client.get(f"/ui/conflicts/?state=acknowledged&lang={lang}")
    assert listed(page.text) == {world["over"]}
    text = text_of(page.text)
    assert translated(lang, "More dispensed than prescribed") in text
    assert translated(lang, "Acknowledged") in text
    assert REVIEWER in text and WHY in text  # who and why, from the hub's review
    assert translated(lang, "Medicine dispensed") in text and "Amoksil" in text
    assert world["rx"]["prescription_id"] in text  # the subject
    # Reviewing is at the hub: the page says so and offers no form to change anything.
    assert translated(lang, "Conflicts found by the central hub in this facility's records, as"
                      " last synced. They are reviewed (acknowledged or resolved) at the hub,"
                      " not here.") in text
    assert "<form" not in page.text.split("<main", 1)[1].split("</main>")[0]


def test_an_event_not_on_this_node_says_so(client, world):
    staff_sign_in(client, "registrar")
    page = client.get("/ui/conflicts/")  # open ones by default
    assert listed(page.text) == {world["double"]}
    text = text_of(page.text)
    assert translated("en", "One slot booked twice") in text
    assert translated("en", "An event this node has not received (%(id)s)",
                      id=world["elsewhere"]) in text


@pytest.mark.parametrize(("state", "expected"), [
    ("open", {"double"}), ("acknowledged", {"over"}), ("resolved", set()),
    ("all", {"over", "double"}), ("nonsense", {"double"}),
])
def test_the_state_filter(client, world, state, expected):
    staff_sign_in(client, "doctor")
    page = client.get(f"/ui/conflicts/?state={state}")
    assert page.status_code == 200
    assert listed(page.text) == {world[k] for k in expected}
    if not expected:
        assert "data-empty" in page.text


def test_the_counter_navigation_counts_the_pharmacists_open_conflicts(client, store, world):
    staff_sign_in(client, "pharmacist")
    assert nav_count(client.get("/ui/counter/").text) is None  # acknowledged: not open
    hub = RemoteNode("hub:other")
    receive(store, [hub.event("ConflictRaised", {
        "conflict_id": new_ulid(), "kind": "dispense_after_cancellation",
        "subject_id": world["rx"]["prescription_id"], "event_ids": [new_ulid()],
        "facility_ids": [], "details": {}})])
    assert nav_count(client.get("/ui/counter/").text) == 1
    assert conflicts.count_conflicts(store, Actor("s", "registrar")) == 1  # the booking one


def test_every_kind_the_hub_raises_is_shown_to_someone_at_the_node():
    from edge_node.services.conflicts import KINDS, KINDS_BY_ROLE
    from sync_protocol.event_types import CONFLICT_KINDS
    assert set(KINDS) == set(CONFLICT_KINDS)
    assert set().union(*KINDS_BY_ROLE.values()) == set(CONFLICT_KINDS)
