"""The 1003 call centre's web surface: the operator screen (/call-centre, translated like
the other hub pages) and the JSON API (/api/v1/remote-requests), both protected like the
dashboard API. The requests themselves are central_hub.call_centre."""

from __future__ import annotations

import hmac
import logging
import secrets

from flask import Blueprint, Flask, Response, redirect, request, url_for

from sync_protocol.errors import ProtocolError
from sync_protocol.json_body import parse_json

from ..call_centre import create_request, get_request, list_requests
from ..errors import HubError
from .api_dashboard import require_access
from .context import hub, respond
from .i18n import page_translations, render_page, select_locale

log = logging.getLogger(__name__)

bp = Blueprint("call_centre", __name__, template_folder="templates")
bp.before_request(require_access)

CSRF_COOKIE = "dmed_cc_csrf"


# -- JSON API ---------------------------------------------------------------------------------

REQUEST_FIELDS = ("pinfl", "patient_id", "facility", "facility_id", "request_text",
                  "requested_by", "phone")


@bp.post("/api/v1/remote-requests")
def api_create():
    data = parse_json(request.get_data(cache=True)) if request.is_json else None
    if not isinstance(data, dict):
        raise HubError("Request body must be a JSON object", field="body", code="bad_json")
    unknown = sorted(set(data) - set(REQUEST_FIELDS))
    if unknown:
        raise HubError("Unknown fields: %(fields)s", field=unknown[0], fields=unknown)
    if any(v is not None and not isinstance(v, str) for v in data.values()):
        raise HubError("Every field is text", field="body")
    state = create_request(hub().storage, request_text=data.get("request_text", ""),
                           requested_by=data.get("requested_by", ""), pinfl=data.get("pinfl"),
                           patient_id=data.get("patient_id"),
                           facility=data.get("facility_id") or data.get("facility"),
                           phone=data.get("phone"))
    return respond(state, 201)


@bp.get("/api/v1/remote-requests")
def api_list():
    return respond({"requests": list_requests(hub().storage)})


@bp.get("/api/v1/remote-requests/<request_id>")
def api_get(request_id: str):
    return respond(get_request(hub().storage, request_id))


# -- the operator screen ----------------------------------------------------------------------

@bp.get("/call-centre")
def screen():
    return _screen({}, None)


@bp.post("/call-centre")
def submit():
    form = {name: request.form.get(name, "").strip() for name in REQUEST_FIELDS}
    token = request.cookies.get(CSRF_COOKIE, "")
    # as bytes: compare_digest refuses str with characters outside ASCII (a 500, not a 400)
    if not token or not hmac.compare_digest(token.encode(), request.form.get("csrf", "").encode()):
        return _screen(form, HubError("The form expired; reload the page and send it again",
                                      field="csrf"), 400)
    try:
        state = create_request(hub().storage, request_text=form["request_text"],
                               requested_by=form["requested_by"], pinfl=form["pinfl"] or None,
                               facility=form["facility"] or None, phone=form["phone"] or None)
    except ProtocolError as e:
        return _screen(form, e, getattr(e, "http_status", 400))
    return redirect(url_for("call_centre.screen", created=state["request_id"],
                            lang=select_locale()), code=303)


def _screen(form: dict[str, str], error: ProtocolError | None, status: int = 200) -> Response:
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    message = None
    if error is not None:
        translated = page_translations(select_locale()).gettext(error.message)
        try:
            message = translated % error.params if error.params else translated
        except (KeyError, TypeError, ValueError):
            message = error.text
    response = render_page("call_centre/screen.html", status, form=form, error=message,
                           error_field=error.field if error else None, csrf=token,
                           created=request.args.get("created"),
                           requests=list_requests(hub().storage))
    response.set_cookie(CSRF_COOKIE, token, samesite="Strict", httponly=True)
    return response


def init_app(app: Flask) -> None:
    """Wire the call centre's screen and API into a hub app."""
    app.register_blueprint(bp)
