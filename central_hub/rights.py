"""The hub's use of the one rule set (sync_protocol.rights): may this node emit this event?

The rules live in sync_protocol so the nodes apply them before they write (DESIGN 8). The hub
supplies its own view of the facts: the facility ids registered under the node's facility
code, and the facility of a record an event refers to (central_hub.routing.ScopeIndex).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from sync_protocol.certificates import NodeIdentity
from sync_protocol.events import Event
from sync_protocol.rights import RIGHTS, NotPermitted, Rule, missing_rules
from sync_protocol.rights import check_right as check_event_right

log = logging.getLogger(__name__)

__all__ = ["HUB_ORIGIN", "RIGHTS", "NotPermitted", "Rule", "check_right", "missing_rules"]

# The origin of the hub's own events. It holds a character node ids cannot have
# (trust.NODE_ID_RE), so no node certificate can ever claim it.
HUB_ORIGIN = "hub:central"


def check_right(event: Event, node: NodeIdentity, own_facilities: Collection[str],
                facility_of_subject: Callable[[str], str | None]) -> None:
    """Raise NotPermitted unless `node` may emit `event` (sync_protocol.rights.check_right)."""
    check_event_right(event.type, event.payload, node, own_facilities, facility_of_subject)
