"""The conflict-review JSON API for central staff (the service is central_hub.conflict_review).

    GET  /api/v1/conflicts?state=&kind=&facility=&limit=&before=
    GET  /api/v1/conflicts/<id>
    POST /api/v1/conflicts/<id>/acknowledge   {"by": "...", "note": "..."}
    POST /api/v1/conflicts/<id>/resolve       {"by": "...", "note": "..."}

Protected like the dashboard (api_dashboard.require_access).
"""

from __future__ import annotations

import logging

from flask import Blueprint, request

from ..conflict_review import (
    ACTIONS,
    DEFAULT_LIMIT,
    change_state,
    get_conflict,
    list_conflicts,
)
from ..errors import HubError, NotFound
from .api_dashboard import require_access
from .context import hub, respond

log = logging.getLogger(__name__)

bp = Blueprint("conflicts", __name__)
bp.before_request(require_access)


@bp.get("/api/v1/conflicts")
def conflicts_index():
    args = request.args
    items = list_conflicts(hub().storage, state=args.get("state") or None,
                           kind=args.get("kind") or None, facility=args.get("facility") or None,
                           limit=_int_arg("limit", DEFAULT_LIMIT),
                           before=_int_arg("before", 0) or None)
    return respond({"items": items})


@bp.get("/api/v1/conflicts/<conflict_id>")
def conflict_show(conflict_id: str):
    return respond(get_conflict(hub().storage, conflict_id))


@bp.post("/api/v1/conflicts/<conflict_id>/<action>")
def conflict_review(conflict_id: str, action: str):
    if action not in ACTIONS:
        raise NotFound("No action %(action)s; use acknowledge or resolve", field="action",
                       action=action)
    body = request.get_json(silent=True)  # JSON only: a cross-site form cannot send it
    if not isinstance(body, dict):
        raise HubError("Send a JSON object with by and note", code="bad_body")
    return respond(change_state(hub().storage, conflict_id, ACTIONS[action],
                                by=body.get("by"), note=body.get("note")))


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        raise HubError("Parameter %(name)s must be a whole number", field=name, name=name)
    return int(raw)
