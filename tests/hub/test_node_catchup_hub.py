"""The hub serves a catching-up node's pages encoded once (scope.pull_body): byte for byte the
page a plain reading of the scope gives (each stored event decoded, encoded and measured), on
both backends, whatever the bounds."""

from datetime import UTC, datetime

import pytest
from helpers.hub import body_of

from central_hub.hub_events import emit_hub_event
from central_hub.routing import node_audiences, row_event
from central_hub.scope import (
    PAGE_OVERHEAD_BYTES,
    CursorAhead,
    _feed_query,
    feed_head,
    node_facilities,
    pull_body,
    pull_page,
)
from sync_protocol.identifiers import new_ulid
from sync_protocol.timeutil import to_instant
from sync_protocol.wire import PulledEvent, PullQuery, PullResponse, dumps, json_size

BOUNDS = [(1000, 512 * 1024), (1, 512 * 1024), (3, 512 * 1024), (1000, 1024), (7, 2048)]


def pushed(node):
    response = node.push()
    assert response.status_code == 200, body_of(response)
    assert all(r["status"] != "refused" for r in body_of(response)["results"])


@pytest.fixture
def busy_region(nodes, storage):
    """Two clinics and a pharmacy of TAS, a pharmacy of SAM: registrations, patients seen at
    both clinics, prescriptions (one with text that JSON must escape), cancellations and
    dispenses, a patient moved to the other clinic."""
    clinic, clinic2, pharmacy = nodes["clinic"], nodes["clinic2"], nodes["pharmacy"]
    for node in nodes.values():
        node.register_facility()
    doctor, doctor2 = clinic.register_practitioner(), clinic2.register_practitioner()
    moved = clinic.register_patient()
    clinic2.book(moved, doctor2)
    prescriptions = []
    for _ in range(4):
        patient = clinic.register_patient()
        clinic.book(patient, doctor)
        prescriptions.append(clinic.prescribe(patient, doctor))
    prescriptions.append(clinic2.prescribe(moved, doctor2))
    clinic.emit("PrescriptionCancelled", {"prescription_id": prescriptions[0],
                                          "reason": 'Allergiya: "penitsillin" \\ Ўзгартирилди\n'})
    clinic.change_patient(moved, "facility_id", clinic2.facility_id)
    for node in nodes.values():
        pushed(node)
    for rx in prescriptions[1:3]:
        pharmacy.dispense(rx)
    pushed(pharmacy)
    # A hub-side registration for clinic2 reaches its node twice (its facility and its
    # region): the page holds it once.
    with storage.transaction() as tx:
        emit_hub_event(tx, "PractitionerRegistered", {
            "practitioner_id": new_ulid(), "facility_id": clinic2.facility_id,
            "full_name": "Karimov Anvar", "specialty": "therapist", "is_family_doctor": False})
    return nodes


def reference_page(storage, node, query, now) -> PullResponse:
    """The page read plainly: every event decoded, then encoded to be measured."""
    with storage.reader() as tx:
        head = feed_head(tx)
        union, params = _feed_query(node_audiences(node, node_facilities(tx, node)),
                                    node.node_id, query.after, head, query.limit + 1,
                                    to_instant(now), "id, position")
        rows = tx.query(f"SELECT d.id AS delivery_id, e.* FROM ({union}) AS d "  # noqa: S608
                        "JOIN events e ON e.position = d.position ORDER BY d.id LIMIT ?",
                        (*params, query.limit + 1))
    events, seen = [], set()
    size, last, more = PAGE_OVERHEAD_BYTES, query.after, False
    for index, row in enumerate(rows):
        if index == query.limit:
            more = True
            break
        if row["position"] in seen:
            last = row["delivery_id"]
            continue
        item = PulledEvent(row["position"], row_event(row).to_dict())
        item_bytes = json_size(item.to_dict()) + 1
        if events and size + item_bytes > query.max_bytes:
            more = True
            break
        events.append(item)
        seen.add(row["position"])
        size += item_bytes
        last = row["delivery_id"]
    return PullResponse(events, last if more else head, head, more)


@pytest.mark.parametrize(("limit", "max_bytes"), BOUNDS)
def test_every_page_is_the_page_scope_describes(busy_region, storage, limit, max_bytes):
    now = datetime.now(UTC)
    walked = 0
    for node in busy_region.values():
        after, pages = 0, 0
        while True:
            query = PullQuery(after, limit, max_bytes)
            page = reference_page(storage, node.identity, query, now)
            fast = pull_body(storage, node.identity, query, now)
            assert fast.body == dumps(page.to_dict())
            assert (fast.count, fast.next, fast.more) == (len(page.events), page.next,
                                                          page.more)
            walked += len(page.events)
            pages += 1
            after = page.next
            if not page.more:
                break
        assert pages < 1000
    assert walked >= 20


def test_a_cursor_past_the_head_is_refused_alike(busy_region, storage):
    node = busy_region["pharmacy"]
    now = datetime.now(UTC)
    head = pull_page(storage, node.identity, PullQuery(0), now).head
    for pull in (pull_page, pull_body):
        with pytest.raises(CursorAhead):
            pull(storage, node.identity, PullQuery(head + 1), now)


def test_the_api_serves_the_same_pages(busy_region, storage):
    pharmacy = busy_region["pharmacy"]
    now = datetime.now(UTC)
    expected, after = [], 0
    while True:
        page = pull_page(storage, pharmacy.identity, PullQuery(after, 2), now)
        expected += [item.event["id"] for item in page.events]
        after = page.next
        if not page.more:
            break
    assert pharmacy.sync_down(limit=2) == expected
    assert [pharmacy.received[i] for i in expected] == [
        item.event for item in pull_page(storage, pharmacy.identity, PullQuery(0),
                                         now).events]
