"""Issue 11.3: every JSON body is parsed by one bounded function; deep nesting is a 400."""

from __future__ import annotations

import json

import pytest
from helpers.hub import body_of, hub_state, post_raw

from sync_protocol.json_body import MAX_DEPTH, BadJson, parse_json
from sync_protocol.settings import load_settings
from sync_protocol.trust_list import TrustList, TrustListInvalid

DEEP = b"[" * 1000


@pytest.mark.parametrize("raw", [
    "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    '{"a":' * 100 + "1" + "}" * 100,
    "[" * 5000,
])
def test_too_deep_is_refused_with_a_clear_error(raw):
    with pytest.raises(BadJson) as caught:
        parse_json(raw)
    assert caught.value.code == "too_deep"


def test_brackets_inside_strings_and_escapes_do_not_count():
    text = json.dumps(["[" * 500, '\\"[[[', {"k": "{" * 300}])
    assert parse_json(text) == json.loads(text)
    exact = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_json(exact) == json.loads(exact)


def test_size_limit():
    with pytest.raises(BadJson) as caught:
        parse_json(b"[" + b" " * 100 + b"]", max_bytes=50)
    assert caught.value.code == "too_large"


@pytest.mark.parametrize("path", ["/api/v1/auth/sign-in", "/api/v1/patients"])
def test_node_api_answers_400_to_deep_nesting(client, auth, store, path):
    headers = auth("registrar") if path.endswith("patients") else {}
    before = store.one("SELECT COUNT(*) AS n FROM events")["n"]
    response = client.post(path, data=DEEP, headers={**headers,
                                                      "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json["error"]["code"] == "too_deep"
    assert response.json["error"]["field"] == "body"
    assert store.one("SELECT COUNT(*) AS n FROM events")["n"] == before


def test_hub_refuses_a_signed_push_of_5000_brackets(nodes, storage):
    clinic = nodes["clinic"]
    before = hub_state(storage)
    response = post_raw(clinic, b"[" * 5000)
    assert response.status_code == 400
    assert body_of(response)["error"]["code"] == "too_deep"
    assert hub_state(storage) == before


def test_files_read_by_the_clis_are_bounded(tmp_path):
    config = tmp_path / "dmed-node.json"
    config.write_bytes(b"[" * 5000)
    with pytest.raises(BadJson):
        load_settings({"X": (1, "x")}, "DMED_TEST_", "none.json", config)
    config.write_bytes(b"[1, 2]")
    with pytest.raises(BadJson) as caught:
        load_settings({"X": (1, "x")}, "DMED_TEST_", "none.json", config)
    assert caught.value.code == "bad_settings" and str(config) in caught.value.text
    with pytest.raises(TrustListInvalid):
        TrustList.from_json(b"[" * 5000)


def test_cli_files_too_deep_end_in_one_clear_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from central_hub.cli import main as hub
    from edge_node.cli import main as node
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 5000)
    result = CliRunner().invoke(hub, ["init", "--db", f"sqlite:///{tmp_path / 'hub.db'}",
                                      "--trust", str(deep)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert str(deep) in result.output
    monkeypatch.setenv("DMED_CONFIG", str(deep))
    result = CliRunner().invoke(node, ["config"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.strip().splitlines() == [
        f"Error: Settings file {deep}: The JSON document nests more than 64 levels deep"]
