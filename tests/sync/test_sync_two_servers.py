"""Two `dmed-hub serve` processes on different ports over one PostgreSQL database (issue 17):
the hub's web workers are stateless over the database. A clinic syncs with one server, two
pharmacies with either; both pharmacies hand over the whole prescription offline. Each server
runs its background projector; the projectors' lock makes one step run at a time. Once every
node has synced, hub and nodes agree, every event is held once, and the over-dispensing is
raised exactly once and reaches both pharmacies."""

from datetime import date

import pytest
from helpers.convergence import (
    check_exactly_once,
    check_hub_snapshot,
    check_same_records,
    check_synced,
    reference_store,
)
from helpers.enrolments import CLINIC, PHARMACY, PHARMACY2
from helpers.node import AMOXICILLIN
from helpers.processes import hub_process
from helpers.servers import free_port
from helpers.sync_world import Hub, Node, hub_database
from helpers.workload import pack_expiry

from central_hub.composition import open_storage
from central_hub.projector import wait_projected
from edge_node.services import dispensing, patients, prescribing
from sync_protocol.identifiers import make_pinfl

START_SECONDS = 30
PROJECT_SECONDS = 60


def synced_ok(node: Node) -> dict:
    report = node.sync()
    assert report["ok"], report
    return report


@pytest.mark.postgres
def test_two_hub_servers_over_one_database_converge(tmp_path, sync_pki, node_templates):
    with hub_database("postgres", tmp_path) as db_url:
        Hub(db_url, sync_pki.trust_list(), serve=False).close()  # dmed-hub init, in effect
        ports = [free_port(), free_port()]
        servers = [hub_process(db_url, tmp_path, port) for port in ports]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        nodes, reader = [], None
        try:
            for server in servers:
                server.start(START_SECONDS)
            clinic = Node.start(CLINIC, tmp_path, sync_pki, node_templates, urls[0], web=False)
            pharmacy = Node.start(PHARMACY, tmp_path, sync_pki, node_templates, urls[1],
                                  web=False)
            pharmacy2 = Node.start(PHARMACY2, tmp_path, sync_pki, node_templates, urls[0],
                                   web=False)
            nodes = [clinic, pharmacy, pharmacy2]
            for node in (clinic, pharmacy, pharmacy2, clinic):
                synced_ok(node)
            patient = patients.register_patient(
                clinic.store, clinic.actor("registrar"), full_name="Xolmatova Sevara",
                phone="+998901112233", facility_id=clinic.facility_id,
                pinfl=make_pinfl(date(1990, 4, 12), "female", "262", "417"))
            rx = prescribing.issue_prescription(
                clinic.store, clinic.actor("doctor"), clinic.credentials,
                patient_id=patient["patient_id"], items=[AMOXICILLIN])["prescription_id"]
            synced_ok(clinic)
            for node in (pharmacy, pharmacy2):  # each learns of it, then hands it all over
                synced_ok(node)
                dispensing.dispense(
                    node.store, node.actor("pharmacist"), facility_id=node.facility_id,
                    prescription_id=rx, item_no=1, quantity=AMOXICILLIN["quantity"],
                    product="Amoksitsillin 500", batch="B-2291", expiry=pack_expiry())
            for node in (pharmacy, pharmacy2):  # both dispenses reach the hub, by two servers
                synced_ok(node)
            with open_storage(db_url, migrate=False) as storage:  # no app: the servers project
                wait_projected(storage, timeout=PROJECT_SECONDS)
            for _round in (1, 2):
                for node in nodes:
                    synced_ok(node)
            reader = Hub(db_url, serve=False)
            raised = [c for c in reader.conflicts() if c["kind"] == "over_dispensing"]
            assert len(raised) == 1, reader.conflicts()
            for node in (pharmacy, pharmacy2):
                assert [c["kind"] for c in node.conflicts()] == ["over_dispensing"]
            check_exactly_once(reader, nodes)
            for node in nodes:
                check_synced(reader, node)
            check_same_records(reference_store(reader, tmp_path / "reference.db"), nodes)
            check_hub_snapshot(reader, nodes)
        finally:
            for server in servers:
                server.stop()
            for node in nodes:
                node.close()
            if reader is not None:
                reader.close()
