"""Issue 16 (a, b): facilities are provisioned data; a node's key is born on the node.

The station side (provisioning.enrolment_desk) and the node side (edge_node.enrolment, the
`dmed-node enrol` and `init` commands) meet through the request and answer documents, as
they do over HTTP or on a USB stick.
"""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from edge_node import enrolment
from edge_node.cli import main as node_cli
from edge_node.store import NodeStore
from provisioning import AlreadyExists, CaStore, InvalidRequest
from provisioning.enrolment_desk import MAX_CODE_ATTEMPTS, EnrolmentDesk, EnrolmentRefused
from provisioning.facilities import add_facility, list_facilities, signed_facility, update_facility
from sync_protocol.certificates import NodeIdentity
from sync_protocol.enrolment import EnrolmentError
from sync_protocol.enrolment_request import EnrolmentRequestInvalid, normalise_code
from sync_protocol.facility_record import FacilitySignatureInvalid, verify_facility

HOURS = {"mon": "08:00-17:00", "tue": "08:00-17:00", "sat": "09:00-13:00"}
CLINIC = dict(code="TAS-POL-012", kind="clinic", region="TAS",
              names={"uz": "12-son oilaviy poliklinika", "ru": "Семейная поликлиника № 12",
                     "en": "Family polyclinic No 12"},
              address="Chilonzor tumani, Bunyodkor ko'ch. 12", district="Chilonzor",
              opening_hours=HOURS)
PHARMACY = dict(code="TAS-APT-007", kind="pharmacy", region="TAS",
                names={"uz": "Qatortol dorixonasi", "ru": "Аптека Катартал",
                       "en": "Qatortol pharmacy"},
                address="Chilonzor tumani, Qatortol ko'ch. 3", district="Chilonzor")


@pytest.fixture
def ca(tmp_path):
    store = CaStore(tmp_path / "ca")
    store.init_root("DMED Test Root")
    store.add_region("TAS", "Toshkent shahri")
    add_facility(store, **CLINIC)
    add_facility(store, **PHARMACY)
    return store


@pytest.fixture
def desk(ca):
    return EnrolmentDesk(ca)


def clinic_identity(node_id="tas-pol-012-a", facility="TAS-POL-012", region="TAS",
                    kind="clinic"):
    return NodeIdentity(node_id, facility, region, kind)


def enrol(tmp_path, desk, identity=None, name="node"):
    """A node makes its request; the station receives it. Returns the node's data dir."""
    data_dir = tmp_path / name
    pending = enrolment.start(data_dir, identity or clinic_identity())
    desk.receive(pending.request, "127.0.0.1")
    return data_dir, pending


# -- (a) facilities as provisioned data ---------------------------------------------------

@pytest.mark.parametrize(("change", "field"), [
    ({"names": {"uz": "X", "ru": "Y"}}, "names"),
    ({"opening_hours": {}}, "opening_hours"),
    ({"opening_hours": {"mon": "8-17"}}, "opening_hours"),
    ({"opening_hours": {"holiday": "08:00-17:00"}}, "opening_hours"),
    ({"kind": "shop"}, "kind"),
    ({"code": "bad code"}, "code"),
    ({"district": ""}, "district"),
])
def test_a_facility_with_bad_details_is_refused_and_nothing_saved(ca, change, field):
    with pytest.raises(InvalidRequest) as error:
        add_facility(ca, **{**CLINIC, "code": "TAS-POL-013", **change})
    assert error.value.field == field
    assert [f.code for f in list_facilities(ca)] == ["TAS-APT-007", "TAS-POL-012"]


def test_a_facility_code_is_unique_and_region_must_be_held(ca):
    with pytest.raises(AlreadyExists):
        add_facility(ca, **CLINIC)
    with pytest.raises(Exception, match="Region SAM"):
        add_facility(ca, **{**CLINIC, "code": "SAM-POL-1", "region": "SAM"})


def test_a_facility_record_is_signed_by_its_region_and_tampering_is_caught(ca):
    signed = signed_facility(ca, "TAS-POL-012")
    region = ca.region("TAS")
    assert verify_facility(signed, region.cert).names["ru"] == "Семейная поликлиника № 12"
    forged = json.loads(json.dumps(signed))
    forged["record"]["address"] = "somewhere else"
    with pytest.raises(FacilitySignatureInvalid):
        verify_facility(forged, region.cert)


def test_a_changing_a_facility_grows_its_revision_and_keeps_its_id(ca):
    before = list_facilities(ca)[1]
    after = update_facility(ca, "TAS-POL-012", address="Yangi manzil 1")
    assert (after.facility_id, after.revision, after.address) == (
        before.facility_id, before.revision + 1, "Yangi manzil 1")
    with pytest.raises(InvalidRequest):
        update_facility(ca, "TAS-POL-012", kind="pharmacy")


def test_a_bundle_carries_the_facility_and_init_gives_a_node_that_serves(ca, tmp_path):
    bundle = tmp_path / "pharmacy-bundle"
    ca.add_node("TAS", "tas-apt-007-a", "TAS-APT-007", "pharmacy", out=bundle,
                facility=signed_facility(ca, "TAS-APT-007"))
    db = tmp_path / "pharmacy" / "node.db"
    db.parent.mkdir()
    result = CliRunner().invoke(node_cli, ["init", "--db", str(db), "--bundle", str(bundle)])
    assert result.exit_code == 0, result.output
    assert "TAS-APT-007" in result.output
    store = NodeStore(db)
    record = list_facilities(ca)[0]
    assert store.facility_id == record.facility_id
    row = store.one("SELECT * FROM facilities WHERE facility_id = ?", (record.facility_id,))
    assert (row["code"], row["kind"], row["name"]) == ("TAS-APT-007", "pharmacy",
                                                       "Qatortol dorixonasi")
    assert json.loads(store.state("facility_profile"))["names"]["en"] == "Qatortol pharmacy"
    assert [e.type for e in store.events()] == ["FacilityRegistered"]


# -- (b) keys born on the node --------------------------------------------------------------

def test_b_node_key_is_born_0600_and_request_holds_only_public_parts(tmp_path, desk):
    data_dir, pending = enrol(tmp_path, desk)
    key = data_dir / "enrolment" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "PRIVATE" not in json.dumps(pending.request)
    assert len(normalise_code(pending.code)) == 8
    listed = desk.requests("pending")
    assert [(r["node_id"], r["fingerprint"]) for r in listed] == [
        ("tas-pol-012-a", pending.fingerprint)]
    with pytest.raises(EnrolmentError, match="has a key already"):
        enrolment.start(data_dir, clinic_identity())


def test_b_approved_request_enrols_the_node_with_its_facility(tmp_path, desk, ca):
    data_dir, pending = enrol(tmp_path, desk)
    answer = desk.approve(pending.request_id, code=pending.code.lower(),
                          facility_code="TAS-POL-012", actor="operator1")
    installed = enrolment.install_answer(data_dir, answer)
    assert installed.identity == clinic_identity()
    assert installed.key.public_key() == enrolment.read_private_key(
        data_dir / "enrolment" / "key.pem").public_key()
    db = data_dir / "node.db"
    result = CliRunner().invoke(node_cli, ["init", "--db", str(db)])
    assert result.exit_code == 0, result.output
    store = NodeStore(db)
    assert store.node_id == "tas-pol-012-a"
    assert store.one("SELECT code FROM facilities")["code"] == "TAS-POL-012"
    assert ca.trust_list().node_certificates("tas-pol-012-a")[0] == installed.cert
    actions = [(a["action"], a["outcome"], a["actor"]) for a in desk.audit_trail()]
    assert ("approve", "approved", "operator1") in actions


def test_b_node_private_key_is_nowhere_in_the_station(tmp_path, desk, ca):
    data_dir, pending = enrol(tmp_path, desk)
    enrolment.install_answer(data_dir, desk.approve(
        pending.request_id, code=pending.code, facility_code="TAS-POL-012", actor="op"))
    key = enrolment.read_private_key(data_dir / "enrolment" / "key.pem")
    secret = key.private_numbers().private_value
    needles = [(data_dir / "enrolment" / "key.pem").read_bytes().split(b"\n")[1],
               secret.to_bytes(32, "big"), format(secret, "x").encode()]
    for file in ca.directory.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert not any(n in data for n in needles), file


@pytest.mark.parametrize(("facility", "code"), [
    ("TAS-APT-007", "wrong_facility"),  # CSR names the clinic, operator picked the pharmacy
    ("TAS-NONE-1", "not_found"),
])
def test_b_csr_for_another_facility_is_refused_nothing_issued(tmp_path, desk, ca, facility,
                                                                code):
    _data_dir, pending = enrol(tmp_path, desk)
    before = ca.trust_list().digest()
    with pytest.raises(Exception) as error:
        desk.approve(pending.request_id, code=pending.code, facility_code=facility, actor="op")
    assert error.value.code == code
    assert ca.trust_list().digest() == before
    assert desk.decision(pending.request_id).state == "pending"


def test_b_csr_of_the_wrong_kind_for_its_facility_is_refused(tmp_path, desk, ca):
    identity = clinic_identity("tas-apt-x", "TAS-APT-007", kind="clinic")
    _data_dir, pending = enrol(tmp_path, desk, identity)
    with pytest.raises(EnrolmentRefused) as error:
        desk.approve(pending.request_id, code=pending.code, facility_code="TAS-APT-007",
                     actor="op")
    assert error.value.code == "wrong_kind"


def test_b_csr_for_another_region_is_refused_at_the_door(tmp_path, desk):
    pending = enrolment.start(tmp_path / "n", clinic_identity(facility="SAM-POL-1",
                                                              region="SAM"))
    with pytest.raises(EnrolmentRefused, match="region SAM"):
        desk.receive(pending.request, "10.0.0.9")
    assert desk.requests() == []


def test_b_wrong_code_is_refused_audited_and_locks_after_attempts(tmp_path, desk, ca):
    _data_dir, pending = enrol(tmp_path, desk)
    before = ca.trust_list().digest()
    for _ in range(MAX_CODE_ATTEMPTS):
        with pytest.raises(EnrolmentRefused) as error:
            desk.approve(pending.request_id, code="AAAA-AAAA", facility_code="TAS-POL-012",
                         actor="op")
        assert error.value.code == "wrong_code"
    assert desk.decision(pending.request_id).state == "refused"
    with pytest.raises(EnrolmentRefused) as error:  # even the right code now
        desk.approve(pending.request_id, code=pending.code, facility_code="TAS-POL-012",
                     actor="op")
    assert error.value.code == "replayed"
    assert ca.trust_list().digest() == before
    outcomes = [a["outcome"] for a in desk.audit_trail() if a["action"] == "approve"]
    assert outcomes == ["refused"] * (MAX_CODE_ATTEMPTS + 1)


def test_b_replayed_request_is_refused(tmp_path, desk):
    _data_dir, pending = enrol(tmp_path, desk)
    with pytest.raises(AlreadyExists):
        desk.receive(pending.request, "127.0.0.1")
    desk.approve(pending.request_id, code=pending.code, facility_code="TAS-POL-012", actor="op")
    with pytest.raises(EnrolmentRefused) as error:
        desk.approve(pending.request_id, code=pending.code, facility_code="TAS-POL-012",
                     actor="op")
    assert error.value.code == "replayed"


def test_b_expired_request_is_refused(tmp_path, desk, ca):
    _data_dir, pending = enrol(tmp_path, desk)
    later = datetime.now(UTC) + timedelta(hours=25)
    with pytest.raises(EnrolmentRefused) as error:
        desk.approve(pending.request_id, code=pending.code, facility_code="TAS-POL-012",
                     actor="op", now=later)
    assert error.value.code == "expired"
    old = enrolment.start(tmp_path / "old", clinic_identity("tas-old"),
                          now=datetime.now(UTC) - timedelta(hours=30))
    with pytest.raises(EnrolmentRefused, match="expired"):
        desk.receive(old.request, "127.0.0.1")


def test_b_tampered_request_is_refused(tmp_path, desk):
    pending = enrolment.start(tmp_path / "n", clinic_identity())
    forged = {**pending.request, "csr": pending.request["csr"].replace("MII", "MIJ", 1)}
    with pytest.raises(EnrolmentRequestInvalid):
        desk.receive(forged, "127.0.0.1")


def test_b_renewal_gives_a_new_key_and_a_revoked_node_cannot_renew(tmp_path, desk, ca):
    data_dir, pending = enrol(tmp_path, desk)
    first = enrolment.install_answer(data_dir, desk.approve(
        pending.request_id, code=pending.code, facility_code="TAS-POL-012", actor="op"))
    renewal = enrolment.start_renewal(data_dir)
    desk.receive(renewal.request, "127.0.0.1")
    renewed = enrolment.install_answer(data_dir, desk.approve(
        renewal.request_id, code=renewal.code, facility_code="TAS-POL-012", actor="op"))
    assert renewed.kid != first.kid and renewed.identity == first.identity
    assert renewed.key.public_key() != first.key.public_key()
    assert not (data_dir / enrolment.RENEW_DIR).exists()

    ca.revoke_node("tas-pol-012-a", "stolen")
    again = enrolment.start_renewal(data_dir)
    desk.receive(again.request, "127.0.0.1")
    before = ca.trust_list().digest()
    with pytest.raises(EnrolmentRefused, match="revoked") as error:
        desk.approve(again.request_id, code=again.code, facility_code="TAS-POL-012",
                     actor="op")
    assert error.value.code == "revoked"
    assert ca.trust_list().digest() == before


def test_b_second_enrolment_of_an_enrolled_node_is_refused(tmp_path, desk):
    data_dir, pending = enrol(tmp_path, desk)
    desk.approve(pending.request_id, code=pending.code, facility_code="TAS-POL-012", actor="op")
    _other, intruder = enrol(tmp_path, desk, name="intruder")
    with pytest.raises(EnrolmentRefused) as error:
        desk.approve(intruder.request_id, code=intruder.code, facility_code="TAS-POL-012",
                     actor="op")
    assert error.value.code == "already_enrolled"


def test_b_node_refuses_an_answer_for_another_request_or_key(tmp_path, desk):
    data_dir, pending = enrol(tmp_path, desk)
    other_dir, other = enrol(tmp_path, desk, clinic_identity("tas-pol-012-b"), name="other")
    answer = desk.approve(other.request_id, code=other.code, facility_code="TAS-POL-012",
                          actor="op")
    with pytest.raises(EnrolmentError, match="is for request"):
        enrolment.install_answer(data_dir, answer)
    with pytest.raises(EnrolmentError):  # right id, someone else's certificate
        enrolment.install_answer(data_dir, {**answer, "request_id": pending.request_id})
    assert not enrolment.is_enrolled(data_dir)
    assert enrolment.install_answer(other_dir, answer).identity.node_id == "tas-pol-012-b"


def test_b_refuse_needs_a_reason_and_is_audited(tmp_path, desk):
    _data_dir, pending = enrol(tmp_path, desk)
    with pytest.raises(InvalidRequest):
        desk.refuse(pending.request_id, actor="op", reason="  ")
    desk.refuse(pending.request_id, actor="op", reason="unknown device")
    assert desk.decision(pending.request_id).state == "refused"
    assert desk.audit_trail()[0]["detail"] == "unknown device"


def test_b_enrol_command_shows_code_and_fingerprint_and_installs_an_answer_file(tmp_path, desk):
    db = tmp_path / "node" / "node.db"
    db.parent.mkdir()
    runner = CliRunner()
    result = runner.invoke(node_cli, ["enrol", "--db", str(db), "--node-id", "tas-apt-007-a",
                                      "--facility", "TAS-APT-007", "--region", "TAS",
                                      "--kind", "pharmacy"])
    assert result.exit_code == 0, result.output
    pending = enrolment.pending(db.parent / "enrolment")
    assert pending.code in result.output and pending.fingerprint in result.output
    desk.receive(json.loads((db.parent / "enrolment" / "request.json").read_text()), "usb")
    answer_file = tmp_path / "answer.json"
    answer_file.write_text(json.dumps(desk.approve(
        pending.request_id, code=pending.code, facility_code="TAS-APT-007", actor="op")))
    result = runner.invoke(node_cli, ["enrol", "--db", str(db), "--answer", str(answer_file)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(node_cli, ["init", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert NodeStore(db).one("SELECT kind FROM facilities")["kind"] == "pharmacy"
    missing = runner.invoke(node_cli, ["enrol", "--db", str(tmp_path / "x" / "n.db"),
                                       "--node-id", "a"])
    assert missing.exit_code != 0 and "--facility" in missing.output


def test_b_a_flood_of_requests_is_capped(tmp_path, desk, monkeypatch):
    from provisioning import enrolment_desk
    monkeypatch.setattr(enrolment_desk, "MAX_PENDING", 2)
    enrol(tmp_path, desk, clinic_identity("tas-a"), name="a")
    enrol(tmp_path, desk, clinic_identity("tas-b"), name="b")
    with pytest.raises(EnrolmentRefused) as error:
        enrol(tmp_path, desk, clinic_identity("tas-c"), name="c")
    assert error.value.code == "too_many_pending"
    assert len(desk.requests("pending")) == 2
