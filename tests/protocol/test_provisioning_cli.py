"""dmed-provision and the keystore: happy path, errors, file modes, and no key ever shown."""

from __future__ import annotations

import json
import logging
import os
import stat
from datetime import UTC, datetime

import click
import pytest
from helpers.pki import CLINIC_ID, PHARMACY_ID, make_pki

from provisioning import (
    AlreadyExists,
    CaStore,
    InvalidRequest,
    KeystoreError,
    read_bundle,
    read_private_key,
    write_private_key,
)
from provisioning.cli import PASSPHRASE_ENV, main
from provisioning.keystore import key_to_pem
from provisioning.pki import create_node, create_root
from sync_protocol.certificates import EKU_PRESCRIBE, REVOKED
from sync_protocol.trust_list import TrustList


@pytest.fixture
def loose_umask():
    """Key files must be 0600 whatever the umask; run with the most permissive one."""
    old = os.umask(0)
    yield
    os.umask(old)


def _ok(runner, *args):
    result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _fails(runner, *args, code=1):
    result = runner.invoke(main, [str(a) for a in args])
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.output


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def _store(runner, tmp_path):
    store = tmp_path / "ca"
    _ok(runner, "init-root", "--dir", store, "--name", "DMED National Root")
    _ok(runner, "add-region", "--dir", store, "--code", "TAS", "--name", "Toshkent shahri")
    return store


def _add_node(runner, store, node_id, kind, out):
    return _ok(runner, "add-node", "--insecure-plain-key",
        "--dir", store, "--region", "TAS", "--node-id", node_id,
               "--facility", "TAS-1", "--kind", kind, "--out", out)


def test_every_command_and_option_is_documented():
    assert main.help
    for name, command in main.commands.items():
        assert command.help and len(command.help.strip()) > 20, name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.name}"


def test_happy_path_enrols_revokes_and_publishes(runner, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    store = _store(runner, tmp_path)
    clinic = _add_node(runner, store, CLINIC_ID, "clinic", tmp_path / "clinic.json")
    assert CLINIC_ID in clinic.output and "clinic.json" in clinic.output
    _add_node(runner, store, PHARMACY_ID, "pharmacy", tmp_path / "pharmacy")

    trust_list = TrustList.from_json(_ok(runner, "trust-list", "--dir", store).output)
    assert len(trust_list.nodes) == 2 and len(trust_list.regions) == 1
    now = datetime.now(UTC)
    bundle = read_bundle(tmp_path / "clinic.json")
    assert trust_list.verify_kid(bundle.node.kid, now, require_eku=EKU_PRESCRIBE).ok
    assert read_bundle(tmp_path / "pharmacy").identity.node_id == PHARMACY_ID
    assert "verifies" in _ok(runner, "check-bundle", tmp_path / "pharmacy").output

    revoked = _ok(runner, "revoke", "--dir", store, "--node-id", CLINIC_ID, "--reason", "stolen")
    assert bundle.node.kid.hex() in revoked.output
    trust_list = TrustList.from_json(_ok(runner, "trust-list", "--dir", store).output)
    assert trust_list.verify_kid(bundle.node.kid, now).reason == REVOKED
    assert trust_list.verify_kid(read_bundle(tmp_path / "pharmacy").node.kid, now).ok
    shown = _ok(runner, "show", "--dir", store).output
    assert f"{CLINIC_ID}  clinic" in shown and "revoked" in shown and "1 revocation(s)" in shown


def test_revoking_a_region_refuses_its_nodes(runner, tmp_path):
    store = _store(runner, tmp_path)
    _add_node(runner, store, CLINIC_ID, "clinic", tmp_path / "b.json")
    _ok(runner, "revoke", "--dir", store, "--region", "TAS", "--reason", "key leaked")
    trust_list = TrustList.from_json(_ok(runner, "trust-list", "--dir", store).output)
    verdict = trust_list.verify_kid(read_bundle(tmp_path / "b.json").node.kid, datetime.now(UTC))
    assert (verdict.reason, verdict.which) == (REVOKED, "region")


def test_an_ed25519_store_issues_verifiable_nodes(runner, tmp_path):
    store = tmp_path / "ca"
    _ok(runner, "init-root", "--dir", store, "--name", "Root", "--algorithm", "ed25519")
    _ok(runner, "add-region", "--dir", store, "--code", "TAS", "--name", "T",
        "--algorithm", "ed25519")
    _ok(runner, "add-node", "--insecure-plain-key",
        "--dir", store, "--region", "TAS", "--node-id", "n1", "--facility",
        "F", "--kind", "clinic", "--out", tmp_path / "b", "--algorithm", "ed25519")
    assert "verifies" in _ok(runner, "check-bundle", tmp_path / "b").output


def test_key_files_are_0600_and_keys_never_shown(runner, tmp_path, caplog, loose_umask):
    caplog.set_level(logging.DEBUG)
    store = _store(runner, tmp_path)
    outputs = [_add_node(runner, store, "n-json", "clinic", tmp_path / "b.json").output,
               _add_node(runner, store, "n-dir", "pharmacy", tmp_path / "b").output]
    outputs += [_ok(runner, *cmd, "--dir", store).output for cmd in (["trust-list"], ["show"])]
    outputs.append(_ok(runner, "check-bundle", tmp_path / "b.json").output)
    secrets = [store / "root" / "key.pem", store / "regions" / "TAS" / "key.pem",
               tmp_path / "b" / "key.pem", tmp_path / "b.json"]
    for path in secrets:
        assert _mode(path) == 0o600, path
    assert _mode(tmp_path / "b") == 0o700
    key_lines = set()
    for path in secrets[:3]:
        key_lines |= {line for line in path.read_text().splitlines() if "-----" not in line}
    key_lines |= {line for line in json.loads((tmp_path / "b.json").read_text())["key"]
                  .splitlines() if "-----" not in line}
    shown = "\n".join(outputs) + caplog.text
    assert caplog.text  # the commands did log, so this looked at something
    assert "PRIVATE KEY" not in shown
    assert not [line for line in key_lines if line in shown]


def test_passphrase_encrypts_the_ca_keys(runner, tmp_path, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    store = _store(runner, tmp_path)
    assert "ENCRYPTED PRIVATE KEY" in (store / "root" / "key.pem").read_text()
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong horse")
    output = _fails(runner, "add-region", "--dir", store, "--code", "SAM", "--name", "Samarqand")
    assert "passphrase" in output and "Traceback" not in output
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    _ok(runner, "add-region", "--dir", store, "--code", "SAM", "--name", "Samarqand")


@pytest.mark.parametrize("args, message", [
    (["add-region", "--code", "TAS", "--name", "x"], "run init-root"),
    (["trust-list"], "run init-root"),
    (["revoke", "--node-id", "n1", "--reason", "x"], "run init-root"),
])
def test_commands_need_a_store(runner, tmp_path, args, message):
    assert message in _fails(runner, *args, "--dir", tmp_path / "none")


@pytest.mark.parametrize("args, message, code", [
    (["init-root", "--name", "Again"], "holds a root already", 1),
    (["add-region", "--code", "TAS", "--name", "Again"], "exists already", 1),
    (["add-region", "--code", "tas", "--name", "Lower"], "does not match", 1),
    (["add-node", "--insecure-plain-key",
        "--region", "SAM", "--node-id", "n1", "--facility", "F", "--kind", "clinic",
      "--out", "b.json"], "Region SAM is not in this store", 1),
    (["add-node", "--insecure-plain-key",
        "--region", "TAS", "--node-id", "bad id!", "--facility", "F", "--kind",
      "clinic", "--out", "b.json"], "node_id 'bad id!' does not match", 1),
    (["add-node", "--insecure-plain-key",
        "--region", "TAS", "--node-id", "n1", "--facility", "F", "--kind",
      "hospital", "--out", "b.json"], "'hospital' is not one of", 2),
    (["revoke", "--node-id", "nobody", "--reason", "x"], "nobody is not in this store", 1),
    (["revoke", "--reason", "x"], "exactly one of", 2),
    (["revoke", "--node-id", "a", "--region", "TAS", "--reason", "x"], "exactly one of", 2),
    (["revoke", "--region", "TAS", "--reason", " "], "reason must be", 1),
])
def test_errors_are_clear_messages(runner, tmp_path, monkeypatch, args, message, code):
    store = _store(runner, tmp_path)
    monkeypatch.chdir(tmp_path)
    output = _fails(runner, *args, "--dir", store, code=code)
    assert message in output and "Traceback" not in output


def test_a_node_with_a_valid_certificate_is_not_enrolled_twice(runner, tmp_path):
    store = _store(runner, tmp_path)
    _add_node(runner, store, "n1", "clinic", tmp_path / "one.json")
    output = _fails(runner, "add-node", "--insecure-plain-key",
        "--dir", store, "--region", "TAS", "--node-id", "n1",
                    "--facility", "F", "--kind", "clinic", "--out", tmp_path / "two.json")
    assert "revoke it first" in output and not (tmp_path / "two.json").exists()
    _ok(runner, "revoke", "--dir", store, "--node-id", "n1", "--reason", "superseded")
    _add_node(runner, store, "n1", "clinic", tmp_path / "two.json")
    assert len(CaStore(store).trust_list().node_certificates("n1")) == 2


def test_an_unwritable_bundle_records_nothing(runner, tmp_path):
    store = _store(runner, tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    before = (store / "trust-list.json").read_bytes()
    output = _fails(runner, "add-node", "--insecure-plain-key",
        "--dir", store, "--region", "TAS", "--node-id", "n1",
                    "--facility", "F", "--kind", "pharmacy", "--out", tmp_path / "taken")
    assert "not an empty directory" in output
    assert (store / "trust-list.json").read_bytes() == before


# -- keystore library ---------------------------------------------------------------------

def test_private_keys_are_never_overwritten_by_accident(tmp_path, loose_umask):
    key = create_root("R").key
    path = write_private_key(tmp_path / "k.pem", key)
    with pytest.raises(AlreadyExists):
        write_private_key(path, create_root("R2").key)
    other = create_root("R3").key
    write_private_key(path, other, overwrite=True)
    assert _mode(path) == 0o600
    assert read_private_key(path).public_key() == other.public_key()
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]  # no temporary file left


def test_a_key_that_is_not_a_key_is_refused_without_echoing_it(tmp_path):
    path = tmp_path / "k.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0c2VjcmV0\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeystoreError) as error:
        read_private_key(path)
    assert "c2VjcmV0" not in error.value.text


def test_a_bundle_whose_key_does_not_match_is_refused(tmp_path):
    pki = make_pki(tmp_path)
    data = json.loads(pki.paths["pharmacy_bundle"].read_text())
    other = read_bundle(pki.paths["clinic_bundle"])
    data["key"] = key_to_pem(other.node.key).decode("ascii")  # a real key, not this node's
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(InvalidRequest):
        read_bundle(broken)


def test_make_pki_on_disk_matches_in_memory_shape(tmp_path):
    pki = make_pki(tmp_path)
    assert read_bundle(pki.paths["clinic_bundle"]).node.cert == pki.clinic.cert
    assert read_bundle(pki.paths["pharmacy_bundle"]).identity.node_id == PHARMACY_ID
    loaded = TrustList.from_json(pki.paths["trust_list"].read_text())
    assert loaded.digest() == pki.trust_list.digest()
    assert loaded.verify_kid(pki.clinic.kid, pki.now, require_eku=EKU_PRESCRIBE).ok
    node = create_node(pki.region, "later", "F", "clinic")
    assert pki.trust_list.verify_chain(node.cert, datetime.now(UTC)).ok
