"""SQLite backend (the default): one file in WAL mode, one writer connection under a lock.

Readers get a connection per thread; WAL lets them read while the writer commits. As in the
node's store, every write is a `BEGIN IMMEDIATE` transaction on the single writer, so web
requests and background jobs never fight over the file.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import SQLITE, Params, Row, Storage, Tx

log = logging.getLogger(__name__)

# Seconds a writer waits for the file lock held by another process (a CLI beside the server).
BUSY_TIMEOUT_S = 10.0


def _dict_row(cursor: sqlite3.Cursor, row: tuple) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                           timeout=BUSY_TIMEOUT_S)
    conn.row_factory = _dict_row
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: an event the hub acknowledged survives a power cut; the node then forgets it.
    conn.execute("PRAGMA synchronous=FULL")
    return conn


class SqliteTx(Tx):
    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Params = ()) -> int:
        return self.conn.execute(sql, tuple(params)).rowcount

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self.conn.executemany(sql, rows)

    def hold_writer_lock(self) -> None:
        pass  # every write transaction holds SQLite's one writer already

    def insert_many(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                    conflict: str = "") -> None:
        # In-process SQLite has no round trips: executemany is the fastest form.
        if rows:
            marks = ", ".join("?" * len(columns))
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) {conflict}",  # noqa: S608 - names are code constants
                rows)

    def append_rows(self, table: str, columns: Sequence[str],
                    rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            marks = ", ".join("?" * len(columns))
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608 - names are code constants
                rows)


class SqliteStorage(Storage):
    dialect = SQLITE

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) in ("", ":memory:"):
            raise ValueError("the hub needs a database file; :memory: cannot be shared")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite:///{self.path}"
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._writer = connect(self.path)

    @contextmanager
    def transaction(self, *, exclusive: bool = True, projector: bool = False) -> Iterator[Tx]:
        # SQLite has one writer whatever `exclusive` and `projector` say.
        with self._lock:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteTx(self._writer)
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")

    @contextmanager
    def reader(self) -> Iterator[Tx]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
            with self._lock:
                self._readers.append(conn)
        if conn.in_transaction:  # a reader nested in another on this thread shares it
            yield SqliteTx(conn)
            return
        conn.execute("BEGIN")  # one snapshot for every query of the block
        try:
            yield SqliteTx(conn)
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._writer.close()
        self._local = threading.local()
