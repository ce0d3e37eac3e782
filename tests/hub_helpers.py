"""Helpers and fixtures for the hub tests: one storage per backend, simulated nodes that
write real event chains, and test clients that sign their requests like a node does.

Use the fixtures from a test module with ``pytest_plugins = ("hub_helpers",)``; the
module also imports helpers from here, so it opts out of assertion rewriting
(PYTEST_DONT_REWRITE), or pytest would warn that it was imported before it could rewrite it.

The PostgreSQL variant runs in a fresh schema of database `test` on 127.0.0.1:5432 and is
skipped when the server is unreachable, unless DMED_REQUIRE_POSTGRES=1 (CI), where it fails.
"""

from __future__ import annotations

import getpass
import gzip
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from pki_helpers import Pki, make_pki

from central_hub.composition import open_storage
from central_hub.storage import Storage
from central_hub.web.app import create_app
from provisioning.pki import Credential, create_node, create_region
from sync_protocol.event_types import latest_version
from sync_protocol.events import GENESIS_HASH, seal
from sync_protocol.hlc import HybridLogicalClock
from sync_protocol.identifiers import make_pinfl, new_ulid
from sync_protocol.request_signing import sign_request
from sync_protocol.timeutil import to_instant
from sync_protocol.trust import NodeKind, TrustList
from sync_protocol.wire import PULL_PATH, PUSH_PATH, PullQuery, encode_body

POSTGRES_HOST = os.environ.get("DMED_TEST_POSTGRES_HOST", "127.0.0.1:5432")
POSTGRES_DB = "test"


def postgres_base_url() -> str | None:
    """A URL of the test database that accepts us (user postgres, else the current user)."""
    for user in ("postgres", getpass.getuser()):
        url = f"postgresql://{user}@{POSTGRES_HOST}/{POSTGRES_DB}"
        try:
            psycopg.connect(url, connect_timeout=3).close()
        except psycopg.Error:
            continue
        return url
    return None


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


@contextmanager
def temporary_schema(base: str, prefix: str) -> Iterator[str]:
    """A database URL naming a fresh PostgreSQL schema, dropped afterwards."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{base}?schema={schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def storage(storage_url) -> Iterator[Storage]:
    store = open_storage(storage_url)
    yield store
    store.close()


@pytest.fixture(scope="session")
def pki() -> Pki:
    return make_pki()


CLINIC2_ID = "tas-clinic-0002"
CLINIC2_FACILITY = "TAS-POLY-40"
SAM_PHARMACY_ID = "sam-pharmacy-0001"
SAM_PHARMACY_FACILITY = "SAM-APT-3"


@dataclass
class World:
    """The shared PKI (root, region TAS with a clinic and a pharmacy) plus a second TAS
    clinic and a pharmacy of region SAM, all under one root."""

    pki: Pki
    clinic2: Credential
    sam_region: Credential
    sam_pharmacy: Credential

    @property
    def trust_list(self) -> TrustList:
        return self.pki.trust_list

    def fresh_trust_list(self) -> TrustList:
        copy = TrustList.from_dict(self.pki.trust_list.to_dict())
        for cert in (self.clinic2.cert, self.sam_region.cert, self.sam_pharmacy.cert):
            copy.add_certificate(cert)
        return copy


@pytest.fixture(scope="session")
def world() -> World:
    pki = make_pki()
    clinic2 = create_node(pki.region, CLINIC2_ID, CLINIC2_FACILITY, NodeKind.CLINIC)
    sam = create_region(pki.root, "SAM", "Samarqand viloyati")
    sam_pharmacy = create_node(sam, SAM_PHARMACY_ID, SAM_PHARMACY_FACILITY, NodeKind.PHARMACY)
    return World(pki, clinic2, sam, sam_pharmacy)


@pytest.fixture
def hub_app(storage, world):
    app = create_app({"TESTING": True}, storage=storage)
    app.extensions["dmed_hub"].trust.import_list(world.fresh_trust_list(), accept_roots=True)
    return app


@pytest.fixture
def nodes(world, hub_app) -> dict[str, SimNode]:
    """A simulated node per credential, each with a signed client of the hub app."""
    creds = {"clinic": world.pki.clinic, "pharmacy": world.pki.pharmacy,
             "clinic2": world.clinic2, "sam_pharmacy": world.sam_pharmacy}
    return {name: SimNode(cred, hub_app.test_client()) for name, cred in creds.items()}


def instant(days: float = 0) -> str:
    return to_instant(datetime.now(UTC) + timedelta(days=days))


def body_of(response) -> Any:
    """The JSON of a test-client response, gunzipped when it came compressed."""
    data = response.get_data()
    if response.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return json.loads(data)


class SimNode:
    """A node's own chain of real, sealed events, and a client that signs like the node."""

    def __init__(self, cred: Credential, client) -> None:
        self.cred = cred
        self.identity = cred.identity
        self.node_id = self.identity.node_id
        self.client = client
        self.log: list[dict[str, Any]] = []
        self.clock = HybridLogicalClock()
        self.facility_id: str | None = None
        self.cursor = 0
        self.received: dict[str, dict[str, Any]] = {}

    # -- writing events ----------------------------------------------------------------------
    def emit(self, event_type: str, payload: dict[str, Any], *, origin: str | None = None,
             seq: int | None = None, prev_hash: str | None = None) -> dict[str, Any]:
        """Seal the next event of this node's chain (or a deliberately wrong one)."""
        head = self.log[-1] if self.log else None
        event = seal(id=new_ulid(), origin=origin or self.node_id,
                     seq=seq if seq is not None else len(self.log) + 1, hlc=self.clock.now(),
                     type=event_type, version=latest_version(event_type), payload=payload,
                     prev_hash=prev_hash or (head["hash"] if head else GENESIS_HASH))
        data = event.to_dict()
        if origin is None and seq is None and prev_hash is None:
            self.log.append(data)
        return data

    def register_facility(self, **changes: Any) -> str:
        identity = self.identity
        self.facility_id = new_ulid()
        payload = {"facility_id": self.facility_id, "code": identity.facility_code,
                   "name": f"Facility {identity.facility_code}", "kind": str(identity.kind),
                   "region": identity.region_code, **changes}
        self.emit("FacilityRegistered", payload)
        return self.facility_id

    def register_practitioner(self) -> str:
        practitioner_id = new_ulid()
        self.emit("PractitionerRegistered", {
            "practitioner_id": practitioner_id, "facility_id": self.facility_id,
            "full_name": "Aliyeva Dilnoza", "specialty": "family_medicine",
            "is_family_doctor": True})
        return practitioner_id

    def register_patient(self, facility_id: str | None = None) -> str:
        patient_id = new_ulid()
        self.emit("PatientRegistered", {
            "patient_id": patient_id, "med_id": f"MED-{patient_id[-8:]}",
            "full_name": "Rahimov Bobur", "birth_date": "1985-03-14", "sex": "male",
            "phone": "+998901234567", "facility_id": facility_id or self.facility_id,
            "pinfl": make_pinfl(date(1985, 3, 14), "male")})
        return patient_id

    def change_patient(self, patient_id: str, field: str, value: str | None) -> None:
        self.emit("PatientFieldChanged", {"patient_id": patient_id, "field": field,
                                          "value": value})

    def book(self, patient_id: str, practitioner_id: str, days: float = 1) -> str:
        appointment_id = new_ulid()
        self.emit("AppointmentBooked", {
            "appointment_id": appointment_id, "patient_id": patient_id,
            "practitioner_id": practitioner_id, "facility_id": self.facility_id,
            "starts_at": instant(days), "channel": "registry"})
        return appointment_id

    def prescribe(self, patient_id: str, practitioner_id: str, *, days_valid: float = 30,
                  facility_id: str | None = None) -> str:
        prescription_id = new_ulid()
        self.emit("PrescriptionIssued", {
            "prescription_id": prescription_id, "number": f"RX-{prescription_id[-6:]}",
            "kind": "e", "patient_id": patient_id, "pinfl": make_pinfl(date(1985, 3, 14), "male"),
            "facility_id": facility_id or self.facility_id, "practitioner_id": practitioner_id,
            "issued_at": instant(min(0, days_valid - 1)),
            "not_before": instant(min(0, days_valid - 1)),
            "expires_at": instant(days_valid), "chronic": False,
            "items": [{"item_no": 1, "inn": "Amoxicillin", "form": "capsule",
                       "strength": "500 mg", "quantity": 20, "repeats": 0,
                       "min_days_between_fills": 0}]})
        return prescription_id

    def cancel_prescription(self, prescription_id: str) -> None:
        self.emit("PrescriptionCancelled", {"prescription_id": prescription_id,
                                            "reason": "allergy"})

    def dispense(self, prescription_id: str, facility_id: str | None = None) -> str:
        dispense_id = new_ulid()
        self.emit("MedicationDispensed", {
            "dispense_id": dispense_id, "prescription_id": prescription_id, "item_no": 1,
            "quantity": 20, "product": "Amoksitsillin 500", "batch": "B-1",
            "expiry": "2028-01-31", "dispensed_at": instant(), "mode": "offline",
            "facility_id": facility_id or self.facility_id})
        return dispense_id

    # -- talking to the hub ------------------------------------------------------------------
    def headers(self, method: str, target: str, body: bytes, *, cred: Credential | None = None,
                node_id: str | None = None, now: datetime | None = None,
                nonce: str | None = None) -> dict[str, str]:
        cred = cred or self.cred
        return sign_request(method, target, body, cred.key, cred.cert, node_id or self.node_id,
                            now or datetime.now(UTC), nonce)

    def push(self, events: list[dict[str, Any]] | None = None, *, compress: bool = False,
             node_id: str | None = None, **sign: Any):
        events = self.log if events is None else events
        body, headers = encode_body({"node_id": node_id or self.node_id, "events": events},
                                    compress=compress)
        headers.update(self.headers("POST", PUSH_PATH, body, **sign))
        return self.client.post(PUSH_PATH, data=body, headers=headers)

    def pull(self, after: int | None = None, limit: int = 1000, max_bytes: int = 512 * 1024,
             **sign: Any):
        query = PullQuery(self.cursor if after is None else after, limit, max_bytes)
        target = f"{PULL_PATH}?{query.to_query_string()}"
        headers = self.headers("GET", target, b"", **sign)
        headers["Accept-Encoding"] = "gzip"
        return self.client.get(target, headers=headers)

    def sync_down(self, limit: int = 1000, max_bytes: int = 512 * 1024) -> list[str]:
        """Pull page after page until the head; remember what came; return the ids."""
        ids = []
        for _ in range(10_000):
            response = self.pull(limit=limit, max_bytes=max_bytes)
            assert response.status_code == 200, body_of(response)
            page = body_of(response)
            for item in page["events"]:
                self.received[item["event"]["id"]] = item["event"]
                ids.append(item["event"]["id"])
            self.cursor = page["next"]
            if not page["more"]:
                assert page["next"] == page["head"]
                return ids
        raise AssertionError("pull never reached the head")
