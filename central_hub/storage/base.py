"""The one storage interface of the hub; SQLite and PostgreSQL implement it.

Everything above this layer writes portable SQL: `?` placeholders (the PostgreSQL backend
turns them into `%s`), `INSERT ... ON CONFLICT`, integer flags instead of booleans, instants
as ISO text with a Z. The few things that differ (bulk appends, column types in migrations,
the writer lock) live behind the methods below.

Writes go through `Storage.transaction()`, the one write path: an exclusive transaction
serialises appends to the global log, so positions are handed out and committed in the same
order and a reader's cursor can never skip a row that commits later (DESIGN 7.1). Reads use
`Storage.reader()`, which never blocks writers.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

Row = dict[str, Any]
Params = Sequence[Any]

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
# IN (...) lists are sent in chunks of this many ids: far below SQLite's 32,766 variables and
# small enough for PostgreSQL's planner to treat as a handful of index probes.
IN_CHUNK = 500
# Rows per multi-row INSERT: 500 rows of up to 8 columns stay under SQLite's variable limit.
INSERT_CHUNK = 500


class Tx(ABC):
    """One open transaction (or read snapshot) on one connection."""

    dialect: str

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    @abstractmethod
    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one query; rows are plain dicts keyed by column name."""

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for each parameter row (batched by the driver)."""

    @abstractmethod
    def append_rows(self, table: str, columns: Sequence[str],
                    rows: Sequence[Sequence[Any]]) -> None:
        """Insert fresh rows fast (COPY on PostgreSQL); the caller guarantees no conflict."""

    def insert_many(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                    conflict: str = "") -> None:
        """INSERT rows in multi-row statements; `conflict` is an ON CONFLICT clause.

        One statement per INSERT_CHUNK rows instead of one per row: on PostgreSQL the round
        trips, not the rows, are what costs. With DO UPDATE, no key may repeat in `rows`.
        """
        width = len(columns)
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start:start + INSERT_CHUNK]
            values = ", ".join(["(" + ", ".join("?" * width) + ")"] * len(chunk))
            self.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} "  # noqa: S608 - names are code constants
                         f"{conflict}", [value for row in chunk for value in row])

    def one(self, sql: str, params: Params = ()) -> Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Params = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))

    def query_in(self, sql: str, values: Iterable[Any], params: Params = ()) -> list[Row]:
        """`sql` holds one `IN ({ids})`; run it over `values` in chunks.

        The extra `params` follow the id list. (PostgreSQL sends one array instead.)
        """
        values = list(dict.fromkeys(values))
        rows: list[Row] = []
        for start in range(0, len(values), IN_CHUNK):
            chunk = values[start:start + IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows.extend(self.query(sql.format(ids=marks), (*chunk, *params)))
        return rows

    @abstractmethod
    def hold_writer_lock(self) -> None:
        """Take the writer lock for the rest of this transaction, if it does not hold it yet
        (a projector's transaction appending a hub event)."""

    @contextmanager
    def savepoint(self, name: str = "hub_sp") -> Iterator[None]:
        """A nested transaction: an error inside rolls back to here and is re-raised."""
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.execute(f"RELEASE SAVEPOINT {name}")


class Storage(ABC):
    """A hub database. Thread-safe: each thread gets its own connection for reads."""

    dialect: str
    url: str
    # Whether a projector's transaction runs beside a writer's (PostgreSQL), or waits for the
    # one writer like everything else (SQLite).
    separate_projector: bool = False
    # The migration components, in order (storage.migrations.Migration tuples), given by
    # whoever opened the storage: central_hub.composition lists the hub's.
    components: Sequence[Sequence[Any]] | None = None

    @abstractmethod
    def transaction(self, *, exclusive: bool = True,
                    projector: bool = False) -> AbstractContextManager[Tx]:
        """A write transaction, committed when the block ends and rolled back on error.

        `exclusive` (the default) holds the hub's writer lock for the whole transaction;
        every write that appends to the log or to the delivery feed must take it. Small
        writes that append to neither (nonces, node bookkeeping) may pass False.
        `projector` holds the projector's lock instead (central_hub.ingest: the hooks run
        over the log in its order, one transaction at a time, beside the writer).
        """

    @abstractmethod
    def reader(self) -> AbstractContextManager[Tx]:
        """A read-only snapshot on this thread's connection."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection this storage opened."""

    def migrate(self) -> list[tuple[str, int]]:
        """Apply every pending migration of `components`, in their order, each in its own
        exclusive transaction; return the (component, version) pairs applied."""
        if self.components is None:
            raise RuntimeError("this hub database was opened without its migration list; open "
                               "it with central_hub.composition.open_storage")
        applied: list[tuple[str, int]] = []
        for migrations in self.components:
            for migration in migrations:
                with self.transaction() as tx:
                    tx.execute(SCHEMA_MIGRATIONS)
                    if current_versions(tx).get(migration.component, 0) >= migration.version:
                        continue
                    for statement in migration.statements(tx.dialect):
                        tx.execute(statement)
                    if migration.apply is not None:
                        migration.apply(tx)
                    tx.execute("INSERT INTO schema_migrations (component, version, applied_at) "
                               "VALUES (?, ?, ?)",
                               (migration.component, migration.version, _now()))
                log.info("hub database %s migrated to %s %s", self.url, migration.component,
                         migration.version)
                applied.append((migration.component, migration.version))
        return applied

    def schema_versions(self) -> dict[str, int]:
        with self.reader() as tx:
            return current_versions(tx)

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


SCHEMA_MIGRATIONS = ("CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, "
                     "version INTEGER NOT NULL, applied_at TEXT NOT NULL, "
                     "PRIMARY KEY (component, version))")


def current_versions(tx: Tx) -> dict[str, int]:
    """{component: highest version applied}; empty for a database never migrated."""
    if not _has_migrations_table(tx):
        return {}
    rows = tx.query("SELECT component, MAX(version) AS version FROM schema_migrations "
                    "GROUP BY component")
    return {row["component"]: row["version"] for row in rows}


def _has_migrations_table(tx: Tx) -> bool:
    if tx.dialect == SQLITE:
        return tx.one("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND "
                      "name = 'schema_migrations'") is not None
    return tx.scalar("SELECT to_regclass('schema_migrations') IS NOT NULL AS x") is True


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
