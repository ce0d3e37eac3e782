"""Settings load in one fixed order: defaults, file, environment, overrides."""

import json

from sync_protocol.settings import load_settings

SETTINGS = {"DATABASE": ("a.db", "db"), "PORT": (8080, "port"), "JOBS": (True, "jobs"),
            "NAME": ("x", "name")}


def test_each_layer_overrides_the_one_before(tmp_path, monkeypatch):
    file = tmp_path / "conf.json"
    file.write_text(json.dumps({"DATABASE": "file.db", "PORT": 9000, "NAME": "file"}))
    monkeypatch.setenv("T_PORT", "9100")
    monkeypatch.setenv("T_JOBS", "no")
    monkeypatch.setenv("T_NAME", "env")
    config = load_settings(SETTINGS, "T_", "missing.json", file, {"NAME": "override"})
    assert config == {"DATABASE": "file.db", "PORT": 9100, "JOBS": False, "NAME": "override"}


def test_defaults_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings(SETTINGS, "T_", "missing.json") == {
        "DATABASE": "a.db", "PORT": 8080, "JOBS": True, "NAME": "x"}


def test_config_file_named_by_the_environment(tmp_path, monkeypatch):
    file = tmp_path / "other.json"
    file.write_text(json.dumps({"PORT": 1}))
    monkeypatch.setenv("T_CONFIG", str(file))
    assert load_settings(SETTINGS, "T_", "missing.json")["PORT"] == 1
