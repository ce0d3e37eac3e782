"""Free slots grouped by Tashkent day for the slot pickers (kiosk_ui.slots.free_days)."""

from __future__ import annotations

from datetime import date

from edge_node.services import scheduling
from kiosk_ui import slots
from sync_protocol.timeutil import from_instant


def test_slots_are_grouped_by_tashkent_day_and_only_the_first_days_are_kept(app, monkeypatch):
    starts = ["2026-03-02T03:00:00Z", "2026-03-02T18:59:59Z",  # 08:00, 23:59 Monday
              "2026-03-02T19:00:00Z",  # 00:00 Tuesday in Tashkent, still Monday in UTC
              "2026-03-03T04:00:00Z",
              *(f"2026-03-{d:02d}T04:00:00Z" for d in range(5, 5 + slots.DAYS_SHOWN + 2))]
    monkeypatch.setattr(scheduling, "free_slots", lambda *a, **k: [
        {"practitioner_id": "p", "starts_at": s, "ends_at": s} for s in starts])
    with app.test_request_context("/"):
        days = slots.free_days("p", from_instant("2026-03-01T00:00:00Z"))
    assert list(days)[:3] == [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 5)]
    assert len(days) == slots.DAYS_SHOWN
    assert [s["starts_at"] for s in days[date(2026, 3, 2)]] == starts[:2]
    assert [s["starts_at"] for s in days[date(2026, 3, 3)]] == starts[2:4]
