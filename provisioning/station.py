"""`dmed-provision serve`: the provisioning station, a small web app for regional IT.

    GET/POST /sign-in, POST /sign-out         operators (provisioning.station_accounts)
    GET      /                                 facilities, pending enrolments, nodes, LAN, audit
    POST     /requests/<id>/approve            code (typed from the node's screen), facility
    POST     /requests/<id>/refuse             reason
    POST     /nodes/<node_id>/revoke           reason
    POST     /enrol/requests                   a node sends its request (JSON; no sign-in)
    GET      /enrol/requests/<id>              the node fetches its state and answer
    GET      /trust-list.json                  for the hub (`dmed-hub trust-import`)

`dmed-provision serve` serves it over HTTPS only (provisioning.station_tls certifies the
station under its region; sync_protocol.tls_serving adds Secure cookies and HSTS), so
operators' passwords never cross the LAN in clear; plain HTTP is for the loopback demo.
Pages are in Uzbek (first), Russian and English: .po catalogues under
provisioning/translations compiled in memory, as the hub does. Every action goes to the
desk's audit trail. The region key's passphrase comes from DMED_CA_PASSPHRASE. Views only
call the desk, the facilities book and the CaStore.
"""

from __future__ import annotations

import functools
import gettext
import hmac
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from provisioning.enrolment_desk import MAX_REQUEST_BYTES, EnrolmentDesk
from provisioning.errors import InvalidRequest
from provisioning.facilities import list_facilities
from provisioning.keystore import CaStore, write_secret
from provisioning.station_accounts import get_operator, sign_in
from sync_protocol.catalogues import compile_catalogue
from sync_protocol.certificates import identity_of, kid_of
from sync_protocol.errors import ProtocolError

log = logging.getLogger(__name__)

LOCALES = ("uz", "ru", "en")
DEFAULT_LOCALE = "uz"
TRANSLATIONS = Path(__file__).parent / "translations"
SECRET_FILE = "station-secret"  # noqa: S105 (a file name; the secret is inside)
PASSPHRASE_ENV = "DMED_CA_PASSPHRASE"  # noqa: S105 (a variable name)
MAX_REASON = 500
CSP = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")

bp = Blueprint("station", __name__, template_folder="templates")


def create_app(directory: str | Path, config: dict[str, Any] | None = None) -> Flask:
    directory = Path(directory)
    passphrase = os.environ.get(PASSPHRASE_ENV)
    store = CaStore(directory, password=passphrase.encode() if passphrase else None)
    store.trust_list()  # a clear error now if the directory holds no store
    app = Flask(__name__)
    app.config.update(SECRET_KEY=_secret(directory), MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
                      SESSION_COOKIE_NAME="dmed_station", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_SECURE=False,
                      LAN_NODES=lambda: [])  # (d) discovery plugs a browser in here
    app.config.update(config or {})
    app.extensions["dmed_station"] = EnrolmentDesk(store)
    app.register_blueprint(bp)
    app.after_request(_headers)
    return app


def _secret(directory: Path) -> bytes:
    path = directory / SECRET_FILE
    if not path.exists():
        write_secret(path, secrets.token_bytes(32))
    return path.read_bytes()


def desk() -> EnrolmentDesk:
    return current_app.extensions["dmed_station"]


def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# -- language -----------------------------------------------------------------------------

@functools.cache
def translations(locale: str) -> gettext.NullTranslations:
    """The station's strings in one language (English: the msgids themselves)."""
    return compile_catalogue(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", locale)


def locale() -> str:
    chosen = request.args.get("lang") or request.cookies.get("lang")
    return chosen if chosen in LOCALES else DEFAULT_LOCALE


def error_text(error: ProtocolError) -> str:
    message = translations(locale()).gettext(error.message)
    return message % error.message_params if "%(" in message else message


def render(template: str, status: int = 200, **context: Any) -> Response:
    lang = locale()
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    body = render_template(template, _=translations(lang).gettext, lang=lang, locales=LOCALES,
                           csrf=session["csrf"], operator=_operator(), **context)
    response = Response(body, status=status, mimetype="text/html")
    if request.args.get("lang") in LOCALES:
        response.set_cookie("lang", lang, samesite="Strict", httponly=True)
    return response


# -- sign-in --------------------------------------------------------------------------------

def _operator():
    login = session.get("operator")
    return get_operator(desk(), login) if login else None


def _csrf_ok() -> bool:
    return hmac.compare_digest(session.get("csrf", "") or "x", request.form.get("csrf", ""))


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        operator = _operator()
        if operator is None:
            return redirect(url_for("station.sign_in_form", lang=locale()))
        if request.method == "POST" and not _csrf_ok():
            return overview_page(status=400, error=translations(locale()).gettext(
                "The form expired; reload the page and send it again."))
        return view(operator, *args, **kwargs)
    return wrapper


@bp.get("/sign-in")
def sign_in_form() -> Response:
    return render("station/sign_in.html", error=None, login="")


@bp.post("/sign-in")
def sign_in_post() -> Any:
    login = request.form.get("login", "")[:64]
    if not _csrf_ok():
        return render("station/sign_in.html", 400, login=login, error=translations(
            locale()).gettext("The form expired; reload the page and send it again."))
    try:
        operator = sign_in(desk(), login, request.form.get("password", ""),
                           request.remote_addr or "?")
    except ProtocolError as e:
        return render("station/sign_in.html", 403, login=login, error=error_text(e))
    session.clear()
    session["operator"] = operator.login
    return redirect(url_for("station.overview", lang=locale()))


@bp.post("/sign-out")
def sign_out() -> Any:
    if session.get("operator") and _csrf_ok():
        desk().audit(session["operator"], "sign_out", request.remote_addr or "?", "done")
        session.clear()
    return redirect(url_for("station.sign_in_form", lang=locale()))


# -- the overview and the operator's actions -------------------------------------------------

def overview_page(status: int = 200, error: str | None = None,
                  notice: str | None = None) -> Response:
    store = desk().store
    trust_list = store.trust_list()
    nodes = []
    for cert in trust_list.nodes:
        revocation = trust_list.revocation(cert)
        nodes.append({"identity": identity_of(cert), "kid": kid_of(cert).hex(),
                      "until": cert.not_valid_after_utc.strftime("%Y-%m-%d"),
                      "revoked": revocation.reason if revocation else None})
    return render("station/overview.html", status, error=error, notice=notice,
                  facilities=list_facilities(store), pending=desk().requests("pending"),
                  nodes=nodes, lan=current_app.config["LAN_NODES"](),
                  audit=desk().audit_trail(50))


@bp.get("/")
@signed_in
def overview(operator) -> Response:
    return overview_page()


@bp.post("/requests/<request_id>/approve")
@signed_in
def approve(operator, request_id: str) -> Response:
    _ = translations(locale()).gettext
    try:
        answer = desk().approve(request_id, code=request.form.get("code", "")[:20],
                                facility_code=request.form.get("facility", "")[:64],
                                actor=operator.login)
    except ProtocolError as e:
        return overview_page(400, error=error_text(e))
    return overview_page(notice=_("Approved: certificate %(kid)s issued.") % {
        "kid": answer["kid"]})


@bp.post("/requests/<request_id>/refuse")
@signed_in
def refuse(operator, request_id: str) -> Response:
    try:
        desk().refuse(request_id, actor=operator.login,
                      reason=request.form.get("reason", "")[:MAX_REASON])
    except ProtocolError as e:
        return overview_page(400, error=error_text(e))
    return overview_page(notice=translations(locale()).gettext("Request refused."))


@bp.post("/nodes/<node_id>/revoke")
@signed_in
def revoke(operator, node_id: str) -> Response:
    _ = translations(locale()).gettext
    reason = request.form.get("reason", "").strip()[:MAX_REASON]
    try:
        if not reason:
            raise InvalidRequest("Give a reason for revoking.", field="reason")
        desk().revoke_node(node_id, reason, actor=operator.login)
    except ProtocolError as e:
        return overview_page(400, error=error_text(e))
    return overview_page(notice=_("Node %(node)s revoked; the hub refuses it once it imports "
                                  "the trust list.") % {"node": node_id})


# -- what nodes and the hub call ---------------------------------------------------------------

@bp.post("/enrol/requests")
def receive_request() -> Any:
    body = request.get_json(silent=True)
    try:
        request_id = desk().receive(body, request.remote_addr or "?")
    except ProtocolError as e:
        return jsonify(error={"code": e.code, "message": e.text, "field": e.field}), 400
    return jsonify(request_id=request_id, state="pending"), 202


@bp.get("/enrol/requests/<request_id>")
def request_state(request_id: str) -> Any:
    try:
        decision = desk().decision(request_id)
    except ProtocolError as e:
        return jsonify(error={"code": e.code, "message": e.text, "field": e.field}), 404
    return jsonify(request_id=request_id, state=decision.state, answer=decision.answer)


@bp.get("/trust-list.json")
def trust_list_json() -> Response:
    return Response(desk().store.trust_list().to_json(indent=2), mimetype="application/json")
