"""Refused sync requests, counted by the node they claim to be and where they came from.

A request that fails authentication may be anybody's, so it never touches the claimed node's
own record (nodes.py); it is logged and counted here, apart, for central staff to see who
knocks in whose name. One row per (claimed node, source address, reason) keeps a flood to a
counter; the table keeps the MAX_ROWS most recent rows so junk ids cannot fill the disk.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from .storage import Migration, Storage

log = logging.getLogger(__name__)

COMPONENT = "refusals"
REFUSALS_V1 = """
-- Hub-local, never synced. claimed_node is the X-DMED-Node header as sent (cut short).
CREATE TABLE refused_requests (
    claimed_node TEXT NOT NULL,
    source TEXT NOT NULL,
    code TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (claimed_node, source, code)
);
CREATE INDEX refused_requests_by_time ON refused_requests (last_at)
"""
MIGRATIONS = (Migration(COMPONENT, 1, REFUSALS_V1),)  # listed by central_hub.composition

MAX_NODE_ID_CHARS = 64  # node ids are shorter (trust.NODE_ID_RE); longer is junk
MAX_SOURCE_CHARS = 64  # an IPv6 address with a zone fits
# Enough distinct (node, source, reason) triples for any real incident; older ones go.
MAX_ROWS = 5000


def record(storage: Storage, claimed_node: str | None, source: str | None, code: str,
           now: str) -> None:
    """Count one refused request; never raises (a refusal must be answered regardless)."""
    node = (claimed_node or "")[:MAX_NODE_ID_CHARS]
    address = (source or "")[:MAX_SOURCE_CHARS]
    log.warning("refused sync request claiming node %r from %s: %s", node, address, code)
    try:
        with storage.transaction(exclusive=False) as tx:
            rows = tx.query(
                "INSERT INTO refused_requests (claimed_node, source, code, count, first_at, "
                "last_at) VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (claimed_node, source, code) "
                "DO UPDATE SET count = refused_requests.count + 1, last_at = excluded.last_at "
                "RETURNING count", (node, address, code, now, now))
            if rows and rows[0]["count"] == 1:  # a new row: keep the table bounded
                tx.execute("DELETE FROM refused_requests WHERE last_at < (SELECT last_at FROM "
                           "refused_requests ORDER BY last_at DESC LIMIT 1 OFFSET ?)",
                           (MAX_ROWS - 1,))
    except Exception:  # noqa: BLE001 - counting must not turn a 401 into a 500
        log.exception("could not count a refused sync request")


def list_refusals(storage: Storage, limit: int = 100) -> list[dict[str, Any]]:
    with storage.reader() as tx:
        return tx.query("SELECT * FROM refused_requests ORDER BY last_at DESC, claimed_node "
                        "LIMIT ?", (limit,))


def by_node(storage: Storage) -> dict[str, dict[str, Any]]:
    """Per claimed node: refused requests in all, the last one's time, reasons and sources."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"count": 0, "last_at": "", "codes": set(), "sources": set()})
    with storage.reader() as tx:
        rows = tx.query("SELECT claimed_node, source, code, count, last_at "
                        "FROM refused_requests")
    for row in rows:
        entry = out[row["claimed_node"]]
        entry["count"] += row["count"]
        entry["last_at"] = max(entry["last_at"], row["last_at"])
        entry["codes"].add(row["code"])
        entry["sources"].add(row["source"])
    return {node: {**e, "codes": sorted(e["codes"]), "sources": sorted(e["sources"])}
            for node, e in out.items()}
