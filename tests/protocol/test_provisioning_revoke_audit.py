"""Issue 16: `dmed-provision revoke` writes the station's audit trail, as the station's own
revoke button does: who, what, the outcome, the reason and the certificates revoked."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from helpers.pki import CLINIC_ID

from provisioning import CaStore
from provisioning.cli import PASSPHRASE_ENV, main
from provisioning.enrolment_desk import EnrolmentDesk


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.delenv("DMED_PROVISION_DIR", raising=False)
    directory = tmp_path / "ca"
    run("init-root", "--dir", directory, "--name", "DMED National Root")
    run("add-region", "--dir", directory, "--code", "TAS", "--name", "Toshkent shahri")
    run("add-node", "--insecure-plain-key", "--dir", directory, "--region", "TAS",
        "--node-id", CLINIC_ID, "--facility", "TAS-1", "--kind", "clinic",
        "--out", tmp_path / "clinic.json")
    return directory


def run(*args, code=0):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def trail(directory):
    return EnrolmentDesk(CaStore(directory)).audit_trail()


def test_cli_revoke_of_a_node_is_audited_with_operator_and_reason(store):
    run("revoke", "--dir", store, "--node-id", CLINIC_ID, "--reason", "stolen",
                 "--operator", "it-karimov")
    [entry] = [e for e in trail(store) if e["action"] == "revoke"]
    assert (entry["actor"], entry["target"], entry["outcome"]) == (
        "it-karimov", CLINIC_ID, "done")
    assert entry["detail"] == "stolen"
    assert CaStore(store).trust_list().revocations  # and the revocation itself is there


def test_a_refused_cli_revoke_is_audited_too_and_the_default_actor_is_the_login(store):
    run("revoke", "--dir", store, "--node-id", CLINIC_ID, "--reason", "stolen")
    output = run("revoke", "--dir", store, "--node-id", CLINIC_ID, "--reason", "again",
                 code=1)
    assert "revoked already" in output
    done, refused = sorted((e for e in trail(store) if e["action"] == "revoke"),
                           key=lambda e: e["id"])
    assert done["actor"].startswith("cli:") and done["outcome"] == "done"
    assert refused["outcome"] == "refused" and "revoked already" in refused["detail"]


def test_cli_revoke_of_a_region_is_audited(store):
    run("revoke", "--dir", store, "--region", "TAS", "--reason", "key leaked",
        "--operator", "it-karimov")
    [entry] = [e for e in trail(store) if e["action"] == "revoke_region"]
    assert (entry["actor"], entry["target"], entry["outcome"]) == ("it-karimov", "TAS", "done")
    assert entry["detail"] == "key leaked"


def test_no_store_no_audit_file(tmp_path):
    output = run("revoke", "--dir", tmp_path / "none", "--node-id", "n1", "--reason", "x",
                 code=1)
    assert "run init-root" in output
    assert not (tmp_path / "none").exists()
