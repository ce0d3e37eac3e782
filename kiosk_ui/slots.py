"""Free slots grouped by Tashkent day, for the kiosk's and the registrar's slot pickers."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from edge_node.services import scheduling
from edge_node.web.context import store
from sync_protocol.timeutil import TASHKENT, from_instant, local_date, to_instant

log = logging.getLogger(__name__)

DAYS_SHOWN = 7  # a week of choices fits a 1024x600 screen; later days come with a later visit
MAX_SLOTS_READ = 600  # a week of several doctors' 20-minute slots, with room to spare


def free_days(practitioner_id: str, now: datetime) -> dict[date, list[dict]]:
    """The next days that have free slots, each with its slots in time order."""
    days: dict[date, list[dict]] = {}
    day, day_ends = None, ""
    for slot in scheduling.free_slots(store(), practitioner_id, after=now, limit=MAX_SLOTS_READ):
        # Stored instants are UTC text of one fixed format, so they compare as text: the
        # Tashkent day is worked out once per day, not once per slot.
        if slot["starts_at"] >= day_ends:
            day = local_date(from_instant(slot["starts_at"]))
            if day not in days and len(days) >= DAYS_SHOWN:
                break
            day_ends = to_instant(datetime.combine(day + timedelta(days=1), time(0),
                                                   tzinfo=TASHKENT))
        days.setdefault(day, []).append(slot)
    return days


def chosen_day(days: dict[date, list[dict]], requested: str | None) -> date | None:
    if requested:
        try:
            wanted = date.fromisoformat(requested)
        except ValueError:
            wanted = None
        if wanted in days:
            return wanted
    return next(iter(days), None)
