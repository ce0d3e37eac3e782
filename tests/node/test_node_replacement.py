"""Issue 16 (f): a clinic's SD card dies without a backup; a replacement enrolled for the same
facility rebuilds from the hub, serves the same records its predecessor had synced (snapshot
comparison), continues with its own origin, and no chain check fails at the hub."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from helpers.convergence import shared_rows
from helpers.enrolments import CLINIC, Enrolments, Role
from helpers.node import AMOXICILLIN
from helpers.sync_world import Hub, Node

from central_hub.trust_store import TrustStore
from edge_node.cli import main as node_cli
from edge_node.replacement import ReplacementFailed, rebuild_from_hub
from edge_node.services import patients, prescribing
from edge_node.services.clock import confirm_clock
from edge_node.store import NodeStore

REPLACEMENT = Role("clinic_b", "tas-clinic-0002", CLINIC.facility_code, CLINIC.kind)
# Records a replacement must serve as its predecessor did (DESIGN: patients, prescriptions,
# schedules), plus what they hang on.
SHARED = ("facilities", "practitioners", "slots", "patients", "prescriptions",
          "prescription_items")


def snapshot(store: NodeStore) -> dict:
    rows = shared_rows(store)
    return {table: rows[table] for table in SHARED if table in rows}


def test_replacement_rebuilds_from_the_hub_with_its_own_origin(tmp_path, node_templates,
                                                              monkeypatch):
    enrolments = Enrolments.make(tmp_path / "pki")  # own store: this test revokes a node
    hub = Hub.start(tmp_path, enrolments)
    old = Node.start(CLINIC, tmp_path, enrolments, node_templates, hub.url, web=False)
    try:
        doctor = old.actor("doctor")
        patient = old.store.one("SELECT patient_id FROM patients LIMIT 1")["patient_id"]
        prescribing.issue_prescription(old.store, doctor, old.credentials,
                                       patient_id=patient, items=[{**AMOXICILLIN}])
        assert old.sync()["ok"]
        synced = snapshot(old.store)
        assert set(synced) == set(SHARED) and all(synced.values())  # every kind is there
        acked = old.store.one("SELECT MAX(seq) AS s FROM events WHERE origin = ?",
                              (old.node_id,))["s"]
        # Written after the last sync, then the card dies: this is what paper must restore.
        patients.register_patient(old.store, old.actor("registrar"), full_name="Lost Patient",
                                  phone="+998901112233", facility_id=old.facility_id,
                                  document="AE1234567", birth_date="1990-01-01", sex="male")
        old.store.close()

        # Regional IT revokes the dead node and enrols a replacement for the same facility.
        enrolments.ca.revoke_node(CLINIC.node_id, "SD card died; replaced by tas-clinic-0002")
        credentials = enrolments.credentials(REPLACEMENT)
        TrustStore(hub.storage).import_list(enrolments.trust_list())
        (tmp_path / "clinic_b").mkdir()
        store = NodeStore(tmp_path / "clinic_b" / "node.db")
        store.initialise(REPLACEMENT.node_id)
        confirm_clock(store, "init")
        new = Node(REPLACEMENT, store, credentials, hub.url, web=False)

        with pytest.raises(ReplacementFailed, match="no facility TAS-NONE"):
            rebuild_from_hub(new.store, new.agent, "TAS-NONE", CLINIC.node_id)
        with store.transaction() as tx:  # as `dmed-node init --bundle` records it
            store.set_state(tx.conn, "bundle_path", str(enrolments.bundle(REPLACEMENT)))
        monkeypatch.setenv("DMED_HUB_URL", hub.url)
        shown = CliRunner().invoke(node_cli, ["replace", "--db", str(store.path),
                                              "--predecessor", CLINIC.node_id])
        assert shown.exit_code == 0, shown.output
        assert f"{CLINIC.node_id}'s events up to sequence {acked};" in shown.output
        assert store.facility_id == old.facility_id
        result = rebuild_from_hub(new.store, new.agent, CLINIC.facility_code, CLINIC.node_id)
        assert (result.last_acknowledged_seq, result.pulled) == (acked, 0)  # nothing more
        assert snapshot(new.store) == synced  # the same patients, prescriptions, schedules
        assert new.store.one("SELECT 1 FROM patients WHERE full_name = 'Lost Patient'") is None

        # It goes on with its own origin: accepted at the hub, no chain forked or refused.
        patients.register_patient(new.store, _registrar(new), full_name="New Patient",
                                  phone="+998901112244", facility_id=result.facility_id,
                                  document="AE7654321", birth_date="1991-02-02", sex="female")
        report = new.sync()
        assert report["ok"] and report["refused"] == 0, report
        own = [e for e in hub.events(REPLACEMENT.node_id)]
        assert [e["seq"] for e in own] == list(range(1, len(own) + 1))
        assert {e["origin"] for e in hub.events()} == {CLINIC.node_id, REPLACEMENT.node_id}
        with hub.storage.reader() as tx:
            assert tx.query("SELECT * FROM quarantine") == []
    finally:
        hub.close()


def _registrar(node: Node):
    """Staff accounts are node-local: the replacement's admin makes them anew."""
    from edge_node.services import staff
    from edge_node.services.access import SYSTEM
    staff.create_staff(node.store, SYSTEM, username="registrar", full_name="Registratura",
                       role="registrar", pin="1111")
    return node.actor("registrar")
