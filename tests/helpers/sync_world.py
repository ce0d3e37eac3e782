"""End-to-end sync world: a hub and enrolled nodes on loopback (DESIGN 4: nothing lost,
convergence, conflicts kept, least knowledge).

    hub = Hub.start(tmp_path, sync_pki)        # a real HTTP server on 127.0.0.1
    clinic = Node.start(CLINIC, tmp_path, sync_pki, node_templates, hub.url)
    clinic.sync()                              # the node's own SyncAgent.run_once()
    clinic.go_offline(); ...; clinic.go_online()
    check_converged(hub, [clinic, ...])        # helpers.convergence

The fixtures `sync_pki` and `node_templates` are in tests/conftest.py. Nodes are the real node
(NodeStore, services, create_app, SyncAgent, HubClient); the hub is the real hub (create_app,
storage). "Offline" points the node's hub URL at a closed loopback port, so the agent meets a
real connection error. For speed, `helpers.transports.FlaskTransport` carries a node's
requests to the hub app in-process, through the same HubClient and signing code.

The module opts out of assertion rewriting (PYTEST_DONT_REWRITE); its checks raise
AssertionError with their own messages.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from central_hub.composition import open_storage
from central_hub.scope import feed_head, pull_page
from central_hub.storage import Storage
from central_hub.web.app import create_app as create_hub_app
from edge_node.credentials import NodeCredentials
from edge_node.services import staff
from edge_node.services.access import Actor
from edge_node.store import NodeStore
from edge_node.sync.agent import SyncAgent, sync_status
from edge_node.sync.client import HubClient
from edge_node.web import create_app as create_node_app
from helpers.enrolments import Enrolments, NodeTemplates, Role
from helpers.hub import POSTGRES_DB, POSTGRES_HOST, postgres_base_url, temporary_schema
from helpers.servers import ServerThread, dead_url
from helpers.transports import FlaskTransport
from sync_protocol.certificates import NodeIdentity
from sync_protocol.trust_list import TrustList
from sync_protocol.wire import PullQuery

log = logging.getLogger(__name__)


# -- the hub -------------------------------------------------------------------------------

BACKENDS = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))


@contextmanager
def hub_database(backend: str, directory: Path, *, filename: str = "hub.db",
                 prefix: str = "sync") -> Iterator[str]:
    """A fresh hub database URL: a SQLite file, or ("postgres" or "postgresql") a schema of
    database `test` dropped afterwards (skipped when the server is unreachable, failed under
    DMED_REQUIRE_POSTGRES=1, as the `storage_url` fixture does)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / filename}"
        return
    if backend not in ("postgres", "postgresql"):
        raise ValueError(f"unknown hub backend {backend!r}: sqlite, postgres or postgresql")
    base = postgres_base_url()
    if base is None:
        message = f"PostgreSQL is not reachable on {POSTGRES_HOST} (database {POSTGRES_DB})"
        if os.environ.get("DMED_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with temporary_schema(base, prefix) as url:
        yield url


class Hub:
    """The hub app on its storage, served over loopback HTTP unless `serve=False`."""

    def __init__(self, db_url: str, trust_list: TrustList | None = None, *, serve: bool = True,
                 on_accepted=()) -> None:
        self.db_url = db_url
        self.storage: Storage = open_storage(db_url)
        self.app = create_hub_app({"DATABASE": db_url}, storage=self.storage,
                                  on_accepted=on_accepted)
        if trust_list is not None:
            self.app.extensions["dmed_hub"].trust.import_list(trust_list, accept_roots=True)
        self.server = ServerThread(self.app) if serve else None

    @classmethod
    def start(cls, directory: Path, enrolments: Enrolments, *, serve: bool = True,
              db_url: str | None = None) -> Hub:
        url = db_url or f"sqlite:///{directory / 'hub.db'}"
        return cls(url, enrolments.trust_list(), serve=serve)

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("this hub is not served over HTTP; use transport()")
        return self.server.url

    @property
    def ingestor(self):
        return self.app.extensions["dmed_hub"].ingestor

    def transport(self) -> FlaskTransport:
        return FlaskTransport(self.app)

    # -- what it holds -----------------------------------------------------------------------
    def events(self, origin: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM events", ()
        if origin is not None:
            sql, params = sql + " WHERE origin = ?", (origin,)
        with self.storage.reader() as tx:
            return tx.query(sql + " ORDER BY position", params)

    def node_row(self, node_id: str) -> dict[str, Any] | None:
        with self.storage.reader() as tx:
            return tx.one("SELECT * FROM nodes WHERE node_id = ?", (node_id,))

    def feed_head(self) -> int:
        with self.storage.reader() as tx:
            return feed_head(tx)

    def scope_ids(self, identity: NodeIdentity) -> set[str]:
        """Every event id the hub serves `identity` from cursor 0 (the pull code path)."""
        ids: set[str] = set()
        after, now = 0, datetime.now(UTC)
        while True:
            page = pull_page(self.storage, identity, PullQuery(after=after), now)
            ids.update(item.event["id"] for item in page.events)
            after = page.next
            if not page.more:
                return ids

    def conflicts(self) -> list[dict[str, Any]]:
        """The ConflictRaised events of the global log (payload plus id and hlc)."""
        return [{**payload_of(row), "event_id": row["id"], "hlc": row["hlc"]}
                for row in self.events() if row["type"] == "ConflictRaised"]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.storage.close()


def payload_of(row: dict[str, Any]) -> dict[str, Any]:
    value = row["payload"]
    return json.loads(value) if isinstance(value, str) else value


# -- nodes ---------------------------------------------------------------------------------

class Node:
    """An enrolled, seeded node: its store, the app create_app builds (and the SyncAgent in
    it), optionally served over loopback HTTP."""

    def __init__(self, role: Role, store: NodeStore, credentials: NodeCredentials,
                 hub_url: str, *, web: bool = True, serve: bool = False,
                 transport: BaseAdapter | None = None,
                 client_class: type[HubClient] = HubClient) -> None:
        self.role = role
        self.store = store
        self.credentials = credentials
        self.hub_url = hub_url
        self.app = self.server = None
        if web:  # the agent as the node's app factory wires it
            self.app = create_node_app({"DATABASE": str(store.path), "HUB_URL": hub_url,
                                        "SECRET_KEY": "sync-harness",
                                        "BACKGROUND_JOBS": False},
                                       store=store, credentials=credentials)
            self.agent: SyncAgent = self.app.extensions["dmed_sync_agent"]
            if client_class is not HubClient:
                self.agent.client = client_class(hub_url, credentials, role.node_id,
                                                 session=self.agent.client.session)
        else:  # the same agent without the web screens (building those costs ~0.4 s)
            self.agent = SyncAgent(store, client_class(hub_url, credentials, role.node_id),
                                   credentials)
        if transport is not None:
            self.agent.client.session.mount(hub_url, transport)
        if serve and self.app is not None:
            self.server = ServerThread(self.app)
        self.facility_id = store.state("facility_id")

    @classmethod
    def start(cls, role: Role, directory: Path, enrolments: Enrolments,
              templates: NodeTemplates, hub_url: str, **kwargs: Any) -> Node:
        store = NodeStore(templates.copy(role, directory / role.name / "node.db"))
        return cls(role, store, enrolments.credentials(role), hub_url, **kwargs)

    @property
    def node_id(self) -> str:
        return self.role.node_id

    @property
    def client(self):
        return self.agent.client

    def actor(self, username: str) -> Actor:
        row = self.store.one("SELECT * FROM staff WHERE username = ?", (username,))
        return staff.actor_for_staff(row)

    # -- sync ----------------------------------------------------------------------------------
    def sync(self) -> dict[str, Any]:
        return self.agent.run_once()

    def go_offline(self) -> None:
        self.client.base_url = dead_url()

    def go_online(self) -> None:
        self.client.base_url = self.hub_url

    def status(self) -> dict[str, Any]:
        """What the node's API says (over HTTP when served)."""
        if self.server is None:
            return sync_status(self.store, configured=True)
        response = requests.get(f"{self.server.url}/api/v1/sync/status", timeout=10)
        response.raise_for_status()
        return response.json()

    # -- its log -------------------------------------------------------------------------------
    def head_seq(self) -> int:
        row = self.store.one("SELECT MAX(seq) AS seq FROM events WHERE origin = ?",
                             (self.node_id,))
        return row["seq"] or 0

    def own_ids(self) -> list[str]:
        return [r["id"] for r in self.store.query(
            "SELECT id FROM events WHERE origin = ? ORDER BY seq", (self.node_id,))]

    def foreign_ids(self) -> list[str]:
        return [r["id"] for r in self.store.query(
            "SELECT id FROM events WHERE origin <> ?", (self.node_id,))]

    def conflicts(self) -> list[dict[str, Any]]:
        return [{**dict(r), "details": json.loads(r["details"])}
                for r in self.store.query("SELECT * FROM conflicts ORDER BY conflict_id")]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.client.session.close()
        self.store.close()
