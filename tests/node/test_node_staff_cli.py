"""Issue 16: `dmed-node staff add` puts a facility's people on a node put into service by the
README's commands: a doctor gets a practitioner record of the node's own facility and an
account that can prescribe; names, usernames, PINs and the roles a node's kind may have are
checked before anything is written; the PIN is stored hashed only; every addition and every
refusal is in the staff audit."""

from __future__ import annotations

import secrets

import pytest
from click.testing import CliRunner

from edge_node import enrolment
from edge_node.cli import main
from edge_node.services import staff
from edge_node.services.staff_admin import staff_audit
from edge_node.store import NodeStore
from provisioning import CaStore
from provisioning.enrolment_desk import EnrolmentDesk
from provisioning.facilities import add_facility
from sync_protocol.certificates import NodeIdentity

NAMES = {"uz": "Nom", "ru": "Имя", "en": "Name"}
NODES = {"clinic": "TAS-POL-012", "pharmacy": "TAS-APT-007"}
PIN = "4821"


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    store = CaStore(tmp_path_factory.mktemp("region") / "ca")
    store.init_root("DMED National Root")
    store.add_region("TAS", "Toshkent shahri")
    for kind, code in NODES.items():
        add_facility(store, code=code, kind=kind, region="TAS", names=NAMES,
                     address="Bunyodkor 12", district="Chilonzor",
                     opening_hours={"mon": "08:00-17:00"} if kind == "clinic" else {})
    return EnrolmentDesk(store)


@pytest.fixture
def node(region, tmp_path, monkeypatch):
    """A node enrolled and initialised as the README says; returns its database path."""
    monkeypatch.delenv("DMED_HUB_URL", raising=False)
    monkeypatch.delenv("DMED_STAFF_PIN", raising=False)

    def make(kind: str) -> str:
        code = NODES[kind]
        node_id = f"{code.lower()}-{secrets.token_hex(3)}"  # one region for all the tests
        data_dir = tmp_path / kind
        pending = enrolment.start(data_dir, NodeIdentity(node_id, code, "TAS", kind))
        region.receive(pending.request, "127.0.0.1")
        enrolment.install_answer(data_dir, region.approve(
            pending.request_id, code=pending.code, facility_code=code, actor="op"))
        db = str(data_dir / "node.db")
        assert code in invoke("init", "--db", db).output
        return db
    return make


def invoke(*args, code=0, env=None):
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    assert result.exit_code == code, result.output
    return result


def add(db, *args, code=0, pin=PIN):
    return invoke("staff", "add", "--db", db, *args, code=code, env={"DMED_STAFF_PIN": pin})


def test_a_doctor_added_at_a_clinic_can_sign_in_and_prescribe(node):
    db = node("clinic")
    out = add(db, "--username", "Dr.Karimova", "--full-name", "Karimova Dilnoza Rustamovna",
              "--role", "doctor", "--specialty", "family_medicine", "--family-doctor",
              "--operator", "it-karimov").output
    assert "added dr.karimova (doctor)" in out
    store = NodeStore(db)
    account = store.one("SELECT * FROM staff WHERE username = 'dr.karimova'")
    assert account["pin_hash"].startswith("$argon2id$") and PIN not in account["pin_hash"]
    doctor = store.one("SELECT * FROM practitioners WHERE practitioner_id = ?",
                       (account["practitioner_id"],))
    assert doctor["facility_id"] == store.state("facility_id")
    assert doctor["specialty"] == "family_medicine" and doctor["is_family_doctor"] == 1
    assert doctor["full_name"] == "Karimova Dilnoza Rustamovna"
    assert store.one("SELECT 1 FROM events WHERE type = 'PractitionerRegistered'")
    token = staff.sign_in(store, "dr.karimova", PIN)["token"]
    actor = staff.actor_for_token(store, token)
    assert actor.can("prescribe") and actor.practitioner_id == doctor["practitioner_id"]
    [entry] = staff_audit(store)
    assert (entry["actor"], entry["username"], entry["role"], entry["outcome"]) == (
        "it-karimov", "dr.karimova", "doctor", "done")
    assert PIN not in str(entry)
    listed = invoke("staff", "list", "--db", db).output
    assert "dr.karimova  doctor  Karimova Dilnoza Rustamovna" in listed
    assert "it-karimov" in invoke("staff", "list", "--db", db, "--audit").output


def test_a_pharmacist_at_a_pharmacy_and_the_default_operator(node):
    db = node("pharmacy")
    add(db, "--username", "pharmacist", "--full-name", "Yusupov Bekzod", "--role",
        "pharmacist")
    store = NodeStore(db)
    assert staff.sign_in(store, "pharmacist", PIN)["role"] == "pharmacist"
    assert staff_audit(store)[0]["actor"].startswith("cli:")


@pytest.mark.parametrize(("kind", "args", "pin", "message"), [
    ("pharmacy", ["--role", "doctor", "--specialty", "therapy"], PIN,
     "A pharmacy node has no doctor accounts; its roles are pharmacist, admin"),
    ("clinic", ["--role", "pharmacist"], PIN, "A clinic node has no pharmacist accounts"),
    ("clinic", ["--role", "doctor"], PIN, "A doctor needs a specialty"),
    ("clinic", ["--role", "registrar", "--specialty", "therapy"], PIN,
     "Only a doctor has a specialty"),
    ("clinic", ["--role", "registrar"], "3456", "too easy to guess"),
    ("clinic", ["--role", "registrar"], "7777", "too easy to guess"),
    ("clinic", ["--role", "registrar"], "98765", "too easy to guess"),
    ("clinic", ["--role", "registrar"], "12a4", "PIN must be 4 to 8 digits"),
    ("clinic", ["--role", "registrar"], "123456789", "PIN must be 4 to 8 digits"),
    ("clinic", ["--role", "registrar", "--full-name", "X"], PIN, "Full name must be"),
    ("clinic", ["--role", "registrar", "--full-name", "Robert'); DROP TABLE staff;--"], PIN,
     "Full name must be"),
    ("clinic", ["--role", "registrar", "--username", "dilnoza karimova"], PIN,
     "Username must be letters"),
])
def test_bad_input_is_refused_clearly_nothing_written_and_audited(node, kind, args, pin,
                                                                   message):
    db = node(kind)
    defaults = {"--username": "someone", "--full-name": "Aliyeva Madina"}
    for option, value in defaults.items():
        if option not in args:
            args = [*args, option, value]
    result = add(db, *args, code=1, pin=pin)
    assert message in result.output
    store = NodeStore(db)
    assert store.one("SELECT COUNT(*) AS n FROM staff")["n"] == 0
    assert store.one("SELECT COUNT(*) AS n FROM practitioners")["n"] == 0
    [entry] = staff_audit(store)
    assert entry["outcome"] == "refused" and message in entry["detail"]
    assert pin not in entry["detail"]


def test_a_taken_username_registers_no_second_doctor(node):
    db = node("clinic")
    doctor = ["--username", "doctor", "--full-name", "Karimova Dilnoza", "--role", "doctor",
              "--specialty", "therapy"]
    add(db, *doctor)
    assert "Username doctor is taken" in add(db, *doctor, code=1).output
    assert NodeStore(db).one("SELECT COUNT(*) AS n FROM practitioners")["n"] == 1


def test_a_node_without_its_facility_is_told_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("DMED_HUB_URL", raising=False)
    db = str(tmp_path / "node.db")
    invoke("init", "--db", db, "--node-id", "node-x")
    result = add(db, "--username", "a", "--full-name", "Aliyeva Madina", "--role", "admin",
                 code=1)
    assert "no facility yet" in result.output and "dmed-node init" in result.output
