"""The family doctor's call-centre requests (1003): the list with a filter by state, one
request, and declining it with a note. Approving is writing the prescription on the
prescribing screen (prescribe.for_request), so the rules and the INN autocomplete are the same.
"""

from __future__ import annotations

import logging

from flask import Blueprint, flash, g, redirect, request, url_for
from flask_babel import gettext

from edge_node.services import patients, remote_requests
from edge_node.web.context import store
from sync_protocol.errors import ProtocolError

from .auth import signed_in, to_sign_in
from .common import remember_language
from .errors import register_html_errors
from .security import protect
from .workstation import render

log = logging.getLogger(__name__)

bp = Blueprint("remote_ui", __name__, url_prefix="/ui/desk/requests")
protect(bp)
bp.after_request(remember_language)
register_html_errors(bp, "desk", to_sign_in)

ALL = "all"
FILTERS = (*remote_requests.STATUSES, ALL)


@bp.get("/", endpoint="requests")
@signed_in
def list_requests():
    g.actor.require("prescribe")
    status = request.args.get("status", remote_requests.REQUESTED)
    if status not in FILTERS:
        status = remote_requests.REQUESTED
    rows = remote_requests.list_requests(store(), g.actor, None if status == ALL else status)
    if status != remote_requests.REQUESTED:
        rows.reverse()  # decided ones: the latest first
    return render("desk/requests.html", rows=rows, status=status, filters=FILTERS)


def _show(request_id: str, error: ProtocolError | None = None, note: str = ""):
    g.actor.require("prescribe")
    row = remote_requests.get_request(store(), request_id)
    patient = patients.get_summary(store(), row["patient_id"])
    return render("desk/request.html", error, remote=row, patient=patient, note=note,
                  is_open=row["status"] == remote_requests.REQUESTED)


@bp.get("/<request_id>", endpoint="show")
@signed_in
def show(request_id: str):
    return _show(request_id)


@bp.post("/<request_id>/decline", endpoint="decline")
@signed_in
def decline(request_id: str):
    g.actor.require("prescribe")
    note = request.form.get("note", "").strip()[:remote_requests.MAX_NOTE]
    try:
        remote_requests.decline(store(), g.actor, request_id, note=note)
    except ProtocolError as e:
        return _show(request_id, e, note)
    flash(gettext("The request is declined. The patient gets an SMS and the call centre sees"
                  " your note."), "ok")
    return redirect(url_for(".requests"))


def open_count() -> int | None:
    """Waiting requests for the navigation; None when the signed-in person may not see them."""
    actor = g.get("actor")
    if actor is None or not actor.can("prescribe"):
        return None
    return remote_requests.count_requests(store(), actor)
