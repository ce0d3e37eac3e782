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
    "FHIR_EXPORT_DIR": ("var/fhir-exports", "Where FHIR bulk $export jobs write their NDJSON "
                        "files"),
    "FHIR_BASE_URL": ("", "Public URL of the FHIR API (e.g. https://hub.example/fhir/r4), the "
                      "audience of SMART assertions; empty: taken from each request"),
    "METRICS_TOKEN": ("", "Bearer token for /metrics; empty: loopback clients only"),
    "SYNC_INTERVAL_SECONDS": (30, "How often nodes sync; one silent for two intervals is "
                              "flagged offline on the dashboard and in /metrics"),
    "HISTORY_RETENTION_DAYS": (90, "Days of sync history and chart counts kept"),
    "HISTORY_HOURLY_DAYS": (7, "Days of chart counts kept per hour; older ones per day"),
    "DASHBOARD_REFRESH_SECONDS": (20, "How often the fleet pages reload themselves (15-30 s "
                                  "suits staff; filters are kept)"),
    "CHART_CACHE_SECONDS": (60, "A fleet chart is redrawn at most this often while its data "
                            "changes (drawing is slow; the tables are always current)"),
    "HISTORY_MAX_ATTEMPTS": (1000, "Sync attempts kept per node (the history's size bound)"),
}
PREFIX = "DMED_HUB_"


def load_config(path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    return load_settings(SETTINGS, PREFIX, "dmed-hub.json", path, overrides)
