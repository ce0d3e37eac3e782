"""A replacement node: when a node's SD card dies with no backup, a new node is enrolled for
the same facility (a new node id, so a new origin: no hash chain is ever forked) and rebuilds
from the hub. Its facility's records and its predecessor's events, already at the hub, come
back by pull; what the dead node never pushed is lost, and `rebuild_from_hub` says up to which
sequence number the hub had it, so staff know what to re-enter from paper.

The predecessor's certificate is revoked at the provisioning station (reason: replaced).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from sync_protocol.errors import ProtocolError

from .store import NodeStore
from .sync.agent import SyncAgent

log = logging.getLogger(__name__)

# A first pull of a busy facility takes several rounds of byte-bounded pages.
MAX_ROUNDS = 50
REPLACEMENT_STATE = "replaced_node"  # node_state: {"node_id", "last_seq"} for the screens


class ReplacementFailed(ProtocolError):
    code = "replacement_failed"


@dataclass(frozen=True)
class Replacement:
    facility_id: str
    predecessor: str
    last_acknowledged_seq: int  # the predecessor's last event the hub had
    pulled: int


def rebuild_from_hub(store: NodeStore, agent: SyncAgent, facility_code: str,
                     predecessor: str) -> Replacement:
    """Pull until caught up, adopt the facility, and report what came back."""
    pulled = 0
    for _ in range(MAX_ROUNDS):
        report = agent.run_once()
        if not report.get("ok"):
            raise ReplacementFailed("The hub could not be reached to rebuild this node: "
                                    "%(error)s", error=report.get("error"))
        pulled += int(report.get("pulled") or 0)
        if not report.get("pulled"):
            break
    row = store.one("SELECT facility_id FROM facilities WHERE code = ?", (facility_code,))
    if row is None:
        raise ReplacementFailed("The hub holds no facility %(facility_code)s; enrol this "
                                "node as a new facility instead.",
                                facility_code=facility_code)
    head = store.one("SELECT MAX(seq) AS seq FROM events WHERE origin = ?", (predecessor,))
    last = int(head["seq"] or 0) if head else 0
    with store.transaction() as tx:
        store.set_state(tx.conn, "facility_id", row["facility_id"])
        store.set_state(tx.conn, REPLACEMENT_STATE,
                        json.dumps({"node_id": predecessor, "last_seq": last}))
    log.info("rebuilt from the hub: %s events, predecessor %s up to seq %s", pulled,
             predecessor, last)
    return Replacement(row["facility_id"], predecessor, last, pulled)
