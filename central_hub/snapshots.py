"""Snapshots of the records hub and nodes share, for comparing them row by row.

A `SnapshotTable` names one shared table in the node's table and column names, with the hub's
query for it; central_hub.composition lists them (the projections', then the conflicts') and
offers `snapshot` and `diff_snapshots` over that list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from .storage import Storage, Tx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotTable:
    name: str  # the node's table
    keys: tuple[str, ...]  # its primary key
    columns: tuple[str, ...]  # the node's column names, as the hub's query gives them
    source: str  # FROM [... WHERE ...] of the hub's query
    facility_filter: str  # the condition for one facility's records (`?`: its id)


def snapshot(source: Storage | Tx, tables: Sequence[SnapshotTable],
             facility_id: str | None = None) -> dict[str, list[dict]]:
    """Every shared record the hub holds: {node table name: rows sorted by primary key}.

    With `facility_id`, the records of that facility: patients attached to it, its slots and
    appointments, prescriptions it issued or dispensed and their dispenses, its paper
    dispenses, and the conflicts sent to it.

    The node-side equivalent (edge_node's SQLite, same tables and column names):
        {t.name: [dict(r) for r in conn.execute(
            f"SELECT {', '.join(t.columns)} FROM {t.name} ORDER BY {', '.join(t.keys)}")]
         for t in tables}
    A node holds its scope only, so compare with `diff_snapshots(hub, node, tables)`, which
    checks the records the node has.
    """
    if isinstance(source, Storage):
        with source.reader() as tx:
            return snapshot(tx, tables, facility_id)
    out = {}
    for table in tables:
        keys, source_sql, facility_sql = table.keys, table.source, table.facility_filter
        sql, params = f"SELECT {', '.join(table.columns)} FROM {source_sql}", []  # noqa: S608 - constants
        if facility_id:
            sql += (" AND " if " WHERE " in source_sql else " WHERE ") + facility_sql
            params = [facility_id] * facility_sql.count("?")
        rows = [dict(row) for row in source.query(sql, params)]
        rows.sort(key=lambda r, keys=keys: (*(r[k] for k in keys), r.get("origin") or ""))
        unique: dict[tuple, dict] = {}
        for row in rows:  # a dispense id sent twice: the node keeps one, and so do we
            unique.setdefault(tuple(row[k] for k in keys), row)
        out[table.name] = list(unique.values())
    return out


def diff_snapshots(hub: dict[str, list[dict]], node: dict[str, list[dict]],
                   tables: Sequence[SnapshotTable], *, complete: bool = False) -> list[str]:
    """Differences between two snapshots: every record `node` holds must be in `hub` with
    the same value in every column both have; `complete`: and the other way round."""
    key_of = {table.name: table.keys for table in tables}
    diffs = []
    for table, node_rows in node.items():
        keys = key_of.get(table)
        if keys is None or table not in hub:
            continue
        theirs = {tuple(r.get(k) for k in keys): r for r in hub[table]}
        ours = {tuple(r.get(k) for k in keys): r for r in node_rows}
        for key, row in ours.items():
            other = theirs.get(key)
            if other is None:
                diffs.append(f"{table}{list(key)}: missing at the hub")
                continue
            for column in sorted(set(row) & set(other)):
                if row[column] != other[column]:
                    diffs.append(f"{table}{list(key)}.{column}: {other[column]!r} at the hub, "
                                 f"{row[column]!r} at the node")
        if complete:
            diffs.extend(f"{table}{list(k)}: missing at the node" for k in theirs if k not in ours)
    return diffs
