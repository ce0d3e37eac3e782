"""Events from other nodes: applied once, in any order to the same state; what cannot be
applied is kept and shown, and never blocks the rest."""

import itertools

from helpers.node import RemoteNode, booking, future_slot, receive, snapshot

from edge_node.store import NodeStore
from sync_protocol.identifiers import new_ulid


def projection(store):
    return {t: rows for t, rows in snapshot(store).items()
            if t in ("appointments", "patients", "patient_field_clock")}


def test_a_remote_event_twice_is_applied_once(store, seeded):
    node = RemoteNode("node-web")
    event = booking(node, seeded, future_slot(store, seeded["doctors"][0]["practitioner_id"]), 0)
    assert receive(store, [event, event]) == ["applied", "duplicate"]
    assert receive(store, [event]) == ["duplicate"]
    assert len([e for e in store.events() if e.id == event.id]) == 1


def test_double_booked_slot_has_the_same_winner_in_any_order(tmp_path, seeded_template,
                                                             seeded):
    import shutil
    slot_store = NodeStore(seeded_template[0])
    slot = future_slot(slot_store, seeded["doctors"][0]["practitioner_id"])
    slot_store.close()
    early, late = RemoteNode("node-a", -500_000), RemoteNode("node-b")
    events = [booking(early, seeded, slot, 0), booking(late, seeded, slot, 1)]
    states = []
    for index, order in enumerate(itertools.permutations(events)):
        path = tmp_path / f"n{index}.db"
        shutil.copyfile(seeded_template[0], path)
        node = NodeStore(path)
        assert receive(node, list(order)) == ["applied", "applied"]
        rows = {r["appointment_id"]: r["status"] for r in node.query(
            "SELECT appointment_id, status FROM appointments")}
        states.append(rows)
        node.close()
    assert states[0] == states[1]
    assert states[0][events[0].payload["appointment_id"]] == "booked"
    assert states[0][events[1].payload["appointment_id"]] == "bumped"


def test_patient_field_edits_converge_by_later_clock(store, seeded):
    patient = seeded["patient_rows"][0]["patient_id"]
    a, b = RemoteNode("node-a", -100), RemoteNode("node-b")
    first = a.event("PatientFieldChanged", {"patient_id": patient, "field": "phone",
                                            "value": "+998901110000"})
    later = b.event("PatientFieldChanged", {"patient_id": patient, "field": "phone",
                                            "value": "+998902220000"})
    receive(store, [later, first])
    assert store.one("SELECT phone FROM patients WHERE patient_id = ?",
                     (patient,))["phone"] == "+998902220000"
    # both values stay in history (the log)
    values = [e.payload["value"] for e in store.events() if e.type == "PatientFieldChanged"]
    assert {"+998901110000", "+998902220000"} <= set(values)


def test_an_unapplicable_event_is_kept_shown_and_does_not_block(store, seeded):
    node = RemoteNode("node-x")
    clash = node.event("PatientRegistered", {
        "patient_id": new_ulid(), "med_id": "MED-CLASH00001", "full_name": "Ikkinchi Bemor",
        "birth_date": "1985-03-14", "sex": "male", "phone": "+998901234567",
        "facility_id": seeded["facility_id"], "pinfl": seeded["patients"][0]["pinfl"]})
    fine = booking(node, seeded, future_slot(store, seeded["doctors"][0]["practitioner_id"]), 1)
    assert receive(store, [clash, fine]) == ["quarantined", "applied"]
    failure = store.one("SELECT * FROM apply_failures")
    assert failure["event_id"] == clash.id and "IntegrityError" in failure["reason"]
    assert store.one("SELECT 1 FROM events WHERE id = ?", (clash.id,))
    before = projection(store)
    store.rebuild_projections()
    assert projection(store) == before


def test_remote_clock_far_ahead_is_quarantined_not_followed(store, seeded):
    node = RemoteNode("node-future", 40 * 86_400_000)  # a clock 40 days ahead
    event = booking(node, seeded, future_slot(store, seeded["doctors"][0]["practitioner_id"]), 2)
    assert receive(store, [event]) == ["quarantined"]
    assert store.clock.last.wall_ms < event.timestamp.wall_ms - 30 * 86_400_000
