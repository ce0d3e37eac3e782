"""Verifying a node's event log: its own chain whole, other origins as far as it holds them.

A node writes its own log, so that chain must be complete (sequences 1..head, each linked to
the one before). Of other nodes' logs it holds only what its scope brought (a pharmacy gets a
clinic's doctors and active prescriptions, not its patients' visits), so there every event
must match its hash and links are checked where consecutive events are held.
"""

from __future__ import annotations

import logging

from sync_protocol.events import verify_chain, verify_held

from .store import NodeStore

log = logging.getLogger(__name__)


def verify_log(store: NodeStore) -> dict[str, int]:
    """Raise ChainBroken on the first fault; else say what was checked."""
    own = store.state("node_id")
    origins = [r["origin"] for r in store.query("SELECT DISTINCT origin FROM events")]
    counts = {"origins": len(origins), "own": 0, "others": 0}
    for origin in origins:
        events = store.events(origin=origin)
        if origin == own:
            verify_chain(sorted(events, key=lambda e: e.seq))
            counts["own"] += len(events)
        else:
            verify_held(events)
            counts["others"] += len(events)
    log.info("log verified: %s", counts)
    return counts
