"""The node's side of the one rule set (sync_protocol.rights): before a local event is written,
the node asks what the hub will ask, with its own tables as the facts, and refuses (403) what
the hub would refuse as not permitted, instead of accepting a write that is refused for ever.

A node that syncs with no hub (stand-alone) is its own authority: no hub refuses anything, so
these checks apply from the moment a sync agent is attached (NodeStore.network_rights).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from sync_protocol.certificates import NodeKind
from sync_protocol.rights import NotPermitted, check_right, role_allowed

from .errors import Forbidden

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OwnFacility:
    """The node as the rules see it: its facility's kind, code and region (the same the
    certificate carries: the hub refuses a FacilityRegistered that differs)."""

    facility_id: str
    kind: NodeKind
    facility_code: str
    region_code: str


def own_facility(conn: sqlite3.Connection) -> OwnFacility | None:
    row = conn.execute("SELECT f.facility_id, f.code, f.kind, f.region FROM node_state s "
                       "JOIN facilities f ON f.facility_id = s.value "
                       "WHERE s.key = 'facility_id'").fetchone()
    if row is None or row["kind"] not in tuple(NodeKind):
        return None
    return OwnFacility(row["facility_id"], NodeKind(row["kind"]), row["code"], row["region"])


def check_local_event(conn: sqlite3.Connection, event_type: str,
                      payload: dict[str, Any]) -> None:
    """Raise Forbidden (code not_permitted) if the hub would refuse this node's event."""
    node = own_facility(conn)
    if node is None:  # not set up yet: its first event registers its facility
        return
    own = {row[0] for row in conn.execute(
        "SELECT facility_id FROM facilities WHERE code = ? AND region = ?",
        (node.facility_code, node.region_code))}
    try:
        check_right(event_type, payload, node, own, lambda subject: _facility_of(conn, subject))
    except NotPermitted as e:
        log.info("refused a local %s: %s", event_type, e.text)
        raise Forbidden(e.message, field=e.field, code=e.code, **e.params) from e


def check_staff_role(conn: sqlite3.Connection, role: str) -> None:
    """A node has only the staff roles of its kind (a pharmacy has no doctors)."""
    node = own_facility(conn)
    if node is not None and not role_allowed(role, node.kind):
        raise Forbidden("A %(kind)s node has no %(role)s accounts: the hub would refuse "
                        "what they record", field="role", code="not_permitted",
                        kind=str(node.kind), role=role)


def _facility_of(conn: sqlite3.Connection, subject: str) -> str | None:
    """The facility of a record an event refers to (an appointment, a remote request)."""
    for table, key in (("appointments", "appointment_id"), ("remote_requests", "request_id")):
        row = conn.execute(f"SELECT facility_id FROM {table} WHERE {key} = ?",  # noqa: S608
                           (subject,)).fetchone()
        if row is not None:
            return row["facility_id"]
    return None
