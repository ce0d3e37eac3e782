"""The projector takes the events its own process just stored from memory, not read back
from the database, and still projects exactly what the log holds. Both backends."""

from dataclasses import replace

from helpers.hub import SimNode
from helpers.hub_app import hub_app_for

from central_hub import ingest
from central_hub.projector import Projector, wait_projected


def background_hub(storage, world):
    return hub_app_for(storage, world, PROJECTOR="background")


def read_back(monkeypatch) -> list[int]:
    """Positions the projector reads back from the database."""
    positions: list[int] = []
    real = ingest.stored_from_row

    def counting(row):
        positions.append(row["position"])
        return real(row)

    monkeypatch.setattr(ingest, "stored_from_row", counting)
    return positions


def patients(storage) -> list[str]:
    with storage.reader() as tx:
        return sorted(r["patient_id"] for r in tx.query("SELECT patient_id FROM hub_patients"))


def test_events_this_process_stored_are_projected_from_memory(storage, world, monkeypatch):
    app = background_hub(storage, world)
    ingestor = app.extensions["dmed_hub"].ingestor
    clinic = SimNode(world.pki.clinic, app.test_client())
    clinic.register_facility()
    registered = sorted(clinic.register_patient() for _ in range(3))
    positions = read_back(monkeypatch)
    projector = Projector(ingestor, poll_seconds=60).start()
    try:
        assert clinic.push().status_code == 200
        wait_projected(storage, timeout=30)
    finally:
        projector.stop()
    assert positions == []
    assert patients(storage) == registered
    assert ingestor._recalled(4) == {}  # forgotten once projected


def test_a_remembered_event_the_log_does_not_hold_is_read_back(storage, world, monkeypatch):
    """Memory is only a cache of the log: should it hold another event at a position (it
    never should: it is filled after the commit), the stored row wins."""
    app = background_hub(storage, world)
    ingestor = app.extensions["dmed_hub"].ingestor
    clinic = SimNode(world.pki.clinic, app.test_client())
    clinic.register_facility()
    patient = clinic.register_patient()
    assert clinic.push().status_code == 200  # no projector yet: nothing remembered
    with storage.reader() as tx:
        rows = tx.query("SELECT * FROM events ORDER BY position")
    stored = [ingest.stored_from_row(r) for r in rows]
    wrong = replace(stored[1], event=replace(stored[1].event, id="01JZZZZZZZZZZZZZZZZZZZZZZZ",
                                                  payload={**stored[1].event.payload,
                                                           "patient_id": "someone-else"}))
    ingestor._remember([stored[0], wrong])
    positions = read_back(monkeypatch)
    ingestor.project_pending()
    assert positions == [2]
    assert patients(storage) == [patient]
