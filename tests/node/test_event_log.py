"""The event log: every confirmed change once, gap-free, chained, validated."""

import json
import sqlite3

import pytest
from helpers.node import future_slot, snapshot

from edge_node.services import appointments, patients
from sync_protocol.errors import ChainBroken, PayloadInvalid, UnknownEventType
from sync_protocol.events import event_from_dict, verify_chain


def test_each_change_is_one_event_in_the_same_transaction(store, seeded, actor_for):
    before = len(store.events())
    doctor = seeded["doctors"][0]["practitioner_id"]
    patient = seeded["patient_rows"][0]["patient_id"]
    appointment = appointments.book(store, actor_for("registrar"), patient_id=patient,
                                    practitioner_id=doctor,
                                    starts_at=future_slot(store, doctor), channel="registry")
    events = store.events()
    assert len(events) == before + 1
    assert events[-1].type == "AppointmentBooked"
    assert events[-1].payload["appointment_id"] == appointment
    assert store.one("SELECT status FROM appointments WHERE appointment_id = ?",
                     (appointment,))["status"] == "booked"


def test_a_failed_projection_leaves_no_event(store, seeded, actor_for, monkeypatch):
    from edge_node import projections

    def broken(conn, event):
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setitem(projections.HANDLERS, "AppointmentBooked", broken)
    before = snapshot(store)
    doctor = seeded["doctors"][0]["practitioner_id"]
    with pytest.raises(sqlite3.OperationalError):
        appointments.book(store, actor_for("registrar"),
                          patient_id=seeded["patient_rows"][0]["patient_id"],
                          practitioner_id=doctor, starts_at=future_slot(store, doctor),
                          channel="kiosk")
    assert snapshot(store) == before


def test_sequence_has_no_gaps_and_chain_verifies(store, seeded):
    events = store.events(origin=store.node_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    verify_chain(events)


def test_editing_a_stored_event_breaks_the_chain(store, seeded):
    events = store.events(origin=store.node_id)
    tampered = [*events]
    payload = {**events[3].payload, "full_name": "Someone Else"}
    tampered[3] = events[3].__class__(**{**events[3].to_dict(), "payload": payload})
    with pytest.raises(ChainBroken):
        verify_chain(tampered)
    with pytest.raises(ChainBroken):
        verify_chain(events[:2] + events[3:])  # a removed event


def test_received_events_are_checked(store, seeded):
    good = store.events()[0].to_dict()
    assert event_from_dict(json.loads(json.dumps(good))).id == good["id"]
    with pytest.raises(UnknownEventType):
        event_from_dict({**good, "type": "PatientTeleported"})
    with pytest.raises(PayloadInvalid):
        event_from_dict({**good, "payload": {**good["payload"], "kind": "spaceport"}})
    with pytest.raises(ChainBroken):
        event_from_dict({**good, "hlc": "000000000000001-00000"})


def test_unknown_event_type_and_bad_payload_are_refused_on_write(store, seeded):
    before = snapshot(store)
    with pytest.raises(UnknownEventType), store.transaction() as tx:
        tx.append("PatientTeleported", {"patient_id": "x"})
    with pytest.raises(PayloadInvalid) as caught, store.transaction() as tx:
        tx.append("AppointmentCancelled", {"appointment_id": "not-a-ulid"})
    assert caught.value.field == "appointment_id"
    assert snapshot(store) == before


def test_rebuild_gives_the_same_tables(store, seeded, actor_for):
    doctor = seeded["doctors"][0]["practitioner_id"]
    patient = seeded["patient_rows"][1]["patient_id"]
    registrar = actor_for("registrar")
    appointment = appointments.book(store, registrar, patient_id=patient, practitioner_id=doctor,
                                    starts_at=future_slot(store, doctor), channel="registry")
    appointments.reschedule(store, registrar, appointment,
                            starts_at=future_slot(store, doctor, index=3))
    patients.change_patient_field(store, registrar, patient, "phone", "+998901112233")
    before = snapshot(store)
    assert store.rebuild_projections() == len(store.events())
    assert snapshot(store) == before
