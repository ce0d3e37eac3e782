"""Kiosk patient sessions held on the server, so that ending one ends every copy of it.

The kiosk's session lives in a signed cookie; a cookie captured before the patient pressed
Finish would otherwise still open the patient's card when replayed. Each identified session
gets a row here (node-local, never synced); Finish, the idle rule and a sign-out mark it
ended, and a cookie naming an ended or unknown session gets the start page.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from sync_protocol.timeutil import to_instant, utc_now

from ..store import NodeStore

log = logging.getLogger(__name__)

# Ended and abandoned rows are kept a day, then pruned (bounded history on the device).
KEEP_ENDED = timedelta(days=1)
# Touching the row on every page would be a write per click; a tenth of the idle limit is
# precision enough (the page's own timer pings while the patient is active).
TOUCH_SHARE = 10


def start(store: NodeStore, patient_id: str, now: datetime | None = None) -> str:
    now = now or utc_now()
    session_id = secrets.token_urlsafe(24)
    with store.transaction() as tx:
        tx.conn.execute("INSERT INTO kiosk_sessions (session_id, patient_id, started_at,"
                        " last_seen) VALUES (?, ?, ?, ?)",
                        (session_id, patient_id, to_instant(now), now.timestamp()))
        # Sessions left without a Finish (the patient walked away) are idle long past the
        # limit by then: both kinds go after a day.
        tx.conn.execute("DELETE FROM kiosk_sessions WHERE (ended_at IS NOT NULL AND ended_at"
                        " < ?) OR last_seen < ?", (to_instant(now - KEEP_ENDED),
                                                   (now - KEEP_ENDED).timestamp()))
    return session_id


OPEN, IDLE, ENDED = "open", "idle", "ended"


def state(store: NodeStore, session_id: str | None, patient_id: str, idle_seconds: float,
          now: datetime | None = None) -> str:
    """OPEN for this patient's live session (touched), IDLE when it was idle too long (ended
    here and now), ENDED when it was ended before, is unknown or is another patient's."""
    now = now or utc_now()
    row = store.one("SELECT patient_id, last_seen, ended_at FROM kiosk_sessions WHERE"
                    " session_id = ?", (str(session_id or ""),))
    if row is None or row["ended_at"] is not None or row["patient_id"] != patient_id:
        return ENDED
    idle = now.timestamp() - row["last_seen"]
    if idle > idle_seconds:
        end(store, session_id, now)
        return IDLE
    if idle > idle_seconds / TOUCH_SHARE:
        with store.transaction() as tx:
            tx.conn.execute("UPDATE kiosk_sessions SET last_seen = ? WHERE session_id = ?",
                            (now.timestamp(), session_id))
    return OPEN


def end(store: NodeStore, session_id: str | None, now: datetime | None = None) -> None:
    if not session_id:
        return
    with store.transaction() as tx:
        tx.conn.execute("UPDATE kiosk_sessions SET ended_at = ? WHERE session_id = ? AND"
                        " ended_at IS NULL", (to_instant(now or utc_now()), str(session_id)))
    log.info("kiosk session ended")
