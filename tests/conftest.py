"""Fixtures that more than one area of tests uses (tests/<area>/conftest.py holds the rest):
a fresh node database per test with its app, client and demo data; the PKI; a hub storage on
each backend with simulated nodes; the sync world's enrolments and seeded node templates; the
compiled translation catalogues. Helpers are plain modules under tests/helpers/, imported as
``from helpers.<module> import ...`` (pyproject's pytest ``pythonpath`` puts tests/ on the
path)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta

import pytest
from helpers.enrolments import Enrolments, NodeTemplates
from helpers.hub import (
    POSTGRES_DB,
    POSTGRES_HOST,
    SimNode,
    World,
    make_world,
    postgres_base_url,
    temporary_schema,
)
from helpers.hub_app import hub_app_for
from helpers.ui import compile_catalogues, first_slot_after

from central_hub.composition import open_storage
from central_hub.storage import Storage
from edge_node.credentials import NodeCredentials
from edge_node.seed import DEMO_PIN, seed_demo
from edge_node.services import staff
from edge_node.services.clock import confirm_clock
from edge_node.store import NodeStore
from edge_node.web import create_app
from sync_protocol.timeutil import from_instant, to_instant, utc_now


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory):
    """Seeding hashes five PINs with argon2: do it once and copy the file for each test."""
    path = tmp_path_factory.mktemp("template") / "node.db"
    node = NodeStore(path)
    node.initialise("node-test-1")
    data = seed_demo(node)
    confirm_clock(node, "init")
    node.reader().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    node.close()
    return path, data


@pytest.fixture
def store(request, tmp_path):
    path = tmp_path / "node.db"
    if "seeded" in request.fixturenames:
        shutil.copyfile(request.getfixturevalue("seeded_template")[0], path)
    node = NodeStore(path)
    if node.state("node_id") is None:
        node.initialise("node-test-1")
    yield node
    node.close()


@pytest.fixture
def seeded(store, seeded_template):
    """The demo polyclinic: facility, 4 doctors with a week of slots, staff, 4 patients."""
    data = dict(seeded_template[1])
    data["doctors"] = [dict(r) for r in store.query(
        "SELECT * FROM practitioners ORDER BY full_name")]
    data["patient_rows"] = [dict(r) for r in store.query("SELECT * FROM patients")]
    return data


@pytest.fixture(scope="session")
def pki():
    """National root, the TAS region, a clinic node and a pharmacy node (helpers.pki)."""
    from helpers.pki import make_pki

    from sync_protocol.timeutil import utc_now
    return make_pki(now=utc_now() - timedelta(days=30))  # enrolled a month ago


@pytest.fixture(scope="session")
def clinic_credentials(pki):
    return NodeCredentials(pki.clinic.key, pki.clinic.cert, tuple(pki.clinic.chain),
                           pki.trust_list)


@pytest.fixture(scope="session")
def pharmacy_credentials(pki):
    return NodeCredentials(pki.pharmacy.key, pki.pharmacy.cert, tuple(pki.pharmacy.chain),
                           pki.trust_list)


@pytest.fixture
def app(store, tmp_path, clinic_credentials):
    app = create_app({"DATABASE": str(tmp_path / "node.db"), "TESTING": True,
                      "SECRET_KEY": "test-secret", "BACKGROUND_JOBS": False}, store=store,
                     credentials=clinic_credentials)
    return app


@pytest.fixture
def client(app):
    """Speaks English unless a test asks otherwise (the node defaults to Uzbek)."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def actor_for(store):
    """The Actor of a seeded staff account, by username."""
    def get(username: str):
        return staff.actor_for_staff(store.one("SELECT * FROM staff WHERE username = ?",
                                               (username,)))
    return get


@pytest.fixture
def auth(client, seeded):
    """Headers with a bearer token for a seeded account, by username."""
    cache: dict[str, dict] = {}

    def headers(username: str) -> dict:
        if username not in cache:
            role = {"doctor2": "doctor"}.get(username, username)
            response = client.post("/api/v1/auth/sign-in",
                                   json={"username": username, "pin": DEMO_PIN[role]})
            assert response.status_code == 200, response.json
            cache[username] = {"Authorization": f"Bearer {response.json['token']}"}
        return cache[username]
    return headers


@pytest.fixture
def pinned(app, store, seeded):
    """Pin the screens' clock an hour before a published slot of the first patient's family
    doctor, so "today" has free slots whatever hour, weekday or holiday the suite runs on.
    Returns {"now", "slot", "doctor_id", "patient"}."""
    patient = seeded["patient_rows"][0]
    demo = next(p for p in seeded["patients"] if p["pinfl"] == patient["pinfl"])
    doctor_id = patient["family_doctor_id"]
    slot = first_slot_after(store, doctor_id, utc_now() + timedelta(hours=1))
    now = from_instant(slot) - timedelta(hours=1)
    app.config["UI_NOW"] = to_instant(now)
    return {"now": now, "slot": slot, "doctor_id": doctor_id,
            "patient": {**patient, "document": demo["document"]}}


@pytest.fixture(scope="session")
def catalogues():
    compile_catalogues()


# -- the hub ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = postgres_base_url()
    if url is None:
        message = f"PostgreSQL is not reachable on {POSTGRES_HOST} (database {POSTGRES_DB})"
        if os.environ.get("DMED_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage_url(request, tmp_path) -> Iterator[str]:
    """A database URL for each backend; PostgreSQL gets a fresh schema, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    with temporary_schema(request.getfixturevalue("postgres_url"), "test") as url:
        yield url


@pytest.fixture
def storage(storage_url) -> Iterator[Storage]:
    store = open_storage(storage_url)
    yield store
    store.close()


@pytest.fixture(scope="session")
def world() -> World:
    """The shared PKI plus a second TAS clinic and a pharmacy of region SAM (helpers.hub)."""
    return make_world()


@pytest.fixture
def hub_app(storage, world, tmp_path):
    """The hub app over `storage`, trusting the world's nodes; FHIR exports go to tmp_path and
    are finished before the storage closes."""
    app = hub_app_for(storage, world, FHIR_EXPORT_DIR=str(tmp_path / "exports"))
    yield app
    app.extensions["dmed_fhir"].wait()


@pytest.fixture
def nodes(world, hub_app) -> dict[str, SimNode]:
    """A simulated node per credential, each with a signed client of the hub app."""
    creds = {"clinic": world.pki.clinic, "pharmacy": world.pki.pharmacy,
             "clinic2": world.clinic2, "sam_pharmacy": world.sam_pharmacy}
    return {name: SimNode(cred, hub_app.test_client()) for name, cred in creds.items()}


# -- the sync world --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sync_pki(tmp_path_factory) -> Enrolments:
    """Root, region TAS, a clinic and a pharmacy (helpers.pki), more nodes on demand."""
    return Enrolments.make(tmp_path_factory.mktemp("sync-pki"))


@pytest.fixture(scope="session")
def node_templates(tmp_path_factory) -> NodeTemplates:
    return NodeTemplates(tmp_path_factory.mktemp("node-templates"))
