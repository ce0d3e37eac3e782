"""The outage scenario over real HTTP on loopback (issue 4, "What must hold").

A clinic and a pharmacy, enrolled by provisioning, sync with a hub. The pharmacy loses its
link and dispenses part of a prescription; the clinic loses its link, cancels that
prescription and books a new appointment; the pharmacy, still offline and unaware, hands
over more of the cancelled drug. Both come back and sync until nothing moves. The scenario
runs once per module; each test below checks one thing it must leave behind.
"""

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from helpers.convergence import (
    check_exactly_once,
    check_hub_snapshot,
    check_same_records,
    check_synced,
    reference_store,
)
from helpers.enrolments import CLINIC, PHARMACY
from helpers.node import AMOXICILLIN
from helpers.sync_world import BACKENDS, Hub, Node, hub_database
from helpers.workload import free_slot, next_second, pack_expiry

from edge_node.services import appointments, dispensing, patients, prescribing
from sync_protocol.identifiers import make_pinfl


@dataclass
class Outage:
    hub: Hub
    clinic: Node
    pharmacy: Node
    rx: str = ""
    patient: str = ""
    dispenses: dict[str, str] = field(default_factory=dict)  # "before"/"after" -> event id
    appointments: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)


def synced_ok(node: Node) -> dict:
    report = node.sync()
    assert report["ok"], report
    return report


@pytest.fixture(scope="module", params=BACKENDS)
def outage(request, tmp_path_factory, sync_pki, node_templates):
    """The scenario, played once per hub backend."""
    directory = tmp_path_factory.mktemp("outage")
    with hub_database(request.param, directory) as db_url:
        hub = Hub.start(directory, sync_pki, db_url=db_url)
        clinic = Node.start(CLINIC, directory, sync_pki, node_templates, hub.url, serve=True)
        pharmacy = Node.start(PHARMACY, directory, sync_pki, node_templates, hub.url,
                              serve=True)
        o = Outage(hub, clinic, pharmacy)
        try:
            run(o)
            yield o
        finally:
            for part in (clinic, pharmacy, hub):
                part.close()


def run(o: Outage) -> None:
    clinic, pharmacy = o.clinic, o.pharmacy
    o.statuses["never_synced"] = clinic.status()
    for node in (clinic, pharmacy, clinic):  # the clinic again: the pharmacy registered
        synced_ok(node)

    # The clinic registers a patient, books a visit and prescribes; everything syncs.
    patient = patients.register_patient(
        clinic.store, clinic.actor("registrar"), full_name="Xolmatova Sevara Anvarovna",
        phone="+998901112233", facility_id=clinic.facility_id,
        pinfl=make_pinfl(date(1990, 4, 12), "female", "262", "417"))
    o.patient = patient["patient_id"]
    doctor, start = free_slot(clinic)
    o.appointments["first"] = appointments.book(
        clinic.store, clinic.actor("registrar"), patient_id=o.patient, practitioner_id=doctor,
        starts_at=start, channel="registry")
    o.rx = prescribing.issue_prescription(
        clinic.store, clinic.actor("doctor"), clinic.credentials, patient_id=o.patient,
        items=[AMOXICILLIN])["prescription_id"]
    o.statuses["clinic_unsynced_writes"] = clinic.status()
    for node in (clinic, pharmacy):
        synced_ok(node)
    o.statuses["clinic_synced"] = check_synced(o.hub, clinic)
    o.statuses["pharmacy_synced"] = check_synced(o.hub, pharmacy)

    # The pharmacy's link drops; it dispenses part of the prescription.
    pharmacy.go_offline()
    o.reports["pharmacy_offline"] = pharmacy.sync()
    o.statuses["pharmacy_offline"] = pharmacy.status()
    o.dispenses["before"] = dispense(pharmacy, o.rx, 10)
    o.statuses["pharmacy_offline_pending"] = pharmacy.status()

    # The clinic's link drops; the doctor cancels, the registry books a new visit.
    clinic.go_offline()
    o.reports["clinic_offline"] = clinic.sync()
    next_second()
    prescribing.cancel_prescription(clinic.store, clinic.actor("doctor"), o.rx,
                                    reason="Allergiya: penitsillin")
    doctor, start = free_slot(clinic)
    o.appointments["second"] = appointments.book(
        clinic.store, clinic.actor("registrar"), patient_id=o.patient, practitioner_id=doctor,
        starts_at=start, channel="kiosk")
    o.statuses["clinic_offline"] = clinic.status()

    # Unaware of the cancellation, the pharmacy hands over more of the same drug.
    next_second()
    o.dispenses["after"] = dispense(pharmacy, o.rx, 5)

    # Both come back: two rounds reach the fixed point; a third must change nothing.
    pharmacy.go_online()
    clinic.go_online()
    for round_no in (1, 2):
        for node in (pharmacy, clinic):
            o.reports[f"{node.role.name}_back_{round_no}"] = synced_ok(node)
    o.reports["fixed_point"] = {node.role.name: synced_ok(node) for node in (pharmacy, clinic)}


def dispense(node: Node, rx: str, quantity: int) -> str:
    """Dispense; return the id of the MedicationDispensed event (what conflicts name)."""
    dispense_id = dispensing.dispense(
        node.store, node.actor("pharmacist"), facility_id=node.facility_id, prescription_id=rx,
        item_no=1, quantity=quantity, product="Amoksitsillin 500", batch="B-2291",
        expiry=pack_expiry())["dispense_id"]
    return node.store.one("SELECT id FROM events WHERE type = 'MedicationDispensed' AND "
                          "json_extract(payload, '$.dispense_id') = ?", (dispense_id,))["id"]


# -- what must hold ------------------------------------------------------------------------

def test_status_says_offline_since_during_the_outage(outage):
    for name, writes in (("pharmacy_offline", 0), ("clinic_offline", 2)):
        node = getattr(outage, name.split("_")[0])
        report = outage.reports[name]
        assert not report["ok"] and report["stage"] in ("push", "pull"), report
        status = outage.statuses[name]
        assert status["online"] is False and status["synced"] is False
        assert status["offline_since"] is not None, status
        assert status["last_error"], status
        assert status["pending"] == writes, (node.role.name, status)
    assert outage.statuses["pharmacy_offline_pending"]["pending"] == 1


def test_status_says_synced_only_when_it_is(outage):
    never = outage.statuses["never_synced"]
    assert never["synced"] is False and never["last_success_at"] is None
    unsynced = outage.statuses["clinic_unsynced_writes"]
    assert unsynced["synced"] is False and unsynced["pending"] == 3  # patient, booking, rx
    for node in (outage.clinic, outage.pharmacy):
        status = check_synced(outage.hub, node)
        assert status["offline_since"] is None and status["last_error"] is None


def test_a_further_sync_changes_nothing(outage):
    for name, report in outage.reports["fixed_point"].items():
        assert (report["pushed"], report["pulled"], report["refused"]) == (0, 0, 0), name


def test_every_event_is_at_the_hub_exactly_once(outage):
    check_exactly_once(outage.hub, [outage.clinic, outage.pharmacy])
    for node in (outage.clinic, outage.pharmacy):
        assert outage.hub.node_row(node.node_id)["acked_seq"] == node.head_seq()
        assert node.store.query("SELECT * FROM sync_refusals") == []


def test_nodes_and_hub_agree_on_every_shared_record(outage, tmp_path):
    reference = reference_store(outage.hub, tmp_path / "reference.db")
    try:
        check_same_records(reference, [outage.clinic, outage.pharmacy])
    finally:
        reference.close()


def test_the_physical_facts_and_the_new_booking_are_kept_everywhere(outage):
    clinic, pharmacy = outage.clinic, outage.pharmacy
    for node in (clinic, pharmacy):
        rx = node.store.one("SELECT status FROM prescriptions WHERE prescription_id = ?",
                            (outage.rx,))
        assert rx["status"] == "cancelled", node.role.name
        held = {r["id"]: r["quantity"] for r in node.store.query(
            "SELECT e.id, d.quantity FROM dispenses d JOIN events e ON e.type = "
            "'MedicationDispensed' AND json_extract(e.payload, '$.dispense_id') = d.dispense_id"
            " WHERE d.prescription_id = ?", (outage.rx,))}
        assert held == {outage.dispenses["before"]: 10, outage.dispenses["after"]: 5}
    booked = {r["appointment_id"]: r["status"] for r in clinic.store.query(
        "SELECT appointment_id, status FROM appointments WHERE patient_id = ?",
        (outage.patient,))}
    assert booked == {outage.appointments["first"]: "booked",
                      outage.appointments["second"]: "booked"}
    # Least knowledge: the pharmacy holds the prescription, never the patient's record.
    assert pharmacy.store.query("SELECT * FROM patients") == []
    assert pharmacy.store.query("SELECT * FROM appointments") == []


def test_hub_projections_agree_with_both_nodes(outage):
    check_hub_snapshot(outage.hub, [outage.clinic, outage.pharmacy])


def test_the_dispense_after_cancellation_and_no_other_conflict_is_raised(outage):
    raised = outage.hub.conflicts()
    assert [c["kind"] for c in raised] == ["dispense_after_cancellation"], raised
    conflict = raised[0]
    assert conflict["subject_id"] == outage.rx
    assert outage.dispenses["after"] in conflict["event_ids"], conflict
    assert outage.dispenses["before"] not in conflict["event_ids"], "it came before the cancel"
    assert set(conflict["facility_ids"]) == {outage.clinic.facility_id,
                                            outage.pharmacy.facility_id}
    for node in (outage.clinic, outage.pharmacy):
        held = node.conflicts()
        assert [(c["conflict_id"], c["kind"], c["state"]) for c in held] == [
            (conflict["conflict_id"], "dispense_after_cancellation", "open")], node.role.name
