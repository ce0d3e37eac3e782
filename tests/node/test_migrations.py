"""Upgrading a node database that is already in the field."""

import sqlite3
from pathlib import Path

from edge_node.migrations import LATEST, current_version
from edge_node.store import NodeStore
from sync_protocol.events import verify_chain

FROZEN = Path(__file__).parents[1] / "frozen_schemas"


def load_frozen(path: Path, name: str) -> None:
    conn = sqlite3.connect(path)
    conn.executescript((FROZEN / name).read_text(encoding="utf-8"))
    conn.close()


def test_v1_database_upgrades_to_latest_keeping_its_data(tmp_path):
    path = tmp_path / "node.db"
    load_frozen(path, "node_v1.sql")
    store = NodeStore(path)
    assert current_version(store.reader()) == LATEST
    versions = [r["version"] for r in store.query("SELECT version FROM schema_migrations")]
    assert versions == list(range(1, LATEST + 1))
    assert store.node_id == "node-field-7"
    sms = store.one("SELECT * FROM sms_outbox")
    assert (sms["attempts"], sms["last_error"], sms["sent_at"]) == (0, None, None)
    verify_chain(store.events(origin="node-field-7"))
    assert store.rebuild_projections() == 1
    assert store.one("SELECT code FROM facilities")["code"] == "SAM-POL-003"
    # The upgraded node keeps writing its own chain after the old events.
    from edge_node.services import facilities
    from edge_node.services.access import SYSTEM
    facilities.register_facility(store, SYSTEM, code="SAM-APT-001", name="Dorixona",
                                 kind="pharmacy", region="SAM")
    events = store.events(origin="node-field-7")
    assert [e.seq for e in events] == [1, 2]
    verify_chain(events)
    assert events[1].timestamp > events[0].timestamp


def test_migrating_twice_changes_nothing(tmp_path):
    path = tmp_path / "node.db"
    NodeStore(path).close()
    again = NodeStore(path)
    assert [r["version"] for r in again.query("SELECT version FROM schema_migrations")] == \
        list(range(1, LATEST + 1))


def test_fresh_schema_equals_upgraded_schema(tmp_path):
    fresh, upgraded = tmp_path / "fresh.db", tmp_path / "old.db"
    NodeStore(fresh).close()
    load_frozen(upgraded, "node_v1.sql")
    NodeStore(upgraded).close()

    def schema(path):
        conn = sqlite3.connect(path)
        rows = conn.execute("SELECT type, name, tbl_name FROM sqlite_master ORDER BY name")
        tables = {}
        for kind, name, _table in rows.fetchall():
            if kind == "table":
                tables[name] = [c[1:3] for c in conn.execute(f"PRAGMA table_info({name})")]
            else:
                tables[name] = kind
        conn.close()
        return tables
    assert schema(fresh) == schema(upgraded)
