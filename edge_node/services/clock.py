"""Is this node's wall clock trustworthy enough to call a prescription "valid"?

A Raspberry Pi has no battery-backed clock: after a power cut it boots at the last saved time,
which can be days behind, and an expired prescription would then look valid. So the clock is
trusted only after a confirmation (by the hub's time during sync, or by staff on screen) in
this same boot, while wall time and the kernel's monotonic clock have advanced together.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sync_protocol.timeutil import from_instant, to_instant, utc_now

from ..store import NodeStore

log = logging.getLogger(__name__)

# A confirmation older than this is stale: cheap clocks drift about a second a day.
MAX_CONFIRMATION_AGE_SECONDS = 30 * 24 * 3600
# Wall and monotonic time may differ this much after NTP slews before we distrust the wall.
MAX_DIVERGENCE_SECONDS = 120
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


@dataclass
class SystemClock:
    """The three readings the check needs; tests pass their own."""

    def wall(self) -> datetime:
        return utc_now()

    def monotonic(self) -> float:
        return time.monotonic()  # CLOCK_MONOTONIC: since boot, shared by every process

    def boot_id(self) -> str:
        return _boot_id()


@functools.cache
def _boot_id() -> str:
    """Read once: a boot's id never changes while this process lives."""
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return "unknown-boot"


SYSTEM_CLOCK = SystemClock()


def confirm_clock(store: NodeStore, source: str, clock: SystemClock = SYSTEM_CLOCK) -> None:
    """Record that the wall clock is right now (``source``: hub, staff, init)."""
    with store.transaction() as tx:
        for key, value in (("clock_confirmed_at", to_instant(clock.wall())),
                           ("clock_confirmed_monotonic", repr(clock.monotonic())),
                           ("clock_confirmed_boot", clock.boot_id()),
                           ("clock_confirmed_by", source)):
            store.set_state(tx.conn, key, value)
    log.info("clock confirmed by %s", source)


def clock_status(store: NodeStore, clock: SystemClock = SYSTEM_CLOCK) -> dict:
    confirmed_at = store.state("clock_confirmed_at")
    status = {"verified": False, "reason": None, "confirmed_at": confirmed_at,
              "confirmed_by": store.state("clock_confirmed_by")}
    if confirmed_at is None:
        return {**status, "reason": "never_confirmed"}
    if store.state("clock_confirmed_boot") != clock.boot_id():
        return {**status, "reason": "restarted"}
    wall_elapsed = (clock.wall() - from_instant(confirmed_at)).total_seconds()
    mono_elapsed = clock.monotonic() - float(store.state("clock_confirmed_monotonic") or 0)
    if abs(wall_elapsed - mono_elapsed) > MAX_DIVERGENCE_SECONDS:
        return {**status, "reason": "jumped"}
    if mono_elapsed > MAX_CONFIRMATION_AGE_SECONDS:
        return {**status, "reason": "stale"}
    if clock.wall() < store.clock.last.to_datetime():
        return {**status, "reason": "behind_log"}
    return {**status, "verified": True}
