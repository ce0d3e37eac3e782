"""The checks that prove a sync: every event once, the same shared records on every node as
at the hub (by a replica of the hub's log and by the hub's own projections), a node's status
that tells the truth, and what a conflict is about.

The module opts out of assertion rewriting (PYTEST_DONT_REWRITE); its checks raise
AssertionError with their own messages.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from central_hub.composition import snapshot
from edge_node.migrations import PROJECTION_TABLES
from edge_node.store import NodeStore, row_to_event
from helpers.sync_world import Hub, Node, payload_of


def shared_rows(store: NodeStore) -> dict[str, dict[tuple, dict[str, Any]]]:
    """Every projection table (the records sync shares), keyed by primary key."""
    out: dict[str, dict[tuple, dict[str, Any]]] = {}
    for table in PROJECTION_TABLES:
        keys = primary_key(store, table)
        rows = [dict(r) for r in store.query(f"SELECT * FROM {table}")]  # noqa: S608
        out[table] = {tuple(row[k] for k in keys) if keys else tuple(row.values()): row
                      for row in rows}
    return out


def primary_key(store: NodeStore, table: str) -> list[str]:
    info = store.query(f"PRAGMA table_info({table})")
    return [r["name"] for r in sorted(info, key=lambda r: r["pk"]) if r["pk"]]


def reference_store(hub: Hub, path: Path) -> NodeStore:
    """A replica that applied the hub's whole log in global order: the shared records as the
    hub's log says them, independent of the hub's own projections (check_hub_snapshot)."""
    store = NodeStore(path)
    with store.transaction() as tx:
        for row in hub.events():
            tx.receive(row_to_event({**row, "payload": json.dumps(payload_of(row))}))
    failures = store.query("SELECT * FROM apply_failures")
    if failures:
        raise AssertionError(f"the hub's log does not apply cleanly: {[dict(r) for r in failures]}")
    return store


def mismatches(node_rows: dict, reference: dict) -> list[str]:
    """Records a node holds that differ from (or are missing in) the reference."""
    out = []
    for table, rows in node_rows.items():
        for key, row in rows.items():
            expected = reference.get(table, {}).get(key)
            if expected != row:
                out.append(f"{table}{list(key)}: node {row} != hub {expected}")
    return out


def check_exactly_once(hub: Hub, nodes: list[Node]) -> None:
    """Every event of every node is at the hub once, and every node holds exactly its own
    events plus what the hub serves it (its scope), once each."""
    held = Counter(row["id"] for row in hub.events())
    doubled = [i for i, n in held.items() if n > 1]
    if doubled:
        raise AssertionError(f"events stored twice at the hub: {doubled}")
    for node in nodes:
        own = node.own_ids()
        at_hub = [r["id"] for r in hub.events(node.node_id)]
        if own != at_hub:
            raise AssertionError(f"{node.role.name}: hub holds {len(at_hub)} of its events, "
                                 f"node has {len(own)}; missing {set(own) - set(at_hub)}, "
                                 f"extra {set(at_hub) - set(own)}")
        foreign = node.foreign_ids()
        if len(foreign) != len(set(foreign)):
            raise AssertionError(f"{node.role.name} holds an event twice")
        expected = hub.scope_ids(node.role.identity)
        if set(foreign) != expected:
            raise AssertionError(f"{node.role.name}: missing {expected - set(foreign)}, "
                                 f"out of scope {set(foreign) - expected}")


def check_same_records(reference: NodeStore, nodes: list[Node]) -> None:
    ref = shared_rows(reference)
    for node in nodes:
        failures = node.store.query("SELECT * FROM apply_failures")
        if failures:
            raise AssertionError(f"{node.role.name} could not apply: "
                                 f"{[dict(r) for r in failures]}")
        diff = mismatches(shared_rows(node.store), ref)
        if diff:
            raise AssertionError(f"{node.role.name} disagrees with the hub on "
                                 f"{len(diff)} record(s):\n" + "\n".join(diff[:20]))


def check_synced(hub: Hub, node: Node) -> dict[str, Any]:
    """The node says synced, and it is: the hub acknowledged its head, its cursor is at the
    hub's head and it holds nothing the hub has not."""
    status = node.status()
    head = hub.feed_head()
    acked = (hub.node_row(node.node_id) or {}).get("acked_seq", 0)
    truth = {"online": True, "pending": 0, "cursor": head, "hub_acked": node.head_seq()}
    said = {"online": status["online"], "pending": status["pending"],
            "cursor": status["cursor"], "hub_acked": acked}
    if not status["synced"] or said != truth or status["offline_since"] is not None:
        raise AssertionError(f"{node.role.name} status {status}; expected {truth}")
    return status


def check_hub_snapshot(hub: Hub, nodes: list[Node]) -> None:
    """The hub's own projections (central_hub.projections.snapshot) against each node.

    ``snapshot(storage)`` gives {node table: rows}; ``snapshot(storage, facility_id)`` the
    records of one facility. Every record a node holds must be at the hub, and every record
    the hub gives the node's facility must be at the node, found by the node table's primary
    key and equal in every column both sides have.
    """
    everything = snapshot(hub.storage)
    diffs = []
    for node in nodes:
        held = shared_rows(node.store)
        for table, rows in held.items():
            if rows and table in everything:
                theirs = _by_key(node.store, table, everything[table])
                diffs += [f"{node.role.name} {table}{list(k)}: node {row} != hub {theirs.get(k)}"
                          for k, row in rows.items() if not _agree(row, theirs.get(k))]
        for table, rows in snapshot(hub.storage, node.facility_id).items():
            if table in held:
                mine = _by_key(node.store, table, rows)
                diffs += [f"{node.role.name} lacks {table}{list(k)}: hub {row} != node "
                          f"{held[table].get(k)}"
                          for k, row in mine.items() if not _agree(row, held[table].get(k))]
    if diffs:
        raise AssertionError(f"hub projections differ ({len(diffs)}):\n" + "\n".join(diffs[:20]))


def _by_key(store: NodeStore, table: str, rows) -> dict[tuple, dict[str, Any]]:
    keys = primary_key(store, table)
    rows = rows.values() if isinstance(rows, dict) else rows
    return {tuple(dict(r).get(k) for k in keys): dict(r) for r in rows}


def _agree(row: dict[str, Any], other: dict[str, Any] | None) -> bool:
    return other is not None and all(row[c] == other[c] for c in set(row) & set(other))


def conflict_signature(payload: dict[str, Any]) -> tuple[str, str, frozenset[str]]:
    """What a conflict is about, whoever raised it when: kind, subject, events involved."""
    event_ids = payload.get("event_ids") or payload["details"]["event_ids"]
    return payload["kind"], payload["subject_id"], frozenset(event_ids)
