"""The node banner on every screen: online, offline (since when) or stand-alone, and how many
changes wait to sync.

Read from node_status.sync_banner() (the sync agent's own status); "synced" is said only when
that status proves it. Reading it takes several queries and rendering it a dozen template
calls, so both are kept for STATUS_CACHE_SECONDS per process (the rendered part per
language). A request that may have written (anything but GET, HEAD, OPTIONS) drops the copy
when it ends, so the pending count is right on the next page after a local change; what the
sync agent or another process changes shows within the cache period.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from flask import Flask, Response, current_app, render_template, request
from markupsafe import Markup

from edge_node.services import node_status
from edge_node.web.context import store, sync_agent

from .i18n import locale_code

log = logging.getLogger(__name__)

# The banner may be this many seconds old: it is on every page (several queries each time),
# while the sync agent changes it at most once per sync run.
STATUS_CACHE_SECONDS = 1.0
CACHE_KEY = "kiosk_ui_banner"
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
monotonic = time.monotonic  # tests move this clock


@dataclass
class _Cached:
    read_at: float
    banner: dict
    html: dict[str, Markup] = field(default_factory=dict)  # per language


def node_banner() -> dict:
    return _current().banner


def node_banner_html() -> Markup:
    """The banner's status line (the partial _node_banner.html) in the request's language."""
    cached = _current()
    code = locale_code()
    html = cached.html.get(code)
    if html is None:
        html = cached.html[code] = Markup(render_template("_node_banner.html",  # noqa: S704
                                                          banner=cached.banner))
    return html


def forget(app: Flask) -> None:
    """Drop the kept banner: the next page reads it afresh."""
    app.extensions.pop(CACHE_KEY, None)


def forget_after_writes(response: Response) -> Response:
    if request.method not in READ_ONLY_METHODS:
        forget(current_app)
    return response


def install(app: Flask) -> None:
    app.after_request(forget_after_writes)
    app.jinja_env.globals.update(node_banner=node_banner, node_banner_html=node_banner_html)


def _current() -> _Cached:
    ttl = float(current_app.config.get("UI_STATUS_CACHE_SECONDS", STATUS_CACHE_SECONDS))
    cached = current_app.extensions.get(CACHE_KEY)
    now = monotonic()
    if cached is not None and now - cached.read_at < ttl:
        return cached
    cached = _Cached(now, _read_banner())
    current_app.extensions[CACHE_KEY] = cached
    return cached


def _read_banner() -> dict:
    configured = sync_agent() is not None
    try:
        sync = node_status.sync_banner(store(), configured)
    except Exception:  # the banner must never take a page down with it
        log.exception("node status unavailable")
        return {"state": "unknown"}
    if not configured and not current_app.config.get("HUB_URL"):
        return {"state": "standalone"}
    online = bool(configured and sync.get("online"))
    return {"state": "online" if online else "offline",
            "since": sync.get("offline_since"), "pending": sync.get("pending"),
            "synced": bool(sync.get("synced")), "last_success": sync.get("last_success_at"),
            "last_error": sync.get("last_error"), "clock_ahead": bool(sync.get("clock_ahead"))}
