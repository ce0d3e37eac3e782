"""A node catching up applies pulled events a page at a time (Transaction.receive_page): the
outcomes and the state are those of receiving each event alone, a bad event in a page is
quarantined alone and shown, and the good ones around it apply."""

import itertools
import shutil

import pytest
from helpers.node import RemoteNode, booking, future_slot, snapshot

from edge_node.store import NodeStore
from sync_protocol.identifiers import new_ulid

DOCUMENTS = itertools.count(1_000_000)


def receive_page(store, events, payloads=None):
    with store.transaction() as tx:
        return tx.receive_page(events, payloads)


def state(store):
    tables = snapshot(store)
    failures = [(row[0], row[3]) for row in tables["apply_failures"]]  # id, reason
    return {"appointments": tables["appointments"], "patients": tables["patients"],
            "patient_field_clock": tables["patient_field_clock"], "failures": failures,
            "log": sorted(e.id for e in store.events())}


def patient(node, seeded, pinfl=None, med_id=None):
    return node.event("PatientRegistered", {
        "patient_id": new_ulid(), "med_id": med_id or "MED-" + new_ulid()[-10:],
        "full_name": "Uchinchi Bemor", "birth_date": "1985-03-14", "sex": "male",
        "phone": "+998901234567", "facility_id": seeded["facility_id"],
        **({"pinfl": pinfl} if pinfl else {"document": f"AA{next(DOCUMENTS)}"})})


def clash(node, seeded):
    """A registration this node cannot apply: its PINFL is another patient's here."""
    return patient(node, seeded, pinfl=seeded["patients"][0]["pinfl"])


@pytest.fixture
def mixed(store, seeded):
    """Good events, a clash in the middle, a clock 40 days ahead, repeats in the page."""
    doctor = seeded["doctors"][0]["practitioner_id"]
    a, b = RemoteNode("node-a"), RemoteNode("node-b", -1000)
    future = RemoteNode("node-future", 40 * 86_400_000)
    first = booking(a, seeded, future_slot(store, doctor, index=0), 0)
    events = [first, patient(b, seeded), clash(b, seeded), patient(b, seeded),
              booking(future, seeded, future_slot(store, doctor, index=1), 1),
              booking(a, seeded, future_slot(store, doctor, index=2), 2), first,
              a.event("PatientFieldChanged", {
                  "patient_id": seeded["patient_rows"][1]["patient_id"], "field": "phone",
                  "value": "+998907770000"})]
    return events


def test_a_page_gives_the_outcomes_and_state_of_one_event_at_a_time(
        tmp_path, seeded_template, seeded, mixed):
    stores = []
    for name in ("one", "page"):
        path = tmp_path / f"{name}.db"
        shutil.copyfile(seeded_template[0], path)
        stores.append(NodeStore(path))
    one, page = stores
    try:
        with one.transaction() as tx:
            singly = [tx.receive(event) for event in mixed]
        assert receive_page(page, mixed) == singly == [
            "applied", "applied", "quarantined", "applied", "quarantined", "applied",
            "duplicate", "applied"]
        assert state(page) == state(one)
        page.rebuild_projections()
        one.rebuild_projections()
        assert state(page) == state(one)
    finally:
        one.close()
        page.close()


def test_a_bad_event_in_a_page_is_quarantined_alone_and_shown(store, seeded):
    node = RemoteNode("node-x")
    before, bad, after = patient(node, seeded), clash(node, seeded), patient(node, seeded)
    assert receive_page(store, [before, bad, after]) == ["applied", "quarantined", "applied"]
    (failure,) = store.query("SELECT * FROM apply_failures")
    assert failure["event_id"] == bad.id and "IntegrityError" in failure["reason"]
    held = {row["id"] for row in store.query("SELECT id FROM events")}
    assert {before.id, bad.id, after.id} <= held  # kept in the log: it happened
    patients = {row["patient_id"] for row in store.query("SELECT patient_id FROM patients")}
    assert before.payload["patient_id"] in patients and after.payload["patient_id"] in patients
    assert bad.payload["patient_id"] not in patients
    shown = snapshot(store)
    store.rebuild_projections()
    assert snapshot(store) == shown


def test_a_page_received_again_changes_nothing(store, seeded, mixed):
    receive_page(store, mixed)
    held = snapshot(store)
    assert receive_page(store, mixed) == ["duplicate"] * len(mixed)
    assert snapshot(store) == held
    assert receive_page(store, []) == []


def test_a_clock_far_ahead_in_a_page_is_quarantined_and_not_followed(store, seeded):
    doctor = seeded["doctors"][0]["practitioner_id"]
    good = booking(RemoteNode("node-a"), seeded, future_slot(store, doctor, index=0), 0)
    ahead = booking(RemoteNode("node-future", 40 * 86_400_000), seeded,
                    future_slot(store, doctor, index=1), 1)
    assert receive_page(store, [good, ahead]) == ["applied", "quarantined"]
    assert store.clock.last.wall_ms >= good.timestamp.wall_ms
    assert store.clock.last.wall_ms < ahead.timestamp.wall_ms - 30 * 86_400_000
    (failure,) = store.query("SELECT * FROM apply_failures")
    assert failure["event_id"] == ahead.id and "ahead" in failure["reason"]
    assert store.state("hlc_last") == str(store.clock.last)


def test_a_failing_page_leaves_nothing_behind(store, seeded, monkeypatch):
    """An error that is not the event's fault (here the disk) undoes the whole page."""
    import sqlite3

    from edge_node import projections

    node = RemoteNode("node-x")
    events = [patient(node, seeded), patient(node, seeded)]
    held = snapshot(store)

    def broken(conn, event):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setitem(projections.HANDLERS, "PatientRegistered", broken)
    with pytest.raises(sqlite3.OperationalError):
        receive_page(store, events)
    assert snapshot(store) == held


def test_payload_texts_given_with_a_page_are_what_the_log_keeps(store, seeded, mixed):
    from sync_protocol.events import read_event_text

    read = [read_event_text(event.to_dict()) for event in mixed]
    outcomes = receive_page(store, [event for event, _, _ in read],
                            [text for _, _, text in read])
    assert outcomes.count("applied") == 5
    for event, _size, text in read:
        stored = store.one("SELECT payload FROM events WHERE id = ?", (event.id,))
        assert stored["payload"] == text
    assert {e.id: e for e in store.events()}[mixed[0].id] == mixed[0]


@pytest.mark.parametrize("by_page", [True, False])
def test_a_rebuild_leaves_out_what_was_refused_for_its_clock_as_the_live_path_did(
        store, seeded, by_page):
    doctor = seeded["doctors"][0]["practitioner_id"]
    ahead = booking(RemoteNode("node-future", 40 * 86_400_000), seeded,
                    future_slot(store, doctor, index=1), 1)
    if by_page:
        assert receive_page(store, [ahead]) == ["quarantined"]
    else:
        with store.transaction() as tx:
            assert tx.receive(ahead) == "quarantined"
    live = snapshot(store)
    assert ahead.payload["appointment_id"] not in {r["appointment_id"] for r in store.query(
        "SELECT appointment_id FROM appointments")}
    store.rebuild_projections()
    assert snapshot(store) == live
