"""Issue 16 (b): the node starts its own renewal when 30 days remain, keeps serving with its
current certificate meanwhile, and switches to the new one without a restart."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug.serving import make_server

from edge_node import enrolment
from edge_node.credentials import load_credentials
from edge_node.renewal import (
    NOT_DUE,
    RENEWED,
    REQUESTED,
    UNREACHABLE,
    WAITING,
    Renewal,
    switch_credentials,
)
from edge_node.web import create_app
from provisioning import CaStore
from provisioning.enrolment_desk import EnrolmentDesk
from provisioning.facilities import add_facility
from provisioning.station import create_app as create_station
from sync_protocol.certificates import NodeIdentity
from sync_protocol.enrolment import read_enrolment

IDENTITY = NodeIdentity("tas-apt-007-a", "TAS-APT-007", "TAS", "pharmacy")


@pytest.fixture
def station(tmp_path, monkeypatch):
    monkeypatch.delenv("DMED_CA_PASSPHRASE", raising=False)
    store = CaStore(tmp_path / "ca")
    store.init_root("Root", now=datetime.now(UTC) - timedelta(days=800))
    store.add_region("TAS", "Toshkent shahri", now=datetime.now(UTC) - timedelta(days=800))
    add_facility(store, code="TAS-APT-007", kind="pharmacy", region="TAS",
                 names={"uz": "Dorixona", "ru": "Аптека", "en": "Pharmacy"},
                 address="Qatortol 3", district="Chilonzor")
    server = make_server("127.0.0.1", 0, create_station(store.directory), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield EnrolmentDesk(store), f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def enrol_at(desk, data_dir, when):
    pending = enrolment.start(data_dir, IDENTITY, now=when, lan_ips=["192.168.1.20"])
    desk.receive(pending.request, "127.0.0.1", now=when)
    enrolment.install_answer(data_dir, desk.approve(
        pending.request_id, code=pending.code, facility_code="TAS-APT-007", actor="op",
        now=when), now=when)


def test_node_renews_itself_and_switches_without_restart(station, tmp_path):
    desk, url = station
    data_dir = tmp_path / "node"
    enrol_at(desk, data_dir, datetime.now(UTC) - timedelta(days=710))  # 21 days left
    app = create_app({"DATABASE": str(data_dir / "node.db"), "BACKGROUND_JOBS": False,
                      "HUB_URL": ""}, credentials=load_credentials(data_dir / "enrolment"))
    old = app.extensions["dmed_credentials"]
    renewal = Renewal(data_dir, url, lambda renewed: switch_credentials(app, renewed))

    assert renewal.run_once() == REQUESTED
    assert renewal.run_once() == WAITING
    assert app.extensions["dmed_credentials"] is old  # serving on, with the current one
    waiting = enrolment.pending(data_dir / enrolment.RENEW_DIR)
    [listed] = [r for r in desk.requests("pending") if r["request_id"] == waiting.request_id]
    assert listed["renewal"] == 1 and listed["fingerprint"] == waiting.fingerprint
    desk.approve(waiting.request_id, code=waiting.code, facility_code="TAS-APT-007",
                 actor="op")
    assert renewal.run_once() == RENEWED
    current = app.extensions["dmed_credentials"]
    on_disk = read_enrolment(data_dir / "enrolment")
    assert current.kid == on_disk.kid != old.kid
    assert (current.cert.not_valid_after_utc - datetime.now(UTC)).days > 300
    tls = (data_dir / "enrolment" / enrolment.TLS_CERT_FILE).read_text()
    assert tls  # the TLS certificate was renewed with the same LAN address
    assert renewal.run_once() == NOT_DUE


def test_a_fresh_certificate_is_not_renewed_and_an_unreachable_station_changes_nothing(
        station, tmp_path):
    desk, url = station
    fresh = tmp_path / "fresh"
    enrol_at(desk, fresh, datetime.now(UTC))
    calls = []
    assert Renewal(fresh, url, calls.append).run_once() == NOT_DUE
    assert not (fresh / enrolment.RENEW_DIR).exists()

    old = tmp_path / "old"
    identity_b = NodeIdentity("tas-apt-007-b", "TAS-APT-007", "TAS", "pharmacy")
    when = datetime.now(UTC) - timedelta(days=720)
    pending = enrolment.start(old, identity_b, now=when)
    desk.receive(pending.request, "127.0.0.1", now=when)
    enrolment.install_answer(old, desk.approve(pending.request_id, code=pending.code,
                                               facility_code="TAS-APT-007", actor="op",
                                               now=when), now=when)
    before = read_enrolment(old / "enrolment").kid
    assert Renewal(old, "http://127.0.0.1:9", calls.append).run_once() == UNREACHABLE
    assert calls == [] and read_enrolment(old / "enrolment").kid == before
    # Once the station is back, the request made meanwhile is sent, and the wait goes on.
    assert Renewal(old, url, calls.append).run_once() == REQUESTED
    assert desk.requests("pending")[-1]["node_id"] == "tas-apt-007-b"
