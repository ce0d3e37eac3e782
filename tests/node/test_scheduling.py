"""Schedules publish slots in Tashkent time and skip Uzbekistan's public holidays."""

from datetime import date, time

import pytest

from edge_node.errors import Forbidden, ValidationFailed
from edge_node.services import scheduling
from edge_node.services.access import SYSTEM, Actor
from sync_protocol.timeutil import local_date, utc_now


def test_slots_are_tashkent_local_times_stored_in_utc():
    starts = scheduling.slot_starts(date(2026, 12, 1), 1, (1,), time(8), time(9), 20)
    # 08:00 in Tashkent (UTC+5) is 03:00 UTC.
    assert starts == ["2026-12-01T03:00:00Z", "2026-12-01T03:20:00Z", "2026-12-01T03:40:00Z"]


@pytest.mark.parametrize("holiday", [date(2027, 1, 1), date(2027, 3, 21), date(2026, 12, 8)])
def test_public_holidays_have_no_slots(holiday):
    assert holiday in scheduling.public_holidays(holiday, holiday)
    starts = scheduling.slot_starts(holiday, 1, tuple(range(7)), time(8), time(17), 20)
    assert starts == []


def test_sunday_is_off_in_the_working_week():
    sunday = date(2026, 12, 6)
    assert sunday.weekday() == 6
    assert scheduling.slot_starts(sunday, 1, scheduling.WORKING_WEEK, time(8), time(17), 20) == []


def test_publishing_twice_adds_nothing(store, seeded):
    doctor = seeded["doctors"][0]["practitioner_id"]
    result = scheduling.publish_schedule(store, SYSTEM, practitioner_id=doctor,
                                         first_day=local_date(utc_now()), days=7, start=time(8),
                                         end=time(17), slot_minutes=20)
    assert result["published"] == 0 and result["already_published"] > 0


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"days": 0}, "days"), ({"days": 400}, "days"), ({"slot_minutes": 1}, "slot_minutes"),
    ({"start": time(17), "end": time(8)}, "end"), ({"weekdays": (9,)}, "weekdays")])
def test_bad_schedules_are_refused(store, seeded, kwargs, field):
    doctor = seeded["doctors"][0]["practitioner_id"]
    args = {"practitioner_id": doctor, "first_day": date.today(), "days": 3,
            "start": time(8), "end": time(12), "slot_minutes": 20, **kwargs}
    with pytest.raises(ValidationFailed) as caught:
        scheduling.publish_schedule(store, SYSTEM, **args)
    assert caught.value.field == field


def test_only_admin_publishes_schedules(store, seeded):
    with pytest.raises(Forbidden):
        scheduling.publish_schedule(store, Actor("x", "registrar"),
                                    practitioner_id=seeded["doctors"][0]["practitioner_id"],
                                    first_day=date.today(), days=1, start=time(8),
                                    end=time(9))
