"""Issue 16 (a): changing a facility's details later is a signed event from the region that
reaches its nodes by sync (dmed-provision update-facility -> dmed-hub facility-update ->
FacilityDetailsChanged, checked at the hub and again at the node)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers.enrolments import Role
from helpers.sync_world import Hub, Node

from central_hub.cli import main as hub_cli
from edge_node.cli import main as node_cli
from edge_node.credentials import load_credentials
from edge_node.projections import HANDLERS
from edge_node.store import NodeStore
from provisioning import CaStore
from provisioning.cli import main as provision_cli
from provisioning.facilities import add_facility, signed_facility
from sync_protocol.certificates import NodeKind
from sync_protocol.events import GENESIS_HASH, seal
from sync_protocol.hlc import ZERO, HybridLogicalClock
from sync_protocol.identifiers import new_ulid

ROLE = Role("clinic", "tas-pol-012-a", "TAS-POL-012", NodeKind.CLINIC)
CLINIC = dict(code="TAS-POL-012", kind="clinic", region="TAS",
              names={"uz": "12-son poliklinika", "ru": "Поликлиника № 12",
                     "en": "Polyclinic 12"}, address="Bunyodkor 12", district="Chilonzor",
              opening_hours={"mon": "08:00-17:00"})


def invoke(cli, *args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.delenv("DMED_CA_PASSPHRASE", raising=False)
    ca = CaStore(tmp_path / "ca")
    ca.init_root("Root")
    ca.add_region("TAS", "Toshkent shahri")
    add_facility(ca, **CLINIC)
    bundle = tmp_path / "bundle"
    ca.add_node("TAS", ROLE.node_id, ROLE.facility_code, "clinic", out=bundle,
                facility=signed_facility(ca, ROLE.facility_code))
    db = tmp_path / "node" / "node.db"
    db.parent.mkdir()
    assert invoke(node_cli, "init", "--db", db, "--bundle", bundle).exit_code == 0
    hub = Hub(f"sqlite:///{tmp_path / 'hub.db'}", ca.trust_list())
    node = Node(ROLE, NodeStore(db), load_credentials(db.parent / "enrolment"), hub.url,
                web=False)
    assert node.sync()["ok"]
    yield ca, hub, node, tmp_path
    hub.close()


def test_region_change_reaches_the_node_by_sync(world):
    ca, hub, node, tmp_path = world
    record = tmp_path / "update.json"
    result = invoke(provision_cli, "update-facility", "--dir", ca.directory, "--code",
                    "TAS-POL-012", "--address", "Yangi manzil 5", "--name-uz",
                    "12-son oilaviy poliklinika", "--out", record)
    assert result.exit_code == 0, result.output
    published = invoke(hub_cli, "facility-update", "--db", hub.db_url, "--record", record)
    assert published.exit_code == 0, published.output
    assert node.sync()["ok"]
    row = node.store.one("SELECT name, address FROM facilities")
    assert (row["name"], row["address"]) == ("12-son oilaviy poliklinika", "Yangi manzil 5")
    profile = json.loads(node.store.state("facility_profile"))
    assert (profile["revision"], profile["names"]["ru"]) == (2, "Поликлиника № 12")
    assert node.store.query("SELECT * FROM apply_failures") == []
    again = invoke(hub_cli, "facility-update", "--db", hub.db_url, "--record", record)
    assert again.exit_code == 1 and "is not newer than 2" in again.output


def test_a_forged_change_is_refused_at_the_hub(world):
    ca, hub, node, tmp_path = world
    record = tmp_path / "update.json"
    invoke(provision_cli, "update-facility", "--dir", ca.directory, "--code", "TAS-POL-012",
           "--address", "Yangi manzil 5", "--out", record)
    forged = json.loads(record.read_text())
    forged["record"]["address"] = "Somewhere else"
    record.write_text(json.dumps(forged))
    result = invoke(hub_cli, "facility-update", "--db", hub.db_url, "--record", record)
    assert result.exit_code == 1 and "is not signed by its region" in result.output
    assert node.sync()["ok"]
    assert node.store.one("SELECT address FROM facilities")["address"] == "Bunyodkor 12"


def test_the_node_checks_the_signature_again(world):
    ca, _hub, node, _tmp_path = world
    with node.store.transaction() as tx:  # the node holds the region's trust list
        node.store.set_state(tx.conn, "trust_list", ca.trust_list().to_json())
    signed = signed_facility(ca, "TAS-POL-012")
    signed["record"]["address"] = "Forged"
    event = seal(id=new_ulid(), origin="hub", seq=1, hlc=HybridLogicalClock(ZERO).now(),
                 type="FacilityDetailsChanged", version=1,
                 payload={"facility_id": signed["record"]["facility_id"], "revision": 1,
                          "signed": signed}, prev_hash=GENESIS_HASH)
    with pytest.raises(Exception, match="not signed by its region"):
        with node.store.transaction() as tx:
            HANDLERS["FacilityDetailsChanged"](tx.conn, event)
    assert node.store.one("SELECT address FROM facilities")["address"] == "Bunyodkor 12"
