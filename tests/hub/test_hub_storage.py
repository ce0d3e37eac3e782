"""Hub storage: one interface, SQLite and PostgreSQL, numbered migrations."""

import pytest
from helpers.hub import temporary_schema

from central_hub import storage as hub_storage
from central_hub.composition import MIGRATIONS, open_storage
from central_hub.ingest import PROJECTED_THROUGH
from central_hub.nonces import NonceStore
from central_hub.storage import IN_CHUNK, SQLITE
from central_hub.storage.migrations import Migration, check_components, latest_versions
from central_hub.storage.postgres import ANALYSE_AFTER_ROWS, GROWTH_FACTOR, Growth

CORE_TABLES = {"events", "deliveries", "nodes", "nonces", "quarantine", "identity_conflicts",
               "hub_state", "scope_facilities", "scope_subjects", "scope_attachments",
               "scope_links", "schema_migrations"}


# hub_state rows of a test, not the projector's cursor that migrations put there
NOT_CURSOR = f"key <> '{PROJECTED_THROUGH}'"


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
    assert storage.schema_versions() == latest_versions(MIGRATIONS)
    with storage.reader() as tx:
        rows = tx.query("SELECT component, version FROM schema_migrations")
    recorded = {(r["component"], r["version"]) for r in rows}
    expected = {(name, v) for name, latest in latest_versions(MIGRATIONS).items()
                for v in range(1, latest + 1)}
    assert recorded == expected and ("core", 1) in recorded


def test_migrating_again_changes_nothing(storage_url):
    with open_storage(storage_url) as first:
        assert first.schema_versions() == latest_versions(MIGRATIONS)
    with open_storage(storage_url, migrate=False) as again:
        assert again.migrate() == []


def test_a_listed_component_migrates_after_core(storage_url):
    demo = (Migration("demo_module", 1, """
        -- a projection table of another module; its JSON column uses the dialect's type
        CREATE TABLE projection_demo (id TEXT PRIMARY KEY, body {json} NOT NULL)"""),)
    with hub_storage.open_storage(storage_url, components=(*MIGRATIONS, demo)) as storage:
        assert storage.schema_versions()["demo_module"] == 1
        assert storage.schema_versions()["core"] == latest_versions(MIGRATIONS)["core"]
        assert "projection_demo" in tables(storage)


def test_a_misnumbered_component_is_refused():
    with pytest.raises(ValueError):
        check_components((*MIGRATIONS, (Migration("broken", 2, "SELECT 1"),)))


def test_a_failed_transaction_leaves_nothing(storage):
    with pytest.raises(RuntimeError), storage.transaction() as tx:
        tx.execute("INSERT INTO hub_state (key, value, updated_at) VALUES (?, ?, ?)",
                   ("k", "v", "2026-01-01T00:00:00Z"))
        raise RuntimeError("boom")
    with storage.reader() as tx:
        assert tx.query(f"SELECT * FROM hub_state WHERE {NOT_CURSOR}") == []


def test_savepoint_rolls_back_only_its_part(storage):
    with storage.transaction() as tx:
        tx.execute("INSERT INTO hub_state (key, value, updated_at) VALUES ('a', '1', 'x')")
        with pytest.raises(ValueError), tx.savepoint():
            tx.execute("INSERT INTO hub_state (key, value, updated_at) VALUES ('b', '2', 'x')")
            raise ValueError("undo b")
    with storage.reader() as tx:
        assert [r["key"] for r in tx.query(f"SELECT key FROM hub_state WHERE {NOT_CURSOR}")] \
            == ["a"]


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


# Ids as query_in sends them on PostgreSQL (joined into one text when the split gives them back
# exactly, an array otherwise): each list must find exactly the rows that hold its values.
LOOKUPS = [
    ["k-1", "k-2"],  # plain ids
    ["a,b", "k-1"],  # a comma in a value: must not be split
    [""],  # only an empty value: string_to_array would give no element at all
    ["", "k-1"],
    ["k-1", "k-1", "k-3"],  # repeats
]


@pytest.mark.parametrize("keys", LOOKUPS)
def test_query_in_finds_exactly_the_rows_of_its_values(storage, keys):
    held = ["k-1", "k-2", "k-3", "a,b", "", "a", "b"]
    with storage.transaction() as tx:
        tx.append_rows("hub_state", ("key", "value", "updated_at"),
                       [(k, str(i), "t") for i, k in enumerate(held)])
    with storage.reader() as tx:
        found = [r["key"] for r in tx.query_in("SELECT key FROM hub_state WHERE key IN ({ids}) "
                                               "AND updated_at = ?", keys, ("t",))]
    assert sorted(found) == sorted(set(keys))


def test_query_in_with_integers(storage):
    with storage.transaction() as tx:
        tx.append_rows("nonces", ("node_id", "nonce", "expires_at"),
                       [("n", f"nonce-{i:016d}", i) for i in range(10)])
    with storage.reader() as tx:
        found = tx.query_in("SELECT expires_at FROM nonces WHERE expires_at IN ({ids})",
                            [3, 7, 7, 11])
        mixed = tx.query_in("SELECT expires_at FROM nonces WHERE nonce IN ({ids})",
                            ["nonce-0000000000000002", "nonce-0000000000000005"])
    assert sorted(r["expires_at"] for r in found) == [3, 7]
    assert sorted(r["expires_at"] for r in mixed) == [2, 5]


@pytest.mark.postgres
def test_postgres_sends_ids_as_one_text_unless_a_value_could_split(postgres_url):
    from central_hub.storage.postgres import id_array
    assert id_array(["a", "b"]) == ("string_to_array(?, ',')", "a,b")
    assert id_array([3, 7]) == ("string_to_array(?, ',')::bigint[]", "3,7")
    for values in (["a,b"], ["", "a"], ["a", 1], [True, 2], [None]):
        assert id_array(values) == ("?", values)


@pytest.mark.postgres
def test_postgres_plans_each_lookup_for_its_own_ids(postgres_url):
    # A generic plan for `= ANY($1)` ignores how many ids there are; it was 9x slower.
    with temporary_schema(postgres_url, "plans") as url, open_storage(url) as storage:
        with storage.reader() as tx:
            assert tx.scalar("SHOW plan_cache_mode") == "force_custom_plan"


def test_insert_many_upserts_each_row(storage):
    with storage.transaction() as tx:
        tx.insert_many("hub_state", ("key", "value", "updated_at"),
                       [(f"k{i}", "old", "t") for i in range(5)])
        tx.insert_many("hub_state", ("key", "value", "updated_at"),
                       [("k1", "new", "t2"), ("k9", "new", "t2")],
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        tx.insert_many("hub_state", ("key", "value", "updated_at"),
                       [("k2", "ignored", "t3")], "ON CONFLICT (key) DO NOTHING")
        tx.insert_many("hub_state", ("key", "value", "updated_at"), [])
    with storage.reader() as tx:
        values = {r["key"]: r["value"] for r in tx.query(
            f"SELECT key, value FROM hub_state WHERE {NOT_CURSOR}")}
    assert values == {"k0": "old", "k1": "new", "k2": "old", "k3": "old", "k4": "old",
                      "k9": "new"}


def test_events_carry_only_the_indexes_queries_use(storage):
    with storage.reader() as tx:
        if tx.dialect == SQLITE:
            names = {r["name"] for r in tx.query(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
                "AND sql IS NOT NULL")}
            plan = " ".join(str(r["detail"]) for r in tx.query(
                "EXPLAIN QUERY PLAN SELECT * FROM events WHERE type = "
                "'RemotePrescriptionRequested' ORDER BY position DESC LIMIT 5"))
        else:
            names = {r["indexname"] for r in tx.query(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'events' AND "
                "schemaname = current_schema()")}
            tx.execute("SET LOCAL enable_seqscan = off")
            plan = " ".join(r["QUERY PLAN"] for r in tx.query(
                "EXPLAIN SELECT * FROM events WHERE type = 'RemotePrescriptionRequested' "
                "ORDER BY position DESC LIMIT 5"))
    assert {"events_by_patient", "events_by_subject", "events_remote_requests"} <= names
    assert not names & {"events_by_facility", "events_by_type"}
    # the call centre's list of requests reads the small partial index (on PostgreSQL, each
    # partition's copy of it), not the whole log
    assert "remote_requests" in plan


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
