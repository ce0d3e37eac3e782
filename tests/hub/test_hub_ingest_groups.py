"""Group commit: pushes that wait while another is stored go into the next transaction
together, each decided exactly as if it had its own. Both backends."""

import threading
import time

import pytest
from helpers.hub import SimNode

from central_hub import nodes as hub_nodes
from central_hub.ingest import Ingestor


def queued_pushes(ingestor: Ingestor, pushes) -> list:
    """Run `pushes` ((identity, events) pairs) from threads of their own while the test holds
    the storing lock, so that all of them wait in the queue; then let them go at once.
    Returns each push's response or exception."""
    outcomes: list = [None] * len(pushes)

    def run(i, identity, events):
        try:
            outcomes[i] = ingestor.push(identity, events)
        except Exception as e:  # noqa: BLE001 - the test looks at it
            outcomes[i] = e

    with ingestor._leader:
        threads = [threading.Thread(target=run, args=(i, *push))
                   for i, push in enumerate(pushes)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(ingestor._queue) < len(pushes) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(ingestor._queue) == len(pushes)
    for thread in threads:
        thread.join(60)
    return outcomes


def counting_transactions(storage, monkeypatch) -> list[int]:
    opened = []
    real = storage.transaction

    def counted(*args, **kwargs):
        if not kwargs.get("projector"):
            opened.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(storage, "transaction", counted)
    return opened


def statuses(response):
    return [r.status for r in response.results]


def test_waiting_pushes_are_stored_in_one_transaction_each_judged_alone(
        hub_app, storage, world, monkeypatch):
    ingestor = hub_app.extensions["dmed_hub"].ingestor
    clinic = SimNode(world.pki.clinic, None)
    clinic2 = SimNode(world.clinic2, None)
    for sim in (clinic, clinic2):
        sim.register_facility()
        doctor = sim.register_practitioner()
        sim.prescribe(sim.register_patient(), doctor)
    # clinic2 pushing an event in clinic's name
    forged = clinic2.emit("FacilityRegistered", clinic.log[0]["payload"], origin=clinic.node_id)
    opened = counting_transactions(storage, monkeypatch)
    outcomes = queued_pushes(ingestor, [
        (clinic.identity, clinic.log[:2]),
        (clinic.identity, clinic.log[2:]),  # continues the chain the push before stored
        (clinic2.identity, clinic2.log),
        (clinic.identity, clinic.log[:2]),  # what the first push stored: duplicates
        (clinic2.identity, clinic2.log[1:] + [forged]),
    ])
    assert len(opened) == 1
    assert statuses(outcomes[0]) == ["accepted"] * 2
    assert statuses(outcomes[1]) == ["accepted"] * 2
    assert outcomes[1].acked_seq == 4
    assert statuses(outcomes[2]) == ["accepted"] * 4
    assert statuses(outcomes[3]) == ["duplicate"] * 2
    assert statuses(outcomes[4]) == ["duplicate"] * 3 + ["refused"]
    assert outcomes[4].results[-1].code == "forged_origin"
    with storage.reader() as tx:
        held = [(r["origin"], r["seq"]) for r in tx.query(
            "SELECT origin, seq FROM events ORDER BY position")]
    assert held == [(clinic.node_id, s) for s in (1, 2)] + [
        (clinic.node_id, s) for s in (3, 4)] + [(clinic2.node_id, s) for s in (1, 2, 3, 4)]


def test_a_push_that_fails_in_a_group_fails_alone(hub_app, storage, world, monkeypatch):
    ingestor = hub_app.extensions["dmed_hub"].ingestor
    clinic = SimNode(world.pki.clinic, None)
    clinic2 = SimNode(world.clinic2, None)
    for sim in (clinic, clinic2):
        sim.register_facility()
    real = hub_nodes.record_contact

    def broken_for_clinic2(tx, node, kid, now):
        row = real(tx, node, kid, now)
        if node.node_id == clinic2.node_id:
            raise RuntimeError("the database said no")
        return row

    monkeypatch.setattr(hub_nodes, "record_contact", broken_for_clinic2)
    outcomes = queued_pushes(ingestor, [(clinic2.identity, clinic2.log),
                                        (clinic.identity, clinic.log)])
    assert isinstance(outcomes[0], RuntimeError)
    assert statuses(outcomes[1]) == ["accepted"]
    with storage.reader() as tx:
        assert [r["origin"] for r in tx.query("SELECT origin FROM events")] == [clinic.node_id]
        contacted = {r["node_id"] for r in tx.query("SELECT node_id FROM nodes")}
    assert clinic2.node_id not in contacted  # its savepoint rolled back what it wrote


@pytest.mark.parametrize("limit", [1, 3])
def test_a_group_stops_at_its_event_bound(hub_app, storage, world, monkeypatch, limit):
    monkeypatch.setattr("central_hub.ingest.GROUP_EVENTS", limit)
    ingestor = hub_app.extensions["dmed_hub"].ingestor
    sims = [SimNode(cred, None) for cred in (world.pki.clinic, world.clinic2)]
    for sim in sims:
        sim.register_facility()
        sim.register_patient()
    opened = counting_transactions(storage, monkeypatch)
    outcomes = queued_pushes(ingestor, [(sim.identity, sim.log) for sim in sims])
    assert [statuses(o) for o in outcomes] == [["accepted"] * 2] * 2
    assert len(opened) == 2  # 2 + 2 events: one push a group, with either bound
