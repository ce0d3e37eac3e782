"""The /ui root: choosing a screen, static files, the ICD-10 suggestions, unknown pages."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, g, jsonify, render_template, request

from edge_node.errors import NotSignedIn
from edge_node.services import clinical, facilities, staff
from edge_node.web.context import store

from . import screen_choice
from .auth import current_staff, signed_in, to_sign_in
from .common import locale_code, remember_language
from .errors import register_html_errors
from .security import protect

log = logging.getLogger(__name__)

bp = Blueprint("ui", __name__, url_prefix="/ui", static_folder="static",
               template_folder="templates")
protect(bp)
bp.after_request(remember_language)
register_html_errors(bp, "desk", to_sign_in)

ICD_SUGGESTIONS = 12  # what fits under the search box without scrolling


@bp.get("/")
def index():
    try:
        actor = current_staff()
    except NotSignedIn:
        actor = None
    screens = screen_choice.offered(facilities.node_kind(store()),
                                    actor.role if actor else None,
                                    staff.roles_present(store()))
    return render_template("index.html", area="desk", screens=screens, actor=actor)


@bp.get("/icd10")
@signed_in
def icd10():
    """Suggestions for the doctor's diagnosis search box (the form works without them)."""
    g.actor.require("write_clinical")
    query = request.args.get("q", "")[:100]
    return jsonify({"results": clinical.search_icd10(query, limit=ICD_SUGGESTIONS,
                                                     lang=locale_code())})


@bp.route("/<path:anything>", methods=["GET", "POST"])
def unknown(anything: str):
    # Unknown addresses under /ui get the HTML 404 page, not the API's JSON.
    abort(404)
