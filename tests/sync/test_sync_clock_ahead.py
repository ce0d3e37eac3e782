"""Issue 11.6: the hub applies the nodes' future-clock bound to every pushed event; the node
that sent one sees in its sync status (API and every screen's banner) that its clock is wrong.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from helpers.enrolments import CLINIC
from helpers.hub import body_of
from helpers.sync_world import Hub, Node
from helpers.transports import FlaskTransport

from edge_node.services import patients
from sync_protocol.hlc import CLOCK_AHEAD, MAX_DRIFT_MS, HlcTimestamp
from sync_protocol.identifiers import make_pinfl

HUB_URL = "http://hub.test"
TEN_YEARS = timedelta(days=3652)


def ahead(delta: timedelta) -> HlcTimestamp:
    return HlcTimestamp(int((datetime.now(UTC) + delta).timestamp() * 1000), 0)


@pytest.mark.parametrize("delta, accepted", [
    (timedelta(hours=1), True),  # a little ahead: ordinary drift, within the bound
    (timedelta(milliseconds=MAX_DRIFT_MS) - timedelta(minutes=5), True),
    (timedelta(milliseconds=MAX_DRIFT_MS) + timedelta(minutes=5), False),
    (TEN_YEARS, False),
])
def test_the_hub_refuses_events_dated_beyond_the_nodes_bound(nodes, storage, delta, accepted):
    clinic = nodes["clinic"]
    clinic.register_facility()
    clinic.clock.catch_up(ahead(delta))
    clinic.register_practitioner()
    clinic.clock = type(clinic.clock)()  # its clock is put right again
    clinic.register_practitioner()
    results = body_of(clinic.push())["results"]
    statuses = [(r["status"], r["code"]) for r in results]
    refused = ("refused", CLOCK_AHEAD)
    assert statuses == [("accepted", None), ("accepted", None) if accepted else refused,
                        ("accepted", None)]  # a final refusal: the next event still goes in
    with storage.reader() as tx:
        held = {row["id"] for row in tx.query("SELECT id FROM events")}
        quarantined = tx.query("SELECT event_id, code, reason FROM quarantine")
    assert (clinic.log[1]["id"] in held) is accepted
    if not accepted:
        assert [(q["event_id"], q["code"]) for q in quarantined] == [
            (clinic.log[1]["id"], CLOCK_AHEAD)]
        assert "ahead" in quarantined[0]["reason"]


@pytest.fixture
def hub_and_clinic(tmp_path, sync_pki, node_templates):
    hub = Hub.start(tmp_path, sync_pki, serve=False)
    clinic = Node.start(CLINIC, tmp_path, sync_pki, node_templates, HUB_URL,
                        transport=FlaskTransport(hub.app))
    assert clinic.sync()["ok"]
    yield hub, clinic
    clinic.close()
    hub.close()


def register(clinic, serial: str) -> dict:
    return patients.register_patient(
        clinic.store, clinic.actor("registrar"), full_name="Xolmatova Sevara Anvarovna",
        phone="+998901112233", facility_id=clinic.facility_id,
        pinfl=make_pinfl(date(1990, 4, 12), "female", "262", serial))


def test_a_node_whose_clock_ran_ahead_is_told_on_its_status_and_screens(hub_and_clinic):
    hub, clinic = hub_and_clinic
    web = clinic.app.test_client()
    assert web.get("/api/v1/sync/status").json["clock_ahead"] is False

    clinic.store.clock.catch_up(ahead(TEN_YEARS))  # e.g. a battery-less Pi booted in 2036
    patient = register(clinic, "417")
    report = clinic.sync()
    assert report["refused"] == 1
    assert patient["patient_id"] not in {row["payload"] for row in hub.events(CLINIC.node_id)}
    with hub.storage.reader() as tx:
        codes = [row["code"] for row in tx.query("SELECT code FROM quarantine")]
    assert codes == [CLOCK_AHEAD]

    status = web.get("/api/v1/sync/status").json
    assert status["clock_ahead"] is True and status["clock_refused_at"]
    assert status["refused"] == 1
    page = web.get("/ui/kiosk/", headers={"Accept-Language": "uz"})
    assert page.status_code == 200
    assert b"data-clock-wrong" in page.data

    # Once its events go through again (its clock and the clock's saved state put right by
    # an administrator), the warning goes.
    clinic.store.clock = type(clinic.store.clock)()
    with clinic.store.transaction() as tx:
        clinic.store.set_state(tx.conn, "hlc_last", str(ahead(timedelta(0))))
    register(clinic, "418")
    assert clinic.sync()["ok"]
    assert web.get("/api/v1/sync/status").json["clock_ahead"] is False
