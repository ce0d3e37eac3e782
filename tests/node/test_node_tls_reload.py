"""Issue 16: a renewed certificate takes effect without a restart and without downtime. The
HTTPS server hands the new TLS certificate to the next connection while a request in flight
and a kept-alive connection finish on the old one; server workers that did not renew
themselves re-read the node's credentials before their next request."""

from __future__ import annotations

import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edge_node import enrolment
from edge_node.credentials import load_credentials
from edge_node.enrolment import TLS_CERT_FILE, TLS_KEY_FILE
from edge_node.renewal import REQUESTED, Renewal, follow_renewals
from edge_node.web import create_app
from provisioning import CaStore
from provisioning.enrolment_desk import EnrolmentDesk
from provisioning.facilities import add_facility
from sync_protocol.certificates import NodeIdentity
from sync_protocol.tls_serving import secure_transport, tls_server

IDENTITY = NodeIdentity("tas-apt-007-a", "TAS-APT-007", "TAS", "pharmacy")
FACILITY = "TAS-APT-007"


@pytest.fixture
def region(tmp_path):
    store = CaStore(tmp_path / "ca")
    long_ago = datetime.now(UTC) - timedelta(days=800)
    store.init_root("DMED National Root", now=long_ago)
    store.add_region("TAS", "Toshkent shahri", now=long_ago)
    add_facility(store, code=FACILITY, kind="pharmacy", region="TAS",
                 names={"uz": "Dorixona", "ru": "Аптека", "en": "Pharmacy"},
                 address="Qatortol 3", district="Chilonzor")
    root = tmp_path / "root.pem"
    root.write_bytes(store.root().cert.public_bytes(Encoding.PEM))
    return EnrolmentDesk(store), root


def enrolled(desk, data_dir):
    """A node whose TLS certificate (397 days) has 17 days left: due for renewal."""
    when = datetime.now(UTC) - timedelta(days=380)
    pending = enrolment.start(data_dir, IDENTITY, now=when, lan_ips=["127.0.0.1"])
    desk.receive(pending.request, "127.0.0.1", now=when)
    enrolment.install_answer(data_dir, desk.approve(
        pending.request_id, code=pending.code, facility_code=FACILITY, actor="op", now=when),
        now=when)
    return data_dir


def test_renewal_is_due_when_the_tls_certificate_nears_its_end(region, tmp_path):
    desk, _root = region
    data_dir = enrolled(desk, tmp_path / "node")
    current = load_credentials(data_dir / "enrolment")
    assert (current.cert.not_valid_after_utc - datetime.now(UTC)).days > 300  # node: fine
    asked = []

    class Station:  # records the request instead of sending it
        def post(self, url, json, timeout, verify):
            asked.append((url, json["request_id"], verify))
            return type("Answer", (), {"status_code": 202, "text": ""})()

    renewal = Renewal(data_dir, "https://provision.local:8443", print, session=Station())
    assert renewal.run_once() == REQUESTED
    [(url, _request_id, verify)] = asked
    assert url == "https://provision.local:8443/enrol/requests"
    # The station is checked against the national root of the node's trust list only.
    assert Path(verify).read_bytes() == region[1].read_bytes()


def renew(desk, data_dir):
    """What edge_node.renewal does, with the operator's approval in between."""
    pending = enrolment.start_renewal(data_dir, lan_ips=["127.0.0.1"])
    desk.receive(pending.request, "127.0.0.1")
    enrolment.install_answer(data_dir, desk.approve(
        pending.request_id, code=pending.code, facility_code=FACILITY, actor="op"))


def served_serial(port, root):
    """The serial of the certificate a new TLS connection is given."""
    context = ssl.create_default_context(cafile=str(root))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def serial_on_disk(data_dir):
    pem = (data_dir / "enrolment" / TLS_CERT_FILE).read_bytes()
    return x509.load_pem_x509_certificates(pem)[0].serial_number


def test_renewal_reaches_new_connections_and_drops_nothing_in_flight(region, tmp_path):
    desk, root = region
    data_dir = enrolled(desk, tmp_path / "node")
    node = secure_transport(create_app(
        {"DATABASE": str(data_dir / "node.db"), "BACKGROUND_JOBS": False, "HUB_URL": "",
         "SECRET_KEY": "reload-test"}, credentials=load_credentials(data_dir / "enrolment")))
    entered, release = threading.Event(), threading.Event()

    def app(environ, start_response):  # one slow path beside the node's own
        if environ["PATH_INFO"] == "/slow":
            entered.set()
            release.wait(30)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"finished on the old connection"]
        return node(environ, start_response)

    server = tls_server(app, "127.0.0.1", 0, data_dir / "enrolment" / TLS_CERT_FILE,
                        data_dir / "enrolment" / TLS_KEY_FILE)
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    port = server.bind_addr[1]
    url = f"https://127.0.0.1:{port}"
    try:
        old_serial = served_serial(port, root)
        assert old_serial == serial_on_disk(data_dir)
        kept = requests.Session()  # (verify per request: REQUESTS_CA_BUNDLE beats .verify)
        assert kept.get(url + "/api/v1/node/status", verify=str(root), timeout=10).ok
        slow: dict = {}
        thread = threading.Thread(target=lambda: slow.update(response=requests.get(
            url + "/slow", verify=str(root), timeout=30)))
        thread.start()
        assert entered.wait(10)

        renew(desk, data_dir)  # files replaced by rename, the server untouched

        new_serial = served_serial(port, root)
        assert new_serial == serial_on_disk(data_dir) != old_serial
        release.set()
        thread.join(30)
        assert slow["response"].status_code == 200
        assert slow["response"].text == "finished on the old connection"
        assert kept.get(url + "/api/v1/node/status", verify=str(root), timeout=10).ok
        assert served_serial(port, root) == new_serial  # loaded once, then kept
        assert server.ssl_adapter.reloads == 1
    finally:
        release.set()
        server.stop()


def test_a_pair_that_cannot_be_loaded_keeps_the_current_certificate(region, tmp_path):
    desk, root = region
    data_dir = enrolled(desk, tmp_path / "node")
    cert_file = data_dir / "enrolment" / TLS_CERT_FILE
    server = tls_server(lambda e, s: [], "127.0.0.1", 0, cert_file,
                        data_dir / "enrolment" / TLS_KEY_FILE)
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    try:
        before = served_serial(server.bind_addr[1], root)
        good = cert_file.read_bytes()
        cert_file.write_bytes(b"half written")
        assert served_serial(server.bind_addr[1], root) == before  # still served
        cert_file.write_bytes(good)
        assert served_serial(server.bind_addr[1], root) == before
        assert server.ssl_adapter.reloads == 1  # the good pair again, read once
    finally:
        server.stop()


def test_a_worker_rereads_its_credentials_after_another_process_renewed(region, tmp_path):
    desk, _root = region
    data_dir = enrolled(desk, tmp_path / "node")
    bundle = data_dir / "enrolment"
    worker = follow_renewals(create_app(
        {"DATABASE": str(data_dir / "node.db"), "BACKGROUND_JOBS": False, "HUB_URL": "",
         "SECRET_KEY": "reload-test"}, credentials=load_credentials(bundle)), bundle)
    old = worker.extensions["dmed_credentials"]
    client = worker.test_client()
    assert client.get("/api/v1/node/status").status_code == 200
    assert worker.extensions["dmed_credentials"] is old  # nothing changed: nothing read

    renew(desk, data_dir)  # as the background jobs of the parent process do

    assert client.get("/api/v1/node/status").status_code == 200
    current = worker.extensions["dmed_credentials"]
    assert current.kid == load_credentials(bundle).kid != old.kid


def test_the_worker_factory_of_dmed_node_serve_follows_renewals(region, tmp_path, monkeypatch):
    """What each `serve --workers N` process is built with: the bundle found in the node's
    state after `dmed-node init`, followed."""
    from click.testing import CliRunner

    from edge_node.cli import _following_renewals
    from edge_node.cli import main as node_cli
    monkeypatch.delenv("DMED_HUB_URL", raising=False)
    desk, _root = region
    data_dir = enrolled(desk, tmp_path / "node")
    database = str(data_dir / "node.db")
    assert CliRunner().invoke(node_cli, ["init", "--db", database]).exit_code == 0
    worker = _following_renewals(create_app({"DATABASE": database, "BACKGROUND_JOBS": False,
                                             "HUB_URL": "", "SECRET_KEY": "reload-test"}))
    old = worker.extensions["dmed_credentials"].kid
    renew(desk, data_dir)
    assert worker.test_client().get("/api/v1/node/status").status_code == 200
    assert worker.extensions["dmed_credentials"].kid == load_credentials(
        data_dir / "enrolment").kid != old
