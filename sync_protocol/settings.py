"""Settings loaded in one fixed order, shared by the hub and the nodes: defaults in code, then
a JSON file, then prefixed environment variables, then overrides (tests, CLI options)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .json_body import BadJson, parse_json

# name -> (default, help line); the default's type decides how an environment value is read.
Settings = dict[str, tuple[Any, str]]


def load_settings(settings: Settings, prefix: str, default_file: str,
                  path: str | Path | None = None,
                  overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    config = {name: default for name, (default, _help) in settings.items()}
    file = Path(path or os.environ.get(f"{prefix}CONFIG", "") or default_file)
    if file.is_file():
        try:
            values = parse_json(file.read_bytes())
        except BadJson as e:
            raise BadJson("Settings file %(path)s: %(reason)s", field=e.field, code=e.code,
                          path=str(file), reason=e.text) from e
        if not isinstance(values, dict):
            raise BadJson("Settings file %(path)s: %(reason)s", code="bad_settings",
                          path=str(file), reason="it must hold one JSON object")
        config.update(values)
    for name, (default, _help) in settings.items():
        raw = os.environ.get(prefix + name)
        if raw is not None:
            config[name] = _coerce(raw, default)
    config.update(overrides or {})
    return config


def _coerce(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    return raw
