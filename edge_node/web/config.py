"""Node configuration, loaded in one fixed order: defaults in code, then a file, then
``DMED_``-prefixed environment variables, then test overrides."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sync_protocol.settings import load_settings

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
    "STATION_URL": ("", "Provisioning station; the node asks it for a new certificate when "
                        "30 days of the current one remain"),
    "OFFLINE_FILLS_ANTIBACTERIAL": (1, "Fills of an antibacterial item a pharmacy may dispense"
                                       " without the hub's claim (0: the whole prescription)"),
    "OFFLINE_FILLS_OTHER": (0, "Fills of any other item a pharmacy may dispense without the"
                               " hub's claim (0: the whole prescription)"),
    "METRICS_TOKEN": ("", "Bearer token for /metrics; empty: loopback clients only"),
}
PREFIX = "DMED_"


def load_config(path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    return load_settings(SETTINGS, PREFIX, "dmed-node.json", path, overrides)
