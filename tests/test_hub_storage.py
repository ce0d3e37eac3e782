"""Hub storage: one interface, SQLite and PostgreSQL, numbered migrations."""

import pytest
from hub_helpers import temporary_schema

from central_hub.nonces import NonceStore
from central_hub.storage import IN_CHUNK, SQLITE, latest_versions, open_storage
from central_hub.storage.migrations import Migration, register
from central_hub.storage.postgres import ANALYSE_AFTER_ROWS, GROWTH_FACTOR, Growth

pytest_plugins = ("hub_helpers",)

CORE_TABLES = {"events", "deliveries", "nodes", "nonces", "quarantine", "identity_conflicts",
               "hub_state", "scope_facilities", "scope_subjects", "scope_attachments",
               "scope_links", "schema_migrations"}


def tables(storage):
    with storage.reader() as tx:
        if tx.dialect == SQLITE:
            rows = tx.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = tx.query("SELECT table_name AS name FROM information_schema.tables "
                            "WHERE table_schema = current_schema()")
    return {row["name"] for row in rows}


def test_migrations_apply_and_are_recorded(storage):
    assert CORE_TABLES <= tables(storage)
    assert storage.schema_versions() == latest_versions()
    with storage.reader() as tx:
        rows = tx.query("SELECT component, version FROM schema_migrations")
    recorded = {(r["component"], r["version"]) for r in rows}
    expected = {(name, v) for name, latest in latest_versions().items()
                for v in range(1, latest + 1)}
    assert recorded == expected and ("core", 1) in recorded


def test_migrating_again_changes_nothing(storage_url):
    with open_storage(storage_url) as first:
        assert first.schema_versions() == latest_versions()
    with open_storage(storage_url, migrate=False) as again:
        assert again.migrate() == []


def test_a_registered_component_migrates_after_core(storage_url, monkeypatch):
    from central_hub.storage import migrations
    monkeypatch.setattr(migrations, "COMPONENTS", dict(migrations.COMPONENTS))
    register("demo_module", (Migration("demo_module", 1, """
        -- a projection table of another module; its JSON column uses the dialect's type
        CREATE TABLE projection_demo (id TEXT PRIMARY KEY, body {json} NOT NULL)"""),))
    with open_storage(storage_url) as storage:
        assert storage.schema_versions()["demo_module"] == 1
        assert storage.schema_versions()["core"] == 1
        assert "projection_demo" in tables(storage)


def test_register_refuses_misnumbered_migrations():
    with pytest.raises(ValueError):
        register("broken", (Migration("broken", 2, "SELECT 1"),))


def test_a_failed_transaction_leaves_nothing(storage):
    with pytest.raises(RuntimeError), storage.transaction() as tx:
        tx.execute("INSERT INTO hub_state (key, value, updated_at) VALUES (?, ?, ?)",
                   ("k", "v", "2026-01-01T00:00:00Z"))
        raise RuntimeError("boom")
    with storage.reader() as tx:
        assert tx.query("SELECT * FROM hub_state") == []


def test_savepoint_rolls_back_only_its_part(storage):
    with storage.transaction() as tx:
        tx.execute("INSERT INTO hub_state (key, value, updated_at) VALUES ('a', '1', 'x')")
        with pytest.raises(ValueError), tx.savepoint():
            tx.execute("INSERT INTO hub_state (key, value, updated_at) VALUES ('b', '2', 'x')")
            raise ValueError("undo b")
    with storage.reader() as tx:
        assert [r["key"] for r in tx.query("SELECT key FROM hub_state")] == ["a"]


def test_bulk_append_and_chunked_lookups(storage):
    count = IN_CHUNK * 2 + 7
    rows = [(f"n{i:04d}", f"nonce-{i:016d}", i) for i in range(count)]
    with storage.transaction() as tx:
        tx.append_rows("nonces", ("node_id", "nonce", "expires_at"), rows)
    with storage.reader() as tx:
        found = tx.query_in("SELECT node_id FROM nonces WHERE node_id IN ({ids}) AND "
                            "expires_at >= ?", [r[0] for r in rows], (10,))
        percent = tx.scalar("SELECT COUNT(*) AS n FROM nonces WHERE nonce LIKE 'nonce-%'")
    assert len(found) == count - 10
    assert percent == count


@pytest.mark.parametrize("url", ["mysql://localhost/hub", "", "sqlite:///:memory:"])
def test_unsupported_database_urls_are_refused(url):
    with pytest.raises(ValueError):
        open_storage(url)


def test_a_plain_path_is_sqlite(tmp_path):
    with open_storage(tmp_path / "sub" / "hub.db") as storage:
        assert storage.dialect == SQLITE
        assert (tmp_path / "sub" / "hub.db").exists()


def test_nonces_are_remembered_until_they_expire(storage):
    now = [1_000_000]
    nonces = NonceStore(storage, clock=lambda: now[0])
    assert nonces.seen("n1", "nonce-aaaaaaaaaaaaaaaa", 1_000_600) is False
    assert nonces.seen("n1", "nonce-aaaaaaaaaaaaaaaa", 1_000_600) is True
    assert nonces.seen("n2", "nonce-aaaaaaaaaaaaaaaa", 1_000_600) is False  # per node
    nonces.seen("n1", "nonce-bbbbbbbbbbbbbbbb", 1_002_000)
    now[0] = 1_001_000
    assert nonces.purge() == 2
    with storage.reader() as tx:
        left = [r["nonce"] for r in tx.query("SELECT nonce FROM nonces")]
    assert left == ["nonce-bbbbbbbbbbbbbbbb"]


def test_growth_asks_for_analysis_when_a_table_grew_enough():
    growth = Growth()
    growth.add("events", ANALYSE_AFTER_ROWS - 1)
    assert growth.due() == []
    growth.add("events", 1)
    assert growth.due() == ["events"]  # 2,000 rows
    growth.add("events", (GROWTH_FACTOR - 1) * ANALYSE_AFTER_ROWS - 1)
    assert growth.due() == []  # not yet four times as many
    growth.add("events", 1)
    assert growth.due() == ["events"]  # 8,000 rows
    assert growth.due() == []


@pytest.mark.postgres
def test_postgres_analyses_a_table_after_it_grew(postgres_url):
    with temporary_schema(postgres_url, "growth") as url, open_storage(url) as storage:
        rows = [(f"k{i:05d}", "v", "t") for i in range(ANALYSE_AFTER_ROWS)]
        with storage.transaction() as tx:
            tx.append_rows("hub_state", ("key", "value", "updated_at"), rows[:-1])
        with storage.transaction() as tx:
            tx.append_rows("hub_state", ("key", "value", "updated_at"), rows[-1:])
        with storage.reader() as tx:
            (stats,) = tx.query("SELECT s.last_analyze, c.reltuples FROM pg_stat_user_tables s "
                                "JOIN pg_class c ON c.oid = s.relid WHERE s.relname = "
                                "'hub_state' AND s.schemaname = current_schema()")
        # the planner now knows the table's size (never analysed, reltuples would be -1)
        assert stats["last_analyze"] is not None and stats["reltuples"] >= ANALYSE_AFTER_ROWS
