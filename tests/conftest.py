"""Shared fixtures: a fresh node database per test, the app, its client, demo data."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from edge_node.credentials import NodeCredentials
from edge_node.seed import DEMO_PIN, seed_demo
from edge_node.services import staff
from edge_node.services.clock import confirm_clock
from edge_node.store import NodeStore
from edge_node.web import create_app


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
    """National root, the TAS region, a clinic node and a pharmacy node (tests/pki_helpers)."""
    from pki_helpers import make_pki

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


def future_slot(store, practitioner_id: str, days_ahead: int = 1, index: int = 0) -> str:
    """A free slot of a doctor at least ``days_ahead`` days from now."""
    from sync_protocol.timeutil import to_instant, utc_now
    rows = store.query("SELECT starts_at FROM slots WHERE practitioner_id = ? AND starts_at > ?"
                       " ORDER BY starts_at", (practitioner_id,
                                               to_instant(utc_now() + timedelta(days=days_ahead))))
    return rows[index]["starts_at"]
