"""The dashboard's JSON API for central staff: nodes' sync state, quarantine, conflicts.

Quarantined events hold patient data, so this API is not public: with API_TOKEN set it needs
`Authorization: Bearer <token>`; without, it answers loopback clients only.
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, request

from .. import nodes, quarantine, refusals
from ..errors import Forbidden, HubError
from ..ingest import projected_through
from ..projector import lag
from ..scope import feed_head
from .context import hub, respond

log = logging.getLogger(__name__)

bp = Blueprint("dashboard", __name__)

LOOPBACK = ("127.0.0.1", "::1")
NO_REFUSALS = {"count": 0, "last_at": None, "codes": [], "sources": []}


class NotSignedIn(HubError):
    code = "not_signed_in"
    http_status = 401


@bp.before_request
def require_access():
    if request.endpoint == "dashboard.healthz":
        return
    token = hub().config["API_TOKEN"]
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise NotSignedIn("Send Authorization: Bearer <API token> to read the dashboard")
    elif request.remote_addr not in LOOPBACK:
        raise Forbidden("Without an API token the dashboard answers this machine only")


@bp.get("/api/v1/nodes")
def list_nodes():
    current = hub()
    with current.storage.reader() as tx:
        hub_head = int(tx.scalar("SELECT COALESCE(MAX(position), 0) AS p FROM events"))
        head = feed_head(tx)
        through = projected_through(tx)
    # Refused requests in a node's name are a field of their own, never its current error:
    # anybody may send them (central_hub.refusals).
    refused = refusals.by_node(current.storage)
    listed = [{**row, "refused_requests": refused.get(row["node_id"], NO_REFUSALS)}
              for row in nodes.list_nodes(current.storage, current.now())]
    return respond({"hub_head": hub_head, "feed_head": head, "projected_through": through,
                    "nodes": listed})


@bp.get("/api/v1/refused-requests")
def list_refused_requests():
    """Refused sync requests by claimed node, source address and reason, newest first."""
    return respond({"items": refusals.list_refusals(hub().storage,
                                                    min(_int_arg("limit", 100), 1000))})


@bp.get("/api/v1/quarantine")
def list_quarantine():
    args = request.args
    items = quarantine.list_quarantine(
        hub().storage, node_id=args.get("node") or None,
        open_only=args.get("all", "") not in ("1", "true"),
        limit=_int_arg("limit", 100), before_id=_int_arg("before", 0) or None)
    return respond({"items": items})


@bp.get("/api/v1/identity-conflicts")
def list_identity_conflicts():
    return respond({"items": nodes.identity_conflicts(hub().storage,
                                                      request.args.get("node") or None)})


@bp.get("/healthz")
def healthz():
    current = hub()
    try:
        behind = lag(current.storage, current.now())
    except Exception:  # noqa: BLE001 - a probe reports, it does not raise
        log.exception("health check: database unreachable")
        return respond({"status": "down", "database": current.storage.dialect}, 503)
    return respond({"status": "ok", "database": current.storage.dialect,
                    "schema": current.storage.schema_versions(), "hub_head": behind.head,
                    "projected_through": behind.projected_through,
                    "projection_lag": {"events": behind.events, "seconds": behind.seconds},
                    "trust_list": current.trust.initialised})


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        raise HubError("Parameter %(name)s must be a whole number", field=name, name=name)
    return int(raw)
