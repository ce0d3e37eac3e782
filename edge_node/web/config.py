"""Node configuration, loaded in one fixed order: defaults in code, then a file, then
``DMED_``-prefixed environment variables, then test overrides."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Each setting: default and a help line (shown by `dmed-node config`).
SETTINGS: dict[str, tuple[Any, str]] = {
    "DATABASE": ("var/node.db", "Path of the node's SQLite database"),
    "HUB_URL": ("", "Base URL of the central hub; empty means stand-alone"),
    "NODE_BUNDLE": ("", "Enrolment bundle (key, certificate, trust list) from dmed-provision"),
    "SMS_GATEWAY_URL": ("", "HTTP SMS gateway; empty means the console adapter"),
    "SMS_GATEWAY_TOKEN": ("", "Bearer token for the HTTP SMS gateway"),
    "SECRET_KEY": ("", "Signs session cookies; generated into var/ if empty"),
    "DEFAULT_LOCALE": ("uz", "Language shown first: uz (Uzbek Latin), ru or en"),
    "SMS_INTERVAL_SECONDS": (30, "How often queued SMS are sent"),
    "BACKGROUND_JOBS": (True, "Run the SMS sender (and the sync agent) in the server process"),
    "KIOSK_IDLE_SECONDS": (60, "The kiosk clears itself after this long without a touch"),
    "SESSION_COOKIE_SECURE": (False, "Send session cookies over HTTPS only (set behind TLS)"),
}
PREFIX = "DMED_"


def load_config(path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    config = {name: default for name, (default, _help) in SETTINGS.items()}
    file = Path(path or os.environ.get(f"{PREFIX}CONFIG", "") or "dmed-node.json")
    if file.is_file():
        config.update(json.loads(file.read_text(encoding="utf-8")))
    for name, (default, _help) in SETTINGS.items():
        raw = os.environ.get(PREFIX + name)
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
