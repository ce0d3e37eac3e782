"""Claims with real processes on loopback (issue 13, must hold):

- 20 concurrent online dispense attempts of the same full prescription from 4 pharmacy nodes
  (`dmed-node serve` each, against `dmed-hub serve`): exactly one is granted, the others are
  refused with where and when, and no over-dispensing conflict arises;
- a hub SIGKILLed between granting a claim and receiving the dispense keeps the claim after
  restart until the dispense arrives (expiry itself: tests/test_hub_claims.py).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import requests
from helpers.enrolments import CLINIC, PHARMACY, PHARMACY2, Role
from helpers.node import AMOXICILLIN
from helpers.processes import Process, cli, hub_process, node_state, wait_until
from helpers.servers import HOST, free_port
from helpers.sync_world import Hub, Node

from central_hub.composition import open_storage
from central_hub.ingest import projected_through
from edge_node.services import dispensing, online_dispense, prescribing
from sync_protocol.certificates import NodeKind
from sync_protocol.claims import HUB_ORIGIN, ClaimRequest

PHARMACY3 = Role("pharmacy3", "tas-pharmacy-0003", "TAS-APT-13", NodeKind.PHARMACY)
PHARMACY4 = Role("pharmacy4", "tas-pharmacy-0004", "TAS-APT-14", NodeKind.PHARMACY)
ATTEMPTS_PER_NODE = 5  # 4 nodes: 20 attempts
PACK = {"product": "Amoksil", "batch": "B2311", "expiry": "2031-01-31"}
START_SECONDS = 60  # two cores shared by a whole suite: processes start slowly under load


def pharmacy_process(role: Role, directory: Path, sync_pki, templates, hub_url: str):
    database = templates.copy(role, directory / role.name / "node.db")
    port = free_port()
    env = {"DMED_DATABASE": str(database), "DMED_HUB_URL": hub_url,
           "DMED_NODE_BUNDLE": str(sync_pki.bundle(role)), "DMED_SECRET_KEY": "claims",
           "DMED_BACKGROUND_JOBS": "1", "DMED_SMS_INTERVAL_SECONDS": "3600"}
    process = Process([*cli("dmed-node", "edge_node.cli"), "serve", "--host", HOST, "--port",
                       str(port), "--workers", "1"],
                      ready_url=f"http://{HOST}:{port}/api/v1/node/status",
                      directory=database.parent, env=env)
    return process, database, f"http://{HOST}:{port}"


@pytest.fixture
def hub(tmp_path, sync_pki):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    Hub(url, sync_pki.trust_list(), serve=False).close()  # dmed-hub init, in effect
    process = hub_process(url, tmp_path, free_port()).start(START_SECONDS)
    process.url = f"http://{HOST}:{process.args[-1]}"
    process.db_url = url
    yield process
    process.stop()


def issue(tmp_path, sync_pki, templates, hub_url) -> dict:
    clinic = Node.start(CLINIC, tmp_path, sync_pki, templates, hub_url, web=False)
    try:
        patient = clinic.store.one("SELECT patient_id FROM patients ORDER BY pinfl")
        rx = prescribing.issue_prescription(clinic.store, clinic.actor("doctor"),
                                            clinic.credentials,
                                            patient_id=patient["patient_id"],
                                            items=[AMOXICILLIN])
        assert clinic.sync()["ok"]
    finally:
        clinic.close()
    return rx


def sign_in(url: str) -> requests.Session:
    session = requests.Session()
    response = session.post(f"{url}/api/v1/auth/sign-in",
                            json={"username": "pharmacist", "pin": "3333"}, timeout=10)
    response.raise_for_status()
    session.headers["Authorization"] = f"Bearer {response.json()['token']}"
    return session


def hub_rows(db_url: str, sql: str) -> list[dict]:
    storage = open_storage(db_url, migrate=False)
    try:
        with storage.reader() as tx:
            return tx.query(sql)
    finally:
        storage.close()


def test_twenty_concurrent_attempts_from_four_pharmacies_grant_exactly_one(
        tmp_path, sync_pki, node_templates, hub):
    rx = issue(tmp_path, sync_pki, node_templates, hub.url)
    nodes = [pharmacy_process(role, tmp_path, sync_pki, node_templates, hub.url)
             for role in (PHARMACY, PHARMACY2, PHARMACY3, PHARMACY4)]
    try:
        for process, _db, _url in nodes:
            process.start(START_SECONDS)
        wait_until(lambda: all(node_state(db, "sync_last_success_at") for _p, db, _u in nodes),
                   START_SECONDS, "every pharmacy's first sync", interval=0.1)
        sessions = [sign_in(url) for _p, _db, url in nodes]
        for session, (_p, _db, url) in zip(sessions, nodes, strict=True):
            verdict = session.post(f"{url}/api/v1/pharmacy/verify", json={"code": rx["qr"]},
                                   timeout=10).json()
            assert verdict["verdict"] == "valid", verdict
        barrier = threading.Barrier(len(nodes) * ATTEMPTS_PER_NODE)
        answers: list[tuple[int, dict]] = []

        def attempt(session: requests.Session, url: str) -> None:
            barrier.wait()
            response = session.post(f"{url}/api/v1/pharmacy/dispense", json={
                "prescription_id": rx["prescription_id"], "item_no": 1, "quantity": 20,
                "code": rx["qr"], **PACK}, timeout=30)
            answers.append((response.status_code, response.json()))

        threads = [threading.Thread(target=attempt, args=(session, url))
                   for session, (_p, _db, url) in zip(sessions, nodes, strict=True)
                   for _ in range(ATTEMPTS_PER_NODE)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        granted = [body for status, body in answers if status == 201]
        refused = [body["error"] for status, body in answers if status == 409]
        assert len(answers) == 20
        assert len(granted) == 1 and granted[0]["mode"] == "online_claimed", answers
        assert len(refused) == 19, answers
        # Refused by the hub, or, at the winning node once its own dispense is recorded, by
        # the node itself before asking: either way with where and when.
        assert {r["code"] for r in refused} <= {"claim_refused", "already_dispensed"}
        # where (the winner's pharmacy) and when, in words
        assert all("7-son dorixona" in r["message"] and re.search(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["message"]) for r in refused), refused
        for session, (_p, _db, url) in zip(sessions, nodes, strict=True):
            assert session.post(f"{url}/api/v1/sync/run", timeout=60).json()["ok"]
        own = [r for r in hub_rows(hub.db_url, "SELECT * FROM events WHERE type = "
                                   "'MedicationDispensed'")]
        claims = hub_rows(hub.db_url, "SELECT * FROM hub_claims")
        assert len(own) == 1 and len(claims) == 1
        assert claims[0]["claim_id"] == granted[0]["claim_id"]

        def projected() -> bool:
            storage = open_storage(hub.db_url, migrate=False)
            try:
                with storage.reader() as tx:
                    head = tx.scalar("SELECT MAX(position) FROM events WHERE origin <> ?",
                                     (HUB_ORIGIN,))
                    return projected_through(tx) >= head
            finally:
                storage.close()
        wait_until(projected, 30, "the hub's projections", interval=0.1)
        assert hub_rows(hub.db_url, "SELECT * FROM events WHERE type = 'ConflictRaised'") == []
    finally:
        for process, _db, _url in nodes:
            process.stop()


def test_a_hub_killed_after_granting_keeps_the_claim_until_the_dispense_arrives(
        tmp_path, sync_pki, node_templates, hub):
    rx = issue(tmp_path, sync_pki, node_templates, hub.url)
    one, two = (Node.start(role, tmp_path, sync_pki, node_templates, hub.url)
                for role in (PHARMACY, PHARMACY2))
    try:
        assert one.sync()["ok"] and two.sync()["ok"]
        granted = one.client.claim(ClaimRequest(rx["prescription_id"], one.facility_id,
                                                ((1, 20),), rx["qr"]))
        assert granted["granted"]
        hub.kill()  # SIGKILL: granted, and the dispense not yet received
        hub.start(START_SECONDS)
        with pytest.raises(online_dispense.ClaimRefused) as refused:
            online_dispense.dispense_with_hub(
                two.store, two.actor("pharmacist"), two.client, config=two.app.config,
                prescription_id=rx["prescription_id"], item_no=1, quantity=20,
                code=rx["qr"], **PACK)
        assert [c["claim_id"] for c in refused.value.answer["claims"]] == \
            [granted["claim_id"]]
        dispensing.record_scan(one.store, one.actor("pharmacist"), one.credentials.trust_list,
                              rx["qr"])  # the pharmacist's scan: the code is now known here
        dispensing.dispense(one.store, one.actor("pharmacist"), facility_id=one.facility_id,
                            prescription_id=rx["prescription_id"], item_no=1, quantity=20,
                            claim_id=granted["claim_id"], **PACK)
        assert one.sync()["ok"]
        status = two.client.claim_status(rx["prescription_id"])
        assert status["claims"] == []  # consumed by the dispense that names it
        assert [(d["facility_id"], d["quantity"], d["mode"]) for d in status["dispensed"]] \
            == [(one.facility_id, 20, "online_claimed")]
    finally:
        one.close()
        two.close()
