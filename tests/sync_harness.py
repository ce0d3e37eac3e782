"""End-to-end sync harness: a hub and enrolled nodes on loopback, and the checks that prove
the sync (DESIGN 4: nothing lost, convergence, conflicts kept, least knowledge).

    pytest_plugins = ("sync_harness",)        # fixtures: sync_pki, node_templates
    hub = Hub.start(tmp_path, sync_pki)        # a real HTTP server on 127.0.0.1
    clinic = Node.start(CLINIC, tmp_path, sync_pki, node_templates, hub.url)
    clinic.sync()                              # the node's own SyncAgent.run_once()
    clinic.go_offline(); ...; clinic.go_online()
    check_converged(hub, [clinic, ...])        # every event once, same shared records

Nodes are the real node (NodeStore, services, create_app, SyncAgent, HubClient); the hub is
the real hub (create_app, storage). "Offline" points the node's hub URL at a closed loopback
port, so the agent meets a real connection error. For speed, `FlaskTransport` carries a
node's requests to the hub app in-process, through the same HubClient and signing code.

The hub's own projections (central_hub.projections.snapshot) and conflict detection
(central_hub.conflicts) may not exist yet: until they do, a reference replica built from the
hub's global log stands in for the hub's projections (`reference_rows`), and the conflict
checks are skipped by the tests that need them.

Imported by test modules and registered as their plugin, so it opts out of assertion
rewriting (PYTEST_DONT_REWRITE); its checks raise AssertionError with their own messages.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from pki_helpers import (
    CLINIC_FACILITY,
    CLINIC_ID,
    PHARMACY_FACILITY,
    PHARMACY_ID,
    REGION_CODE,
    Pki,
    make_pki,
)
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.serving import make_server

from central_hub.composition import open_storage
from central_hub.scope import feed_head, pull_page
from central_hub.storage import Storage
from central_hub.web.app import create_app as create_hub_app
from edge_node.credentials import NodeCredentials, load_credentials
from edge_node.migrations import PROJECTION_TABLES
from edge_node.seed import seed_demo, seed_pharmacy
from edge_node.services import staff
from edge_node.services.access import Actor
from edge_node.services.clock import confirm_clock
from edge_node.store import NodeStore, row_to_event
from edge_node.sync.agent import SyncAgent, sync_status
from edge_node.sync.client import HubClient
from edge_node.web import create_app as create_node_app
from provisioning.keystore import CaStore
from sync_protocol.identifiers import make_pinfl, new_ulid
from sync_protocol.timeutil import to_instant
from sync_protocol.trust import NodeIdentity, NodeKind, TrustList
from sync_protocol.wire import PullQuery

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# How often a server thread checks for shutdown: teardown waits at most this long.
POLL_SECONDS = 0.05


# -- who takes part ------------------------------------------------------------------------

@dataclass(frozen=True)
class Role:
    """A node identity: what its certificate says, and so what it seeds itself as."""

    name: str
    node_id: str
    facility_code: str
    kind: NodeKind
    region: str = REGION_CODE

    @property
    def identity(self) -> NodeIdentity:
        return NodeIdentity(self.node_id, self.facility_code, self.region, self.kind)


CLINIC = Role("clinic", CLINIC_ID, CLINIC_FACILITY, NodeKind.CLINIC)
PHARMACY = Role("pharmacy", PHARMACY_ID, PHARMACY_FACILITY, NodeKind.PHARMACY)
PHARMACY2 = Role("pharmacy2", "tas-pharmacy-0002", "TAS-APT-9", NodeKind.PHARMACY)
SAM_PHARMACY = Role("sam_pharmacy", "sam-pharmacy-0001", "SAM-APT-3", NodeKind.PHARMACY, "SAM")


class Enrolments:
    """Bundles issued by a provisioning store (tests/pki_helpers.make_pki with a directory),
    as regional IT would issue them with dmed-provision add-node."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.ca = CaStore(pki.paths["store"])
        self.bundles: dict[str, Path] = {CLINIC.name: pki.paths["clinic_bundle"],
                                         PHARMACY.name: pki.paths["pharmacy_bundle"]}
        self._lock = threading.Lock()

    @classmethod
    def make(cls, directory: Path) -> Enrolments:
        return cls(make_pki(directory))

    def bundle(self, role: Role) -> Path:
        with self._lock:
            if role.name not in self.bundles:
                if role.region not in self.ca.region_codes():
                    self.ca.add_region(role.region, f"Region {role.region}")
                out = self.pki.paths["store"].parent / f"{role.name}-bundle.json"
                self.ca.add_node(role.region, role.node_id, role.facility_code, role.kind,
                                 out=out)
                self.bundles[role.name] = out
            return self.bundles[role.name]

    def credentials(self, role: Role) -> NodeCredentials:
        return load_credentials(self.bundle(role))

    def trust_list(self) -> TrustList:
        return self.ca.trust_list()

    def write_trust_list(self, path: Path) -> Path:
        path.write_text(self.trust_list().to_json(indent=2), encoding="utf-8")
        return path


class NodeTemplates:
    """Seeded node databases, made once per session (seeding hashes PINs with argon2) and
    copied for each node. Each is seeded with its certificate's facility code and region,
    or the hub refuses its FacilityRegistered (central_hub.rights)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()

    def path(self, role: Role) -> Path:
        with self._lock:
            if role.name not in self._paths:
                self._paths[role.name] = self._make(role)
            return self._paths[role.name]

    def _make(self, role: Role) -> Path:
        path = self.directory / f"{role.name}.db"
        store = NodeStore(path)
        store.initialise(role.node_id)
        if role.kind is NodeKind.CLINIC:
            seed_demo(store, code=role.facility_code, region=role.region, pharmacist=False)
        else:
            seed_pharmacy(store, code=role.facility_code, region=role.region)
        confirm_clock(store, "init")
        store.reader().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        return path

    def copy(self, role: Role, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path(role), target)
        return target


@pytest.fixture(scope="session")
def sync_pki(tmp_path_factory) -> Enrolments:
    """Root, region TAS, a clinic and a pharmacy (pki_helpers), more nodes on demand."""
    return Enrolments.make(tmp_path_factory.mktemp("sync-pki"))


@pytest.fixture(scope="session")
def node_templates(tmp_path_factory) -> NodeTemplates:
    return NodeTemplates(tmp_path_factory.mktemp("node-templates"))


# -- servers -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def dead_url() -> str:
    """A loopback URL nothing listens on: connecting fails at once (an outage)."""
    return f"http://{HOST}:{free_port()}"


class ServerThread:
    """A WSGI app served on a loopback port by a thread, stopped at close()."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self.server = make_server(HOST, port, app, threaded=True)
        self.port = self.server.port
        self.url = f"http://{HOST}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": POLL_SECONDS},
                                       name=f"serve-{self.port}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class FlaskTransport(BaseAdapter):
    """A requests transport that hands each request to a Flask app in-process: the node's
    HubClient signs, encodes and decodes exactly as over the network."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.client = app.test_client()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None,
             proxies=None) -> requests.Response:
        url = urlsplit(request.url)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("content-length", "host", "connection")}
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        answer = self.client.open(url.path, query_string=url.query, method=request.method,
                                  data=body, headers=headers)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        data = answer.get_data()
        if response.headers.get("Content-Encoding") == "gzip":  # what urllib3 would undo
            data = gzip.decompress(data)
            del response.headers["Content-Encoding"]
        response.headers.setdefault("Date", formatdate(usegmt=True))
        response._content = data
        response.encoding = "utf-8"
        response.url, response.request = request.url, request
        answer.close()
        return response

    def close(self) -> None:
        pass


class FaultyTransport(FlaskTransport):
    """FlaskTransport whose next requests can lose their answer: the hub did the work (a
    push committed, a page served) but the node never hears back."""

    DROP = "drop"

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.faults: list[str | None] = []
        self.dropped = 0

    def send(self, request, **kwargs) -> requests.Response:
        fault = self.faults.pop(0) if self.faults else None
        response = super().send(request, **kwargs)
        if fault == self.DROP:
            self.dropped += 1
            raise requests.ConnectionError("the answer was lost on the way back")
        return response


class RepeatingClient(HubClient):
    """A HubClient that sends its next `repeats` batches twice, freshly signed each time:
    a node retrying a batch whose answer it never saw."""

    repeats = 0
    repeated = 0

    def push(self, events: list[dict]) -> Any:
        response = super().push(events)
        if self.repeats > 0:
            self.repeats -= 1
            self.repeated += 1
            response = super().push(events)
        return response


# -- the hub -------------------------------------------------------------------------------

BACKENDS = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))


@contextmanager
def hub_database(backend: str, directory: Path) -> Iterator[str]:
    """A fresh hub database URL: a SQLite file, or a PostgreSQL schema of database `test`
    dropped afterwards (skipped when the server is unreachable, failed under
    DMED_REQUIRE_POSTGRES=1, as hub_helpers.storage_url does)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'hub.db'}"
        return
    from hub_helpers import postgres_base_url, temporary_schema
    base = postgres_base_url()
    if base is None:
        message = "PostgreSQL is not reachable on 127.0.0.1:5432 (database test)"
        if os.environ.get("DMED_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with temporary_schema(base, "sync") as url:
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
        return [{**_payload(row), "event_id": row["id"], "hlc": row["hlc"]}
                for row in self.events() if row["type"] == "ConflictRaised"]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.storage.close()


def _payload(row: dict[str, Any]) -> dict[str, Any]:
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


# -- checks --------------------------------------------------------------------------------

def shared_rows(store: NodeStore) -> dict[str, dict[tuple, dict[str, Any]]]:
    """Every projection table (the records sync shares), keyed by primary key."""
    out: dict[str, dict[tuple, dict[str, Any]]] = {}
    for table in PROJECTION_TABLES:
        keys = primary_key(store, table)
        rows = [dict(r) for r in store.query(f"SELECT * FROM {table}")]  # noqa: S608
        out[table] = {tuple(row[k] for k in keys) if keys else tuple(row.values()): row
                      for row in rows}
    return out


def primary_key(store: NodeStore, table: str) -> list[str]:
    info = store.query(f"PRAGMA table_info({table})")
    return [r["name"] for r in sorted(info, key=lambda r: r["pk"]) if r["pk"]]


def reference_store(hub: Hub, path: Path) -> NodeStore:
    """A replica that applied the hub's whole log in global order: the shared records as the
    hub knows them, until the hub has projections of its own."""
    store = NodeStore(path)
    with store.transaction() as tx:
        for row in hub.events():
            tx.receive(row_to_event({**row, "payload": json.dumps(_payload(row))}))
    failures = store.query("SELECT * FROM apply_failures")
    if failures:
        raise AssertionError(f"the hub's log does not apply cleanly: {[dict(r) for r in failures]}")
    return store


def mismatches(node_rows: dict, reference: dict) -> list[str]:
    """Records a node holds that differ from (or are missing in) the reference."""
    out = []
    for table, rows in node_rows.items():
        for key, row in rows.items():
            expected = reference.get(table, {}).get(key)
            if expected != row:
                out.append(f"{table}{list(key)}: node {row} != hub {expected}")
    return out


def check_exactly_once(hub: Hub, nodes: list[Node]) -> None:
    """Every event of every node is at the hub once, and every node holds exactly its own
    events plus what the hub serves it (its scope), once each."""
    held = Counter(row["id"] for row in hub.events())
    doubled = [i for i, n in held.items() if n > 1]
    if doubled:
        raise AssertionError(f"events stored twice at the hub: {doubled}")
    for node in nodes:
        own = node.own_ids()
        at_hub = [r["id"] for r in hub.events(node.node_id)]
        if own != at_hub:
            raise AssertionError(f"{node.role.name}: hub holds {len(at_hub)} of its events, "
                                 f"node has {len(own)}; missing {set(own) - set(at_hub)}, "
                                 f"extra {set(at_hub) - set(own)}")
        foreign = node.foreign_ids()
        if len(foreign) != len(set(foreign)):
            raise AssertionError(f"{node.role.name} holds an event twice")
        expected = hub.scope_ids(node.role.identity)
        if set(foreign) != expected:
            raise AssertionError(f"{node.role.name}: missing {expected - set(foreign)}, "
                                 f"out of scope {set(foreign) - expected}")


def check_same_records(reference: NodeStore, nodes: list[Node]) -> None:
    ref = shared_rows(reference)
    for node in nodes:
        failures = node.store.query("SELECT * FROM apply_failures")
        if failures:
            raise AssertionError(f"{node.role.name} could not apply: "
                                 f"{[dict(r) for r in failures]}")
        diff = mismatches(shared_rows(node.store), ref)
        if diff:
            raise AssertionError(f"{node.role.name} disagrees with the hub on "
                                 f"{len(diff)} record(s):\n" + "\n".join(diff[:20]))


def check_synced(hub: Hub, node: Node) -> dict[str, Any]:
    """The node says synced, and it is: the hub acknowledged its head, its cursor is at the
    hub's head and it holds nothing the hub has not."""
    status = node.status()
    head = hub.feed_head()
    acked = (hub.node_row(node.node_id) or {}).get("acked_seq", 0)
    truth = {"online": True, "pending": 0, "cursor": head, "hub_acked": node.head_seq()}
    said = {"online": status["online"], "pending": status["pending"],
            "cursor": status["cursor"], "hub_acked": acked}
    if not status["synced"] or said != truth or status["offline_since"] is not None:
        raise AssertionError(f"{node.role.name} status {status}; expected {truth}")
    return status


def hub_snapshot_function():
    """central_hub.composition.snapshot once it exists, else None."""
    if importlib.util.find_spec("central_hub.composition") is None:
        return None
    return getattr(importlib.import_module("central_hub.composition"), "snapshot", None)


def hub_projections_available() -> bool:
    return hub_snapshot_function() is not None


def check_hub_snapshot(hub: Hub, nodes: list[Node]) -> None:
    """The hub's own projections (central_hub.composition.snapshot) against each node.

    ``snapshot(storage)`` gives {node table: rows}; ``snapshot(storage, facility_id)`` the
    records of one facility. Every record a node holds must be at the hub, and every record
    the hub gives the node's facility must be at the node, found by the node table's primary
    key and equal in every column both sides have.
    """
    snapshot = hub_snapshot_function()
    if snapshot is None:
        pytest.skip("central_hub.projections has no snapshot() yet")
    everything = snapshot(hub.storage)
    diffs = []
    for node in nodes:
        held = shared_rows(node.store)
        for table, rows in held.items():
            if rows and table in everything:
                theirs = _by_key(node.store, table, everything[table])
                diffs += [f"{node.role.name} {table}{list(k)}: node {row} != hub {theirs.get(k)}"
                          for k, row in rows.items() if not _agree(row, theirs.get(k))]
        for table, rows in snapshot(hub.storage, node.facility_id).items():
            if table in held:
                mine = _by_key(node.store, table, rows)
                diffs += [f"{node.role.name} lacks {table}{list(k)}: hub {row} != node "
                          f"{held[table].get(k)}"
                          for k, row in mine.items() if not _agree(row, held[table].get(k))]
    if diffs:
        raise AssertionError(f"hub projections differ ({len(diffs)}):\n" + "\n".join(diffs[:20]))


def _by_key(store: NodeStore, table: str, rows) -> dict[tuple, dict[str, Any]]:
    keys = primary_key(store, table)
    rows = rows.values() if isinstance(rows, dict) else rows
    return {tuple(dict(r).get(k) for k in keys): dict(r) for r in rows}


def _agree(row: dict[str, Any], other: dict[str, Any] | None) -> bool:
    return other is not None and all(row[c] == other[c] for c in set(row) & set(other))


def conflict_signature(payload: dict[str, Any]) -> tuple[str, str, frozenset[str]]:
    """What a conflict is about, whoever raised it when: kind, subject, events involved."""
    event_ids = payload.get("event_ids") or payload["details"]["event_ids"]
    return payload["kind"], payload["subject_id"], frozenset(event_ids)


# -- what people do at the nodes -----------------------------------------------------------

AMOXICILLIN = {"inn": "amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 20,
               "dosage": "1 kapsula kuniga 3 mahal, 7 kun"}


def free_slot(node: Node, *, hours_ahead: int = 2, index: int = 0) -> tuple[str, str]:
    """(practitioner, start) of a free future slot of the node's doctors."""
    after = to_instant(datetime.now(UTC) + timedelta(hours=hours_ahead))
    rows = node.store.query(
        "SELECT s.practitioner_id, s.starts_at FROM slots s WHERE s.starts_at > ? AND NOT "
        "EXISTS (SELECT 1 FROM appointments a WHERE a.practitioner_id = s.practitioner_id AND "
        "a.starts_at = s.starts_at AND a.status IN ('booked', 'checked_in', 'completed', "
        "'no_show')) ORDER BY s.starts_at, s.practitioner_id", (after,))
    row = rows[index % len(rows)]
    return row["practitioner_id"], row["starts_at"]


def next_second() -> None:
    """Instants are kept to the second: let the next event fall in a later second, so
    "before" and "after" hold by every clock the hub may compare (HLC or instants)."""
    time.sleep(1.02 - time.time() % 1)


def pack_expiry() -> str:
    return (date.today() + timedelta(days=365)).isoformat()


def add_backlog(node: Node, count: int) -> None:
    """`count` patients registered in one transaction: a clinic that worked through a long
    outage (the services would commit, and fsync, each one)."""
    born = date(1980, 5, 17)
    with node.store.transaction() as tx:
        for i in range(count):
            patient_id = new_ulid()
            tx.append("PatientRegistered", {
                "patient_id": patient_id, "med_id": "MED-" + patient_id[-10:],
                "full_name": f"Bemor {i:05d}", "birth_date": born.isoformat(), "sex": "female",
                "phone": "+998901234567", "facility_id": node.facility_id,
                "pinfl": make_pinfl(born, "female", f"{500 + i // 999:03d}",
                                    f"{1 + i % 999:03d}")})


def add_doctors(node: Node, count: int) -> None:
    """`count` doctors registered at the node's facility: region-wide registry events that
    every node of the region pulls."""
    with node.store.transaction() as tx:
        for i in range(count):
            tx.append("PractitionerRegistered", {
                "practitioner_id": new_ulid(), "facility_id": node.facility_id,
                "full_name": f"Shifokor {i:05d}", "specialty": "therapy",
                "is_family_doctor": False})


# -- services as processes (for SIGKILL) ---------------------------------------------------

def cli(name: str, module: str) -> list[str]:
    """The console script installed beside this interpreter (dmed-hub, dmed-node)."""
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


class Process:
    """A service in a process of its own, so a test can SIGKILL it at a chosen moment.

    Output goes to a log file (a full pipe would block the service). stop() and kill()
    only ever signal the process this object started.
    """

    def __init__(self, args: list[str], *, ready_url: str, directory: Path,
                 env: dict[str, str] | None = None) -> None:
        self.args, self.ready_url, self.directory = args, ready_url, directory
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DMED_")}
        self.env.update(env or {})
        self.popen: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 30.0) -> Process:
        self.starts += 1
        log_file = self.directory / f"{Path(self.args[0]).name}-{self.starts}.log"
        with open(log_file, "wb") as out:
            self.popen = subprocess.Popen(self.args, cwd=self.directory, env=self.env,
                                          stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.args} exited: {log_file.read_text()[-2000:]}")
            try:
                if requests.get(self.ready_url, timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.args} not ready in {timeout} s")

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, exactly like a power cut of the process."""
        if self.running:
            os.kill(self.popen.pid, signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.running:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def hub_process(db_url: str, directory: Path, port: int, *,
                crash_after_events: int | None = None, crash_in: str = "store") -> Process:
    """`dmed-hub serve`, or with `crash_after_events` this module's crashing hub (crashing
    in the transaction that stores a batch, with crash_in="project" in the one that
    projects it, with "projector" in a background projector's step)."""
    if crash_after_events is None:
        args = [*cli("dmed-hub", "central_hub.cli"), "serve", "--db", db_url, "--host", HOST,
                "--port", str(port)]
    else:
        args = [sys.executable, __file__, "crashing-hub", db_url, str(port),
                str(crash_after_events), crash_in]
    return Process(args, ready_url=f"http://{HOST}:{port}/healthz", directory=directory)


def node_process(database: Path, bundle: Path, hub_url: str, directory: Path,
                 port: int) -> Process:
    """`dmed-node serve` configured by DMED_ variables; its agent syncs every second tick."""
    env = {"DMED_DATABASE": str(database), "DMED_HUB_URL": hub_url,
           "DMED_NODE_BUNDLE": str(bundle), "DMED_SECRET_KEY": "sync-harness",
           "DMED_BACKGROUND_JOBS": "1", "DMED_SMS_INTERVAL_SECONDS": "3600"}
    return Process([*cli("dmed-node", "edge_node.cli"), "serve", "--host", HOST, "--port",
                    str(port)], ready_url=f"http://{HOST}:{port}/api/v1/node/status",
                   directory=directory, env=env)


def node_state(database: Path, key: str) -> str | None:
    """One node_state value, read beside a running node process (WAL lets us)."""
    conn = sqlite3.connect(database, timeout=10)
    try:
        row = conn.execute("SELECT value FROM node_state WHERE key = ?", (key,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def wait_until(condition, timeout: float, what: str, interval: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _serve_crashing_hub(db_url: str, port: int, crash_after: int, crash_in: str) -> None:
    """A hub that SIGKILLs its own process once it has taken `crash_after` events, before
    the commit of either the transaction that stores them (crash_in="store": its rows are
    written, not committed) or the one that projects them ("project": they are stored and
    committed, their projections written, not committed). The projecting crash uses only
    the hub's public hook (create_app(on_accepted=...)); the hub's own hooks run first."""
    from waitress import serve

    from central_hub.ingest import Ingestor
    from central_hub.projector import Projector

    accepted = [0]

    def count(events: int) -> None:
        accepted[0] += events
        if accepted[0] >= crash_after:
            os.kill(os.getpid(), signal.SIGKILL)

    hooks, config = [], {"DATABASE": db_url}
    if crash_in == "store":
        store = Ingestor._store

        def storing(self, tx, batch, *args) -> None:  # noqa: ANN001 - the method's own
            store(self, tx, batch, *args)
            count(len(batch.stored))
        Ingestor._store = storing
    else:
        hooks.append(lambda _tx, stored: count(len(stored)))
    if crash_in == "projector":  # the push answers once stored; the projector thread dies
        config["PROJECTOR"] = "background"
    app = create_hub_app(config, on_accepted=hooks)
    ingestor = app.extensions["dmed_hub"].ingestor
    with Projector(ingestor) if ingestor.background else contextlib.nullcontext():
        serve(app, host=HOST, port=port, threads=4)


if __name__ == "__main__":
    if sys.argv[1:2] == ["crashing-hub"]:
        _serve_crashing_hub(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
