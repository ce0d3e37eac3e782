"""Events the hub itself appends to the global log: conflicts and their review, paper pads,
call-centre requests (the types central_hub.rights marks hub-only).

They form one more chain, of origin HUB_ORIGIN (central_hub.rights), and are routed and
pulled like any node's events. Call `emit_hub_event` inside a write transaction: an ingest
hook's, or `storage.transaction()`; it takes the writer lock if the transaction lacks it.
"""

from __future__ import annotations

import logging
from typing import Any

from sync_protocol.event_types import latest_version
from sync_protocol.events import GENESIS_HASH, seal
from sync_protocol.hlc import ZERO, HlcTimestamp, HybridLogicalClock
from sync_protocol.identifiers import new_ulid
from sync_protocol.timeutil import to_instant, utc_now

from .ingest import StoredEvent, append_routed
from .rights import HUB_ORIGIN

__all__ = ["HUB_ORIGIN", "emit_hub_event"]
from .routing import ScopeIndex
from .storage import Tx

log = logging.getLogger(__name__)


def emit_hub_event(tx: Tx, event_type: str, payload: dict[str, Any], *,
                   after_hlc: str | None = None) -> StoredEvent:
    """Seal, store and route one hub event; return it with its position.

    `after_hlc`: the clock of the event that caused this one (a dispense raising a
    conflict), so the hub's event is ordered after its cause on every node.
    """
    tx.hold_writer_lock()  # a projector's transaction holds only its own lock
    head = tx.one("SELECT seq, hash, hlc FROM events WHERE origin = ? ORDER BY seq DESC "
                  "LIMIT 1", (HUB_ORIGIN,))
    last = max(HlcTimestamp.parse(head["hlc"]) if head else ZERO,
               HlcTimestamp.parse(after_hlc) if after_hlc else ZERO)
    event = seal(id=new_ulid(), origin=HUB_ORIGIN, seq=head["seq"] + 1 if head else 1,
                 hlc=HybridLogicalClock(last).now(), type=event_type,
                 version=latest_version(event_type), payload=payload,
                 prev_hash=head["hash"] if head else GENESIS_HASH)
    position = int(tx.scalar("SELECT COALESCE(MAX(position), 0) AS p FROM events")) + 1
    index = ScopeIndex(tx)
    index.load([], [payload])
    derived, targets = index.route(event, None)
    stored = StoredEvent(position, event, None, derived, to_instant(utc_now()))
    append_routed(tx, [(stored, targets)], index, position)
    log.info("hub event %s %s at position %s", event_type, event.id, position)
    return stored
