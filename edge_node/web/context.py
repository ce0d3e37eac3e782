"""Request-scoped access to what the node's app holds: its store, credentials and sync agent.

As flaskr's get_db(): every view (the JSON API and the screens in kiosk_ui) reaches these
through this module, never through app.extensions, so the keys and the "not enrolled" check
live in one place. The app factory puts them in with install().
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import Flask, current_app

from sync_protocol.trust_list import TrustList

from ..credentials import NodeCredentials
from ..errors import NodeNotInitialised
from ..store import NodeStore
from ..trust_store import current_trust_list

if TYPE_CHECKING:
    from ..sync.agent import SyncAgent
    from ..sync.client import HubClient

log = logging.getLogger(__name__)

STORE_KEY = "dmed_store"
CREDENTIALS_KEY = "dmed_credentials"
SYNC_AGENT_KEY = "dmed_sync_agent"


def install(app: Flask, store: NodeStore, credentials: NodeCredentials | None,
            agent: SyncAgent | None) -> None:
    app.extensions[STORE_KEY] = store
    if credentials is not None:
        app.extensions[CREDENTIALS_KEY] = credentials
    if agent is not None:
        app.extensions[SYNC_AGENT_KEY] = agent


def store() -> NodeStore:
    return current_app.extensions[STORE_KEY]


def credentials() -> NodeCredentials:
    """The node's key, certificate and enrolment trust list; NodeNotInitialised on a node
    that has none, which can neither sign nor verify prescriptions."""
    found = optional_credentials()
    if found is None:
        raise NodeNotInitialised("This node has no enrolment bundle (DMED_NODE_BUNDLE): it "
                                 "cannot sign or verify prescriptions")
    return found


def optional_credentials() -> NodeCredentials | None:
    return current_app.extensions.get(CREDENTIALS_KEY)


def sync_agent() -> SyncAgent | None:
    """The node's sync agent, or None on a stand-alone node (no hub or no credentials)."""
    return current_app.extensions.get(SYNC_AGENT_KEY)


def hub_client() -> HubClient | None:
    """The node's signed client of the hub, or None on a stand-alone node."""
    agent = sync_agent()
    return agent.client if agent is not None else None


def trust_list() -> TrustList:
    """The trust list to verify with: the synced one, not the enrolment's, so revocations
    from the hub apply at once. NodeNotInitialised on a node without credentials."""
    return current_trust_list(store(), credentials())
