"""PostgreSQL backend (national scale) via psycopg 3: one connection per thread.

The URL is a libpq URL (`postgresql://user@host:5432/db?...`) plus one parameter of ours,
`schema=<name>`, which puts the hub's tables in that schema (search_path), e.g. one schema
per test. Exclusive transactions take a transaction-scoped advisory lock, the hub's writer
lock: positions are handed out and committed in one order even with several hub processes.
The projector's transactions take another, so one batch is projected while the next is
stored.
Bulk appends use COPY, the fastest way into PostgreSQL. A table that grew to four times the
rows it had when last analysed is analysed after the commit (`Growth`), from a small sample: a
new hub filling up from empty would otherwise be planned with no statistics, and `= ANY(array)`
lookups turn into sequential scans whose cost grows with the table. Autovacuum's own, fuller
analysis follows in its time.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .base import POSTGRESQL, Params, Row, Storage, Tx

log = logging.getLogger(__name__)

# The writer lock: any fixed 64-bit number shared by every hub process ("DMEDHUB1" in ASCII).
WRITER_LOCK_KEY = 0x444D4544_48554231
# The projector's lock ("DMEDHUB2"). A projector may take the writer lock after its own; a
# writer never takes the projector's, so the two cannot deadlock.
PROJECTOR_LOCK_KEY = 0x444D4544_48554232
# Seconds to wait for the server when (re)connecting; a hub must not hang on a dead database.
CONNECT_TIMEOUT_S = 10
SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@lru_cache(maxsize=512)
def to_pyformat(statement: str) -> str:
    """`?` placeholders become psycopg's `%s` (and a literal % is escaped)."""
    return statement.replace("%", "%%").replace("?", "%s")


def split_url(url: str) -> tuple[str, str | None]:
    """(libpq URL, schema) from our URL form; raises ValueError for a bad schema name."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), None)
    if schema is not None and not SCHEMA_RE.fullmatch(schema):
        raise ValueError(f"schema name {schema!r} must match {SCHEMA_RE.pattern}")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


# Rows a table must gain before it is first analysed; then it must grow GROWTH_FACTOR times.
ANALYSE_AFTER_ROWS = 2000
GROWTH_FACTOR = 4
# Sample size of these analyses (PostgreSQL samples 300 x this many rows): enough to see that
# ids are unique and lookups selective, at a tenth of the default's cost.
ANALYSE_STATISTICS_TARGET = 10


def id_array(values: list[Any]) -> tuple[str, Any]:
    """(SQL array expression with one `?`, its parameter) for a list of ids.

    psycopg adapts a Python list element by element, about 4 us per id; ids joined into one
    text that the server splits cost a tenth of that. Only lists the split gives back exactly
    take that way: all strings, none empty or holding the separator; or all integers.
    """
    if all(type(v) is str and v and "," not in v for v in values):
        return "string_to_array(?, ',')", ",".join(values)
    if all(type(v) is int for v in values):
        return "string_to_array(?, ',')::bigint[]", ",".join(map(str, values))
    return "?", values


class Growth:
    """Rows appended per table since it was last analysed, for the whole storage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._appended: dict[str, int] = {}
        self._analysed_at: dict[str, int] = {}  # rows appended (by us) when last analysed

    def add(self, table: str, rows: int) -> None:
        with self._lock:
            self._appended[table] = self._appended.get(table, 0) + rows

    def due(self) -> list[str]:
        """Tables to analyse now; each is taken off the list until it grows enough again."""
        with self._lock:
            tables = [t for t, n in self._appended.items()
                      if n >= max(ANALYSE_AFTER_ROWS,
                                  GROWTH_FACTOR * self._analysed_at.get(t, 0))]
            for table in tables:
                self._analysed_at[table] = self._appended[table]
            return tables


class PostgresTx(Tx):
    dialect = POSTGRESQL

    def __init__(self, conn: psycopg.Connection, growth: Growth | None = None) -> None:
        self.conn = conn
        self.growth = growth

    def execute(self, statement: str, params: Params = ()) -> int:
        if not params:
            return self.conn.execute(statement).rowcount  # type: ignore[arg-type]
        return self.conn.execute(to_pyformat(statement), tuple(params)).rowcount  # type: ignore[arg-type]

    def query(self, statement: str, params: Params = ()) -> list[Row]:
        if not params:
            return self.conn.execute(statement).fetchall()  # type: ignore[arg-type, return-value]
        return self.conn.execute(to_pyformat(statement),  # type: ignore[arg-type]
                                 tuple(params)).fetchall()  # type: ignore[return-value]

    def executemany(self, statement: str, rows: Iterable[Params]) -> None:
        rows = [tuple(r) for r in rows]
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(to_pyformat(statement), rows)  # type: ignore[arg-type]

    def hold_writer_lock(self) -> None:
        # Taken again by its holder, an advisory lock just counts up; all go at the commit.
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK_KEY,))

    def insert_many(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                    conflict: str = "") -> None:
        # One prepared single-row INSERT, pipelined by executemany: psycopg adapts the
        # thousands of parameters of a multi-row statement at 5 times the CPU per row.
        if rows:
            self.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - names are code constants
                             f"VALUES ({', '.join('?' * len(columns))}) {conflict}", rows)

    def query_in(self, statement: str, values: Iterable[Any], params: Params = ()) -> list[Row]:
        # One array parameter: parsed and planned once, whatever the number of ids.
        values = list(dict.fromkeys(values))
        if not values:
            return []
        if "IN ({ids})" not in statement:
            raise ValueError("query_in needs the form IN ({ids})")
        array, value = id_array(values)
        return self.query(statement.replace("IN ({ids})", f"= ANY({array})"), (value, *params))

    def append_rows(self, table: str, columns: Sequence[str],
                    rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
        with self.conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
        if self.growth is not None:
            self.growth.add(table, len(rows))


class PostgresStorage(Storage):
    dialect = POSTGRESQL
    separate_projector = True

    def __init__(self, url: str) -> None:
        self._conninfo, self.schema = split_url(url)
        self.url = redact(url)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[psycopg.Connection] = []
        self._growth = Growth()
        self._conn()  # fail now, with the server's message, if the database is unreachable

    def _conn(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not (conn.closed or conn.broken):
            return conn
        conn = psycopg.connect(self._conninfo, autocommit=True, row_factory=dict_row,
                               connect_timeout=CONNECT_TIMEOUT_S)
        if self.schema:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(self.schema)))
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        # psycopg prepares a statement run 5 times; PostgreSQL then tries a generic plan, and
        # for `= ANY($1)` over a few hundred ids that plan was 9x slower than the custom one.
        conn.execute("SET plan_cache_mode = force_custom_plan")
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self, *, exclusive: bool = True, projector: bool = False) -> Iterator[Tx]:
        conn = self._conn()
        with conn.transaction():
            if projector:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK_KEY,))
            elif exclusive:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK_KEY,))
            yield PostgresTx(conn, self._growth)
        for table in self._growth.due():  # after the commit, outside the writer lock
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL default_statistics_target = {}").format(
                    sql.Literal(ANALYSE_STATISTICS_TARGET)))
                conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
            log.debug("analysed %s after it grew", table)

    @contextmanager
    def reader(self) -> Iterator[Tx]:
        conn = self._conn()
        with conn.transaction():
            yield PostgresTx(conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
