"""A hub, a clinic node and a pharmacy node as real HTTP servers on 127.0.0.1, for the paper
and remote-prescription scenarios.

    def test_x(network):                  # the fixture is in tests/sync/conftest.py
        network.clinic.post("/api/v1/...", json=..., as_="doctor")
        network.clinic.sync()             # the node's own SyncAgent.run_once()
        network.clinic.go_offline()       # its hub URL now names a closed port

The hub runs on SQLite with the paper and call-centre parts (wired in by create_app).
Nodes are seeded with their certificate's facility code (the hub
refuses a FacilityRegistered that does not match), once per session, and copied per test.

The module opts out of assertion rewriting (PYTEST_DONT_REWRITE); its checks raise
AssertionError with their own messages.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import requests
from werkzeug.serving import make_server

from central_hub.storage import Storage
from edge_node.seed import DEMO_PIN
from edge_node.store import NodeStore
from helpers.servers import HOST, free_port

TIMEOUT_SECONDS = 10
POLL_SECONDS = 0.05  # how often a server thread checks for shutdown (teardown waits this)


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


