"""`dmed-node` through click's runner: every command documented and working."""

import json

import pytest
from click.testing import CliRunner

from edge_node.cli import main


@pytest.fixture
def runner():
    return CliRunner()


def test_every_command_is_documented(runner):
    for name, command in main.commands.items():
        assert command.help and len(command.help) > 10, name
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, f"{name} --{param.name}"
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0


def test_init_seed_export_verify_rebuild(runner, tmp_path):
    db = str(tmp_path / "node.db")
    assert "ready" in runner.invoke(main, ["init", "--db", db, "--node-id", "node-x"]).output
    seeded = runner.invoke(main, ["seed-demo", "--db", db])
    assert seeded.exit_code == 0, seeded.output
    sign_ins = json.loads(seeded.output[seeded.output.index("{"):])["sign_ins"]
    assert {s["role"] for s in sign_ins} == {"admin", "registrar", "doctor", "pharmacist"}
    exported = runner.invoke(main, ["export-log", "--db", db])
    lines = [json.loads(line) for line in exported.output.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert {e["origin"] for e in lines} == {"node-x"}
    assert "verified" in runner.invoke(main, ["verify-log", "--db", db]).output
    assert f"from {len(lines)} events" in runner.invoke(main, ["rebuild", "--db", db]).output


def test_create_staff_refuses_a_bad_pin_cleanly(runner, tmp_path):
    db = str(tmp_path / "node.db")
    runner.invoke(main, ["init", "--db", db])
    result = runner.invoke(main, ["create-staff", "--db", db, "--username", "ali",
                                  "--full-name", "Ali", "--role", "registrar", "--pin", "12"])
    assert result.exit_code == 1
    assert "PIN must be 4 to 8 digits" in result.output
    ok = runner.invoke(main, ["create-staff", "--db", db, "--username", "ali",
                              "--full-name", "Ali", "--role", "registrar", "--pin", "4826"])
    assert ok.exit_code == 0 and "4826" not in ok.output


def test_config_hides_secrets(runner, monkeypatch):
    monkeypatch.setenv("DMED_SECRET_KEY", "very-secret-value")
    result = runner.invoke(main, ["config"])
    assert "very-secret-value" not in result.output
    assert "DMED_DATABASE=" in result.output


def test_init_with_a_bundle_takes_the_provisioned_identity(runner, tmp_path):
    import stat

    from helpers.pki import make_pki
    pki = make_pki(tmp_path / "pki")
    db = tmp_path / "node" / "node.db"
    db.parent.mkdir()
    result = runner.invoke(main, ["init", "--db", str(db),
                                  "--bundle", str(pki.paths["clinic_bundle"])])
    assert result.exit_code == 0, result.output
    assert pki.clinic.identity.node_id in result.output
    key = db.parent / "enrolment" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in result.output
    again = runner.invoke(main, ["init", "--db", str(db), "--bundle",
                                 str(pki.paths["pharmacy_bundle"])])
    assert pki.clinic.identity.node_id in again.output  # identity is never replaced


def test_init_refuses_a_broken_bundle(runner, tmp_path):
    broken = tmp_path / "bundle.json"
    broken.write_text('{"format": "something else"}')
    result = runner.invoke(main, ["init", "--db", str(tmp_path / "n.db"),
                                  "--bundle", str(broken)])
    assert result.exit_code == 1
    assert not (tmp_path / "enrolment.json").exists()


def test_seed_demo_follows_the_kind_in_the_bundle(runner, tmp_path):
    from helpers.pki import make_pki
    pki = make_pki(tmp_path / "pki")
    db = tmp_path / "pharmacy" / "node.db"
    db.parent.mkdir()
    runner.invoke(main, ["init", "--db", str(db), "--bundle", str(pki.paths["pharmacy_bundle"])])
    seeded = runner.invoke(main, ["seed-demo", "--db", str(db)])
    assert seeded.exit_code == 0, seeded.output
    roles = {s["role"] for s in json.loads(seeded.output[seeded.output.index("{"):])["sign_ins"]}
    assert roles == {"admin", "pharmacist"}
    from edge_node.store import NodeStore
    facility = NodeStore(db).one("SELECT code, kind FROM facilities")
    assert (facility["code"], facility["kind"]) == (pki.pharmacy.identity.facility_code,
                                                    "pharmacy")


def test_create_staff_on_a_synced_pharmacy_refuses_a_doctor(runner, tmp_path, monkeypatch):
    """Issue 11.5: the CLI of a node that syncs obeys the same rules as its API."""
    from helpers.pki import make_pki
    pki = make_pki(tmp_path / "pki")
    db = str(tmp_path / "node.db")
    runner.invoke(main, ["init", "--db", db, "--bundle", str(pki.paths["pharmacy_bundle"])])
    assert runner.invoke(main, ["seed-demo", "--db", db]).exit_code == 0
    args = ["create-staff", "--db", db, "--full-name", "Doktor", "--pin", "5829"]
    monkeypatch.setenv("DMED_HUB_URL", "http://127.0.0.1:9")
    refused = runner.invoke(main, [*args, "--username", "doktor", "--role", "doctor"])
    assert refused.exit_code != 0 and "no doctor accounts" in refused.output
    assert runner.invoke(main, [*args, "--username", "dorixona2",
                                "--role", "pharmacist"]).exit_code == 0
