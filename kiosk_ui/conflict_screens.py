"""Conflicts at this node (DESIGN 5): what the hub raised about this facility's records, read
only. Each role sees the kinds that concern its work (services.conflicts.KINDS_BY_ROLE);
acknowledging and resolving stay at the hub, whose review (who, when, why) shows here.
"""

from __future__ import annotations

import logging

from flask import Blueprint, g, request
from flask_babel import gettext

from edge_node.errors import NotFound
from edge_node.services import conflicts, facilities
from edge_node.web.context import store

from . import labels
from .auth import signed_in, to_sign_in
from .common import fmt_datetime, remember_language
from .errors import register_html_errors
from .security import protect
from .workstation import render

log = logging.getLogger(__name__)

bp = Blueprint("conflicts_ui", __name__, url_prefix="/ui/conflicts")
protect(bp)
bp.after_request(remember_language)
register_html_errors(bp, "desk", to_sign_in)

ALL = "all"
FILTERS = (*conflicts.STATES, ALL)
INSTANT_FACTS = ("dispensed_at", "starts_at", "issued_at", "expires_at")


@bp.get("/", endpoint="list")
@signed_in
def list_conflicts():
    state = request.args.get("state", conflicts.OPEN)
    if state not in FILTERS:
        state = conflicts.OPEN
    rows = conflicts.list_conflicts(store(), g.actor, None if state == ALL else state)
    names = _Names()
    for row in rows:
        row["words"] = [_event_words(e, names) for e in row["events"]]
    return render("conflicts/list.html", rows=rows, state=state, filters=FILTERS)


class _Names:
    """Facility and doctor names for the ids events carry, looked up once per page."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], str] = {}

    def of(self, kind: str, value: str) -> str:
        key = (kind, value)
        if key not in self._seen:
            try:
                self._seen[key] = facilities.get_facility(store(), value)["name"] \
                    if kind == "facility_id" \
                    else facilities.get_practitioner(store(), value)["full_name"]
            except NotFound:  # another facility's, not known on this node
                self._seen[key] = value
        return self._seen[key]


def _event_words(event: dict, names: _Names) -> dict:
    """One event involved, in words: what happened, when, where, and its facts."""
    if not event["known"]:
        return {"what": gettext("An event this node has not received (%(id)s)",
                                id=event["event_id"]), "when": "", "facts": []}
    facts = []
    for key, value in event["facts"].items():
        if key in ("facility_id", "practitioner_id"):
            value = names.of(key, str(value))
        elif key in INSTANT_FACTS:
            value = fmt_datetime(str(value))
        facts.append((labels.label(labels.FACT_WORDS, key), str(value)))
    return {"what": labels.label(labels.EVENT_WORDS, event["type"]),
            "when": fmt_datetime(event["at"]), "origin": event["origin"], "facts": facts}


def open_count() -> int | None:
    """Open conflicts of the signed-in person's kinds, for the navigation (None: not theirs)."""
    actor = g.get("actor")
    if actor is None or actor.role not in conflicts.KINDS_BY_ROLE:
        return None
    return conflicts.count_conflicts(store(), actor)
