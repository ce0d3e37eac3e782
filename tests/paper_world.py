"""A hub, a clinic node and a pharmacy node as real HTTP servers on 127.0.0.1, for the paper
and remote-prescription scenarios.

    pytest_plugins = ("paper_world",)
    def test_x(network):
        network.clinic.post("/api/v1/...", json=..., as_="doctor")
        network.clinic.sync()             # the node's own SyncAgent.run_once()
        network.clinic.go_offline()       # its hub URL now names a closed port

The hub runs on SQLite with the paper and call-centre parts (wired in by create_app).
Nodes are seeded with their certificate's facility code (the hub
refuses a FacilityRegistered that does not match), once per session, and copied per test.

Imported by test modules and used as their plugin, so it opts out of assertion rewriting
(PYTEST_DONT_REWRITE); its checks raise AssertionError with their own messages.
"""

from __future__ import annotations

import shutil
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from pki_helpers import CLINIC_FACILITY, CLINIC_ID, PHARMACY_FACILITY, PHARMACY_ID
from werkzeug.serving import make_server

from central_hub.composition import open_storage
from central_hub.storage import Storage
from central_hub.web.app import create_app as create_hub_app
from edge_node.seed import DEMO_PIN, seed_demo, seed_pharmacy
from edge_node.services.clock import confirm_clock
from edge_node.store import NodeStore
from edge_node.web import create_app as create_node_app

HOST = "127.0.0.1"
TIMEOUT_SECONDS = 10
POLL_SECONDS = 0.05  # how often a server thread checks for shutdown (teardown waits this)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Server:
    """A WSGI app served by werkzeug on a free loopback port, in a daemon thread."""

    def __init__(self, app) -> None:
        self.server = make_server(HOST, 0, app, threaded=True)
        self.url = f"http://{HOST}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(POLL_SECONDS,),
                                       daemon=True, name=f"test-server-{self.server.server_port}")
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=TIMEOUT_SECONDS)


@dataclass
class Node:
    name: str
    store: NodeStore
    app: Any
    server: Server
    hub_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def facility_id(self) -> str:
        return self.store.state("facility_id") or ""

    @property
    def agent(self):
        return self.app.extensions["dmed_sync_agent"]

    def sync(self) -> dict:
        report = self.agent.run_once()
        if self.agent.client.base_url == self.hub_url:
            assert report["ok"], f"{self.name} sync failed: {report}"
        return report

    def go_offline(self) -> None:
        self.agent.client.base_url = f"http://{HOST}:{free_port()}"  # nothing listens there

    def go_online(self) -> None:
        self.agent.client.base_url = self.hub_url

    def request(self, method: str, path: str, *, as_: str, expect: int = 200,
                **kwargs: Any) -> Any:
        if as_ not in self.tokens:
            response = requests.post(f"{self.server.url}/api/v1/auth/sign-in",
                                     json={"username": as_, "pin": DEMO_PIN[as_]},
                                     timeout=TIMEOUT_SECONDS)
            assert response.status_code == 200, response.text
            self.tokens[as_] = response.json()["token"]
        response = requests.request(method, self.server.url + path, timeout=TIMEOUT_SECONDS,
                                    headers={"Authorization": f"Bearer {self.tokens[as_]}",
                                             "Accept-Language": "en"}, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} " \
                                               f"{response.text}"
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def own_events(self) -> list[str]:
        return [r["id"] for r in self.store.query(
            "SELECT id FROM events WHERE origin = ? ORDER BY seq", (self.store.node_id,))]


@dataclass
class Network:
    hub_storage: Storage
    hub: Server
    clinic: Node
    pharmacy: Node

    def hub_get(self, path: str, expect: int = 200) -> Any:
        response = requests.get(self.hub.url + path, timeout=TIMEOUT_SECONDS)
        assert response.status_code == expect, response.text
        return response.json()

    def hub_post(self, path: str, body: dict, expect: int = 201) -> Any:
        response = requests.post(self.hub.url + path, json=body, timeout=TIMEOUT_SECONDS)
        assert response.status_code == expect, response.text
        return response.json()


@pytest.fixture(scope="session")
def paper_templates(tmp_path_factory) -> dict[str, Path]:
    """Seeded node databases (seeding hashes PINs with argon2: once per session)."""
    directory = tmp_path_factory.mktemp("paper-templates")
    out = {}
    for name, node_id, code in (("clinic", CLINIC_ID, CLINIC_FACILITY),
                                ("pharmacy", PHARMACY_ID, PHARMACY_FACILITY)):
        store = NodeStore(directory / f"{name}.db")
        store.initialise(node_id)
        if name == "clinic":
            seed_demo(store, code=code, pharmacist=False)
        else:
            seed_pharmacy(store, code=code)
        confirm_clock(store, "init")
        store.reader().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        out[name] = directory / f"{name}.db"
    return out


@pytest.fixture
def network(tmp_path, pki, clinic_credentials, pharmacy_credentials, paper_templates):
    storage = open_storage(f"sqlite:///{tmp_path / 'hub.db'}")
    hub_app = create_hub_app({"TESTING": True}, storage=storage)
    hub_app.extensions["dmed_hub"].trust.import_list(pki.trust_list, accept_roots=True)
    hub = Server(hub_app)
    nodes = {}
    for name, credentials in (("clinic", clinic_credentials),
                              ("pharmacy", pharmacy_credentials)):
        path = tmp_path / f"{name}.db"
        shutil.copyfile(paper_templates[name], path)
        store = NodeStore(path)
        app = create_node_app({"DATABASE": str(path), "TESTING": True,
                               "SECRET_KEY": f"{name}-secret", "BACKGROUND_JOBS": False,
                               "HUB_URL": hub.url}, store=store, credentials=credentials)
        nodes[name] = Node(name, store, app, Server(app), hub.url)
    yield Network(storage, hub, nodes["clinic"], nodes["pharmacy"])
    for node in nodes.values():
        node.server.stop()
        node.store.close()
    hub.stop()
    storage.close()
