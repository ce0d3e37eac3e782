"""Issue 11.8: `dmed-node verify-log` on every synced node: the node's own chain whole, other
origins as far as the node holds them (a pharmacy holds only part of a clinic's log)."""

from __future__ import annotations

from datetime import date

import pytest
from click.testing import CliRunner
from helpers.enrolments import CLINIC, PHARMACY
from helpers.node import AMOXICILLIN
from helpers.sync_world import Hub, Node
from helpers.workload import add_doctors, free_slot

from edge_node.cli import main
from edge_node.log_check import verify_log
from edge_node.services import appointments, patients, prescribing
from edge_node.store import NodeStore
from sync_protocol.errors import ChainBroken
from sync_protocol.events import event_from_dict
from sync_protocol.identifiers import make_pinfl
from sync_protocol.wire import PullQuery


@pytest.fixture
def world(tmp_path, sync_pki, node_templates):
    hub = Hub.start(tmp_path, sync_pki)
    clinic = Node.start(CLINIC, tmp_path, sync_pki, node_templates, hub.url, web=False)
    pharmacy = Node.start(PHARMACY, tmp_path, sync_pki, node_templates, hub.url, web=False)
    # Patients, visits and prescriptions interleaved with region-wide doctors: the pharmacy's
    # scope takes some of the clinic's events and not the others.
    for n in range(3):
        patient = patients.register_patient(
            clinic.store, clinic.actor("registrar"), full_name=f"Bemor {n}",
            phone=f"+99890111220{n}", facility_id=clinic.facility_id,
            pinfl=make_pinfl(date(1990, 4, 12), "female", "262", f"{417 + n}"))["patient_id"]
        doctor, start = free_slot(clinic, index=n)
        appointments.book(clinic.store, clinic.actor("registrar"), patient_id=patient,
                          practitioner_id=doctor, starts_at=start, channel="registry")
        prescribing.issue_prescription(clinic.store, clinic.actor("doctor"), clinic.credentials,
                                       patient_id=patient, items=[AMOXICILLIN])
        add_doctors(clinic, 1)
    for node in (clinic, pharmacy, clinic):
        assert node.sync()["ok"]
    yield hub, clinic, pharmacy
    for node in (clinic, pharmacy):
        node.store.close()
    hub.close()


def cli_verify(node: Node):
    return CliRunner().invoke(main, ["verify-log", "--db", str(node.store.path)])


def clinic_seqs(node: Node) -> list[int]:
    return [e.seq for e in node.store.events(origin=CLINIC.node_id)]


def test_a_synced_clinic_and_pharmacy_verify(world):
    _hub, clinic, pharmacy = world
    held = clinic_seqs(pharmacy)
    assert held and held != list(range(1, len(held) + 1))  # a partial log, with gaps
    for node in (clinic, pharmacy):
        result = cli_verify(node)
        assert result.exit_code == 0, result.output
        assert "log verified" in result.output
    report = verify_log(pharmacy.store)
    assert report["others"] >= len(held) and report["own"] >= 0


def test_a_node_that_pulled_a_partial_page_verifies(world, tmp_path, sync_pki, node_templates):
    hub, clinic, _pharmacy = world
    # A second copy of the pharmacy that has pulled one short page of the hub's log so far.
    late = Node(PHARMACY, NodeStore(node_templates.copy(PHARMACY, tmp_path / "late.db")),
                sync_pki.credentials(PHARMACY), hub.url, web=False)
    try:
        page = late.client.pull(PullQuery(after=0, limit=3, max_bytes=64 * 1024))
        with late.store.transaction() as tx:
            tx.receive_page([event_from_dict(e.event) for e in page.events])
        assert 0 < len(clinic_seqs(late)) < len(clinic_seqs(clinic))
        assert cli_verify(late).exit_code == 0
    finally:
        late.store.close()


def test_a_tampered_event_of_another_origin_is_found(world):
    _hub, _clinic, pharmacy = world
    with pharmacy.store.transaction() as tx:
        tx.conn.execute("UPDATE events SET payload = json_set(payload, '$.full_name', 'X')"
                        " WHERE origin = ? AND type = 'PractitionerRegistered'",
                        (CLINIC.node_id,))
    result = cli_verify(pharmacy)
    assert result.exit_code == 1 and "does not match its hash" in result.output
    with pytest.raises(ChainBroken):
        verify_log(pharmacy.store)


def test_a_gap_in_the_nodes_own_chain_is_still_refused(world):
    _hub, clinic, _pharmacy = world
    with clinic.store.transaction() as tx:
        tx.conn.execute("DELETE FROM events WHERE origin = ? AND seq = 2", (CLINIC.node_id,))
    result = cli_verify(clinic)
    assert result.exit_code == 1 and "expected 2" in result.output
