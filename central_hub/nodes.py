"""The registry of nodes and their sync state, for ingest, pulls and the dashboard.

A node is registered by its first authenticated request (its certificate says who it is).
Its row keeps the head of its own chain as the hub holds it (acked_seq, head_hash), its pull
cursor, when it last pushed, pulled and was fully synced, and its last error, so central
staff see outages and lag (DESIGN 7.6). Identity conflicts (DESIGN 7.10) flag the node.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sync_protocol.certificates import NodeIdentity
from sync_protocol.events import GENESIS_HASH
from sync_protocol.timeutil import from_instant

from . import pending
from .storage import Storage, Tx

log = logging.getLogger(__name__)

IDENTITY_CONFLICT = "identity_conflict"
# Errors are shown to people on one dashboard line.
MAX_ERROR_LENGTH = 500


def record_contact(tx: Tx, node: NodeIdentity, kid: str, now: str) -> dict[str, Any]:
    """Register or refresh a node from its certificate; return its row. The caller holds the
    writer lock (a new node's pending counter is counted against the feed)."""
    rows = tx.query(
        "INSERT INTO nodes (node_id, facility_code, region, kind, cert_kid, first_seen, "
        "last_seen, head_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (node_id) DO UPDATE "
        "SET facility_code = excluded.facility_code, region = excluded.region, "
        "kind = excluded.kind, cert_kid = excluded.cert_kid, last_seen = excluded.last_seen "
        "RETURNING *",
        (node.node_id, node.facility_code, node.region_code, str(node.kind), kid, now, now,
         GENESIS_HASH))
    pending.follow_node(tx, node.node_id)
    return rows[0]


def record_push(tx: Tx, node_id: str, *, acked_seq: int, head_hash: str, accepted: int,
                now: str, error: tuple[str, str] | None) -> None:
    tx.execute("UPDATE nodes SET acked_seq = ?, head_hash = ?, last_push_at = ?, "
               "pushed_events = pushed_events + ? WHERE node_id = ?",
               (acked_seq, head_hash, now, accepted, node_id))
    if error is not None:
        _set_error(tx, node_id, error[0], error[1], now)


def record_pull(storage: Storage, node_id: str, *, cursor: int, synced: bool, count: int,
                now: str) -> None:
    # Not the writer lock: a pull never waits for a push or a projection step (pending.py).
    with storage.transaction(exclusive=False) as tx:
        pending.pull_moved(tx, node_id, cursor)
        tx.execute("UPDATE nodes SET last_pull_at = ?, last_seen = ?, last_cursor = ?, "
                   "pulled_events = pulled_events + ? WHERE node_id = ?",
                   (now, now, cursor, count, node_id))
        if synced:
            tx.execute("UPDATE nodes SET synced_at = ? WHERE node_id = ?", (now, node_id))


def record_error(storage: Storage, node_id: str, code: str, message: str, now: str) -> None:
    """Note a failed request of a known node (unknown ids are ignored: no row spam)."""
    with storage.transaction(exclusive=False) as tx:
        _set_error(tx, node_id, code, message, now)


def _set_error(tx: Tx, node_id: str, code: str, message: str, now: str) -> None:
    tx.execute("UPDATE nodes SET last_error = ?, last_error_code = ?, last_error_at = ? "
               "WHERE node_id = ?", (message[:MAX_ERROR_LENGTH], code, now, node_id))


def record_identity_conflict(tx: Tx, node_id: str, *, seq: int, kind: str, held_id: str | None,
                             held_hash: str, presented_id: str | None, presented_hash: str,
                             kid: str, now: str) -> None:
    """Two devices, one identity: keep both hashes and flag the node for people to see."""
    tx.execute("INSERT INTO identity_conflicts (node_id, seq, kind, held_id, held_hash, "
               "presented_id, presented_hash, presented_kid, detected_at) VALUES (?, ?, ?, ?, "
               "?, ?, ?, ?, ?) ON CONFLICT (node_id, seq, presented_hash) DO NOTHING",
               (node_id, seq, kind, held_id, held_hash, presented_id, presented_hash, kid, now))
    tx.execute("UPDATE nodes SET flag = ? WHERE node_id = ?", (IDENTITY_CONFLICT, node_id))
    log.warning("identity conflict: node %s presented seq %s with hash %s, hub holds %s",
                node_id, seq, presented_hash, held_hash)


def get_node(storage: Storage, node_id: str) -> dict[str, Any] | None:
    with storage.reader() as tx:
        return tx.one("SELECT * FROM nodes WHERE node_id = ?", (node_id,))


def identity_conflicts(storage: Storage, node_id: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM identity_conflicts"
    params: tuple = ()
    if node_id:
        sql += " WHERE node_id = ?"
        params = (node_id,)
    with storage.reader() as tx:
        return tx.query(sql + " ORDER BY id", params)


def list_nodes(storage: Storage, now: datetime) -> list[dict[str, Any]]:
    """Every node's sync state for the dashboard, with events waiting for it and lag."""
    from .scope import PENDING_CAP

    with storage.reader() as tx:
        rows = tx.query("SELECT * FROM nodes ORDER BY region, facility_code, node_id")
        waiting = pending.waiting(tx, rows, now, PENDING_CAP)
        out = []
        for row in rows:
            count, capped = waiting[row["node_id"]]
            synced = row["synced_at"]
            lag = int((now - from_instant(synced)).total_seconds()) if synced else None
            out.append({**row, "pending": count, "pending_capped": capped,
                        "lag_seconds": lag,
                        "error_is_current": bool(row["last_error_at"]) and (
                            not synced or row["last_error_at"] >= synced)})
    return out
