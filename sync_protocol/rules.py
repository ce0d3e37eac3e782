"""Rules the node and the hub must both apply the same way: who keeps a slot, how much a
prescription item allows in all.

The node applies them to its tables as events arrive (edge_node.projections, dispensing);
the hub replays them over every event it holds (central_hub.projections, conflicts,
claims, reconciliation). Written once here, the two sides cannot drift apart.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# -- slots --------------------------------------------------------------------------------

BOOKED, BUMPED = "booked", "bumped"
# Appointment statuses that hold their slot: a second booking of such a slot is a conflict.
# Cancelled, bumped and 'moving' (stepping off the old slot of a reschedule) do not.
HOLDING_STATUSES: tuple[str, ...] = (BOOKED, "checked_in", "completed", "no_show")

# A booking's clock: its event's (hlc, origin). HLC strings compare in time order; the origin
# breaks a tie between two nodes that booked at the same instant.
Clock = tuple[str, str]


def claim_slot(holder: Clock | None, claimant: Clock) -> tuple[str, str | None]:
    """Who keeps a slot that `claimant` books (or moves to) while `holder` holds it.

    Returns the claimant's status and the holder's new status (None: unchanged). The earlier
    clock keeps the slot whichever booking arrived first (DESIGN 5: a deterministic winner;
    the loser is bumped, kept and offered another time).
    """
    if holder is None:
        return BOOKED, None
    if holder < claimant:
        return BUMPED, None
    return BOOKED, BUMPED


# -- fills --------------------------------------------------------------------------------

def fills(repeats: int) -> int:
    """How many times an item may be filled: the first fill and its repeats."""
    return 1 + repeats


def fill_total(quantity: int, repeats: int) -> int:
    """All an item allows over every fill (quantity per fill, 1 + repeats fills)."""
    return quantity * fills(repeats)
