"""Replay protection: each signed request's nonce is remembered until its time expires.

sync_protocol.request_signing refuses a request whose time is more than the allowed skew
away, so a nonce only needs keeping until then; expired rows are purged now and then, which
keeps the table at about (requests per 10 minutes) rows.
"""

from __future__ import annotations

import logging
import threading
import time

from .storage import Storage

log = logging.getLogger(__name__)

# Purge expired nonces at most this often: one indexed DELETE per minute is nothing.
PURGE_EVERY_SECONDS = 60.0


class NonceStore:
    def __init__(self, storage: Storage, clock=time.time) -> None:
        self.storage = storage
        self.clock = clock
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def seen(self, node_id: str, nonce: str, expires: int) -> bool:
        """Record the nonce; True if it had been recorded before (a replay)."""
        self._maybe_purge()
        with self.storage.transaction(exclusive=False) as tx:
            added = tx.execute("INSERT INTO nonces (node_id, nonce, expires_at) VALUES "
                               "(?, ?, ?) ON CONFLICT (node_id, nonce) DO NOTHING",
                               (node_id, nonce, int(expires)))
        return added == 0

    def purge(self) -> int:
        with self.storage.transaction(exclusive=False) as tx:
            removed = tx.execute("DELETE FROM nonces WHERE expires_at < ?", (int(self.clock()),))
        if removed:
            log.debug("purged %s expired nonces", removed)
        return removed

    def _maybe_purge(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next_purge:
                return
            self._next_purge = now + PURGE_EVERY_SECONDS
        self.purge()
