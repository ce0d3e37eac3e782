"""Time partitioning of the hub's log on PostgreSQL: the migration on a hub that already
holds events, partitions made ahead, and the same verdicts and pulls across partitions."""

from datetime import UTC, datetime, timedelta

import pytest
from helpers.hub import SimNode, body_of, temporary_schema
from helpers.hub_app import hub_app_for as hub

from central_hub import composition, ingest
from central_hub.composition import open_storage
from central_hub.projector import Projector
from central_hub.storage import migrations, partitions
from central_hub.storage import open_storage as open_with
from sync_protocol.event_types import latest_version
from sync_protocol.events import seal
from sync_protocol.timeutil import to_instant


def statuses(response):
    assert response.status_code == 200, body_of(response)
    return [(r["status"], r["code"]) for r in body_of(response)["results"]]


def rows_by_partition(storage, table="events"):
    with storage.reader() as tx:
        return {r["part"]: r["n"] for r in tx.query(
            f"SELECT tableoid::regclass::text AS part, COUNT(*) AS n FROM {table} "  # noqa: S608 - test constants
            "GROUP BY 1")}


def ranges(storage):
    with storage.reader() as tx:
        return [(p["suffix"], p["first_position"], p["end_position"])
                for p in partitions.partitions(tx)]


def pulled_ids(node):
    node.cursor = 0
    return node.sync_down(limit=3)


@pytest.mark.postgres
def test_a_hub_holding_events_is_partitioned_in_place(postgres_url, world, monkeypatch):
    with temporary_schema(postgres_url, "part") as url:
        # a hub as released before the partitioning migration, holding a clinic's events
        monkeypatch.setattr(ingest, "ensure_room", lambda tx, position: [])  # not in that release
        storage = open_with(url, components=(migrations.CORE[:3], *composition.MIGRATIONS[1:]))
        clinic = SimNode(world.pki.clinic, hub(storage, world).test_client())
        clinic.register_facility()
        doctor = clinic.register_practitioner()
        clinic.prescribe(clinic.register_patient(), doctor)
        assert statuses(clinic.push()) == [("accepted", None)] * 4
        pharmacy = SimNode(world.pki.pharmacy, hub(storage, world).test_client())
        before = pulled_ids(pharmacy)
        storage.close()
        monkeypatch.undo()

        storage = open_storage(url)  # the upgrade
        try:
            assert storage.schema_versions()["core"] == 4
            assert ranges(storage) == [("p0000", 0, 5), ("p0001", 5, 5 + partitions.FIRST_SPAN)]
            assert rows_by_partition(storage) == {"events_p0000": 4}
            app = hub(storage, world)
            clinic.client = app.test_client()
            pharmacy.client = app.test_client()
            # the ids held in the old partition still decide duplicates and id conflicts
            assert statuses(clinic.push()) == [("duplicate", None)] * 4
            head = clinic.log[-1]
            clash = seal(id=clinic.log[0]["id"], origin=clinic.node_id, seq=5,
                         hlc=clinic.clock.now(), type="PrescriptionCancelled",
                         version=latest_version("PrescriptionCancelled"),
                         payload={"prescription_id": head["payload"]["prescription_id"],
                                  "reason": "allergy"}, prev_hash=head["hash"]).to_dict()
            assert statuses(clinic.push([clash])) == [("refused", "id_conflict")]
            clinic.cancel_prescription(head["payload"]["prescription_id"])
            assert statuses(clinic.push(clinic.log[-1:])) == [("accepted", None)]
            assert rows_by_partition(storage) == {"events_p0000": 4, "events_p0001": 1}
            # a pull walks both partitions in order, as before
            assert pulled_ids(pharmacy) == [*before, clinic.log[-1]["id"]]
        finally:
            storage.close()


@pytest.mark.postgres
def test_partitions_are_made_ahead_of_the_positions_handed_out(postgres_url, world,
                                                               monkeypatch):
    monkeypatch.setattr(partitions, "FIRST_SPAN", 4)
    monkeypatch.setattr(partitions, "MIN_SPAN", 4)
    with temporary_schema(postgres_url, "part") as url, open_storage(url) as storage:
        assert ranges(storage) == [("p0000", 0, 1), ("p0001", 1, 5)]
        app = hub(storage, world)
        clinic = SimNode(world.pki.clinic, app.test_client())
        clinic.register_facility()
        doctor = clinic.register_practitioner()
        for _ in range(4):
            clinic.prescribe(clinic.register_patient(), doctor)
        # one batch of 10 runs past the last partition: the ingest makes two more itself
        assert statuses(clinic.push()) == [("accepted", None)] * 10
        assert ranges(storage)[1:] == [("p0001", 1, 5), ("p0002", 5, 9), ("p0003", 9, 13)]
        assert rows_by_partition(storage) == {"events_p0001": 4, "events_p0002": 4,
                                              "events_p0003": 2}
        assert sum(rows_by_partition(storage, "deliveries").values()) > 10
        # the projector's maintenance makes the next once the last is half full
        projector = Projector(app.extensions["dmed_hub"].ingestor)
        assert projector.maintain() == []  # positions 9-10 of 9-12 used
        clinic.prescribe(clinic.register_patient(), doctor)
        assert statuses(clinic.push(clinic.log[-2:])) == [("accepted", None)] * 2
        assert projector.maintain() == ["p0004"]
        assert projector.maintain() == []
        pharmacy = SimNode(world.pki.pharmacy, app.test_client())
        expected = [e["id"] for e in clinic.log if e["type"] in
                    ("FacilityRegistered", "PractitionerRegistered", "PrescriptionIssued")]
        assert pulled_ids(pharmacy) == expected


def test_a_partition_is_sized_to_last_a_period_at_the_last_ones_rate():
    now = datetime(2026, 12, 6, tzinfo=UTC)
    day_ago = to_instant(now - timedelta(days=1))
    # 2 M positions in a day: a 30-day partition holds 60 M
    assert partitions.next_span(1, 10_000_001, day_ago, 2_000_000, now) == 60_000_000
    assert partitions.next_span(1, 10_000_001, day_ago, 10, now) == partitions.MIN_SPAN
    assert partitions.next_span(1, 10**12, day_ago, 10**11, now) == partitions.MAX_SPAN
    assert partitions.next_span(1, 11, to_instant(now), 5, now) == partitions.FIRST_SPAN


def test_sqlite_keeps_one_plain_log(tmp_path):
    with open_storage(tmp_path / "hub.db") as storage, storage.transaction() as tx:
        assert partitions.partitions(tx) == []
        assert partitions.ensure_room(tx, 10**9) == []
        assert partitions.maintain(tx) == []
        assert tx.scalar("SELECT type FROM sqlite_master WHERE name = 'events'") == "table"
