"""Conflicts as this node knows them (DESIGN 5): raised and reviewed at the hub, synced here.

The hub raises a conflict (ConflictRaised) and routes it to the facilities involved; its
review (ConflictStateChanged: acknowledged or resolved, by whom and why) follows the same way.
Both are projected into the node's `conflicts` table (edge_node.projections). Here staff read
them, each role the kinds that concern its work:

    pharmacist   dispensing: over-dispensing, dispenses after cancellation, expiry or
                 revocation, paper mismatches
    registrar    bookings and the patient register: double bookings, concurrent edits of a
                 patient's field, identity clashes
    doctor       both (his prescriptions are dispensed; his patients are booked)
    admin        every kind

Reviewing stays at the hub; the node only shows. Each conflict comes with the events it names
(from this node's log where they are here), so a screen can say what happened in words.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sync_protocol.conflicts import (
    DISPENSING_KINDS,
    OPEN,
    REGISTRY_KINDS,
    STATES,
)
from sync_protocol.hlc import HlcTimestamp

from ..errors import Forbidden, ValidationFailed
from ..store import NodeStore
from .access import Actor

log = logging.getLogger(__name__)

# The kinds and states are the protocol's (sync_protocol.conflicts); here, who sees which.
KINDS = DISPENSING_KINDS + REGISTRY_KINDS
KINDS_BY_ROLE: dict[str, tuple[str, ...]] = {
    "pharmacist": DISPENSING_KINDS,
    "registrar": REGISTRY_KINDS,
    "doctor": KINDS,
    "admin": KINDS,
}
# ConflictRaised names at most 50 events (sync_protocol.event_types); the page shows them all.
MAX_EVENTS_SHOWN = 50
# What of an event's payload a conflict page may show: no diagnosis, no patient details
# beyond which field was edited (least knowledge: a pharmacist sees conflicts too).
SHOWN_FIELDS = ("number", "item_no", "quantity", "product", "batch", "facility_id",
                "dispensed_at", "starts_at", "practitioner_id", "field", "issued_at",
                "expires_at", "paper_serial", "prescription_number", "reason")
# A node keeps every conflict of its facilities; a page lists the newest this many.
MAX_LISTED = 500


def kinds_for(actor: Actor) -> tuple[str, ...]:
    """The kinds of conflict this actor's role may see; Forbidden for any other role."""
    kinds = KINDS_BY_ROLE.get(actor.role)
    if not kinds:
        raise Forbidden("Your role (%(role)s) may not do this: %(permission)s",
                        role=actor.role, permission="view_conflicts")
    return kinds


def _where(actor: Actor, state: str | None) -> tuple[str, list[Any]]:
    kinds = kinds_for(actor)
    if state is not None and state not in STATES:
        raise ValidationFailed("Status must be one of %(statuses)s", field="state",
                               statuses=", ".join(STATES))
    sql = f" WHERE kind IN ({', '.join('?' * len(kinds))})"
    params: list[Any] = list(kinds)
    if state is not None:
        sql, params = sql + " AND state = ?", [*params, state]
    return sql, params


def count_conflicts(store: NodeStore, actor: Actor, state: str | None = OPEN) -> int:
    """How many conflicts of the actor's kinds are in this state (open by default)."""
    where, params = _where(actor, state)
    row = store.one("SELECT COUNT(*) AS n FROM conflicts" + where, tuple(params))  # noqa: S608 - fixed text, bound values
    return int(row["n"]) if row else 0


def list_conflicts(store: NodeStore, actor: Actor, state: str | None = None
                   ) -> list[dict[str, Any]]:
    """The actor's kinds of conflict, newest first, each with its details and events."""
    where, params = _where(actor, state)
    rows = store.query("SELECT * FROM conflicts" + where  # noqa: S608 - fixed text, bound values
                       + " ORDER BY raised_at DESC, conflict_id LIMIT ?",
                       (*params, MAX_LISTED))
    found = []
    for row in rows:
        item = dict(row)
        try:
            details = json.loads(item["details"] or "{}")
        except ValueError:
            details = {}
        item["details"] = details if isinstance(details, dict) else {}
        item["events"] = _events(store, item["details"].get("event_ids") or [])
        found.append(item)
    return found


def _events(store: NodeStore, event_ids: list[Any]) -> list[dict[str, Any]]:
    """The named events, in the order named; those not on this node say so (known=False)."""
    ids = [str(e) for e in event_ids][:MAX_EVENTS_SHOWN]
    if not ids:
        return []
    rows = store.query(f"SELECT id, origin, hlc, type, payload FROM events WHERE id IN"  # noqa: S608 - placeholders only
                       f" ({', '.join('?' * len(ids))})", tuple(ids))
    by_id = {r["id"]: r for r in rows}
    events = []
    for event_id in ids:
        row = by_id.get(event_id)
        if row is None:
            events.append({"event_id": event_id, "known": False})
            continue
        events.append({"event_id": event_id, "known": True, "type": row["type"],
                       "origin": row["origin"],
                       "at": HlcTimestamp.parse(row["hlc"]).to_instant(),
                       "facts": _facts(json.loads(row["payload"]))})
    return events


def _facts(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: payload[k] for k in SHOWN_FIELDS if payload.get(k) not in (None, "")}
