"""Per-node pending counters: how many events wait at the hub for each node to pull.

A node's pending count is the number of distinct events (positions) with a delivery row in
one of its audiences (central_hub.routing.node_audiences) after its pull cursor, not of its
own origin. Counting that against the delivery feed on every dashboard page cost a second
per region on SQLite, so each node's count is kept in `monitor_pending` and changed in the
transaction that changes what it counts. Appends to the feed hold the hub's writer lock. A
pull's bookkeeping must never wait for a push or a projection step (which hold the counter
rows they count up until they commit), so on PostgreSQL it takes its node's counter without
waiting, or, if that is held, marks the node stale in `monitor_pending_stale`: the next
append under the writer lock recounts it, and until then its count is read from the feed.
A pull counts off only rows at or below the cursor it was served, all committed, while the
feed grows above them, so the deltas commute and pushes and pulls cannot make it drift:

    rows appended to the feed   +1 per node for each event new to that node's backlog
    a pull moves the cursor     -1 for each event the node has now passed entirely
    a node's identity changes   (first contact, a new facility code, region or kind) recount
    a facility is registered    recount the nodes of its code (their audiences grew)

Unlike a pull, the count keeps a pharmacy's prescription events that expired before it
pulled them (a pull skips those): expiry is a matter of time, not of any write.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sync_protocol.certificates import NodeKind

from .routing import FACILITY, PHARMACIES, REGION, node_audiences
from .scope import node_facilities, node_identity, pending_count
from .storage import POSTGRESQL, Tx

log = logging.getLogger(__name__)

# The migration's back-fill: the same count as recount(), in one statement per database.
BACKFILL_SQL = """
INSERT INTO monitor_pending (node_id, facility_code, region, kind, pending)
SELECT n.node_id, n.facility_code, n.region, n.kind, (
    SELECT COUNT(DISTINCT d.position) FROM deliveries d
    WHERE d.id > n.last_cursor AND d.origin <> n.node_id AND (
        (d.target_kind = 'region' AND d.target = n.region)
        OR (d.target_kind = 'pharmacies' AND d.target = n.region AND n.kind = 'pharmacy')
        OR (d.target_kind = 'facility' AND d.target IN (
            SELECT f.facility_id FROM scope_facilities f
            WHERE f.code = n.facility_code AND f.region = n.region))))
FROM nodes n
"""
MIGRATION_V2 = """
-- Events waiting for each node (central_hub.pending), with the identity they were counted
-- for: a node whose certificate names another facility, region or kind is recounted.
CREATE TABLE monitor_pending (
    node_id TEXT PRIMARY KEY, facility_code TEXT NOT NULL, region TEXT NOT NULL,
    kind TEXT NOT NULL, pending BIGINT NOT NULL
);
""" + BACKFILL_SQL

MIGRATION_V3 = """
-- Nodes whose counter a pull could not take without waiting (recounted by the next append).
CREATE TABLE monitor_pending_stale (node_id TEXT NOT NULL);
"""

_UPSERT = ("INSERT INTO monitor_pending (node_id, facility_code, region, kind, pending) "
           "VALUES (?, ?, ?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET facility_code = "
           "excluded.facility_code, region = excluded.region, kind = excluded.kind, "
           "pending = excluded.pending")
_ADD = "UPDATE monitor_pending SET pending = pending + ? WHERE node_id = ?"


def _audiences(tx: Tx, row: dict[str, Any]) -> list[tuple[str, str]]:
    node = node_identity(row)
    return [(a.kind, a.target) for a in node_audiences(node, node_facilities(tx, node))]


def _positions(tx: Tx, audiences: Iterable[tuple[str, str]], node_id: str, after: int,
               through: int | None = None) -> set[int]:
    """Positions in the node's audiences with a row after `after` (up to `through`)."""
    out: set[int] = set()
    for kind, target in audiences:
        sql = ("SELECT position FROM deliveries WHERE target_kind = ? AND target = ? AND "
               "id > ? AND origin <> ?")
        params: tuple = (kind, target, after, node_id)
        if through is not None:
            sql += " AND id <= ?"
            params += (through,)
        out.update(r["position"] for r in tx.query(sql, params))
    return out


_NODE = "SELECT node_id, facility_code, region, kind, last_cursor FROM nodes WHERE node_id = ?"
_STALE = "INSERT INTO monitor_pending_stale (node_id) VALUES (?)"


def _count(tx: Tx, row: dict[str, Any], after: int) -> int:
    return len(_positions(tx, _audiences(tx, row), row["node_id"], after))


def _store(tx: Tx, row: dict[str, Any], count: int) -> None:
    tx.execute(_UPSERT, (row["node_id"], row["facility_code"], row["region"], row["kind"],
                         count))


def recount(tx: Tx, node_id: str) -> int | None:
    """The node's pending events counted against the feed (None: no such node)."""
    row = tx.one(_NODE, (node_id,))
    return None if row is None else _count(tx, row, int(row["last_cursor"]))


def rebuild(tx: Tx, node_ids: Iterable[str]) -> None:
    """Recount nodes and store their counters. The caller holds the writer lock."""
    node_ids = list(node_ids)
    if not node_ids:
        return
    tx.hold_writer_lock()
    for node_id in node_ids:
        row = tx.one(_NODE, (node_id,))
        if row is not None:
            _store(tx, row, _count(tx, row, int(row["last_cursor"])))


def rebuild_all(tx: Tx) -> None:
    """Every node's counter from scratch (the migration's back-fill, for bulk-filled hubs)."""
    tx.hold_writer_lock()
    tx.execute("DELETE FROM monitor_pending")
    tx.execute(BACKFILL_SQL)


def follow_node(tx: Tx, node_id: str) -> None:
    """After a node's row was written from its certificate: recount it if it is new or its
    identity (and so its audiences) changed."""
    row = tx.one("SELECT n.facility_code, n.region, n.kind, p.facility_code AS p_code, "
                 "p.region AS p_region, p.kind AS p_kind FROM nodes n LEFT JOIN "
                 "monitor_pending p ON p.node_id = n.node_id WHERE n.node_id = ?", (node_id,))
    if row is None:
        return
    if (row["facility_code"], row["region"], row["kind"]) != (
            row["p_code"], row["p_region"], row["p_kind"]):
        rebuild(tx, [node_id])


def _members(tx: Tx, targets: set[tuple[str, str]]) -> dict[tuple[str, str], list[dict]]:
    """The nodes in each audience, with their cursors: routing.node_audiences turned around
    (a facility's nodes carry its code, a region's all live there, pharmacies by kind)."""
    out: dict[tuple[str, str], list[dict]] = {t: [] for t in targets}
    by_kind: dict[str, list[str]] = {}
    for kind, target in targets:
        by_kind.setdefault(kind, []).append(target)
    if by_kind.get(FACILITY):
        for row in tx.query_in(
                "SELECT f.facility_id AS target, n.node_id, n.last_cursor FROM scope_facilities "
                "f JOIN nodes n ON n.facility_code = f.code AND n.region = f.region "
                "WHERE f.facility_id IN ({ids})", by_kind[FACILITY]):
            out[(FACILITY, row["target"])].append(row)
    if by_kind.get(REGION):
        for row in tx.query_in("SELECT region AS target, node_id, last_cursor FROM nodes "
                               "WHERE region IN ({ids})", by_kind[REGION]):
            out[(REGION, row["target"])].append(row)
    if by_kind.get(PHARMACIES):
        for row in tx.query_in("SELECT region AS target, node_id, last_cursor FROM nodes "
                               "WHERE region IN ({ids}) AND kind = ?", by_kind[PHARMACIES],
                               (str(NodeKind.PHARMACY),)):
            out[(PHARMACIES, row["target"])].append(row)
    return out


def count_appended(tx: Tx, registered: Iterable[tuple[str, str]],
                   appended: Sequence[Sequence[Any]],
                   maybe_appended: Sequence[Sequence[Any]] = ()) -> None:
    """Feed rows were just appended (the caller holds the writer lock): `appended` as the
    caller wrote them, (id, position, target_kind, target, origin, ...); `maybe_appended`,
    rows inserted only where they were new, which count only if their id was stored.

    `registered`: (code, region) of facilities registered by these events; their nodes
    gained an audience and are recounted rather than counted up.
    """
    recounted = {r["node_id"] for code, region in set(registered) for r in tx.query(
        "SELECT node_id FROM nodes WHERE facility_code = ? AND region = ?", (code, region))}
    recounted |= {r["node_id"] for r in tx.query(
        "DELETE FROM monitor_pending_stale RETURNING node_id")}
    rebuild(tx, sorted(recounted))
    rows = list(appended)
    if maybe_appended:
        ids = {row[0] for row in maybe_appended}
        stored = {r["id"] for r in tx.query("SELECT id FROM deliveries WHERE id BETWEEN ? AND ?",
                                            (min(ids), max(ids)))}
        rows += [row for row in maybe_appended if row[0] in stored]
    if not rows:
        return
    members = _members(tx, {(row[2], row[3]) for row in rows})
    fresh: dict[str, set[int]] = {}  # node -> positions new in its feed
    cursors: dict[str, int] = {}
    for row_id, position, kind, target, origin, *_ in rows:
        for node in members[(kind, target)]:
            node_id = node["node_id"]
            if node_id in recounted or node_id == origin or row_id <= node["last_cursor"]:
                continue
            fresh.setdefault(node_id, set()).add(position)
            cursors[node_id] = int(node["last_cursor"])
    older = _older_rows(tx, {p for ps in fresh.values() for p in ps}, min(r[0] for r in rows))
    changes = []
    for node_id, positions in fresh.items():
        if older:
            audiences = None
            for position in positions & set(older):
                audiences = audiences or _node_audiences(tx, node_id)
                if any(i > cursors[node_id] and t in audiences for i, t in older[position]):
                    positions = positions - {position}  # already waiting for the node
        if positions:
            changes.append((len(positions), node_id))
    tx.executemany(_ADD, changes)


def _older_rows(tx: Tx, positions: set[int], first_id: int
                ) -> dict[int, list[tuple[int, tuple[str, str]]]]:
    """Rows appended before `first_id` for these positions (a backfill re-routes old events)."""
    out: dict[int, list[tuple[int, tuple[str, str]]]] = {}
    for row in tx.query_in("SELECT id, position, target_kind, target FROM deliveries WHERE "
                           "position IN ({ids}) AND id < ?", positions, (first_id,)):
        out.setdefault(row["position"], []).append(
            (row["id"], (row["target_kind"], row["target"])))
    return out


def _node_audiences(tx: Tx, node_id: str) -> set[tuple[str, str]]:
    row = tx.one("SELECT node_id, facility_code, region, kind FROM nodes WHERE node_id = ?",
                 (node_id,))
    return set(_audiences(tx, row)) if row else set()


def pull_moved(tx: Tx, node_id: str, cursor: int) -> None:
    """A pull is about to set the node's cursor to `cursor`, in a transaction without the
    writer lock: count off what it passed, or mark the node stale if a push or a projection
    step holds its counter (PostgreSQL; SQLite's one writer already orders them)."""
    if tx.dialect != POSTGRESQL:
        cursor_moved(tx, node_id, cursor)
        return
    from psycopg.errors import LockNotAvailable  # only a PostgreSQL hub has psycopg to hand

    tx.query("SELECT node_id FROM nodes WHERE node_id = ? FOR UPDATE", (node_id,))
    try:
        with tx.savepoint("pending"):
            tx.query("SELECT pending FROM monitor_pending WHERE node_id = ? FOR UPDATE NOWAIT",
                     (node_id,))
            cursor_moved(tx, node_id, cursor)
    except LockNotAvailable:
        tx.execute(_STALE, (node_id,))


def cursor_moved(tx: Tx, node_id: str, cursor: int) -> None:
    """A pull is about to set the node's cursor to `cursor` (the caller holds the node's row
    lock): take off the events it has now passed in every audience."""
    row = tx.one("SELECT n.node_id, n.facility_code, n.region, n.kind, n.last_cursor, "
                 "p.pending FROM nodes n LEFT JOIN monitor_pending p ON p.node_id = n.node_id "
                 "WHERE n.node_id = ?", (node_id,))
    if row is None or row["pending"] is None:
        return
    before = int(row["last_cursor"])
    if cursor == before:
        return
    if cursor < before:  # pulled again from an older cursor (a restored node): rare
        if tx.dialect == POSTGRESQL:  # a recount takes the writer lock, which a pull never
            tx.execute(_STALE, (node_id,))  # waits for: the next append recounts it
        else:
            _store(tx, row, _count(tx, row, cursor))
        return
    audiences = _audiences(tx, row)
    passed = _positions(tx, audiences, node_id, before, cursor)
    if passed:  # an event with another row beyond the cursor still waits
        passed -= _positions_beyond(tx, passed, set(audiences), cursor)
    if passed:
        tx.execute(_ADD, (-len(passed), node_id))


def _positions_beyond(tx: Tx, positions: set[int], audiences: set[tuple[str, str]],
                      cursor: int) -> set[int]:
    return {r["position"] for r in tx.query_in(
        "SELECT position, target_kind, target FROM deliveries WHERE position IN ({ids}) AND "
        "id > ?", positions, (cursor,)) if (r["target_kind"], r["target"]) in audiences}


def counts(tx: Tx, node_ids: Iterable[str]) -> dict[str, int]:
    """Stored counters of these nodes (a node without one, or marked stale, is missing from
    the answer)."""
    return {r["node_id"]: int(r["pending"]) for r in tx.query_in(
        "SELECT node_id, pending FROM monitor_pending WHERE node_id IN ({ids}) AND node_id "
        "NOT IN (SELECT node_id FROM monitor_pending_stale)", node_ids)}


def waiting(tx: Tx, rows: list[dict[str, Any]], now: datetime,
            cap: int) -> dict[str, tuple[int, bool]]:
    """(pending, capped) of each node row: its counter, or for a node without one (a row
    written outside the sync API) the feed counted up to `cap`."""
    stored = counts(tx, [r["node_id"] for r in rows])
    return {r["node_id"]: (stored[r["node_id"]], False) if r["node_id"] in stored
            else pending_count(tx, r, now, cap) for r in rows}
