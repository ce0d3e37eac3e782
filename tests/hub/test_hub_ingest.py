"""Ingest: each pushed event judged on its own; good ones stored once, bad ones kept aside."""

import threading

import pytest
from helpers.hub import SimNode, body_of

from central_hub.ingest import PROJECTED_THROUGH, Ingestor, projected_through
from central_hub.projections import rebuild
from central_hub.rights import missing_rules
from sync_protocol.events import Event
from sync_protocol.identifiers import new_ulid


def statuses(response):
    assert response.status_code == 200, body_of(response)
    return [(r["status"], r["code"]) for r in body_of(response)["results"]]


def stored_ids(storage):
    with storage.reader() as tx:
        return [r["id"] for r in tx.query("SELECT id FROM events ORDER BY position")]


def quarantined(storage, open_only=True):
    sql = "SELECT * FROM quarantine" + (" WHERE resolved_at IS NULL" if open_only else "")
    with storage.reader() as tx:
        return tx.query(sql + " ORDER BY id")


def node_row(storage, node_id):
    with storage.reader() as tx:
        return tx.one("SELECT * FROM nodes WHERE node_id = ?", (node_id,))


def clinic_with_patient(node: SimNode):
    node.register_facility()
    doctor = node.register_practitioner()
    patient = node.register_patient()
    return doctor, patient


def raw_event(node: SimNode, event_type, payload, version=1):
    """An event sealed by hand, bypassing schema checks (what a newer or broken node sends)."""
    head = node.log[-1]
    event = Event(id=new_ulid(), origin=node.node_id, seq=head["seq"] + 1,
                  hlc=str(node.clock.now()), type=event_type, version=version, payload=payload,
                  prev_hash=head["hash"])
    data = {**event.to_dict(), "hash": event.compute_hash()}
    node.log.append(data)
    return data


def test_the_same_batch_twice_stores_everything_once(nodes, storage):
    clinic = nodes["clinic"]
    clinic_with_patient(clinic)
    assert statuses(clinic.push()) == [("accepted", None)] * 3
    again = clinic.push()
    assert statuses(again) == [("duplicate", None)] * 3
    assert body_of(again)["acked_seq"] == 3
    assert stored_ids(storage) == [e["id"] for e in clinic.log]


def test_an_event_twice_in_one_batch_is_stored_once(nodes, storage):
    clinic = nodes["clinic"]
    clinic.register_facility()
    assert statuses(clinic.push(clinic.log * 2)) == [("accepted", None), ("duplicate", None)]
    assert len(stored_ids(storage)) == 1


def test_a_gap_is_refused_and_quarantined_while_other_origins_pass(nodes, storage):
    clinic, pharmacy = nodes["clinic"], nodes["pharmacy"]
    clinic_with_patient(clinic)
    clinic.register_patient()
    assert statuses(clinic.push(clinic.log[:1])) == [("accepted", None)]
    response = clinic.push(clinic.log[2:])
    assert statuses(response) == [("refused", "seq_gap")] * 2
    assert body_of(response)["acked_seq"] == 1
    assert [q["seq"] for q in quarantined(storage)] == [3, 4]
    assert "send 2 first" in quarantined(storage)[0]["reason"]
    pharmacy.register_facility()
    assert statuses(pharmacy.push()) == [("accepted", None)]
    # The node resends from acked_seq + 1: everything lands, the quarantine rows close.
    assert statuses(clinic.push(clinic.log[1:])) == [("accepted", None)] * 3
    assert quarantined(storage) == []
    assert [q["resolution"] for q in quarantined(storage, open_only=False)] == \
        ["accepted later"] * 2
    assert len(stored_ids(storage)) == 5


def test_events_in_another_nodes_name_are_refused(nodes, storage):
    clinic, pharmacy = nodes["clinic"], nodes["pharmacy"]
    clinic.register_facility()
    forged = clinic.emit("FacilityRegistered", {
        "facility_id": new_ulid(), "code": pharmacy.identity.facility_code, "name": "Fake",
        "kind": "pharmacy", "region": "TAS"}, origin=pharmacy.node_id, seq=1)
    assert statuses(clinic.push([*clinic.log, forged])) == [("accepted", None),
                                                              ("refused", "forged_origin")]
    assert [q["code"] for q in quarantined(storage)] == ["forged_origin"]
    # The real pharmacy's chain is untouched: its own seq 1 is still free.
    pharmacy.register_facility()
    assert statuses(pharmacy.push()) == [("accepted", None)]


def test_a_broken_hash_is_refused_and_blocks_what_follows(nodes, storage):
    clinic = nodes["clinic"]
    clinic_with_patient(clinic)
    clinic.log[1]["payload"]["full_name"] = "Tampered Name"
    response = clinic.push()
    assert statuses(response) == [("accepted", None), ("refused", "bad_hash"),
                                  ("refused", "seq_gap")]
    assert body_of(response)["acked_seq"] == 1
    assert stored_ids(storage) == [clinic.log[0]["id"]]


@pytest.mark.parametrize("event_type, version, payload, code", [
    ("ReferralIssued", 1, {"referral_id": "x"}, "unknown_event_type"),
    ("FacilityRegistered", 9, {}, "unknown_event_type"),
    ("PatientPhoneConfirmed", 1, {"patient_id": "not-a-ulid", "phone": "+998901234567"},
     "payload_invalid"),
])
def test_an_event_the_hub_cannot_accept_keeps_its_place_in_the_chain(
        nodes, storage, event_type, version, payload, code):
    clinic = nodes["clinic"]
    clinic.register_facility()
    raw_event(clinic, event_type, payload, version)
    clinic.register_practitioner()
    response = clinic.push()
    assert statuses(response) == [("accepted", None), ("refused", code), ("accepted", None)]
    assert body_of(response)["acked_seq"] == 3
    (row,) = quarantined(storage)
    assert (row["code"], row["seq"], row["chained"]) == (code, 2, 1)
    assert body_of(response)["results"][1]["reason"]
    # Resent (e.g. after a lost answer), it gets the same refusal: nothing changes.
    assert statuses(clinic.push()) == [("duplicate", None), ("refused", code),
                                       ("duplicate", None)]
    assert quarantined(storage)[0]["attempts"] == 2
    assert len(stored_ids(storage)) == 2


def test_every_event_type_has_a_rule():
    assert missing_rules() == []


def book_at(node, facility_id):
    node.emit("AppointmentBooked", {
        "appointment_id": new_ulid(), "patient_id": new_ulid(), "practitioner_id": new_ulid(),
        "facility_id": facility_id, "starts_at": "2030-01-01T05:00:00Z", "channel": "kiosk"})


FORBIDDEN = {
    "pharmacy prescribes": ("pharmacy", lambda n, other: n.prescribe(new_ulid(), new_ulid())),
    "pharmacy registers a patient": ("pharmacy", lambda n, other: n.register_patient()),
    "clinic dispenses": ("clinic", lambda n, other: n.dispense(new_ulid())),
    "clinic books another clinic's slot": ("clinic",
                                           lambda n, other: book_at(n, other.facility_id)),
    "clinic registers another code": ("clinic",
                                      lambda n, other: n.register_facility(code="TAS-POLY-99")),
    "clinic registers as a pharmacy": ("clinic",
                                       lambda n, other: n.register_facility(kind="pharmacy")),
    "pharmacy dispenses as another": ("pharmacy", lambda n, other: n.dispense(
        new_ulid(), facility_id=other.facility_id)),
}


@pytest.mark.parametrize("case", FORBIDDEN)
def test_a_node_emits_only_what_its_kind_and_facility_may(nodes, storage, case):
    who, act = FORBIDDEN[case]
    node = nodes[who]
    other = nodes["clinic2"] if who == "clinic" else nodes["sam_pharmacy"]
    other.register_facility()
    assert statuses(other.push()) == [("accepted", None)]
    node.register_facility()
    act(node, other)
    node.emit("FacilityRegistered", {**node.log[0]["payload"], "facility_id": new_ulid()})
    assert statuses(node.push()) == [("accepted", None), ("refused", "not_permitted"),
                                     ("accepted", None)]
    assert node_row(storage, node.node_id)["acked_seq"] == 3
    assert quarantined(storage)[0]["code"] == "not_permitted"


def test_an_appointment_of_another_facility_cannot_be_cancelled(nodes, storage):
    clinic, clinic2 = nodes["clinic"], nodes["clinic2"]
    doctor, patient = clinic_with_patient(clinic)
    appointment = clinic.book(patient, doctor)
    assert statuses(clinic.push())[-1] == ("accepted", None)
    clinic2.register_facility()
    clinic2.emit("AppointmentCancelled", {"appointment_id": appointment})
    assert statuses(clinic2.push()) == [("accepted", None), ("refused", "not_permitted")]


@pytest.mark.parametrize("sent", ["whole log", "only its newest event"])
def test_two_devices_with_one_identity_are_flagged(nodes, storage, hub_app, world, sent):
    clinic = nodes["clinic"]
    clinic_with_patient(clinic)
    assert statuses(clinic.push()) == [("accepted", None)] * 3
    # A cloned SD card: same key and identity, its own third and fourth events.
    clone = SimNode(world.pki.clinic, hub_app.test_client())
    clone.log, clone.facility_id = [dict(e) for e in clinic.log[:2]], clinic.facility_id
    clone.register_patient()
    clone.register_patient()
    if sent == "whole log":
        assert statuses(clone.push()) == [("duplicate", None), ("duplicate", None),
                                          ("refused", "identity_conflict"),
                                          ("refused", "chain_broken")]
    else:
        assert statuses(clone.push(clone.log[3:])) == [("refused", "chain_broken")]
    assert node_row(storage, clinic.node_id)["flag"] == "identity_conflict"
    conflicts = body_of(hub_app.test_client().get("/api/v1/identity-conflicts"))["items"]
    # One divergence, one record: the hub's seq 3 against the clone's.
    assert [(c["node_id"], c["seq"], c["held_hash"], c["presented_hash"]) for c in conflicts] \
        == [(clinic.node_id, 3, clinic.log[2]["hash"], clone.log[2]["hash"])]
    assert body_of(hub_app.test_client().get("/api/v1/nodes"))["nodes"][0]["flag"] == \
        "identity_conflict"
    # The genuine node carries on.
    clinic.register_patient()
    assert statuses(clinic.push())[-1] == ("accepted", None)


def test_hooks_see_the_batch_once_in_the_same_transaction(nodes, storage):
    clinic = nodes["clinic"]
    clinic_with_patient(clinic)
    calls = []

    def project(tx, stored):
        calls.append([(s.position, s.event.type, tx.scalar(
            "SELECT COUNT(*) AS n FROM events WHERE id = ?", (s.event.id,)), s.scope.patient_id)
            for s in stored])

    result = Ingestor(storage, [project]).push(clinic.identity, clinic.log)
    assert result.acked_seq == 3
    patient = clinic.log[2]["payload"]["patient_id"]
    assert calls == [[(1, "FacilityRegistered", 1, None), (2, "PractitionerRegistered", 1, None),
                      (3, "PatientRegistered", 1, patient)]]


def test_a_failing_hook_loses_no_event_and_is_shown(nodes, storage):
    clinic = nodes["clinic"]
    clinic_with_patient(clinic)
    written = []

    def projection(tx, stored):
        for one in stored:
            tx.execute("INSERT INTO hub_state (key, value, updated_at) VALUES (?, 'x', 'x')",
                       (one.event.id,))
            if one.event.type == "PractitionerRegistered":
                raise RuntimeError("projection bug")
            written.append(one.event.id)

    Ingestor(storage, [projection]).push(clinic.identity, clinic.log)
    assert stored_ids(storage) == [e["id"] for e in clinic.log]
    with storage.reader() as tx:
        keys = {r["key"] for r in tx.query("SELECT key FROM hub_state WHERE key NOT LIKE "
                                           "'trust%' AND key <> ?", (PROJECTED_THROUGH,))}
    assert keys == {clinic.log[0]["id"], clinic.log[2]["id"]}  # the failed one rolled back
    (row,) = quarantined(storage)
    assert (row["code"], row["event_id"]) == ("hook_failed", clinic.log[1]["id"])
    assert "projection bug" in row["reason"]


def push_at_once(ingestor, sims, batch: int) -> list[Exception]:
    """Each node pushes its log in batches of `batch`, all nodes at once, one thread each;
    returns what was raised."""
    errors = []

    def push(sim):
        try:
            for start in range(0, len(sim.log), batch):
                ingestor.push(sim.identity, sim.log[start:start + batch])
        except Exception as e:  # noqa: BLE001 - returned
            errors.append(e)

    threads = [threading.Thread(target=push, args=(sim,)) for sim in sims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_pushes_get_gap_free_unique_positions(nodes, storage):
    ingestor = Ingestor(storage)
    sims = [nodes[name] for name in ("clinic", "clinic2", "pharmacy", "sam_pharmacy")]
    for sim in sims:
        sim.register_facility()
        if sim.identity.kind == "clinic":
            for _ in range(30):
                sim.register_patient()
    assert push_at_once(ingestor, sims, 4) == []
    with storage.reader() as tx:
        positions = [r["position"] for r in tx.query("SELECT position FROM events ORDER BY "
                                                     "position")]
        delivery_ids = [r["id"] for r in tx.query("SELECT id FROM deliveries ORDER BY id")]
    assert positions == list(range(1, sum(len(s.log) for s in sims) + 1))
    assert len(set(delivery_ids)) == len(delivery_ids)


PROJECTION_TABLES = ("hub_patients", "hub_patient_history", "hub_prescriptions",
                     "hub_prescription_items", "hub_dispenses")


def projection_rows(storage) -> dict[str, list]:
    with storage.reader() as tx:
        return {table: sorted(tuple(map(str, r.values())) for r in tx.query(
            f"SELECT * FROM {table}")) for table in PROJECTION_TABLES}  # noqa: S608 - constants


def test_concurrent_pushes_are_projected_once_each_in_log_order(nodes, hub_app, storage):
    """Pushes store and project in two transactions (the projector's lock on PostgreSQL), so
    a batch may be projected by another push's request: each event still goes through the
    hooks once, in log order."""
    ingestor = hub_app.extensions["dmed_hub"].ingestor
    clinic, clinic2, pharmacy = nodes["clinic"], nodes["clinic2"], nodes["pharmacy"]
    for sim in (clinic, clinic2, pharmacy):
        sim.register_facility()
    prescriptions = []
    for sim in (clinic, clinic2):
        doctor = sim.register_practitioner()
        prescriptions += [sim.prescribe(sim.register_patient(), doctor) for _ in range(15)]
    for rx in prescriptions[:5]:  # twice 20 of 20 capsules: over-dispensing, once each
        pharmacy.dispense(rx)
        pharmacy.dispense(rx)
    assert push_at_once(ingestor, [clinic, clinic2, pharmacy], 3) == []
    with storage.reader() as tx:
        through = projected_through(tx)
        last_node_event = tx.scalar("SELECT MAX(position) AS p FROM events WHERE origin IN "
                                    "(?, ?, ?)", (clinic.node_id, clinic2.node_id,
                                                  pharmacy.node_id))
        conflicts = tx.query("SELECT subject_id FROM hub_conflicts WHERE kind = "
                             "'over_dispensing'")
    assert through == last_node_event
    assert sorted(c["subject_id"] for c in conflicts) == sorted(prescriptions[:5])
    projected = projection_rows(storage)
    assert (len(projected["hub_patients"]), len(projected["hub_prescriptions"]),
            len(projected["hub_dispenses"])) == (30, 30, 10)
    # replaying the log in its order, in one go, gives the very same projections
    assert rebuild(storage) > 0
    assert projection_rows(storage) == projected
