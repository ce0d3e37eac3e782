"""The background projector (issue 17): a push answers once its batch is stored with every
verdict; projections, conflicts and the hub events they raise follow the log by the cursor,
once each, in log order; /healthz shows the lag; a pull never sees a hub event of a
projection step that has not committed. Both backends."""

import threading
from datetime import timedelta

import pytest
from helpers.hub import SimNode, body_of
from helpers.hub_app import hub_app_for

from central_hub.ingest import projected_through
from central_hub.projections import rebuild
from central_hub.projector import Projector, lag, wait_projected
from central_hub.rights import HUB_ORIGIN
from central_hub.web.app import create_app
from sync_protocol.timeutil import utc_now


def background_app(storage, world, on_accepted=(), clock=None):
    return hub_app_for(storage, world, clock=clock, on_accepted=on_accepted,
                       PROJECTOR="background")


def count(storage, table: str, where: str = "") -> int:
    with storage.reader() as tx:
        return int(tx.scalar(f"SELECT COUNT(*) AS n FROM {table} {where}"))  # noqa: S608


def over_dispensed(clinic: SimNode, pharmacy: SimNode) -> str:
    """A prescription dispensed in full twice by one pharmacy: one over-dispensing conflict."""
    clinic.register_facility()
    pharmacy.register_facility()
    doctor = clinic.register_practitioner()
    rx = clinic.prescribe(clinic.register_patient(), doctor)
    pharmacy.dispense(rx)
    pharmacy.dispense(rx)
    return rx


def test_a_push_answers_once_stored_and_the_projector_follows(storage, world):
    app = background_app(storage, world)
    ingestor = app.extensions["dmed_hub"].ingestor
    client = app.test_client()
    clinic = SimNode(world.pki.clinic, client)
    clinic.register_facility()
    clinic.register_patient()
    clinic.register_patient()
    response = clinic.push()
    assert [r["status"] for r in body_of(response)["results"]] == ["accepted"] * 3
    assert body_of(response)["acked_seq"] == 3
    # stored with its verdicts, not projected: the lag says so
    assert count(storage, "events") == 3 and count(storage, "hub_patients") == 0
    health = body_of(client.get("/healthz"))
    assert health["projected_through"] == 0 and health["hub_head"] == 3
    assert health["projection_lag"]["events"] == 3
    assert health["projection_lag"]["seconds"] >= 0
    with Projector(ingestor):
        assert wait_projected(storage, timeout=30) == 3
    assert count(storage, "hub_patients") == 2
    assert lag(storage).events == 0
    health = body_of(client.get("/healthz"))
    assert health["projection_lag"] == {"events": 0, "seconds": 0.0}
    assert health["projected_through"] == health["hub_head"] == 3


def test_the_lag_in_seconds_is_the_age_of_the_oldest_event_waiting(storage, world):
    now = [utc_now().replace(microsecond=0)]
    app = background_app(storage, world, clock=lambda: now[0])
    client = app.test_client()
    clinic = SimNode(world.pki.clinic, client)
    clinic.register_facility()
    assert clinic.push(now=now[0]).status_code == 200  # stored at T
    now[0] += timedelta(seconds=4)
    clinic.register_patient()
    assert clinic.push(now=now[0]).status_code == 200  # stored at T + 4 s
    now[0] += timedelta(seconds=3)
    health = body_of(client.get("/healthz"))
    assert health["projection_lag"] == {"events": 2, "seconds": 7.0}
    with Projector(app.extensions["dmed_hub"].ingestor):
        wait_projected(storage, timeout=30)
    assert body_of(client.get("/healthz"))["projection_lag"] == {"events": 0, "seconds": 0.0}


def test_the_projector_projects_each_event_once_in_log_order(storage, world):
    """Pushes while the projector runs, from three nodes: the projections equal a replay of
    the log in its order, and every over-dispensing gives exactly one conflict."""
    app = background_app(storage, world)
    ingestor = app.extensions["dmed_hub"].ingestor
    client = app.test_client()
    clinic, clinic2 = SimNode(world.pki.clinic, client), SimNode(world.clinic2, client)
    pharmacy = SimNode(world.pki.pharmacy, client)
    for sim in (clinic, clinic2, pharmacy):
        sim.register_facility()
    prescriptions = []
    with Projector(ingestor, poll_seconds=0.01):
        for round_no in range(4):
            for sim in (clinic, clinic2):
                doctor = sim.register_practitioner()
                rx = sim.prescribe(sim.register_patient(), doctor)
                prescriptions.append(rx)
                assert sim.push().status_code == 200
            pharmacy.dispense(prescriptions[round_no])
            pharmacy.dispense(prescriptions[round_no])
            assert pharmacy.push().status_code == 200
        wait_projected(storage, timeout=60)
    with storage.reader() as tx:
        conflicts = tx.query("SELECT subject_id FROM hub_conflicts WHERE kind = "
                             "'over_dispensing'")
        through = projected_through(tx)
        last_node_event = tx.scalar("SELECT MAX(position) AS p FROM events WHERE origin <> ?",
                                    (HUB_ORIGIN,))
    assert through >= last_node_event
    assert sorted(c["subject_id"] for c in conflicts) == sorted(prescriptions[:4])
    assert count(storage, "hub_dispenses") == 8 and count(storage, "hub_patients") == 8
    projected = {t: count(storage, t) for t in ("hub_patients", "hub_prescriptions",
                                                "hub_dispenses")}
    assert rebuild(storage) > 0
    assert {t: count(storage, t) for t in projected} == projected


def test_a_pull_never_sees_a_hub_event_of_an_uncommitted_projection_step(storage, world):
    """The projector raises an over-dispensing conflict (a hub event) and is held inside its
    step before the commit: a pull then serves no ConflictRaised; after the commit it does."""
    inside, release = threading.Event(), threading.Event()

    def hold(_tx, stored):  # runs after the hub's own hooks, in the projector's transaction
        if any(s.event.type == "MedicationDispensed" for s in stored):
            inside.set()
            release.wait(30)

    app = background_app(storage, world, on_accepted=[hold])
    ingestor = app.extensions["dmed_hub"].ingestor
    client = app.test_client()
    clinic, pharmacy = SimNode(world.pki.clinic, client), SimNode(world.pki.pharmacy, client)
    over_dispensed(clinic, pharmacy)
    assert clinic.push().status_code == 200 and pharmacy.push().status_code == 200
    projector = Projector(ingestor).start()
    early: dict[str, list[str]] = {}

    def pull() -> None:
        early["types"] = [e["event"]["type"] for e in body_of(pharmacy.pull(after=0))["events"]]

    try:
        assert inside.wait(30), "the projector never reached the dispenses"
        assert count(storage, "hub_conflicts") == 0  # not committed: not visible
        puller = threading.Thread(target=pull)
        puller.start()
        puller.join(2)
        if storage.dialect == "postgresql":  # readers never wait for the projector there
            assert "types" in early, "the pull waited for the projector's step"
        if "types" in early:  # SQLite: the pull may wait for the one writer instead
            assert "PrescriptionIssued" in early["types"]
            assert "ConflictRaised" not in early["types"]
    finally:
        release.set()
    puller.join(30)
    wait_projected(storage, timeout=30)
    projector.stop()
    types = [e["event"]["type"] for e in body_of(pharmacy.pull(after=0))["events"]]
    assert types.count("ConflictRaised") == 1
    assert count(storage, "hub_conflicts") == 1


def test_an_inline_hub_still_projects_before_it_answers(hub_app, nodes, storage):
    clinic = nodes["clinic"]
    clinic.register_facility()
    clinic.register_patient()
    assert clinic.push().status_code == 200
    assert count(storage, "hub_patients") == 1 and lag(storage).events == 0


def test_an_unknown_projector_mode_is_refused(storage):
    with pytest.raises(ValueError, match="PROJECTOR"):
        create_app({"TESTING": True, "PROJECTOR": "sometimes"}, storage=storage)
