"""Refused events, kept with their reason and shown (DESIGN 7.11), never silently dropped.

One row per (pushing node, event content, reason): a node that resends the same bad event
bumps `attempts` instead of adding rows, so the table stays bounded by what is really bad.
A row is resolved when the same event is later accepted (e.g. a gap that was filled).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from sync_protocol.events import canonical_json

from .storage import Storage, Tx

log = logging.getLogger(__name__)

# A refused item is kept whole up to this size (an event is at most 64 kB, see
# sync_protocol.events.MAX_EVENT_BYTES); beyond it only the start is kept, for people.
MAX_RAW_BYTES = 128 * 1024
# The dashboard lists at most this many rows per request.
MAX_LIST = 500

COLUMNS = ("node_id", "event_id", "origin", "seq", "hash", "type", "code", "reason", "raw",
           "digest", "chained", "first_seen", "last_seen")


@dataclass(frozen=True)
class Refusal:
    node_id: str
    raw: Any
    code: str
    reason: str
    chained: bool = False  # the event keeps its place in its origin's chain

    def row(self, now: str) -> tuple:
        data = self.raw if isinstance(self.raw, dict) else {}
        try:
            text = canonical_json(self.raw).decode("utf-8")
        except (TypeError, ValueError):
            text = repr(self.raw)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if len(text) > MAX_RAW_BYTES:
            text = text[:MAX_RAW_BYTES] + "...(truncated)"

        def field(name: str, kind: type) -> Any:
            value = data.get(name)
            return value if type(value) is kind else None

        return (self.node_id, field("id", str), field("origin", str), field("seq", int),
                field("hash", str), field("type", str), self.code, self.reason[:2000], text,
                digest, int(self.chained), now, now)


def record(tx: Tx, refusals: list[Refusal], now: str) -> None:
    rows = {}
    for refusal in refusals:  # one batch may repeat an item; a statement may not
        row = refusal.row(now)
        rows.setdefault((row[0], row[9], row[6]), row)
    tx.insert_many("quarantine", COLUMNS, list(rows.values()),
                   "ON CONFLICT (node_id, digest, code) DO UPDATE SET "
                   "attempts = quarantine.attempts + 1, last_seen = excluded.last_seen")


def resolve_accepted(tx: Tx, event_ids: list[str], now: str) -> None:
    """Close the open rows of events that have now been accepted."""
    rows = tx.query_in("SELECT id FROM quarantine WHERE event_id IN ({ids}) AND "
                       "resolved_at IS NULL AND chained = 0", event_ids)
    tx.executemany("UPDATE quarantine SET resolved_at = ?, resolution = 'accepted later' "
                   "WHERE id = ?", [(now, row["id"]) for row in rows])


def chained_refusals(tx: Tx, origin: str, seqs: list[int]) -> dict[int, dict[str, Any]]:
    """Refused events that hold a place in `origin`'s chain, by seq."""
    rows = tx.query_in("SELECT seq, hash, event_id, code, reason FROM quarantine WHERE seq IN "
                       "({ids}) AND origin = ? AND chained = 1", seqs, (origin,))
    return {row["seq"]: row for row in rows}


def list_quarantine(storage: Storage, *, node_id: str | None = None, open_only: bool = True,
                    limit: int = 100, before_id: int | None = None) -> list[dict[str, Any]]:
    """Newest first; `before_id` pages backwards."""
    sql = "SELECT * FROM quarantine WHERE 1 = 1"
    params: list[Any] = []
    if node_id:
        sql += " AND node_id = ?"
        params.append(node_id)
    if open_only:
        sql += " AND resolved_at IS NULL"
    if before_id:
        sql += " AND id < ?"
        params.append(before_id)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(max(1, min(limit, MAX_LIST)))
    with storage.reader() as tx:
        rows = tx.query(sql, params)
    return [{**row, "chained": bool(row["chained"])} for row in rows]


def open_count(storage: Storage) -> int:
    """Quarantined events nobody has resolved yet."""
    with storage.reader() as tx:
        return int(tx.scalar("SELECT COUNT(*) AS n FROM quarantine WHERE resolved_at IS NULL"))
