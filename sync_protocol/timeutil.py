"""Time in one place: store UTC, show Asia/Tashkent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

TASHKENT = ZoneInfo("Asia/Tashkent")  # UTC+5, no daylight saving


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_instant(moment: datetime) -> str:
    """The stored form of an instant: UTC, second precision, Z suffix."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: every instant must carry its zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def local_date(moment: datetime) -> date:
    return moment.astimezone(TASHKENT).date()


def local_text(instant: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return from_instant(instant).astimezone(TASHKENT).strftime(fmt)
