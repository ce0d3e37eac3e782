"""What the node knows about itself: identity, log head, queues, clock, sync problems."""

from __future__ import annotations

from ..store import NodeStore
from ..sync.agent import sync_status
from .access import Actor


def status(store: NodeStore, sync_configured: bool = False) -> dict:
    node_id = store.state("node_id")
    head = store.query("SELECT COUNT(*) AS n, MAX(seq) AS seq FROM events WHERE origin = ?",
                       (node_id,))[0]
    facility_id = store.state("facility_id")
    facility = store.one("SELECT code, name, kind FROM facilities WHERE facility_id = ?",
                         (facility_id,)) if facility_id else None
    sms = store.query("SELECT COUNT(*) AS n FROM sms_outbox WHERE sent_at IS NULL")[0]
    return {
        "node_id": node_id,
        "facility": dict(facility) if facility else None,
        "log_head_seq": head["seq"] or 0,
        "local_events": head["n"],
        "clock": str(store.clock.last),
        "sms_waiting": sms["n"],
        "sync": sync_status(store, sync_configured),
    }


def sync_banner(store: NodeStore, sync_configured: bool = False) -> dict:
    """The part of status() every screen shows: status()["sync"] without the other queries."""
    return sync_status(store, sync_configured)


def sync_problems(store: NodeStore, actor: Actor) -> dict[str, list[dict]]:
    """Events the hub refused and events this node could not apply (admin)."""
    actor.require("export_log")
    return {
        "refused": [dict(r) for r in store.query("SELECT * FROM sync_refusals ORDER BY seq")],
        "apply_failures": [dict(r) for r in store.query(
            "SELECT * FROM apply_failures ORDER BY failed_at")],
    }
