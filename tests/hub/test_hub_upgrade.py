"""A hub in the field upgrades from its oldest schema (component core, version 1, frozen in
tests/frozen_schemas) to every component central_hub.composition lists, on SQLite and
PostgreSQL: the same schema as a fresh hub, its data kept, and it serves as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.hub import SimNode, body_of, temporary_schema
from helpers.hub_app import hub_app_for

from central_hub import storage as hub_storage
from central_hub.composition import MIGRATIONS, open_storage, snapshot
from central_hub.ingest import PROJECTED_THROUGH
from central_hub.storage import SQLITE, Storage
from central_hub.storage.migrations import latest_versions

FROZEN = Path(__file__).parents[1] / "frozen_schemas"
FIELD_NODE = "tas-field-0007"
FIELD_EVENT = "01JD00000000000000000000E1"
FIELD_HASH = "229ea6ae78e261d65a69cf4bd8797d095765a897f8bbae0e66116de09326c469"


def load_frozen(url: str) -> None:
    """The frozen database, written statement by statement without any migration."""
    raw = hub_storage.open_storage(url, components=(), migrate=False)
    text = (FROZEN / f"hub_core_v1.{raw.dialect}.sql").read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    with raw, raw.transaction() as tx:
        for statement in text.split(";\n"):
            if statement.strip():
                tx.execute(statement)


def schema(storage: Storage) -> dict[str, object]:
    """Every table with its columns and types, and every index, by name."""
    with storage.reader() as tx:
        if tx.dialect == SQLITE:
            names = tx.query("SELECT type, name FROM sqlite_master WHERE name NOT LIKE "
                             "'sqlite_%' ORDER BY name")
            return {r["name"]: [(c["name"], c["type"], c["notnull"]) for c in
                                tx.query(f"PRAGMA table_info({r['name']})")]
                    if r["type"] == "table" else r["type"] for r in names}
        columns = tx.query("SELECT table_name, column_name, data_type, is_nullable FROM "
                           "information_schema.columns WHERE table_schema = current_schema() "
                           "ORDER BY table_name, ordinal_position")
        indexes = tx.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = "
                           "current_schema()")
    out: dict[str, object] = {}
    for c in columns:
        out.setdefault(c["table_name"], []).append(  # type: ignore[union-attr]
            (c["column_name"], c["data_type"], c["is_nullable"]))
    for i in indexes:  # the definition names the schema: keep what follows it
        out[i["indexname"]] = i["indexdef"].split(" ON ", 1)[1].split(".", 1)[1]
    return out


@pytest.fixture
def fresh_url(storage_url, tmp_path, request):
    if storage_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with temporary_schema(request.getfixturevalue("postgres_url"), "fresh") as url:
        yield url


def test_the_oldest_hub_schema_upgrades_to_the_latest(storage_url, fresh_url):
    load_frozen(storage_url)
    with open_storage(storage_url) as upgraded, open_storage(fresh_url) as fresh:
        assert upgraded.schema_versions() == latest_versions(MIGRATIONS)
        with upgraded.reader() as tx:
            recorded = {(r["component"], r["version"])
                        for r in tx.query("SELECT component, version FROM schema_migrations")}
        assert recorded == {(m.component, m.version) for c in MIGRATIONS for m in c}
        assert schema(upgraded) == schema(fresh)
        assert upgraded.migrate() == []


def test_an_upgraded_hub_keeps_its_data_and_serves(storage_url, world):
    load_frozen(storage_url)
    storage = open_storage(storage_url)
    with storage.reader() as tx:
        event = tx.one("SELECT id, origin, seq, hash FROM events WHERE position = 1")
        node = tx.one("SELECT acked_seq, head_hash FROM nodes WHERE node_id = ?", (FIELD_NODE,))
        through = tx.scalar("SELECT value FROM hub_state WHERE key = ?", (PROJECTED_THROUGH,))
    assert event == {"id": FIELD_EVENT, "origin": FIELD_NODE, "seq": 1, "hash": FIELD_HASH}
    assert node == {"acked_seq": 1, "head_hash": FIELD_HASH}
    assert through == "1"  # the log before the projector counts as projected (core 3)

    app = hub_app_for(storage, world)
    clinic = SimNode(world.clinic2, app.test_client())
    clinic.register_facility()
    patient = clinic.register_patient()
    answer = clinic.push()
    assert answer.status_code == 200, body_of(answer)
    assert [r["status"] for r in body_of(answer)["results"]] == ["accepted", "accepted"]
    assert [p["patient_id"] for p in snapshot(storage)["patients"]] == [patient]
    listed = body_of(app.test_client().get("/api/v1/nodes"))
    assert {n["node_id"] for n in listed["nodes"]} == {FIELD_NODE, clinic.node_id}
    assert listed["hub_head"] == 3
    storage.close()
