"""`dmed-hub` through click's runner: every command documented and working."""

import json

import pytest
from click.testing import CliRunner
from helpers.hub import SimNode
from helpers.pki import CLINIC_ID, make_pki

from central_hub.cli import main
from central_hub.composition import open_storage
from central_hub.web.app import create_app
from provisioning.pki import revoke
from sync_protocol.trust_list import TrustList


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A PKI with its trust list written to a file, as dmed-provision leaves it."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_every_command_is_documented(runner):
    for name, command in main.commands.items():
        assert command.help and len(command.help) > 10, name
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, f"{name} --{param.name}"
        assert runner.invoke(main, [name, "--help"]).exit_code == 0


def test_init_nodes_and_trust_import(runner, storage_url, files, tmp_path):
    trust = str(files.paths["trust_list"])
    result = runner.invoke(main, ["init", "--db", storage_url, "--trust", trust])
    assert result.exit_code == 0, result.output
    assert "ready" in result.output
    assert "no node has synced yet" in runner.invoke(main, ["nodes", "--db",
                                                            storage_url]).output
    with open_storage(storage_url) as storage:
        app = create_app({"TESTING": True}, storage=storage)
        clinic = SimNode(files.clinic, app.test_client())
        clinic.register_facility()
        assert clinic.push().status_code == 200
    table = runner.invoke(main, ["nodes", "--db", storage_url])
    assert CLINIC_ID in table.output
    listed = json.loads(runner.invoke(main, ["nodes", "--db", storage_url, "--json"]).output)
    assert [(n["node_id"], n["acked_seq"]) for n in listed] == [(CLINIC_ID, 1)]
    revoked = TrustList.from_dict(files.trust_list.to_dict())
    revoke(revoked, files.clinic.cert, "stolen", files.now)
    (tmp_path / "revoked.json").write_text(revoked.to_json())
    merged = runner.invoke(main, ["trust-import", "--db", storage_url, "--trust",
                                  str(tmp_path / "revoked.json")])
    assert merged.exit_code == 0, merged.output
    assert "1 revocation(s)" in merged.output
    with open_storage(storage_url) as storage:
        app = create_app({"TESTING": True}, storage=storage)
        clinic = SimNode(files.clinic, app.test_client())
        assert clinic.pull().status_code == 403


@pytest.mark.parametrize("content", ["not json", '{"format": "something else"}'])
def test_init_with_a_bad_trust_list_fails_clearly(runner, tmp_path, content):
    (tmp_path / "trust.json").write_text(content)
    result = runner.invoke(main, ["init", "--db", str(tmp_path / "hub.db"), "--trust",
                                  str(tmp_path / "trust.json")])
    assert result.exit_code != 0
    assert "trust list" in result.output.lower()


def test_trust_import_before_init_fails_clearly(runner, tmp_path, files):
    result = runner.invoke(main, ["trust-import", "--db", str(tmp_path / "hub.db"), "--trust",
                                  str(files.paths["trust_list"])])
    assert result.exit_code != 0
    assert "dmed-hub init" in result.output


def test_config_lists_every_setting(runner, monkeypatch):
    monkeypatch.setenv("DMED_HUB_MAX_CONCURRENT_SYNCS", "3")
    monkeypatch.setenv("DMED_HUB_API_TOKEN", "secret-token")
    output = runner.invoke(main, ["config"]).output
    assert "DMED_HUB_MAX_CONCURRENT_SYNCS=3" in output
    assert "secret-token" not in output
    assert "DMED_HUB_DATABASE=" in output
