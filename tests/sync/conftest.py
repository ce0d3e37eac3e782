"""Fixtures of the sync tests: the paper world (a hub, a clinic and a pharmacy as real HTTP
servers on loopback, helpers.paper_world). The sync harness's fixtures (`sync_pki`,
`node_templates`) are in tests/conftest.py: node, hub and screen tests use them too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers.paper_world import Network, Node, Server
from helpers.pki import CLINIC_FACILITY, CLINIC_ID, PHARMACY_FACILITY, PHARMACY_ID

from central_hub.composition import open_storage
from central_hub.web.app import create_app as create_hub_app
from edge_node.seed import seed_demo, seed_pharmacy
from edge_node.services.clock import confirm_clock
from edge_node.store import NodeStore
from edge_node.web import create_app as create_node_app


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
