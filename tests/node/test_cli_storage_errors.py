"""Issue 11.9: a database (or store) that cannot be opened ends every CLI command of the node,
the hub and provisioning in one clear line naming the path and the cause, exit status 1."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from central_hub.cli import main as hub
from edge_node.cli import main as node
from provisioning.cli import main as provision
from sync_protocol.cli_errors import describe

NODE_COMMANDS = [
    ["init", "--node-id", "node-x"], ["seed-demo"], ["export-log"], ["verify-log"],
    ["rebuild"], ["create-staff", "--username", "ali", "--full-name", "Ali", "--role",
                  "registrar", "--pin", "1234"],
    ["serve", "--workers", "1", "--port", "0"], ["serve", "--workers", "2", "--port", "0"],
]
HUB_COMMANDS = [
    ["nodes"], ["reconcile"], ["list-staff"], ["disable-staff", "--login", "karimova"],
    ["enable-staff", "--login", "karimova"], ["serve", "--port", "0"],
    ["create-staff", "--login", "karimova", "--name", "Karimova N", "--role", "central"],
    ["staff-password", "--login", "karimova"],
]
BAD = {
    "missing directory": (lambda tmp: tmp / "no-such-dir" / "node.db", "does not exist"),
    "a directory": (lambda tmp: tmp, "cannot use database"),
    "not a database": (lambda tmp: _junk(tmp), "not a database"),
}


def _junk(tmp):
    path = tmp / "junk.db"
    path.write_bytes(b"this is no sqlite file" * 100)
    return path


def _must_not_serve(*_args, **_kwargs):
    raise AssertionError("served on a database that cannot be used")


def one_clear_line(result, path) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert str(path) in lines[0]
    return lines[0]


# `serve` creates its database's directory (a fresh node's first start): no error there.
NODE_CASES = [(command, bad) for command in NODE_COMMANDS for bad in BAD
              if not (command[0] == "serve" and bad == "missing directory")]


@pytest.mark.parametrize(("command", "bad"), NODE_CASES,
                         ids=[f"{' '.join(c[:3])}-{b}" for c, b in NODE_CASES])
def test_node_commands(tmp_path, monkeypatch, command, bad):
    for name in ("serve", "serve_workers"):  # a command that got this far must not serve
        monkeypatch.setattr(f"edge_node.web.serving.{name}", _must_not_serve)
    make, cause = BAD[bad]
    path = make(tmp_path)
    result = CliRunner().invoke(node, [*command, "--db", str(path)])
    assert cause in one_clear_line(result, path)


# The hub's SQLite storage creates a missing directory (as `dmed-node serve` does).
@pytest.mark.parametrize("bad", ["a directory", "not a database"])
@pytest.mark.parametrize("command", HUB_COMMANDS, ids=lambda c: " ".join(c[:1]))
def test_hub_commands(tmp_path, monkeypatch, command, bad):
    monkeypatch.setattr("central_hub.web.serving.serve", _must_not_serve)
    monkeypatch.setenv("DMED_HUB_STAFF_PASSWORD", "correct horse battery")
    path = BAD[bad][0](tmp_path)
    result = CliRunner().invoke(hub, [*command, "--db", f"sqlite:///{path}"])
    one_clear_line(result, path)


def test_hub_init_on_a_file_that_is_no_database(tmp_path, pki_trust_file):
    path = _junk(tmp_path)
    result = CliRunner().invoke(hub, ["init", "--db", f"sqlite:///{path}", "--trust",
                                      str(pki_trust_file)])
    assert "not a database" in one_clear_line(result, path)


@pytest.fixture
def pki_trust_file(tmp_path):
    ca = tmp_path / "ca"
    CliRunner().invoke(provision, ["init-root", "--dir", str(ca), "--name", "Root"],
                       catch_exceptions=False)
    return ca / "trust-list.json"


@pytest.mark.parametrize("command", [
    ["init-root", "--name", "Root"], ["add-region", "--code", "TAS", "--name", "Toshkent"],
    ["trust-list"], ["show"],
])
def test_provisioning_commands(tmp_path, monkeypatch, command):
    monkeypatch.delenv("DMED_CA_PASSPHRASE", raising=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    store = blocker / "ca"  # its parent is a file: the store cannot be opened or created
    result = CliRunner().invoke(provision, [*command, "--dir", str(store)])
    one_clear_line(result, blocker)


def test_a_read_only_database_is_named_as_such(tmp_path):
    path = tmp_path / "node.db"
    path.write_bytes(b"")
    line = describe(sqlite3.OperationalError("attempt to write a readonly database"), str(path))
    assert line == f"cannot use database {path}: the file is read-only for this user"
