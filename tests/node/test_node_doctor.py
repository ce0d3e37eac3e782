"""Issue 16 (g): dmed-node doctor finds each problem and says what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from helpers.enrolments import CLINIC, Enrolments
from helpers.pki import make_pki
from helpers.servers import dead_url
from helpers.sync_world import Hub

from edge_node import doctor
from edge_node.announce import announcement_for
from edge_node.cli import main as node_cli
from edge_node.credentials import load_credentials
from edge_node.discovery import Announcer, new_zeroconf
from edge_node.store import NodeStore

LOOPBACK = ["127.0.0.1"]


@pytest.fixture
def node(tmp_path, node_templates, sync_pki):
    """A seeded clinic with its bundle recorded, as `dmed-node init --bundle` leaves it."""
    store = NodeStore(node_templates.copy(CLINIC, tmp_path / "clinic" / "node.db"))
    with store.transaction() as tx:
        store.set_state(tx.conn, "bundle_path", str(sync_pki.bundle(CLINIC)))
    return store


@pytest.fixture
def hub(tmp_path, sync_pki):
    hub = Hub.start(tmp_path, sync_pki)
    yield hub
    hub.close()


def by_name(results):
    return {c.name: c for c in results}


def test_a_healthy_node_passes_every_check(node, hub, sync_pki, monkeypatch):
    credentials = sync_pki.credentials(CLINIC)
    zc = new_zeroconf(LOOPBACK)
    announcer = Announcer(zc, announcement_for(node.path.parent, credentials, LOOPBACK, 8080))
    announcer.start()
    monkeypatch.setenv("DMED_HUB_URL", hub.url)
    try:
        result = CliRunner().invoke(node_cli, ["doctor", "--db", str(node.path),
                                               "--interface", "127.0.0.1"])
    finally:
        announcer.stop()
        zc.close()
    assert result.exit_code == 0, result.output
    for name in ("clock", "disk", "certificate", "hub", "log", "pending", "lan"):
        assert f"ok       {name}" in result.output


def test_each_problem_is_found_with_advice(node, sync_pki, tmp_path, monkeypatch):
    soon = make_pki(tmp_path / "old-pki", now=datetime.now(UTC) - timedelta(days=710))
    credentials = load_credentials(soon.paths["clinic_bundle"])
    with node.transaction() as tx:
        tx.conn.execute("DELETE FROM node_state WHERE key = 'clock_confirmed_at'")
        tx.conn.execute("UPDATE events SET payload = replace(payload, 'Rahimov', 'Rahimova') "
                        "WHERE seq = (SELECT MIN(seq) FROM events WHERE type = "
                        "'PatientRegistered')")
    monkeypatch.setattr(doctor, "MIN_FREE_BYTES", 1 << 60)
    results = by_name(doctor.run_checks(node, credentials, dead_url(), interfaces=LOOPBACK,
                                        announce_wait=0.5))
    assert {n for n, c in results.items() if c.state == doctor.PROBLEM} == {
        "clock", "disk", "certificate", "hub", "log", "lan"}
    assert "dmed-node enrol --renew" in results["certificate"].advice
    assert "expires in" in results["certificate"].detail
    assert "restore the last backup" in results["log"].advice
    assert "UDP port 5353" in results["lan"].advice
    assert all(c.advice for c in results.values() if c.state == doctor.PROBLEM)


def test_revoked_certificate_and_refused_events_are_problems(node, tmp_path):
    enrolments = Enrolments.make(tmp_path / "pki")
    enrolments.ca.revoke_node(CLINIC.node_id, "stolen")
    credentials = load_credentials(enrolments.bundle(CLINIC))
    with node.transaction() as tx:  # the revocation arrived with the synced trust list
        node.set_state(tx.conn, "trust_list", enrolments.trust_list().to_json())
    with node.transaction() as tx:
        tx.conn.execute("INSERT INTO sync_refusals (event_id, seq, type, code, reason, "
                        "refused_at) SELECT id, seq, type, 'x', 'refused', "
                        "'2026-01-01T00:00:00Z' FROM events LIMIT 1")
    results = by_name(doctor.run_checks(node, credentials, "", announce_wait=0))
    assert results["certificate"].state == doctor.PROBLEM
    assert "revoked" in results["certificate"].detail
    assert results["hub"].state == doctor.SKIPPED
    assert results["pending"].state == doctor.PROBLEM
