"""Hub storage: one interface (base.Storage), two backends, chosen by a database URL.

    open_storage("sqlite:///var/hub.db", components=...)    SQLite (a plain path works too)
    open_storage("postgresql://u@host/db", components=...)  PostgreSQL (?schema=name: a schema)

`components` is the ordered migration list; central_hub.composition.open_storage passes the
hub's, and is what the hub, its CLI and its tests call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from .base import IN_CHUNK, POSTGRESQL, SQLITE, Row, Storage, Tx
from .migrations import Component, Migration, check_components, latest_versions

log = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"


def open_storage(url: str | Path, *, components: Sequence[Component],
                 migrate: bool = True) -> Storage:
    """Open (and by default migrate to `components`) the hub database named by `url`."""
    components = check_components(components)
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
    storage.components = components
    if migrate:
        try:
            storage.migrate()
        except BaseException:
            storage.close()
            raise
    return storage


__all__ = ["IN_CHUNK", "POSTGRESQL", "SQLITE", "Component", "Migration", "Row", "Storage", "Tx",
           "latest_versions", "open_storage"]
