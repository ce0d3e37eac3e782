"""The hub's trust list, kept in its database and served to nodes (GET /sync/v1/trust).

It starts from a list made by provisioning (`dmed-hub init --trust`), takes later lists with
new regions, nodes and revocations (`dmed-hub trust-import`), and learns node certificates
from signed requests (a node sends its certificate with every request; once its chain
verifies, every other node gets it too, so a pharmacy can verify that clinic's prescriptions
offline). The list only grows, so the order of merges does not matter.
"""

from __future__ import annotations

import logging
import threading
import time

from cryptography import x509

from sync_protocol.certificates import kid_of
from sync_protocol.errors import TrustError
from sync_protocol.timeutil import to_instant, utc_now
from sync_protocol.trust_list import MergeResult, TrustList

from .errors import HubNotInitialised
from .storage import Storage, Tx

log = logging.getLogger(__name__)

STATE_KEY = "trust_list"
VERSION_KEY = "trust_list_digest"
# A list changed by another process (dmed-hub trust-import with a revocation) is picked up
# this often, well within one sync cycle of the nodes (DESIGN 7.7).
RELOAD_SECONDS = 10.0


def _load(tx: Tx) -> TrustList | None:
    row = tx.one("SELECT value FROM hub_state WHERE key = ?", (STATE_KEY,))
    return None if row is None else TrustList.from_json(row["value"])


def _version(tx: Tx) -> str | None:
    row = tx.one("SELECT value FROM hub_state WHERE key = ?", (VERSION_KEY,))
    return None if row is None else row["value"]


def _save(tx: Tx, trust_list: TrustList) -> str:
    """Store the list; return its version stamp (its digest)."""
    digest = trust_list.digest()
    for key, value in ((STATE_KEY, trust_list.to_json()), (VERSION_KEY, digest)):
        tx.execute("INSERT INTO hub_state (key, value, updated_at) VALUES (?, ?, ?) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                   "updated_at = excluded.updated_at", (key, value, to_instant(utc_now())))
    return digest


class TrustStore:
    """The current trust list (verify with `.trust_list`) and its persistent changes."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._version: str | None = None
        self._checked = 0.0
        self.reload()

    @property
    def initialised(self) -> bool:
        return self._list is not None

    @property
    def trust_list(self) -> TrustList:
        if self._list is None:
            raise HubNotInitialised("The hub has no trust list yet; run dmed-hub init --trust")
        return self._list

    def import_list(self, other: TrustList, *, accept_roots: bool = False) -> MergeResult:
        """Merge a list from provisioning; roots only with `accept_roots` (at init)."""
        with self._lock, self.storage.transaction(exclusive=False) as tx:
            current = _load(tx) or TrustList()
            result = current.merge(other, accept_roots=accept_roots)
            self._version = _save(tx, current)
            self._list = current
        log.info("trust list merged: %s", result)
        return result

    def learn(self, cert: x509.Certificate) -> bool:
        """Add a verified node certificate met in a request; True if it was new."""
        current = self.trust_list
        if current.get(kid_of(cert)) is not None:
            return False
        with self._lock, self.storage.transaction(exclusive=False) as tx:
            stored = _load(tx) or TrustList()
            try:
                added = stored.add_certificate(cert)
            except TrustError as e:
                log.warning("did not learn certificate %s: %s", kid_of(cert).hex(), e.text)
                return False
            if added:
                self._version = _save(tx, stored)
            self._list = stored
        log.info("learnt node certificate %s", kid_of(cert).hex())
        return added

    def reload(self) -> None:
        """Pick up changes another process (the CLI) made."""
        with self._lock, self.storage.reader() as tx:
            self._list = _load(tx)
            self._version = _version(tx)
            self._checked = time.monotonic()

    def refresh(self) -> None:
        """Reload if the stored list changed; checks at most every RELOAD_SECONDS."""
        if time.monotonic() - self._checked < RELOAD_SECONDS:
            return
        with self.storage.reader() as tx:
            version = _version(tx)
        self._checked = time.monotonic()
        if version != self._version:
            log.info("trust list changed in the database; reloading")
            self.reload()
