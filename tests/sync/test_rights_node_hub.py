"""Issue 11.5: one rule set (sync_protocol.rights) decides on node and hub alike. A node that
syncs answers 403 wherever the hub would refuse as not permitted; what it accepts, the hub
accepts. The property test draws actions x roles x node kinds x facilities."""

import itertools
from datetime import date

import pytest
from helpers.enrolments import CLINIC, PHARMACY
from helpers.sync_world import Hub, Node
from helpers.transports import FlaskTransport
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central_hub.routing import ScopeIndex
from edge_node import store as store_module
from edge_node.errors import Forbidden
from edge_node.seed import DEMO_PIN
from edge_node.services import clinical, facilities, patients, staff
from edge_node.services.access import Actor
from sync_protocol.identifiers import make_pinfl
from sync_protocol.rights import (
    ROLE_PERMISSIONS,
    STAFF_ROLES,
    NotPermitted,
    check_right,
    role_allowed,
)

HUB_URL = "http://hub.test"
serials = itertools.count(100)
CHECK_LOCAL_EVENT = store_module.check_local_event


class Region:
    """A hub, a clinic and a pharmacy of one region, synced so each knows the facilities."""

    def __init__(self, directory, sync_pki, node_templates) -> None:
        self.hub = Hub.start(directory, sync_pki, serve=False)
        self.nodes = {role.kind.value: Node.start(role, directory, sync_pki, node_templates,
                                                  HUB_URL, transport=FlaskTransport(self.hub.app))
                      for role in (CLINIC, PHARMACY)}
        self.sync()
        self.clinic, self.pharmacy = self.nodes["clinic"], self.nodes["pharmacy"]
        self.doctor_id = self.clinic.store.one(
            "SELECT practitioner_id FROM practitioners ORDER BY full_name")["practitioner_id"]
        # A patient on each node (the pharmacy's as if written before nodes checked rights).
        self.patients, self.old_events = {}, set()
        for kind, node in self.nodes.items():
            checking, node.store.network_rights = node.store.network_rights, False
            self.patients[kind] = register(node, Actor("setup", "registrar"),
                                           node.facility_id)["patient_id"]
            node.store.network_rights = checking
            self.old_events.add(node.store.one(
                "SELECT id FROM events WHERE origin = ? ORDER BY seq DESC LIMIT 1",
                (node.node_id,))["id"])

    def sync(self) -> None:
        for node in (self.nodes["clinic"], self.nodes["pharmacy"], self.nodes["clinic"]):
            assert node.sync()["ok"]

    def other(self, kind: str) -> str:
        return self.nodes["pharmacy" if kind == "clinic" else "clinic"].facility_id

    def hub_verdict(self, kind: str, event_type: str, payload: dict) -> bool:
        """What the hub's ingest would decide (its own facts: central_hub.routing)."""
        identity = (CLINIC if kind == "clinic" else PHARMACY).identity
        with self.hub.storage.reader() as tx:
            index = ScopeIndex(tx)
            index.load([identity], [payload])
            try:
                check_right(event_type, payload, identity, index.facility_ids(identity),
                            index.facility_of_subject)
            except NotPermitted:
                return False
        return True

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()
        self.hub.close()


@pytest.fixture(scope="module")
def region(tmp_path_factory, sync_pki, node_templates):
    made = Region(tmp_path_factory.mktemp("rights"), sync_pki, node_templates)
    yield made
    made.close()


def register(node, actor, facility_id):
    return patients.register_patient(
        node.store, actor, full_name="Xolmatova Sevara Anvarovna", phone="+998901112233",
        facility_id=facility_id, pinfl=make_pinfl(date(1990, 4, 12), "female", "262",
                                                  str(next(serials))))


def refused_at_hub(region):
    """What the hub refused, but for the setup's patient written at the pharmacy."""
    with region.hub.storage.reader() as tx:
        rows = tx.query("SELECT event_id, origin, code, reason FROM quarantine")
    return [row for row in rows if row["event_id"] not in region.old_events]


# -- what was seen (issue 11.5) -----------------------------------------------------------

def signed_in(node, username):
    client = node.app.test_client()
    role = "doctor" if username.startswith("doctor") else username
    response = client.post("/api/v1/auth/sign-in",
                           json={"username": username, "pin": DEMO_PIN[role]})
    assert response.status_code == 200, response.json
    return client, {"Authorization": f"Bearer {response.json['token']}"}


def log_size(node):
    return node.store.one("SELECT COUNT(*) AS n FROM events")["n"]


def test_a_clinic_admin_cannot_register_a_doctor_at_the_pharmacy(region):
    clinic = region.clinic
    client, headers = signed_in(clinic, "admin")
    before = log_size(clinic)
    doctor = {"full_name": "Begmatov Anvar", "specialty": "family_medicine"}
    response = client.post("/api/v1/practitioners", headers=headers,
                           json={**doctor, "facility_id": region.pharmacy.facility_id})
    assert response.status_code == 403
    error = response.json["error"]
    assert (error["code"], error["field"]) == ("not_permitted", "facility_id")
    assert "bu esa ushbu tugunning" in error["message"]  # in Uzbek, the node's first language
    assert log_size(clinic) == before
    response = client.post("/api/v1/practitioners", headers=headers,
                           json={**doctor, "facility_id": clinic.facility_id})
    assert response.status_code == 201
    region.sync()
    assert refused_at_hub(region) == []


def test_a_pharmacy_has_no_doctors_and_its_staff_cannot_do_clinic_work(region):
    pharmacy = region.pharmacy
    client, headers = signed_in(pharmacy, "admin")
    response = client.post("/api/v1/staff", headers=headers, json={
        "username": "doktor", "full_name": "Doktor", "role": "doctor", "pin": "5829",
        "practitioner_id": region.doctor_id})
    assert response.status_code == 403
    assert (response.json["error"]["code"], response.json["error"]["field"]) == (
        "not_permitted", "role")
    assert pharmacy.store.one("SELECT 1 FROM staff WHERE username = 'doktor'") is None
    # A doctor account made before the node checked: its work is refused on the spot.
    doctor = Actor("old-doctor", "doctor", practitioner_id=region.doctor_id)
    before = log_size(pharmacy)
    with pytest.raises(Forbidden) as refused:
        register(pharmacy, doctor, pharmacy.facility_id)
    assert refused.value.code == "not_permitted"
    with pytest.raises(Forbidden):
        clinical.record_visit(pharmacy.store, doctor, patient_id=region.patients["pharmacy"],
                              diagnoses=[{"code": "J06.9"}])
    assert log_size(pharmacy) == before
    region.sync()
    assert refused_at_hub(region) == []


# -- the property: node verdict == hub verdict --------------------------------------------

ACTIONS = {
    # action: (permission it needs, what the node does)
    "register_doctor": ("manage_facility", lambda region, node, actor, facility:
                        facilities.register_practitioner(node.store, actor, facility_id=facility,
                                                         full_name="Sodiqov Bahrom",
                                                         specialty="family_medicine")),
    "register_patient": ("register_patient", lambda region, node, actor, facility:
                         register(node, actor, facility)),
    "record_visit": ("write_clinical", lambda region, node, actor, facility:
                     clinical.record_visit(node.store, actor,
                                           patient_id=region.patients[node.role.kind.value],
                                           diagnoses=[{"code": "J06.9"}])),
}


@settings(max_examples=60, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(sorted(ACTIONS)), role=st.sampled_from(sorted(ROLE_PERMISSIONS)),
       kind=st.sampled_from(["clinic", "pharmacy"]), own=st.booleans())
def test_the_node_refuses_exactly_what_the_hub_refuses(region, monkeypatch, action, role, kind,
                                                       own):
    permission, act = ACTIONS[action]
    node = region.nodes[kind]
    facility = node.facility_id if own else region.other(kind)
    attempted = []

    def recording(conn, event_type, payload):
        attempted.append((event_type, dict(payload)))
        CHECK_LOCAL_EVENT(conn, event_type, payload)

    with monkeypatch.context() as patch:
        patch.setattr(store_module, "check_local_event", recording)
        actor = Actor(f"{role}-1", role, practitioner_id=region.doctor_id)
        try:
            act(region, node, actor, facility)
            node_ok = True
        except Forbidden:
            node_ok = False
    if permission not in ROLE_PERMISSIONS[role]:
        assert not node_ok and attempted == []  # the role alone refuses, before any write
        return
    assert attempted, "the node neither wrote nor refused by role"
    hub_ok = all(region.hub_verdict(kind, t, p) for t, p in attempted)
    assert node_ok == hub_ok, (action, role, kind, own, attempted)


def test_what_the_nodes_accepted_in_the_property_test_the_hub_accepts(region):
    """Runs after the property test (same module fixture): every event the nodes wrote."""
    region.sync()
    assert [row for row in refused_at_hub(region) if row["code"] == "not_permitted"] == []


@pytest.mark.parametrize("kind", ["clinic", "pharmacy"])
@pytest.mark.parametrize("role", STAFF_ROLES)
def test_staff_roles_follow_the_node_kind(region, kind, role):
    node = region.nodes[kind]
    admin = Actor("admin-1", "admin")
    username = f"{role}.{kind}.x"
    try:
        staff.create_staff(node.store, admin, username=username, full_name="Xodim", role=role,
                           pin="5829", practitioner_id=region.doctor_id if kind == "clinic"
                           else None)
        created = True
    except Forbidden:
        created = False
    assert created == role_allowed(role, kind)
