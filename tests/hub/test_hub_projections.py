"""The hub's projections: the same records whatever order events arrive in, the same as a
node's, and every physical fact kept."""

import json
from datetime import UTC, datetime

import pytest
from helpers.hub import SimNode, instant

from central_hub.composition import diff_snapshots, snapshot
from central_hub.composition import ingest_hooks as hub_hooks
from central_hub.ingest import Ingestor
from central_hub.projections import rebuild
from edge_node import projections as node_projections
from edge_node.store import NodeStore
from sync_protocol.events import event_from_dict
from sync_protocol.hlc import HybridLogicalClock
from sync_protocol.identifiers import new_ulid

ORIGINAL_PHONE = "+998901234567"


class Tick:
    """One wall clock for all simulated nodes: events made in turn have increasing clocks."""

    def __init__(self) -> None:
        self.ms = int(datetime.now(UTC).timestamp() * 1000)

    def __call__(self) -> int:
        self.ms += 1
        return self.ms


@pytest.fixture
def nodes(world):
    """Two clinics and a pharmacy, facilities registered; the first with a doctor, slots and
    a patient."""
    tick = Tick()
    out = {}
    for name, cred in (("clinic", world.pki.clinic), ("clinic2", world.clinic2),
                       ("pharmacy", world.pki.pharmacy)):
        node = SimNode(cred, None)
        node.clock = HybridLogicalClock(wall=tick)
        node.register_facility()
        out[name] = node
    clinic = out["clinic"]
    clinic.doctor = clinic.register_practitioner()
    clinic.starts = [instant(1 + i / 96) for i in range(4)]
    clinic.emit("SlotsPublished", {"schedule_id": new_ulid(), "practitioner_id": clinic.doctor,
                                   "facility_id": clinic.facility_id, "slot_minutes": 15,
                                   "starts": clinic.starts})
    clinic.patient = clinic.register_patient()
    return out


def ingest(storage, batches, hooks=None):
    ingestor = Ingestor(storage, hub_hooks() if hooks is None else hooks)
    for node, events in batches:
        response = ingestor.push(node.identity, events)
        assert {r.status for r in response.results} <= {"accepted", "duplicate"}, [
            r.reason for r in response.results]
    return ingestor


def book(node, clinic, start, patient=None):
    appointment = new_ulid()
    node.emit("AppointmentBooked", {
        "appointment_id": appointment, "patient_id": patient or clinic.patient,
        "practitioner_id": clinic.doctor, "facility_id": clinic.facility_id, "starts_at": start,
        "channel": "registry"})
    return appointment


def rows(storage, table, key):
    return {r[key]: r for r in snapshot(storage)[table]}


@pytest.mark.parametrize("later_first", [False, True], ids=["in-order", "later-first"])
def test_patient_fields_are_last_writer_wins_and_every_value_is_kept(storage, nodes,
                                                                     later_first):
    clinic, clinic2 = nodes["clinic"], nodes["clinic2"]
    setup = list(clinic.log)
    clinic.change_patient(clinic.patient, "phone", "+998901111111")
    clinic2.change_patient(clinic.patient, "phone", "+998902222222")
    clinic.change_patient(clinic.patient, "full_name", "Rahimov Bobur Aliyevich")
    edits = [(clinic, clinic.log[len(setup):]), (clinic2, clinic2.log)]
    ingest(storage, [(clinic, setup), *(edits[::-1] if later_first else edits)])
    patient = rows(storage, "patients", "patient_id")[clinic.patient]
    assert (patient["phone"], patient["full_name"]) == ("+998902222222",
                                                        "Rahimov Bobur Aliyevich")
    with storage.reader() as tx:
        history = tx.query("SELECT value, origin FROM hub_patient_history WHERE patient_id = ? "
                           "AND field = 'phone' ORDER BY hlc", (clinic.patient,))
    assert [(r["value"], r["origin"]) for r in history] == [
        (ORIGINAL_PHONE, clinic.node_id), ("+998901111111", clinic.node_id),
        ("+998902222222", clinic2.node_id)]


def test_a_moved_appointment_is_bumped_from_a_held_slot_and_check_in_is_kept(storage, nodes):
    clinic = nodes["clinic"]
    first = book(clinic, clinic, clinic.starts[0])
    moved = book(clinic, clinic, clinic.starts[1])
    clinic.emit("AppointmentRescheduled", {"appointment_id": moved,
                                           "starts_at": clinic.starts[0]})
    clinic.emit("AppointmentCheckedIn", {"appointment_id": first, "queue_number": 7})
    cut = len(clinic.log) - 2
    ingest(storage, [(clinic, clinic.log[:cut]), (clinic, clinic.log[cut:])])
    appointments = rows(storage, "appointments", "appointment_id")
    assert (appointments[first]["status"], appointments[first]["queue_number"]) == (
        "checked_in", 7)
    assert (appointments[moved]["status"], appointments[moved]["starts_at"]) == (
        "bumped", clinic.starts[0])


def test_a_cancellation_that_arrives_first_still_cancels(storage, nodes):
    clinic, clinic2 = nodes["clinic"], nodes["clinic2"]
    setup = list(clinic.log)
    rx = clinic.prescribe(clinic.patient, clinic.doctor)
    clinic2.cancel_prescription(rx)  # another clinic (the family doctor) cancels
    cancel = clinic2.log[-1]
    ingest(storage, [(clinic2, clinic2.log), (clinic, clinic.log)])
    assert len(setup) < len(clinic.log)
    prescription = rows(storage, "prescriptions", "prescription_id")[rx]
    wall = datetime.fromtimestamp(int(cancel["hlc"][:15]) / 1000, UTC)
    assert (prescription["status"], prescription["cancelled_at"]) == (
        "cancelled", wall.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert [i["item_no"] for i in snapshot(storage)["prescription_items"]] == [1]


def test_every_dispense_is_kept_even_past_the_prescription(storage, nodes):
    clinic, pharmacy = nodes["clinic"], nodes["pharmacy"]
    rx = clinic.prescribe(clinic.patient, clinic.doctor)
    ids = [pharmacy.dispense(rx) for _ in range(3)]  # 60 of 20
    pharmacy.emit("PaperDispenseRecorded", {
        "dispense_id": new_ulid(), "facility_id": pharmacy.facility_id,
        "dispensed_at": instant(-1), "entered_at": instant(), "paper_reason": "outage",
        "paper_serial": "TAS-A-000123", "items": [{
            "inn": "Amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 10,
            "product": "Amoks", "batch": "B-9", "expiry": "2030-01-31"}]})
    ingest(storage, [(pharmacy, pharmacy.log), (clinic, clinic.log)])
    shared = snapshot(storage)
    assert sorted(d["dispense_id"] for d in shared["dispenses"]) == sorted(ids)
    [paper] = shared["paper_dispenses"]
    assert paper["paper_serial"] == "TAS-A-000123" and json.loads(paper["items"])[0][
        "quantity"] == 10


def test_the_hub_holds_what_a_node_holds_after_the_same_events(storage, nodes, tmp_path):
    """The node-side query of snapshot() over a node that applied the same events."""
    clinic, clinic2, pharmacy = nodes["clinic"], nodes["clinic2"], nodes["pharmacy"]
    rx = clinic.prescribe(clinic.patient, clinic.doctor)
    pharmacy.dispense(rx)
    book(clinic, clinic, clinic.starts[0])
    clinic.change_patient(clinic.patient, "phone", "+998901111111")
    clinic2.change_patient(clinic.patient, "full_name", "Rahimova Dilnoza")
    clinic.cancel_prescription(rx)
    logs = [(clinic, clinic.log), (clinic2, clinic2.log), (pharmacy, pharmacy.log)]
    ingest(storage, logs)
    node = NodeStore(tmp_path / "node.db")
    node.initialise("observer-node")
    events = sorted((event_from_dict(e) for _, log in logs for e in log),
                    key=lambda e: (e.hlc, e.origin))
    with node.transaction() as tx:
        for event in events:
            tx.receive(event)
    assert node_projections.HANDLERS  # the node projects what it receives
    from central_hub.composition import SNAPSHOT_TABLES
    held = {t.name: [dict(r) for r in node.query(
        f"SELECT {', '.join(t.columns)} FROM {t.name} "
        f"ORDER BY {', '.join(t.keys)}")]
        for t in SNAPSHOT_TABLES if t.name != "conflicts"}
    node.close()
    hub = snapshot(storage)
    assert diff_snapshots(hub, held, complete=True) == []
    assert all(held[t] for t in ("patients", "appointments", "prescriptions", "dispenses"))


def test_a_facility_snapshot_has_that_facilitys_records(storage, nodes):
    clinic, clinic2, pharmacy = nodes["clinic"], nodes["clinic2"], nodes["pharmacy"]
    rx = clinic.prescribe(clinic.patient, clinic.doctor)
    pharmacy.dispense(rx)
    other = clinic2.register_patient()
    ingest(storage, [(clinic, clinic.log), (clinic2, clinic2.log), (pharmacy, pharmacy.log)])
    mine = snapshot(storage, clinic.facility_id)
    assert [p["patient_id"] for p in mine["patients"]] == [clinic.patient]
    assert [p["patient_id"] for p in snapshot(storage, clinic2.facility_id)["patients"]] == [
        other]
    at_pharmacy = snapshot(storage, pharmacy.facility_id)
    assert [r["prescription_id"] for r in at_pharmacy["prescriptions"]] == [rx]
    assert len(at_pharmacy["dispenses"]) == 1 and at_pharmacy["patients"] == []


def test_a_failing_hook_after_ours_leaves_the_projections_whole(storage, nodes):
    clinic = nodes["clinic"]
    target = clinic.log[-1]["id"]  # the patient's registration

    def broken(tx, stored):
        if any(s.event.id == target for s in stored):
            raise RuntimeError("a projection bug elsewhere")

    ingest(storage, [(clinic, clinic.log)], hooks=[*hub_hooks(), broken])
    assert len(snapshot(storage)["patients"]) == 1
    assert len(snapshot(storage)["slots"]) == 4
    with storage.reader() as tx:
        failed = tx.query("SELECT event_id, code FROM quarantine")
    assert [(r["event_id"], r["code"]) for r in failed] == [(target, "hook_failed")]


def test_rebuilding_the_projections_gives_the_same_records(storage, nodes):
    clinic, pharmacy = nodes["clinic"], nodes["pharmacy"]
    rx = clinic.prescribe(clinic.patient, clinic.doctor)
    pharmacy.dispense(rx)
    book(clinic, clinic, clinic.starts[0])
    ingest(storage, [(pharmacy, pharmacy.log), (clinic, clinic.log)])
    before = snapshot(storage)
    assert rebuild(storage) > 0
    assert snapshot(storage) == before
