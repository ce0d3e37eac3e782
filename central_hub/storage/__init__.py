"""Hub storage: one interface (base.Storage), two backends, chosen by a database URL.

    open_storage("sqlite:///var/hub.db")       SQLite (the default; a plain path works too)
    open_storage("postgresql://u@host/db")     PostgreSQL (add ?schema=name for a schema)
"""

from __future__ import annotations

import logging
from pathlib import Path

from .base import IN_CHUNK, POSTGRESQL, SQLITE, Row, Storage, Tx
from .migrations import Migration, latest_versions, register

log = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"


def open_storage(url: str | Path, *, migrate: bool = True) -> Storage:
    """Open (and by default migrate) the hub database named by `url`."""
    text = str(url).strip()
    if not text:
        raise ValueError("empty database URL")
    if text.startswith(POSTGRES_SCHEMES):
        from .postgres import PostgresStorage
        storage: Storage = PostgresStorage(text)
    elif text.startswith(SQLITE_SCHEME):
        from .sqlite import SqliteStorage
        storage = SqliteStorage(text.removeprefix(SQLITE_SCHEME))
    elif "://" in text:
        raise ValueError(f"unsupported database URL {text.split('://')[0]}://; "
                         "use sqlite:///path or postgresql://...")
    else:
        from .sqlite import SqliteStorage
        storage = SqliteStorage(text)
    if migrate:
        try:
            storage.migrate()
        except BaseException:
            storage.close()
            raise
    return storage


__all__ = ["IN_CHUNK", "POSTGRESQL", "SQLITE", "Migration", "Row", "Storage", "Tx",
           "latest_versions", "open_storage", "register"]
