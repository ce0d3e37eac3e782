"""The trust list this node verifies with: the one from its enrolment, plus every update
(new nodes, revocations) synced from the hub since."""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache

from sync_protocol.trust_list import MergeResult, TrustList

from .credentials import NodeCredentials
from .store import NodeStore

log = logging.getLogger(__name__)
STATE_KEY = "trust_list"


@lru_cache(maxsize=4)
def _parse(digest: str, text: str) -> TrustList:  # noqa: ARG001 - the digest keys the cache
    return TrustList.from_json(text)


def current_trust_list(store: NodeStore, credentials: NodeCredentials) -> TrustList:
    text = store.state(STATE_KEY)
    if text is None:
        return credentials.trust_list
    return _parse(hashlib.sha256(text.encode()).hexdigest(), text)


def merge_trust_list(store: NodeStore, credentials: NodeCredentials,
                     incoming: TrustList) -> MergeResult:
    """Add what the hub sent; revocations are never removed, roots never added by a peer."""
    merged = TrustList.from_dict(current_trust_list(store, credentials).to_dict())
    result = merged.merge(incoming)
    if result.added_certificates or result.added_revocations:
        with store.transaction() as tx:
            store.set_state(tx.conn, STATE_KEY, merged.to_json())
        log.info("trust list updated: %s certificates, %s revocations",
                 result.added_certificates, result.added_revocations)
    return result
