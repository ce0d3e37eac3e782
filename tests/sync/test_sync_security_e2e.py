"""Security end to end, over real HTTP on loopback (DESIGN 4.6, 7.7).

A stolen clinic node is revoked the way regional IT would do it (dmed-provision revoke, then
dmed-hub trust-import): within one sync cycle the hub refuses it, its agent says why, and
pharmacies, which learn the revocation with the trust list, refuse its prescriptions. A node
of another region pulls nothing of this one, and cannot ask for more than its certificate
gives it.
"""

import pytest
import requests
from click.testing import CliRunner
from helpers.convergence import check_exactly_once
from helpers.enrolments import CLINIC, PHARMACY, SAM_PHARMACY, Enrolments
from helpers.node import AMOXICILLIN
from helpers.sync_world import Hub, Node
from helpers.workload import free_slot

from central_hub import trust_store
from central_hub.cli import main as hub_cli
from edge_node.seed import DEMO_PIN
from edge_node.services import appointments, dispensing, prescribing
from edge_node.sync.agent import INTERVAL_SECONDS
from edge_node.trust_store import current_trust_list
from provisioning.cli import main as provision_cli
from sync_protocol.request_signing import sign_request
from sync_protocol.timeutil import utc_now
from sync_protocol.wire import PULL_PATH, PullQuery


def invoke(command, *args: str) -> str:
    result = CliRunner().invoke(command, list(args))
    assert result.exit_code == 0, result.output
    return result.output


class Region:
    """An own provisioning store (these tests revoke and add regions in it), a hub made
    with dmed-hub init, and a synced clinic and pharmacy, both served over HTTP."""

    def __init__(self, directory, templates) -> None:
        self.directory = directory
        self.enrolments = Enrolments.make(directory / "pki")
        self.db_url = f"sqlite:///{directory / 'hub.db'}"
        invoke(hub_cli, "init", "--db", self.db_url, "--trust", self.export_trust_list())
        self.hub = Hub(self.db_url)
        self.clinic = Node.start(CLINIC, directory, self.enrolments, templates, self.hub.url,
                                 serve=True)
        self.pharmacy = Node.start(PHARMACY, directory, self.enrolments, templates,
                                   self.hub.url, serve=True)
        self.nodes = [self.clinic, self.pharmacy]
        self.sync(self.clinic, self.pharmacy, self.clinic)

    @staticmethod
    def sync(*nodes: Node) -> None:
        for node in nodes:
            report = node.sync()
            assert report["ok"], report

    def export_trust_list(self) -> str:
        """dmed-provision trust-list, written where dmed-hub can read it."""
        listing = invoke(provision_cli, "trust-list", "--dir", str(self.store_dir))
        path = self.directory / "trust-list.json"
        path.write_text(listing, encoding="utf-8")
        return str(path)

    @property
    def store_dir(self):
        return self.enrolments.pki.paths["store"]

    def close(self) -> None:
        for part in (*self.nodes, self.hub):
            part.close()


@pytest.fixture
def region(tmp_path, node_templates, monkeypatch):
    # The hub rereads its trust list every RELOAD_SECONDS (10 s, a third of the nodes' sync
    # interval, checked below); the test takes the next request as "the next sync cycle".
    monkeypatch.setattr(trust_store, "RELOAD_SECONDS", 0.0)
    region = Region(tmp_path, node_templates)
    yield region
    region.close()


def test_the_hub_rereads_its_trust_list_within_one_sync_cycle():
    assert trust_store.RELOAD_SECONDS < INTERVAL_SECONDS


def prescribe(clinic: Node) -> dict:
    patient = clinic.store.one("SELECT patient_id FROM patients ORDER BY patient_id")
    return prescribing.issue_prescription(clinic.store, clinic.actor("doctor"),
                                          clinic.credentials, patient_id=patient["patient_id"],
                                          items=[AMOXICILLIN])


def pharmacy_verdict(pharmacy: Node, code: str) -> str:
    """The verdict of the pharmacy node's API for a scanned code, as its counter gets it."""
    base = pharmacy.server.url
    token = requests.post(f"{base}/api/v1/auth/sign-in", timeout=10, json={
        "username": "pharmacist", "pin": DEMO_PIN["pharmacist"]}).json()["token"]
    answer = requests.post(f"{base}/api/v1/pharmacy/verify", json={"code": code}, timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()["verdict"]


def test_a_revoked_node_is_cut_off_within_one_sync_cycle(region):
    clinic, pharmacy = region.clinic, region.pharmacy
    rx = prescribe(clinic)
    region.sync(clinic, pharmacy)
    assert pharmacy_verdict(pharmacy, rx["qr"]) == "valid"

    # The clinic's Raspberry Pi is stolen: regional IT revokes it and updates the hub.
    invoke(provision_cli, "revoke", "--dir", str(region.store_dir), "--node-id",
           CLINIC.node_id, "--reason", "Qurilma o'g'irlangan")
    invoke(hub_cli, "trust-import", "--db", region.db_url, "--trust",
           region.export_trust_list())
    doctor, start = free_slot(clinic)
    patient = clinic.store.one("SELECT patient_id FROM patients ORDER BY patient_id")
    appointments.book(clinic.store, clinic.actor("registrar"), patient_id=patient["patient_id"],
                      practitioner_id=doctor, starts_at=start, channel="registry")

    report = clinic.sync()
    assert not report["ok"] and report["pushed"] == 0, report
    assert "revoked" in report["error"], report
    status = clinic.status()
    assert status["online"] is False and not status["synced"]
    assert "revoked" in status["last_error"] and status["pending"] == 1
    assert region.hub.node_row(CLINIC.node_id)["last_error_code"] == "revoked"
    assert len(region.hub.events(CLINIC.node_id)) == clinic.head_seq() - 1

    # The pharmacy learns the revocation with its next sync and refuses the stolen key.
    region.sync(pharmacy)
    assert current_trust_list(pharmacy.store, pharmacy.credentials).revocation(
        clinic.credentials.cert) is not None
    verdict = dispensing.record_scan(pharmacy.store, pharmacy.actor("pharmacist"),
                                    current_trust_list(pharmacy.store, pharmacy.credentials),
                                    rx["qr"])
    assert verdict.code == "revoked_key"
    assert pharmacy_verdict(pharmacy, rx["qr"]) == "revoked_key"


def test_a_node_of_another_region_pulls_nothing_of_this_one(region, node_templates):
    clinic, pharmacy = region.clinic, region.pharmacy
    rx = prescribe(clinic)
    region.sync(clinic, pharmacy)
    # Samarqand gets its region and a pharmacy; the hub takes the new list.
    enrolments = region.enrolments
    enrolments.bundle(SAM_PHARMACY)
    invoke(hub_cli, "trust-import", "--db", region.db_url, "--trust",
           region.export_trust_list())
    sam = Node.start(SAM_PHARMACY, region.directory, enrolments, node_templates,
                     region.hub.url)
    region.nodes.append(sam)
    region.sync(sam, clinic, pharmacy, sam)

    assert sam.foreign_ids() == []  # not TAS's facilities, doctors or prescriptions
    page = sam.client.pull(PullQuery(after=0))
    assert page.events == [] and not page.more
    assert sam.store.query("SELECT * FROM prescriptions") == []
    # TAS's pharmacy has the prescription, and never the patient behind it.
    assert pharmacy.store.one("SELECT status FROM prescriptions WHERE prescription_id = ?",
                              (rx["prescription_id"],))["status"] == "active"
    assert pharmacy.store.query("SELECT * FROM patients") == []
    check_exactly_once(region.hub, region.nodes)


def test_a_pull_cannot_name_a_wider_scope(region):
    """Scope comes from the certificate only: a signed pull naming one is refused."""
    credentials = region.pharmacy.credentials
    for extra in ("region=TAS", f"facility={CLINIC.facility_code}", f"node={CLINIC.node_id}"):
        target = f"{PULL_PATH}?{PullQuery(after=0).to_query_string()}&{extra}"
        headers = sign_request("GET", target, b"", credentials.key, credentials.cert,
                               PHARMACY.node_id, utc_now())
        answer = requests.get(region.hub.url + target, headers=headers, timeout=10)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "unknown_parameter", extra
