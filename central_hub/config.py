"""Hub configuration, loaded in one fixed order: defaults in code, then a file, then
``DMED_HUB_``-prefixed environment variables, then overrides (tests, CLI options)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from sync_protocol.wire import MAX_BODY_BYTES

log = logging.getLogger(__name__)

# Each setting: default and a help line (shown by `dmed-hub config`).
SETTINGS: dict[str, tuple[Any, str]] = {
    "DATABASE": ("sqlite:///var/hub.db",
                 "Hub database: sqlite:///path (default) or postgresql://user@host/db"),
    "MAX_CONCURRENT_SYNCS": (8, "Sync requests served at once; the rest get 503 + Retry-After"),
    "RETRY_AFTER_SECONDS": (5, "Retry-After sent with 503; nodes add their own jitter"),
    "MAX_BODY_BYTES": (MAX_BODY_BYTES, "Largest request body (decompressed); larger gets 413"),
    "API_TOKEN": ("", "Bearer token for the dashboard API; empty: loopback clients only"),
}
PREFIX = "DMED_HUB_"


def load_config(path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    config = {name: default for name, (default, _help) in SETTINGS.items()}
    file = Path(path or os.environ.get(f"{PREFIX}CONFIG", "") or "dmed-hub.json")
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
