"""Hub configuration, loaded in one fixed order: defaults in code, then a file, then
``DMED_HUB_``-prefixed environment variables, then overrides (tests, CLI options)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sync_protocol.settings import load_settings
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
    "PROJECTOR": ("inline", "inline: a push projects before it answers; background: it answers "
                  "once stored and a projector thread follows the log (dmed-hub serve's default)"),
    "SECURE_COOKIES": (False, "Send the staff pages' cookies over HTTPS only; set it true "
                       "when the hub is served behind TLS"),
}
PREFIX = "DMED_HUB_"


def load_config(path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    return load_settings(SETTINGS, PREFIX, "dmed-hub.json", path, overrides)
