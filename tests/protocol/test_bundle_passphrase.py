"""Issue 16: add-node encrypts the bundle's key with a passphrase; dmed-node init decrypts it."""

from __future__ import annotations

import stat

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from edge_node.cli import main as node_main
from provisioning.cli import PASSPHRASE_ENV
from provisioning.cli import main as provision_main
from sync_protocol.bundle_passphrase import ENV_VAR

PASSPHRASE = "tulip-orchard-1947"


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("DMED_PROVISION_DIR", raising=False)
    return CliRunner()


@pytest.fixture
def store(runner, tmp_path):
    store = tmp_path / "ca"
    for args in (["init-root", "--dir", store, "--name", "DMED National Root"],
                 ["add-region", "--dir", store, "--code", "TAS", "--name", "Toshkent"]):
        result = runner.invoke(provision_main, [str(a) for a in args])
        assert result.exit_code == 0, result.output
    return store


def _add_node(runner, store, out, *extra, input=None, node_id="n1"):
    args = ["add-node", "--dir", store, "--region", "TAS", "--node-id", node_id,
            "--facility", "TAS-1", "--kind", "clinic", "--out", out, *extra]
    return runner.invoke(provision_main, [str(a) for a in args], input=input)


def _all_bytes(path):
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return b"".join(f.read_bytes() for f in files)


def test_key_in_bundle_is_encrypted_and_passphrase_not_stored(runner, store, tmp_path):
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n")
    out = tmp_path / "bundle"
    result = _add_node(runner, store, out, "--passphrase-file", secret)
    assert result.exit_code == 0, result.output
    assert PASSPHRASE not in result.output
    pem = (out / "key.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o600
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem, b"not-the-passphrase")
    assert serialization.load_pem_private_key(pem, PASSPHRASE.encode())
    assert PASSPHRASE.encode() not in _all_bytes(out)


def test_json_bundle_by_environment_and_prompt(runner, store, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, PASSPHRASE)
    out = tmp_path / "b.json"
    assert _add_node(runner, store, out).exit_code == 0
    assert PASSPHRASE.encode() not in _all_bytes(out)
    monkeypatch.delenv(ENV_VAR)
    prompted = _add_node(runner, store, tmp_path / "c", node_id="n2",
                         input=f"{PASSPHRASE}\n{PASSPHRASE}\n")
    assert prompted.exit_code == 0, prompted.output
    assert PASSPHRASE not in prompted.output
    assert b"ENCRYPTED" in (tmp_path / "c" / "key.pem").read_bytes()


def test_short_passphrase_refused(runner, store, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "short-11chr")
    out = tmp_path / "bundle"
    result = _add_node(runner, store, out)
    assert result.exit_code == 1
    assert "at least 12 characters" in result.output
    assert "short-11chr" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("name", ["bundle", "bundle.json"])
def test_init_with_right_passphrase_enrols(runner, store, tmp_path, monkeypatch, name):
    monkeypatch.setenv(ENV_VAR, PASSPHRASE)
    out = tmp_path / name
    assert _add_node(runner, store, out).exit_code == 0
    node_dir = tmp_path / "node"
    node_dir.mkdir()
    result = runner.invoke(node_main, ["init", "--db", str(node_dir / "n.db"),
                                       "--bundle", str(out)])
    assert result.exit_code == 0, result.output
    assert "node n1 ready" in result.output
    assert PASSPHRASE not in result.output
    installed = node_dir / ("enrolment.json" if name.endswith(".json") else "enrolment")
    key_file = installed if installed.is_file() else installed / "key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Stored on the node as before: readable without the passphrase.
    from edge_node.credentials import load_credentials
    assert load_credentials(installed).identity.node_id == "n1"


def test_init_with_wrong_passphrase_fails_and_writes_nothing(runner, store, tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv(ENV_VAR, PASSPHRASE)
    out = tmp_path / "bundle"
    assert _add_node(runner, store, out).exit_code == 0
    monkeypatch.setenv(ENV_VAR, "wrong-passphrase-42")
    node_dir = tmp_path / "node"
    node_dir.mkdir()
    result = runner.invoke(node_main, ["init", "--db", str(node_dir / "n.db"),
                                       "--bundle", str(out)])
    assert result.exit_code != 0
    assert "passphrase" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "wrong-passphrase-42" not in result.output
    assert not (node_dir / "enrolment").exists()
    assert sorted(p.name for p in node_dir.iterdir()) == []
