"""Hybrid logical clock (Kulkarni et al.): wall time plus a counter, never going back.

A Raspberry Pi has no battery-backed clock: after a power cut it may boot in 1970 or in the
past. The clock therefore persists the last timestamp it issued or saw, and after a restart
continues from there, whatever the wall clock says.

Timestamps are strings that sort in time order: ``<wall ms, 15 digits>-<counter, 5>``; the
origin node is carried by the event, so equal clocks on two nodes tie-break by node id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import EventRejected, ProtocolError

WALL_DIGITS = 15
COUNTER_DIGITS = 5
# More than 99,999 events in one millisecond cannot happen on a node; refuse rather than wrap.
MAX_COUNTER = 10**COUNTER_DIGITS - 1
# A remote clock further ahead than this is refused: a node with a wrong clock must not drag
# every other node's timestamps into the future.
# The hub applies the same bound to every pushed event (check_not_ahead), so an event no node
# would accept is never stored and relayed.
MAX_DRIFT_MS = 24 * 3600 * 1000
# The reason code of such a refusal, on the nodes (apply_failures) and the hub (quarantine).
CLOCK_AHEAD = "clock_drift"


class ClockAhead(EventRejected):
    code = CLOCK_AHEAD


def check_not_ahead(remote: HlcTimestamp, reference_ms: int) -> None:
    """Raise ClockAhead if `remote` is more than MAX_DRIFT_MS past `reference_ms`."""
    if remote.wall_ms - reference_ms > MAX_DRIFT_MS:
        raise ClockAhead("Clock value %(value)s is more than a day ahead of %(reference)s: the "
                         "clock of the node that wrote it is wrong", field="hlc",
                         value=str(remote), reference=HlcTimestamp(reference_ms, 0).to_instant())


@dataclass(frozen=True, order=True)
class HlcTimestamp:
    wall_ms: int
    counter: int

    def __str__(self) -> str:
        return f"{self.wall_ms:0{WALL_DIGITS}d}-{self.counter:0{COUNTER_DIGITS}d}"

    @classmethod
    def parse(cls, text: str) -> HlcTimestamp:
        wall, sep, counter = (text or "").partition("-")
        if (not sep or len(wall) != WALL_DIGITS or len(counter) != COUNTER_DIGITS
                or not wall.isdigit() or not counter.isdigit()):
            raise ProtocolError("Clock value %(value)s is not a hybrid logical clock timestamp",
                                field="hlc", code="bad_hlc", value=text)
        return cls(int(wall), int(counter))

    def to_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.wall_ms / 1000, tz=UTC)

    def to_instant(self) -> str:
        return self.to_datetime().strftime("%Y-%m-%dT%H:%M:%SZ")


ZERO = HlcTimestamp(0, 0)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class HybridLogicalClock:
    """Thread-safe HLC. ``last`` is the highest timestamp issued or received so far."""

    def __init__(self, last: HlcTimestamp = ZERO,
                 wall: Callable[[], int] = wall_clock_ms) -> None:
        self._last = last
        self._wall = wall
        self._lock = threading.Lock()

    @property
    def last(self) -> HlcTimestamp:
        return self._last

    def now(self) -> HlcTimestamp:
        """A timestamp for a local event, strictly after every earlier one."""
        with self._lock:
            wall = self._wall()
            if wall > self._last.wall_ms:
                ts = HlcTimestamp(wall, 0)
            else:
                ts = self._bump(self._last.wall_ms, self._last.counter + 1)
            self._last = ts
            return ts

    def catch_up(self, seen: HlcTimestamp) -> None:
        """Raise ``last`` to a timestamp this node itself issued elsewhere (another process)."""
        with self._lock:
            self._last = max(self._last, seen)

    def observe(self, remote: HlcTimestamp) -> HlcTimestamp:
        """Merge a timestamp received from another node; refuse one absurdly far ahead."""
        with self._lock:
            wall = self._wall()
            check_not_ahead(remote, max(wall, self._last.wall_ms))
            top = max(wall, self._last.wall_ms, remote.wall_ms)
            if top == self._last.wall_ms == remote.wall_ms:
                ts = self._bump(top, max(self._last.counter, remote.counter) + 1)
            elif top == self._last.wall_ms:
                ts = self._bump(top, self._last.counter + 1)
            elif top == remote.wall_ms:
                ts = self._bump(top, remote.counter + 1)
            else:
                ts = HlcTimestamp(top, 0)
            self._last = ts
            return ts

    @staticmethod
    def _bump(wall_ms: int, counter: int) -> HlcTimestamp:
        if counter > MAX_COUNTER:
            # Borrow the next millisecond rather than overflow the counter.
            return HlcTimestamp(wall_ms + 1, 0)
        return HlcTimestamp(wall_ms, counter)
