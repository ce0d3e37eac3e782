"""The projector: projections, conflict detection and paper reconciliation follow the log.

With PROJECTOR = "background" a push answers once its batch is durably stored and every
event has its verdict (envelope, hash chain, rights and clock checks stay on the push's
path); this module's thread then runs the ingest hooks over what the log holds past the
`projected_through` cursor (central_hub.ingest.Ingestor.project_pending): in log order, in
transactions that move the cursor with the projections, so each event is projected exactly
once whatever is killed when. On PostgreSQL the projector's advisory lock makes one projector
step run at a time even with several hub processes, each with its own thread.

Hub events a projection step emits (ConflictRaised, ...) are appended under the writer lock
held to that step's commit, so a pull, which reads committed rows only, never sees them before
the step has committed. With PROJECTOR = "inline" (the library default, tests that read a
projection at once) the push projects before it answers, as before this module.

What "synced" means with a background projector: a node's events are held by the hub
(acknowledged) and the node has pulled everything the hub had committed; what the projector
derives from them later (a conflict it raises) reaches the node at its next pull. `lag()`
says how far behind the projector is; /healthz shows it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sync_protocol.timeutil import from_instant, utc_now

from .ingest import projected_through
from .rights import HUB_ORIGIN
from .storage import Storage
from .storage.partitions import maintain

if TYPE_CHECKING:
    from .ingest import Ingestor

log = logging.getLogger(__name__)

INLINE = "inline"
BACKGROUND = "background"
MODES = (INLINE, BACKGROUND)
# Seconds between looks at the log when no push of this process woke the thread: pushes
# served by another process (a worker, a second hub server) are seen within this.
POLL_SECONDS = 0.1
# Seconds to wait after a failed step before trying again (a database restart, say).
RETRY_SECONDS = 2.0
# Seconds a stopping hub gives the thread to finish its step (it commits or rolls back whole).
STOP_SECONDS = 30.0
# Seconds between looks at the log's partitions (PostgreSQL): the next is made once the last
# is half full, and a partition holds days of events, so a look every minute is plenty.
MAINTAIN_SECONDS = 60.0


@dataclass(frozen=True)
class Lag:
    """How far the projector is behind the log."""

    events: int  # node events stored and not yet projected
    seconds: float  # age of the oldest of them (0 when none waits)
    head: int  # the log's last position
    projected_through: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lag(storage: Storage, now: datetime | None = None) -> Lag:
    """The projector's lag, read from the database (any process may ask; metrics use it)."""
    with storage.reader() as tx:
        through = projected_through(tx)
        head = int(tx.scalar("SELECT COALESCE(MAX(position), 0) AS p FROM events"))
        waiting = tx.one("SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM events "
                         "WHERE position > ? AND origin <> ?", (through, HUB_ORIGIN))
    count = int(waiting["n"]) if waiting else 0
    seconds = 0.0
    if count and waiting["oldest"]:
        age = (now or utc_now()) - from_instant(waiting["oldest"])
        seconds = max(0.0, age.total_seconds())
    return Lag(count, round(seconds, 3), head, through)


def wait_projected(storage: Storage, timeout: float = 30.0, interval: float = 0.02) -> int:
    """Wait until the projector's cursor has reached every node event stored so far; return
    the cursor. Raises TimeoutError. (Tests, benchmarks, and scripts that read projections
    right after a push.)"""
    deadline = time.monotonic() + timeout
    while True:
        current = lag(storage)
        if current.events == 0:
            return current.projected_through
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the projector still has {current.events} event(s) to project "
                               f"after {timeout} s")
        time.sleep(interval)


class Projector:
    """A thread that projects what the log holds past the cursor, woken by pushes of this
    process (`notify`) or every POLL_SECONDS."""

    def __init__(self, ingestor: Ingestor, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.ingestor = ingestor
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Projector:
        if self._thread is None:
            self.ingestor.on_stored = self.notify
            self._thread = threading.Thread(target=self._run, name="hub-projector", daemon=True)
            self._thread.start()
        return self

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(STOP_SECONDS)
            self._thread = None
        self.ingestor.on_stored = None

    def __enter__(self) -> Projector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def maintain(self) -> list[str]:
        """Create the log's next partition ahead of need (PostgreSQL; nothing on SQLite).
        Under the writer lock too, so an ingest making one itself cannot race it."""
        with self.ingestor.storage.transaction(projector=True) as tx:
            tx.hold_writer_lock()
            return maintain(tx)

    def _run(self) -> None:
        maintained = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if time.monotonic() - maintained >= MAINTAIN_SECONDS and \
                        self.ingestor.storage.dialect == "postgresql":
                    self.maintain()
                    maintained = time.monotonic()
                self.ingestor.project_pending()
            except Exception:  # noqa: BLE001 - the events are stored; the next step retries
                log.exception("projector step failed; retrying in %s s", RETRY_SECONDS)
                self._stop.wait(RETRY_SECONDS)
                continue
            self._wake.wait(self.poll_seconds)
