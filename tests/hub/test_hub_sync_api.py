"""The hub's HTTP surface: signed requests, bad bodies, bounded concurrency, dashboard."""

import gzip
import threading
from datetime import UTC, datetime, timedelta

import pytest
from helpers.hub import SimNode, body_of, hub_state, post_raw
from helpers.pki import CLINIC_ID, PHARMACY_ID

from central_hub import trust_store
from central_hub.trust_store import TrustStore
from central_hub.web.app import create_app
from provisioning.pki import create_node, create_region, create_root, revoke
from sync_protocol.certificates import NodeKind, kid_of
from sync_protocol.events import Event
from sync_protocol.identifiers import new_ulid
from sync_protocol.request_signing import MAX_CLOCK_SKEW_SECONDS
from sync_protocol.trust_list import TrustList
from sync_protocol.wire import MAX_BODY_BYTES, PUSH_PATH, TRUST_PATH, encode_body


def error_of(response):
    return body_of(response)["error"]


@pytest.fixture
def clinic(nodes):
    node = nodes["clinic"]
    node.register_facility()
    node.register_patient()
    return node


def test_a_gzip_push_is_accepted_and_answered_in_gzip(clinic):
    response = clinic.push(compress=True)
    assert response.status_code == 200
    assert [r["status"] for r in body_of(response)["results"]] == ["accepted"] * 2


@pytest.mark.parametrize("body, headers, status, code", [
    (b'{"node_id": "tas-clinic-0001", "events": [', {}, 400, "bad_json"),
    (b"[]", {}, 400, "bad_field"),
    (b'{"node_id": "tas-clinic-0001"}', {}, 400, "bad_field"),
    (b"\x1f\x8b not really gzip", {"Content-Encoding": "gzip"}, 400, "bad_json"),
    (gzip.compress(b"[" + b" " * (MAX_BODY_BYTES + 10) + b"]"), {"Content-Encoding": "gzip"},
     413, "too_large"),
    (b" " * (MAX_BODY_BYTES + 1), {}, 413, "too_large"),
])
def test_bad_bodies_get_clear_errors_and_change_nothing(clinic, storage, body, headers, status,
                                                        code):
    before = hub_state(storage)
    response = post_raw(clinic, body, headers)
    assert response.status_code == status
    error = error_of(response)
    assert error["code"] == code
    assert error["message"]
    assert hub_state(storage) == before


def test_a_batch_naming_another_node_is_refused(clinic, storage):
    before = hub_state(storage)
    response = clinic.push(node_id=PHARMACY_ID)
    assert (response.status_code, error_of(response)["code"]) == (403, "node_mismatch")
    assert hub_state(storage) == before


def test_unknown_event_types_get_a_clear_answer_per_event(clinic, storage):
    head = clinic.log[-1]
    unknown = Event(id=new_ulid(), origin=CLINIC_ID, seq=3, hlc=str(clinic.clock.now()),
                    type="Teleported", version=1, payload={"to": "Mars"},
                    prev_hash=head["hash"])
    clinic.log.append({**unknown.to_dict(), "hash": unknown.compute_hash()})
    results = body_of(clinic.push())["results"]
    assert [(r["status"], r["code"]) for r in results] == [
        ("accepted", None), ("accepted", None), ("refused", "unknown_event_type")]
    assert "Teleported" in results[2]["reason"]
    state = hub_state(storage)
    assert (state["events"], state["quarantine"]) == (2, 1)


def impostor():
    root = create_root("Impostor Root")
    region = create_region(root, "TAS", "Fake")
    return create_node(region, CLINIC_ID, "TAS-POLY-12", NodeKind.CLINIC)


@pytest.mark.parametrize("case, status, code", [
    ("unknown key", 401, "unknown_key"),
    ("wrong key", 401, "bad_signature"),
    ("clock skew", 401, "clock_skew"),
    ("node id mismatch", 403, "node_mismatch"),
])
def test_untrusted_requests_are_refused_and_change_nothing(clinic, storage, world, case,
                                                           status, code):
    before = hub_state(storage)
    sign = {
        "unknown key": {"cred": impostor()},
        "wrong key": {"cred": world.pki.pharmacy, "node_id": CLINIC_ID},
        "clock skew": {"now": datetime.now(UTC) - timedelta(seconds=MAX_CLOCK_SKEW_SECONDS + 60)},
        "node id mismatch": {"node_id": PHARMACY_ID},
    }[case]
    if case == "wrong key":  # the clinic's certificate, signed with another key
        body, headers = encode_body({"node_id": CLINIC_ID, "events": clinic.log})
        signed = clinic.headers("POST", PUSH_PATH, body, cred=world.pki.pharmacy,
                                node_id=CLINIC_ID)
        signed["X-DMED-Certificate"] = clinic.headers("POST", PUSH_PATH, body)[
            "X-DMED-Certificate"]
        response = clinic.client.post(PUSH_PATH, data=body, headers={**headers, **signed})
    else:
        response = clinic.push(**sign)
    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert hub_state(storage) == before


def test_an_unsigned_request_is_refused(clinic):
    response = clinic.client.post(PUSH_PATH, json={"node_id": CLINIC_ID, "events": []})
    assert response.status_code == 401
    assert error_of(response)["code"] == "malformed_auth"
    assert response.headers["WWW-Authenticate"] == "DMED-SYNC-1"


def test_a_replayed_request_is_refused(clinic, storage):
    body, headers = encode_body({"node_id": CLINIC_ID, "events": clinic.log})
    headers.update(clinic.headers("POST", PUSH_PATH, body))
    assert clinic.client.post(PUSH_PATH, data=body, headers=headers).status_code == 200
    before = hub_state(storage)
    replay = clinic.client.post(PUSH_PATH, data=body, headers=headers)
    assert (replay.status_code, error_of(replay)["code"]) == (401, "replayed")
    assert hub_state(storage) == before


def test_a_revoked_node_is_cut_off_at_its_next_sync(clinic, storage, world, hub_app,
                                                    monkeypatch):
    assert clinic.push().status_code == 200
    # Regional IT revokes the stolen clinic Pi; `dmed-hub trust-import` (another process).
    revoked = TrustList.from_dict(world.trust_list.to_dict())
    revoke(revoked, world.pki.clinic.cert, "device stolen", datetime.now(UTC))
    TrustStore(storage).import_list(revoked)
    monkeypatch.setattr(trust_store, "RELOAD_SECONDS", 0)
    before = hub_state(storage)
    clinic.register_patient()
    for response in (clinic.push(), clinic.pull()):
        assert (response.status_code, error_of(response)["code"]) == (403, "revoked")
    assert hub_state(storage) == before
    nodes = body_of(hub_app.test_client().get("/api/v1/nodes"))["nodes"]
    assert (nodes[0]["last_error_code"], nodes[0]["error_is_current"]) == ("revoked", True)


def test_the_trust_list_is_served_to_signed_nodes_with_learnt_certificates(storage, world):
    app = create_app({"TESTING": True}, storage=storage)
    anchors = TrustList([world.pki.root.cert], [world.pki.region.cert])
    app.extensions["dmed_hub"].trust.import_list(anchors, accept_roots=True)
    clinic = SimNode(world.pki.clinic, app.test_client())
    pharmacy = SimNode(world.pki.pharmacy, app.test_client())
    clinic.register_facility()
    assert clinic.push().status_code == 200
    headers = pharmacy.headers("GET", TRUST_PATH, b"")
    served = TrustList.from_dict(body_of(pharmacy.client.get(TRUST_PATH, headers=headers)))
    assert served.get(kid_of(world.pki.clinic.cert)) == world.pki.clinic.cert  # learnt
    assert served.get(kid_of(world.pki.pharmacy.cert)) == world.pki.pharmacy.cert
    assert pharmacy.client.get(TRUST_PATH).status_code == 401


def test_syncs_beyond_the_limit_are_told_to_retry_later(storage, world):
    entered, release, answers = threading.Event(), threading.Event(), []

    def slow_projection(tx, stored):
        entered.set()
        release.wait(10)

    app = create_app({"TESTING": True, "MAX_CONCURRENT_SYNCS": 1, "RETRY_AFTER_SECONDS": 7},
                     storage=storage, on_accepted=[slow_projection])
    app.extensions["dmed_hub"].trust.import_list(world.trust_list, accept_roots=True)
    clinic = SimNode(world.pki.clinic, app.test_client())
    pharmacy = SimNode(world.pki.pharmacy, app.test_client())
    clinic.register_facility()
    pusher = threading.Thread(target=lambda: answers.append(clinic.push()))
    pusher.start()
    try:
        assert entered.wait(10)
        busy = pharmacy.pull()
        assert (busy.status_code, error_of(busy)["code"]) == (503, "busy")
        assert busy.headers["Retry-After"] == "7"
        assert app.test_client().get("/healthz").status_code == 200  # never gated
    finally:
        release.set()
        pusher.join(10)
    assert answers[0].status_code == 200
    assert pharmacy.pull().status_code == 200  # the slot is free again


def test_the_dashboard_shows_each_nodes_sync_state(nodes, storage, hub_app):
    clinic, clinic2 = nodes["clinic"], nodes["clinic2"]
    clinic2.register_facility()
    assert clinic2.push().status_code == 200
    clinic.register_facility()
    for _ in range(3):
        clinic.register_patient(facility_id=clinic2.facility_id)
    gap = clinic.emit("PatientRegistered", {**clinic.log[-1]["payload"],
                                            "patient_id": new_ulid()}, seq=9)
    clinic.push([*clinic.log, gap])  # seq 9 after 4: refused and quarantined
    client = hub_app.test_client()
    listed = {n["node_id"]: n for n in body_of(client.get("/api/v1/nodes"))["nodes"]}
    assert listed[clinic.node_id]["acked_seq"] == 4
    assert listed[clinic.node_id]["last_error_code"] == "seq_gap"
    assert listed[clinic2.node_id]["pending"] == 4  # the clinic's facility, 3 patients
    assert listed[clinic2.node_id]["last_pull_at"] is None
    clinic2.sync_down()
    nodes["pharmacy"].sync_down()  # a node that has only pulled is listed too
    listed = {n["node_id"]: n for n in body_of(client.get("/api/v1/nodes"))["nodes"]}
    assert listed[PHARMACY_ID]["acked_seq"] == 0
    assert listed[PHARMACY_ID]["last_pull_at"]
    assert listed[clinic2.node_id]["pending"] == 0
    assert listed[clinic2.node_id]["lag_seconds"] is not None
    assert listed[clinic2.node_id]["synced_at"]
    quarantine = body_of(client.get(f"/api/v1/quarantine?node={clinic.node_id}"))["items"]
    assert [(q["code"], q["seq"]) for q in quarantine] == [("seq_gap", 9)]


def test_the_dashboard_needs_its_token_or_loopback(storage, world):
    app = create_app({"TESTING": True, "API_TOKEN": "s3cret"}, storage=storage)
    client = app.test_client()
    assert client.get("/api/v1/nodes").status_code == 401
    ok = client.get("/api/v1/nodes", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    open_app = create_app({"TESTING": True}, storage=storage)
    remote = open_app.test_client().get("/api/v1/quarantine",
                                        environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert (remote.status_code, error_of(remote)["code"]) == (403, "forbidden")


def test_health_and_unknown_routes_answer_in_json(hub_app, storage, nodes):
    nodes["clinic"].register_facility()
    assert nodes["clinic"].push().status_code == 200
    client = hub_app.test_client()
    health = body_of(client.get("/healthz"))
    assert (health["status"], health["database"], health["trust_list"]) == (
        "ok", storage.dialect, True)
    assert health["projected_through"] == health["hub_head"] > 0  # nothing waits
    missing = client.get("/sync/v1/nowhere")
    assert (missing.status_code, error_of(missing)["code"]) == (404, "not_found")
