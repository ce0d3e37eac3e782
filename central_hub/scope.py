"""Pulls with least-knowledge scope (DESIGN 4.6): a node gets only what its facility needs.

At ingest, central_hub.routing gives every accepted event one `deliveries` row per audience
(a facility, a region, the pharmacies of a region). A node belongs to its facility (the
facility ids registered under its certificate's facility code), its region and, for a
pharmacy, its region's pharmacies. A pull walks the delivery feed by id after the node's
cursor, in those audiences only, skipping the node's own events, and stops at a count and a
byte bound. The cursor is the last delivery id handed out, so a re-pull changes nothing and a
cut connection resumes where it stopped; when nothing is left the cursor jumps to the feed's
head, so "reached the head" is provable (DESIGN 7.6).

Pharmacies get prescription events only until the prescription expires.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring  # a JSON string, as json.dumps writes it
from typing import Any

from sync_protocol.certificates import NodeIdentity, NodeKind
from sync_protocol.timeutil import to_instant
from sync_protocol.wire import PullQuery, PullResponse

from .errors import HubError
from .routing import PHARMACIES, Target, node_audiences
from .storage import SQLITE, Storage, Tx

log = logging.getLogger(__name__)

# The JSON around the events of a page ({"events": [...], "next": ..., ...}).
PAGE_OVERHEAD_BYTES = 200
# The dashboard counts waiting events up to this many; beyond it shows "10,000+".
PENDING_CAP = 10_000


class CursorAhead(HubError):
    """The node's cursor is past the hub's head: the hub was restored from an older backup."""

    code = "cursor_ahead"
    http_status = 409


def node_identity(row: dict[str, Any]) -> NodeIdentity:
    """A node as its `nodes` row records it."""
    return NodeIdentity(row["node_id"], row["facility_code"], row["region"],
                        NodeKind(row["kind"]))


def node_facilities(tx: Tx, node: NodeIdentity) -> set[str]:
    rows = tx.query("SELECT facility_id FROM scope_facilities WHERE code = ? AND region = ?",
                    (node.facility_code, node.region_code))
    return {row["facility_id"] for row in rows}


def feed_head(tx: Tx) -> int:
    return int(tx.scalar("SELECT COALESCE(MAX(id), 0) AS head FROM deliveries"))


def _feed_query(audiences: list[Target], node_id: str, after: int, head: int, limit: int,
                now: str, select: str) -> tuple[str, list[Any]]:
    """One ordered index range per audience, merged: each part stops at `limit` rows."""
    parts, params = [], []
    for i, audience in enumerate(audiences):
        where = "target_kind = ? AND target = ? AND id > ? AND id <= ? AND origin <> ?"
        params += [audience.kind, audience.target, after, head, node_id]
        if audience.kind == PHARMACIES:
            where += " AND (until IS NULL OR until >= ?)"
            params.append(now)
        parts.append(f"SELECT * FROM (SELECT {select} FROM deliveries WHERE {where} "  # noqa: S608 - fixed fragments
                     f"ORDER BY id LIMIT ?) AS a{i}")
        params.append(limit)
    return " UNION ALL ".join(parts), params


@dataclass(frozen=True)
class PullBody:
    body: bytes  # the page as compact JSON: what PullResponse.to_dict() would encode to
    count: int
    next: int
    more: bool


# The event envelope's columns, in the order Event.to_dict() writes them.
EVENT_JSON = ('{"position":%d,"event":{"id":%s,"origin":%s,"seq":%d,"hlc":%s,"type":%s,'
              '"version":%d,"payload":%s,"prev_hash":%s,"hash":%s}}')


def pull_body(storage: Storage, node: NodeIdentity, query: PullQuery,
              now: datetime) -> PullBody:
    """One page of the events in `node`'s scope after `query.after`, as the JSON of a
    PullResponse: each event encoded once, from its stored payload (SQLite's json() compacts
    the stored text), and measured as it is added, so the page stops at the byte bound."""
    with storage.reader() as tx:
        head = feed_head(tx)
        if query.after > head:
            raise CursorAhead("Cursor %(cursor)s is past the hub's head %(head)s; pull again "
                              "from 0", field="after", cursor=query.after, head=head)
        audiences = node_audiences(node, node_facilities(tx, node))
        union, params = _feed_query(audiences, node.node_id, query.after, head,
                                    query.limit + 1, to_instant(now), "id, position")
        payload = "json(e.payload)" if tx.dialect == SQLITE else "e.payload"
        rows = tx.query(
            f"SELECT d.id AS delivery_id, e.position, e.id, e.origin, e.seq, e.hlc, e.type,"  # noqa: S608 - fixed fragments
            f" e.version, {payload} AS payload, e.prev_hash, e.hash FROM ({union}) AS d"
            " JOIN events e ON e.position = d.position ORDER BY d.id LIMIT ?",
            (*params, query.limit + 1))
    items: list[bytes] = []
    seen: set[int] = set()
    size, last, more = PAGE_OVERHEAD_BYTES, query.after, False
    for index, row in enumerate(rows):
        if index == query.limit:
            more = True
            break
        if row["position"] in seen:  # one event, two of the node's audiences
            last = row["delivery_id"]
            continue
        item = _event_json(row)
        if items and size + len(item) + 1 > query.max_bytes:
            more = True
            break
        items.append(item)
        seen.add(row["position"])
        size += len(item) + 1
        last = row["delivery_id"]
    cursor = last if more else head
    body = b'{"events":[%s],"next":%d,"head":%d,"more":%s}' % (
        b",".join(items), cursor, head, b"true" if more else b"false")
    return PullBody(body, len(items), cursor, more)


def _event_json(row: dict[str, Any]) -> bytes:
    payload = row["payload"]
    if not isinstance(payload, str):  # PostgreSQL hands JSONB over decoded
        payload = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return (EVENT_JSON % (
        row["position"], encode_basestring(row["id"]), encode_basestring(row["origin"]),
        row["seq"], encode_basestring(row["hlc"]), encode_basestring(row["type"]),
        row["version"], payload, encode_basestring(row["prev_hash"]),
        encode_basestring(row["hash"]))).encode()


def pull_page(storage: Storage, node: NodeIdentity, query: PullQuery,
              now: datetime) -> PullResponse:
    """One page of the events in `node`'s scope after `query.after` (pull_body, decoded)."""
    return PullResponse.from_dict(json.loads(pull_body(storage, node, query, now).body))


def pending_count(tx: Tx, node_row: dict[str, Any], now: datetime,
                  cap: int = PENDING_CAP) -> tuple[int, bool]:
    """(deliveries waiting for a node after its cursor, whether the count hit the cap)."""
    node = node_identity(node_row)
    head = feed_head(tx)
    audiences = node_audiences(node, node_facilities(tx, node))
    union, params = _feed_query(audiences, node.node_id, node_row["last_cursor"], head,
                                cap + 1, to_instant(now), "position")
    count = int(tx.scalar(f"SELECT COUNT(DISTINCT position) AS n FROM ({union}) AS d",  # noqa: S608
                          params))
    return min(count, cap), count > cap
