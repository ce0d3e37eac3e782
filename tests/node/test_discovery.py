"""Issue 16 (d): zeroconf announcements and discovery, on loopback only.

Every Zeroconf here is bound to 127.0.0.1 and the test checks that its multicast goes out
through the loopback interface, so nothing leaves the machine.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from click.testing import CliRunner
from flask import Flask, jsonify
from helpers.pki import make_pki
from werkzeug.serving import make_server

from edge_node import enrolment
from edge_node.announce import announcement_for
from edge_node.cli import main as node_cli
from edge_node.credentials import load_credentials
from edge_node.discovery import (
    TXT_KEYS,
    Announcer,
    NodeBrowser,
    cert_fingerprint,
    choose,
    new_zeroconf,
    verify_peer,
)
from edge_node.web import create_app
from sync_protocol.certificates import NodeIdentity

LOOPBACK = ["127.0.0.1"]
WAIT_SECONDS = 8.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def multicast_interfaces(zc) -> set[str]:
    return {socket.inet_ntoa(t.sock.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, 4))
            for t in zc.engine.senders}


def wait_for(browser, count):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        seen = browser.announcements()
        if len(seen) >= count:
            return seen
        time.sleep(0.1)
    return browser.announcements()


@pytest.fixture
def serve_app():
    servers = []

    def start(app):
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


def test_two_announcers_and_a_browser_on_loopback(pki, tmp_path):
    clinic = load_credentials(pki.paths["clinic_bundle"])
    enrolled = announcement_for(tmp_path / "clinic", clinic, LOOPBACK, 8080)
    waiting_dir = tmp_path / "new"
    pending = enrolment.start(waiting_dir, NodeIdentity("tas-apt-9", "TAS-APT-9", "TAS",
                                                        "pharmacy"))
    unenrolled = announcement_for(waiting_dir, None, LOOPBACK, 8081)
    assert announcement_for(tmp_path / "nothing", None, LOOPBACK, 1) is None
    zcs = [new_zeroconf(LOOPBACK) for _ in range(3)]
    announcers = [Announcer(zcs[0], enrolled), Announcer(zcs[1], unenrolled)]
    try:
        for announcer in announcers:
            announcer.start()
        browser = NodeBrowser(zcs[2])
        seen = {a.name: a for a in wait_for(browser, 2)}
        browser.close()
        for zc in zcs:
            assert multicast_interfaces(zc) == {"127.0.0.1"}
    finally:
        for announcer in announcers:
            announcer.stop()
        for zc in zcs:
            zc.close()
    node = seen[clinic.identity.node_id]
    assert (node.enrolled, node.facility, node.kind, node.address) == (
        True, clinic.identity.facility_code, "clinic", "127.0.0.1:8080")
    assert node.fingerprint == cert_fingerprint(clinic.cert)
    assert node.host == f"{clinic.identity.facility_code.lower()}.local."
    other = seen[unenrolled.name]
    assert other.enrolled is False and other.node_id is None
    assert other.fingerprint == pending.fingerprint.replace(" ", "")  # as the station lists it
    for announcement in (enrolled, unenrolled):
        assert set(announcement.properties()) == set(TXT_KEYS)  # nothing about a patient


def test_choose_by_fingerprint_or_the_only_node(pki, tmp_path):
    clinic = announcement_for(tmp_path, load_credentials(pki.paths["clinic_bundle"]),
                              LOOPBACK, 1)
    pharmacy = announcement_for(tmp_path, load_credentials(pki.paths["pharmacy_bundle"]),
                                LOOPBACK, 2)
    assert choose([clinic, pharmacy], clinic.fingerprint.upper()) == clinic
    assert choose([clinic, pharmacy], "00" * 32) is None
    assert choose([clinic, pharmacy], None) is None  # two nodes: the terminal must be told
    assert choose([pharmacy], None) == pharmacy


def test_a_node_with_a_wrong_certificate_fingerprint_is_not_trusted(pki, tmp_path, serve_app):
    clinic = load_credentials(pki.paths["clinic_bundle"])
    pharmacy = load_credentials(pki.paths["pharmacy_bundle"])
    urls = {}
    for name, credentials in (("clinic", clinic), ("pharmacy", pharmacy)):
        app = create_app({"DATABASE": str(tmp_path / name / "node.db"),
                          "BACKGROUND_JOBS": False, "HUB_URL": ""}, credentials=credentials)
        urls[name] = serve_app(app)
    impostor = Flask("impostor")  # shows the clinic's certificate without its key

    @impostor.get("/api/v1/node/identity")
    def identity():
        from cryptography.hazmat.primitives.serialization import Encoding
        return jsonify(cert=clinic.cert.public_bytes(Encoding.PEM).decode(),
                       signature="30" * 35)

    urls["impostor"] = serve_app(impostor)
    fingerprint = cert_fingerprint(clinic.cert)
    assert verify_peer(urls["clinic"], fingerprint) is True
    assert verify_peer(urls["pharmacy"], fingerprint) is False
    assert verify_peer(urls["impostor"], fingerprint) is False
    assert verify_peer("http://127.0.0.1:9", fingerprint) is False  # nobody there


def test_identity_endpoint_refuses_a_bad_challenge(pki, tmp_path):
    app = create_app({"DATABASE": str(tmp_path / "node.db"), "BACKGROUND_JOBS": False,
                      "HUB_URL": ""}, credentials=load_credentials(pki.paths["clinic_bundle"]))
    response = app.test_client().get("/api/v1/node/identity?challenge=xyz")
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "challenge"


def test_discover_command_lists_what_announces_on_loopback(pki, tmp_path):
    clinic = load_credentials(pki.paths["clinic_bundle"])
    zc = new_zeroconf(LOOPBACK)
    announcer = Announcer(zc, announcement_for(tmp_path, clinic, LOOPBACK, 8080))
    announcer.start()
    try:
        result = CliRunner().invoke(node_cli, ["discover", "--interface", "127.0.0.1",
                                               "--timeout", "3"])
    finally:
        announcer.stop()
        zc.close()
    assert result.exit_code == 0, result.output
    assert clinic.identity.node_id in result.output
    assert "http://127.0.0.1:8080  enrolled" in result.output


def test_a_terminal_given_only_the_fingerprint_finds_its_node(pki, tmp_path, serve_app):
    clinic = load_credentials(pki.paths["clinic_bundle"])
    app = create_app({"DATABASE": str(tmp_path / "node.db"), "BACKGROUND_JOBS": False,
                      "HUB_URL": ""}, credentials=clinic)
    url = serve_app(app)
    port = int(url.rsplit(":", 1)[1])
    zc = new_zeroconf(LOOPBACK)
    announcer = Announcer(zc, announcement_for(tmp_path, clinic, LOOPBACK, port))
    announcer.start()
    try:
        runner = CliRunner()
        found = runner.invoke(node_cli, ["discover", "--interface", "127.0.0.1", "--timeout",
                                         "2", "--fingerprint", cert_fingerprint(clinic.cert)])
        wrong = runner.invoke(node_cli, ["discover", "--interface", "127.0.0.1", "--timeout",
                                         "2", "--fingerprint", "ab" * 32])
        alone = runner.invoke(node_cli, ["discover", "--interface", "127.0.0.1", "--timeout",
                                         "2", "--only"])
    finally:
        announcer.stop()
        zc.close()
    assert found.exit_code == 0, found.output
    assert found.output.strip() == f"http://127.0.0.1:{port}"
    assert wrong.exit_code == 1 and "enter its address by hand" in wrong.output
    assert alone.exit_code == 0 and alone.output.strip() == f"http://127.0.0.1:{port}"


def test_only_refuses_when_two_nodes_announce(pki, tmp_path):
    zcs = [new_zeroconf(LOOPBACK) for _ in range(2)]
    announcers = [Announcer(zc, announcement_for(tmp_path, load_credentials(pki.paths[b]),
                                                 LOOPBACK, port))
                  for zc, b, port in zip(zcs, ("clinic_bundle", "pharmacy_bundle"),
                                         (8080, 8081), strict=True)]
    for announcer in announcers:
        announcer.start()
    try:
        result = CliRunner().invoke(node_cli, ["discover", "--interface", "127.0.0.1",
                                               "--timeout", "2", "--only"])
    finally:
        for announcer, zc in zip(announcers, zcs, strict=True):
            announcer.stop()
            zc.close()
    assert result.exit_code == 1 and "Not exactly one node" in result.output
