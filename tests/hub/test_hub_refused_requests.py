"""Issue 11.4: a request that is not authenticated changes nothing recorded about the node it
names; it is logged and counted apart, with the claimed node and the source address."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from helpers.hub import body_of
from helpers.pki import CLINIC_ID

from provisioning.pki import create_node, create_region, create_root
from sync_protocol.certificates import NodeKind
from sync_protocol.request_signing import MAX_CLOCK_SKEW_SECONDS
from sync_protocol.wire import PULL_PATH

JUNK_CERT = base64.b64encode(b"\x30\x82junk certificate").decode()
JUNK_SIGNATURE = base64.b64encode(b"\x01" * 64).decode()


def node_line(hub_app, node_id):
    listed = body_of(hub_app.test_client().get("/api/v1/nodes"))["nodes"]
    return next(row for row in listed if row["node_id"] == node_id)


@pytest.fixture
def known_clinic(nodes):
    """A clinic the hub knows, in good standing."""
    clinic = nodes["clinic"]
    clinic.register_facility()
    assert clinic.push().status_code == 200
    return clinic


def junk_headers(time="1"):
    return {"X-DMED-Node": CLINIC_ID, "X-DMED-Time": time, "X-DMED-Nonce": "n" * 22,
            "X-DMED-Certificate": JUNK_CERT, "X-DMED-Signature": JUNK_SIGNATURE}


def foreign_ca_headers(clinic, now):
    root = create_root("Impostor Root")
    fake = create_node(create_region(root, "TAS", "Fake"), CLINIC_ID, "TAS-POLY-12",
                       NodeKind.CLINIC)
    return clinic.headers("GET", f"{PULL_PATH}?after=0", b"", cred=fake, now=now)


@pytest.mark.parametrize("attack, code", [
    ("junk certificate, time 1", "malformed_auth"),
    ("foreign CA, clock far behind", "unknown_key"),
    ("foreign CA, clock right", "unknown_key"),
    ("clinic's certificate, another node's key", "bad_signature"),
])
def test_an_unauthenticated_request_leaves_the_node_line_alone(known_clinic, hub_app, world,
                                                               attack, code):
    before = node_line(hub_app, CLINIC_ID)
    now = datetime.now(UTC)
    if attack.startswith("junk"):
        headers = junk_headers()
    elif attack.startswith("foreign"):
        skew = timedelta(days=3650) if "behind" in attack else timedelta(0)
        headers = foreign_ca_headers(known_clinic, now - skew)
    else:
        headers = known_clinic.headers("GET", f"{PULL_PATH}?after=0", b"",
                                       cred=world.pki.pharmacy, node_id=CLINIC_ID)
        headers["X-DMED-Certificate"] = known_clinic.headers(
            "GET", f"{PULL_PATH}?after=0", b"")["X-DMED-Certificate"]
    client = hub_app.test_client()
    for _ in range(3):
        response = client.get(f"{PULL_PATH}?after=0", headers=headers,
                              environ_base={"REMOTE_ADDR": "10.0.0.66"})
        assert response.status_code == 401
        assert body_of(response)["error"]["code"] == code
    after = node_line(hub_app, CLINIC_ID)
    refused = after.pop("refused_requests")
    before.pop("refused_requests")
    assert after == before  # last_error, last_seen, cursors: all as they were
    assert after["last_error_code"] is None
    assert refused["count"] == 3 and refused["codes"] == [code]
    assert refused["sources"] == ["10.0.0.66"]
    items = body_of(hub_app.test_client().get("/api/v1/refused-requests"))["items"]
    assert [(i["claimed_node"], i["source"], i["code"], i["count"]) for i in items] == [
        (CLINIC_ID, "10.0.0.66", code, 3)]


def test_the_real_node_with_a_wrong_clock_sees_it_on_its_line(known_clinic, hub_app):
    late = datetime.now(UTC) - timedelta(seconds=MAX_CLOCK_SKEW_SECONDS + 60)
    response = known_clinic.pull(now=late)
    assert (response.status_code, body_of(response)["error"]["code"]) == (401, "clock_skew")
    line = node_line(hub_app, CLINIC_ID)
    assert (line["last_error_code"], line["error_is_current"]) == ("clock_skew", True)
    assert line["refused_requests"]["codes"] == ["clock_skew"]  # counted as well


def test_refusals_in_the_name_of_unknown_nodes_make_no_node_rows(hub_app):
    client = hub_app.test_client()
    for name in ("ghost-1", "ghost-2"):
        response = client.get(f"{PULL_PATH}?after=0",
                              headers={**junk_headers(), "X-DMED-Node": name})
        assert response.status_code == 401
    listed = body_of(client.get("/api/v1/nodes"))["nodes"]
    assert listed == []
    items = body_of(client.get("/api/v1/refused-requests"))["items"]
    assert sorted(i["claimed_node"] for i in items) == ["ghost-1", "ghost-2"]

