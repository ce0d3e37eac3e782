"""Work schedules that publish appointment slots, in Tashkent time, skipping public holidays."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

import holidays

from sync_protocol.event_names import SLOTS_PUBLISHED
from sync_protocol.identifiers import new_ulid
from sync_protocol.timeutil import TASHKENT, to_instant

from ..errors import ValidationFailed
from ..store import NodeStore
from .access import Actor
from .facilities import load_practitioner

log = logging.getLogger(__name__)

# Publishing more than a quarter ahead invites mass rebooking when rotas change.
MAX_SCHEDULE_DAYS = 92
SLOT_MINUTES_RANGE = (5, 240)
WORKING_WEEK = (0, 1, 2, 3, 4, 5)  # Monday to Saturday: polyclinics work a six-day week


def public_holidays(first: date, last: date) -> holidays.HolidayBase:
    return holidays.country_holidays("UZ", years=range(first.year, last.year + 1))


def slot_starts(first_day: date, days: int, weekdays: tuple[int, ...], start: time, end: time,
                slot_minutes: int) -> list[str]:
    """The UTC start instants of every slot; pure, so it can be tested on its own."""
    last_day = first_day + timedelta(days=days - 1)
    off = public_holidays(first_day, last_day)
    starts = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        if day.weekday() not in weekdays or day in off:
            continue
        moment = datetime.combine(day, start, tzinfo=TASHKENT)
        closing = datetime.combine(day, end, tzinfo=TASHKENT)
        while moment + timedelta(minutes=slot_minutes) <= closing:
            starts.append(to_instant(moment))
            moment += timedelta(minutes=slot_minutes)
    return starts


def publish_schedule(store: NodeStore, actor: Actor, *, practitioner_id: str, first_day: date,
                     days: int, start: time, end: time, slot_minutes: int = 20,
                     weekdays: tuple[int, ...] = WORKING_WEEK) -> dict:
    """Publish the slots of one doctor; slots that already exist are left as they are."""
    actor.require("manage_schedule")
    if not 1 <= days <= MAX_SCHEDULE_DAYS:
        raise ValidationFailed("A schedule covers 1 to %(max)s days", field="days",
                               max=MAX_SCHEDULE_DAYS)
    low, high = SLOT_MINUTES_RANGE
    if not low <= slot_minutes <= high:
        raise ValidationFailed("Slot length must be %(low)s to %(high)s minutes",
                               field="slot_minutes", low=low, high=high)
    if start >= end:
        raise ValidationFailed("The working day must end after it starts", field="end")
    if not weekdays or any(d not in range(7) for d in weekdays):
        raise ValidationFailed("Weekdays are numbers 0 (Monday) to 6 (Sunday)",
                               field="weekdays")
    starts = slot_starts(first_day, days, tuple(weekdays), start, end, slot_minutes)
    with store.transaction() as tx:
        doctor = load_practitioner(tx.conn, practitioner_id)
        taken = {r["starts_at"] for r in tx.query(
            "SELECT starts_at FROM slots WHERE practitioner_id = ?", (practitioner_id,))}
        new = [s for s in starts if s not in taken]
        if new:
            tx.append(SLOTS_PUBLISHED, {
                "schedule_id": new_ulid(), "practitioner_id": practitioner_id,
                "facility_id": doctor["facility_id"], "slot_minutes": slot_minutes,
                "starts": new})
    log.info("published %s slots for %s", len(new), practitioner_id)
    return {"published": len(new), "already_published": len(starts) - len(new)}


def free_slots(store: NodeStore, practitioner_id: str, day: date | None = None,
               after: datetime | None = None, limit: int = 200) -> list[dict]:
    """Slots of a doctor with no live appointment, from ``after`` on (default: now)."""
    sql = ("SELECT s.practitioner_id, s.starts_at, s.ends_at FROM slots s WHERE"
           " s.practitioner_id = ? AND s.starts_at > ? AND NOT EXISTS (SELECT 1 FROM"
           " appointments a WHERE a.practitioner_id = s.practitioner_id AND"
           " a.starts_at = s.starts_at AND a.status IN"
           " ('booked', 'checked_in', 'completed', 'no_show'))")
    params: list = [practitioner_id, to_instant(after or datetime.now(TASHKENT))]
    if day is not None:
        begin = datetime.combine(day, time(0), tzinfo=TASHKENT)
        sql += " AND s.starts_at >= ? AND s.starts_at < ?"
        params += [to_instant(begin), to_instant(begin + timedelta(days=1))]
    rows = store.query(sql + " ORDER BY s.starts_at LIMIT ?", (*params, limit))
    return [dict(r) for r in rows]
