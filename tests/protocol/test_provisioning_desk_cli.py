"""Issue 16: dmed-provision facility and desk commands, and the offline region key by files."""

from __future__ import annotations

import json

import pytest

from edge_node import enrolment
from provisioning import CaStore, read_bundle
from provisioning.cli import main
from provisioning.enrolment_desk import EnrolmentDesk, EnrolmentRefused, import_answer
from sync_protocol.certificates import NodeIdentity

CLINIC_ARGS = ["--region", "TAS", "--code", "TAS-POL-012", "--kind", "clinic",
               "--name-uz", "12-son poliklinika", "--name-ru", "Поликлиника № 12",
               "--name-en", "Polyclinic No 12", "--address", "Bunyodkor 12",
               "--district", "Chilonzor", "--hours", "mon=08:00-17:00",
               "--hours", "tue=08:00-17:00"]


def run(runner, *args):
    result = runner.invoke(main, [str(a) for a in args])
    return result


@pytest.fixture
def ca_dir(tmp_path, runner):
    ca = tmp_path / "ca"
    assert run(runner, "init-root", "--dir", ca, "--name", "Root").exit_code == 0
    assert run(runner, "add-region", "--dir", ca, "--code", "TAS", "--name", "T").exit_code == 0
    result = run(runner, "add-facility", "--dir", ca, *CLINIC_ARGS)
    assert result.exit_code == 0, result.output
    return ca


def test_add_facility_lists_it_and_refuses_bad_hours(runner, ca_dir):
    trail = EnrolmentDesk(CaStore(ca_dir)).audit_trail()
    assert [(a["action"], a["target"]) for a in trail] == [("add_facility", "TAS-POL-012")]
    listed = run(runner, "facilities", "--dir", ca_dir)
    assert "TAS-POL-012  clinic  TAS  Chilonzor  12-son poliklinika" in listed.output
    bad = run(runner, "add-facility", "--dir", ca_dir,
              *[a if a != "TAS-POL-012" else "TAS-POL-13" for a in CLINIC_ARGS[:-4]],
              "--hours", "monday")
    assert bad.exit_code != 0 and "DAY=HH:MM-HH:MM" in bad.output
    no_hours = run(runner, "add-facility", "--dir", ca_dir,
                   *[a if a != "TAS-POL-012" else "TAS-POL-13" for a in CLINIC_ARGS[:-4]])
    assert no_hours.exit_code == 1 and "opening hours" in no_hours.output
    assert "TAS-POL-13" not in run(runner, "facilities", "--dir", ca_dir).output


def test_add_node_bundle_carries_the_provisioned_facility(runner, ca_dir, tmp_path):
    out = tmp_path / "b.json"
    result = run(runner, "add-node", "--insecure-plain-key",
        "--dir", ca_dir, "--region", "TAS", "--node-id", "n1",
                 "--facility", "TAS-POL-012", "--kind", "clinic", "--out", out)
    assert result.exit_code == 0, result.output
    assert read_bundle(out).facility["record"]["names"]["en"] == "Polyclinic No 12"


def test_requests_approve_by_cli_and_wrong_code_message(runner, ca_dir, tmp_path):
    pending = enrolment.start(tmp_path / "node",
                              NodeIdentity("n1", "TAS-POL-012", "TAS", "clinic"))
    assert run(runner, "receive", "--dir", ca_dir,
               tmp_path / "node" / "enrolment" / "request.json").exit_code == 0
    listed = run(runner, "requests", "--dir", ca_dir, "--state", "pending")
    assert pending.fingerprint in listed.output and "from file request.json" in listed.output
    wrong = run(runner, "approve", "--dir", ca_dir, "--request", pending.request_id,
                "--code", "0000-0000", "--facility", "TAS-POL-012", "--operator", "op")
    assert wrong.exit_code == 1
    assert "The code does not match the one shown on the node." in wrong.output
    answer = tmp_path / "answer.json"
    ok = run(runner, "approve", "--dir", ca_dir, "--request", pending.request_id,
             "--code", pending.code, "--facility", "TAS-POL-012", "--operator", "op",
             "--out", answer)
    assert ok.exit_code == 0, ok.output
    installed = enrolment.install_answer(tmp_path / "node", json.loads(answer.read_text()))
    assert installed.identity.node_id == "n1"


def test_offline_region_key_by_exported_requests_and_imported_answers(runner, ca_dir,
                                                                      tmp_path):
    """The station holds no region key: requests go out as a file, answers come back."""
    station = CaStore(tmp_path / "station")
    station.directory.mkdir()
    for name in ("trust-list.json", "facilities.json"):
        (station.directory / name).write_bytes((ca_dir / name).read_bytes())
    (station.directory / "regions" / "TAS").mkdir(parents=True)  # the region, without its key
    desk = EnrolmentDesk(station)
    pending = enrolment.start(tmp_path / "node",
                              NodeIdentity("n1", "TAS-POL-012", "TAS", "clinic"))
    desk.receive(pending.request, "192.168.1.20")
    exported = tmp_path / "requests.json"
    assert run(runner, "export-requests", "--dir", station.directory, "--out",
               exported).exit_code == 0
    assert run(runner, "receive", "--dir", ca_dir, exported).exit_code == 0
    answer = tmp_path / "answer.json"
    assert run(runner, "approve", "--dir", ca_dir, "--request", pending.request_id, "--code",
               pending.code, "--facility", "TAS-POL-012", "--operator", "op", "--out",
               answer).exit_code == 0
    other = enrolment.start(tmp_path / "other",
                            NodeIdentity("n2", "TAS-POL-012", "TAS", "clinic"))
    desk.receive(other.request, "192.168.1.21")
    with pytest.raises(EnrolmentRefused, match="another key"):  # answer swapped onto n2
        import_answer(desk, {**json.loads(answer.read_text()),
                             "request_id": other.request_id}, actor="op")
    result = run(runner, "import-answer", "--dir", station.directory, answer, "--operator", "op")
    assert result.exit_code == 0, result.output
    decision = desk.decision(pending.request_id)
    assert decision.state == "approved"
    installed = enrolment.install_answer(tmp_path / "node", decision.answer)
    assert installed.identity.node_id == "n1"
    again = run(runner, "import-answer", "--dir", station.directory, answer, "--operator", "op")
    assert again.exit_code == 1 and "No pending request" in again.output
