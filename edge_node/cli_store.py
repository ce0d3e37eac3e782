"""The node store as the `dmed-node` commands open it (cli.py and the command groups kept
beside it: backup_cli, doctor_cli), in one module they all import."""

from __future__ import annotations

import logging

from sync_protocol.cli_errors import note_database

from .store import NodeStore
from .web.config import load_config

log = logging.getLogger(__name__)


def open_cli_store(database: str | None) -> NodeStore:
    config = load_config()
    path = database or config["DATABASE"]
    note_database(path)
    store = NodeStore(path)
    # A node that syncs (a hub and an identity, as the server's agent has) obeys the hub's rules.
    store.network_rights = bool(config["HUB_URL"]) and store.state("bundle_path") is not None
    return store
