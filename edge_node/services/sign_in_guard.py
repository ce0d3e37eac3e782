"""Guessing limits for every secret checked at a node: staff PINs and kiosk answers.

Race-free: an attempt is *reserved* (its failure row written) in the same write transaction
that counts the earlier ones, before the secret is checked; a success takes its row back.
However many requests arrive at once, at most the limit of secrets is ever checked per
subject and window.

Device cookies (OWASP's answer to lock-out by a stranger): a successful staff sign-in leaves
a signed, per-account cookie on that terminal. Attempts carrying a valid one count against
that device alone; every other client shares one counter per account. A guesser on the LAN
can lock the shared counter, never the terminal where the staff member signs in every day.

Failed and locked sign-ins go to ``sign_in_log`` (node-local) for the node's admin.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sync_protocol.timeutil import to_instant

from ..store import NodeStore
from .access import Actor

log = logging.getLogger(__name__)

DEVICE_COOKIE_PREFIX = "dmed_device_"
DEVICE_COOKIE_MAX_AGE = timedelta(days=365)  # a terminal stays trusted for a year of use
SIGN_IN_LOG_DAYS = 90  # a quarter of failed sign-ins is enough to see a pattern
SIGN_IN_LOG_PAGE = 200  # the admin's list shows the latest this many
# A fuzzer can try thousands of names a minute: the log keeps the latest rows only (an SD card
# must not fill), and staff failures older than a day are never consulted again.
SIGN_IN_LOG_MAX_ROWS = 10_000
STAFF_FAILURES_KEPT = timedelta(days=1)
OUTCOMES = ("wrong_pin", "locked")


@dataclass(frozen=True)
class Limit:
    """At most `count` failures of `subject` in `window` (before now)."""

    subject: str
    count: int
    window: timedelta


def reserve(store: NodeStore, limits: list[Limit], now: datetime) -> list[int] | None:
    """Count and reserve in one write transaction: the reserved rows, or None when a limit is
    reached (then nothing is written)."""
    stamp = to_instant(now)
    with store.transaction() as tx:
        for limit in limits:
            row = tx.one("SELECT COUNT(*) AS n FROM sign_in_failures WHERE subject = ? AND"
                         " failed_at > ?", (limit.subject, to_instant(now - limit.window)))
            if row and row["n"] >= limit.count:
                return None
        return [cast(int, tx.conn.execute("INSERT INTO sign_in_failures (subject, failed_at)"
                                          " VALUES (?, ?)", (subject, stamp)).lastrowid)
                for subject in dict.fromkeys(limit.subject for limit in limits)]


def release(store: NodeStore, rows: list[int], clear_subjects: tuple[str, ...] = ()) -> None:
    """A success: its reserved rows go, and with them the named subjects' earlier failures.

    Attempts reserved after this one stay counted, so a success in the middle of a burst
    opens no room for the rest of the burst.
    """
    with store.transaction() as tx:
        tx.conn.executemany("DELETE FROM sign_in_failures WHERE rowid = ?",
                            [(row,) for row in rows])
        for subject in clear_subjects:
            tx.conn.execute("DELETE FROM sign_in_failures WHERE subject = ? AND rowid < ?",
                            (subject, min(rows)))


# -- device cookies -------------------------------------------------------------------------

def device_cookie_name(username: str) -> str:
    return DEVICE_COOKIE_PREFIX + username


def _device_mac(secret: bytes, username: str, nonce: str) -> str:
    return hmac.new(secret, f"dmed-device|{username}|{nonce}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def new_device_cookie(secret: bytes, username: str) -> str:
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_device_mac(secret, username, nonce)}"


def device_nonce(secret: bytes, username: str, cookie: str | None) -> str | None:
    """The device's nonce when `cookie` is a valid device cookie for `username`."""
    nonce, _, mac = str(cookie or "").partition(".")
    if not (secret and nonce and mac):
        return None
    return nonce if hmac.compare_digest(_device_mac(secret, username, nonce), mac) else None


# -- what the admin sees --------------------------------------------------------------------

def note(store: NodeStore, *, username: str, outcome: str, trusted_device: bool, client: str,
         now: datetime) -> None:
    with store.transaction() as tx:
        tx.conn.execute("INSERT INTO sign_in_log (at, username, outcome, trusted_device, client)"
                        " VALUES (?, ?, ?, ?, ?)", (to_instant(now), username[:64], outcome,
                                                    int(trusted_device), client[:64]))
        tx.conn.execute("DELETE FROM sign_in_log WHERE at < ? OR id <= (SELECT MAX(id) FROM"
                        " sign_in_log) - ?", (to_instant(now - timedelta(days=SIGN_IN_LOG_DAYS)),
                                               SIGN_IN_LOG_MAX_ROWS))
        tx.conn.execute("DELETE FROM sign_in_failures WHERE subject LIKE 'staff%' AND"
                        " failed_at < ?", (to_instant(now - STAFF_FAILURES_KEPT),))
    log.warning("sign-in %s for %s from %s", outcome, username[:64], client[:64])


def failed_sign_ins(store: NodeStore, actor: Actor) -> list[dict]:
    """The latest failed and locked sign-ins, newest first (admin)."""
    actor.require("manage_staff")
    rows = store.query("SELECT at, username, outcome, trusted_device, client FROM sign_in_log"
                       " ORDER BY id DESC LIMIT ?", (SIGN_IN_LOG_PAGE,))
    return [{**dict(r), "trusted_device": bool(r["trusted_device"])} for r in rows]
