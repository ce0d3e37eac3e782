"""The hub dashboard for central staff (DESIGN 2): every node's sync state, outages and lag,
and conflict review, as translated HTML pages behind a staff sign-in.

    GET/POST /staff/sign-in              sign in (central_hub.staff accounts)
    POST     /staff/sign-out
    GET      /dashboard                  nodes, open conflicts by kind, quarantined events
    GET      /dashboard/conflicts        ?state=&kind=
    GET      /dashboard/conflicts/<id>   the conflict, every event involved, its reviews
    POST     /dashboard/conflicts/<id>/acknowledge|resolve   note (required)

The session is Flask's signed cookie (HttpOnly, SameSite=Strict, Secure with SECURE_COOKIES),
kept for these pages only and keyed by the secret every hub worker shares
(staff.session_secret); it ends SESSION_LIFETIME after sign-in whatever the activity. Forms
carry a double-submit CSRF token. The reviewer of a conflict is the signed-in staff member,
never a form field. Views call the services of conflict_review, nodes and staff; the only query
here counts what waits for review.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Request, Response, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from sync_protocol.conflicts import (
    ACKNOWLEDGED,
    DISPENSE_AFTER_CANCELLATION,
    DISPENSE_AFTER_EXPIRY,
    DISPENSE_AFTER_REVOCATION,
    DOUBLE_BOOKING,
    IDENTITY_CLASH,
    OPEN,
    OVER_DISPENSING,
    PAPER_MISMATCH,
    PATIENT_FIELD,
    RESOLVED,
    STATES,
)
from sync_protocol.errors import ProtocolError
from sync_protocol.event_types import CONFLICT_KINDS
from sync_protocol.hlc import HlcTimestamp
from sync_protocol.timeutil import from_instant, to_instant

from .. import claims, nodes, quarantine, refusals, staff
from ..conflict_review import (
    ACTIONS,
    DEFAULT_LIMIT,
    ConflictNotFound,
    change_state,
    get_conflict,
    list_conflicts,
    open_by_kind,
)
from ..errors import HubError
from ..storage import Storage
from .context import EXTENSION, hub
from .i18n import LABELS, local, page_translations, render_page, select_locale

log = logging.getLogger(__name__)

bp = Blueprint("staff_pages", __name__, template_folder="templates")

SESSION_COOKIE = "dmed_hub_staff"
CSRF_COOKIE = "dmed_staff_csrf"
# One working shift; then the staff member signs in again, however active the session was.
SESSION_LIFETIME = timedelta(hours=8)
# Hub machines' clocks may differ a little: a sign-in "from the future" within this is valid.
CLOCK_SKEW = timedelta(minutes=5)
# Healthy nodes sync every 30 s (edge_node.sync.agent); ten minutes is twenty missed rounds.
# Refused sync requests listed on the overview, newest first (the API gives more).
REFUSALS_SHOWN = 20
LAG_WARNING_SECONDS = 10 * 60
CSP = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
PUBLIC = frozenset({"staff_pages.sign_in_form", "staff_pages.sign_in",
                    "staff_pages.sign_out"})
DASHBOARD = "/dashboard"
STAFF_PATHS = ("/staff/", DASHBOARD)  # the requests that have a session
# Where a sign-in may send the browser next: dashboard pages of this hub only.
NEXT_RE = re.compile(r"/dashboard(/[A-Za-z0-9_-]+)*/?(\?[A-Za-z0-9_=&%.+-]*)?")
MAX_NEXT = 500
MAX_LOGIN_FIELD = 100  # logins have at most 64 characters; the form shows back no more

# Codes shown on the pages, as English msgids (translated in templates/translations).
NAMES = {
    OVER_DISPENSING: "Over-dispensing",
    DISPENSE_AFTER_CANCELLATION: "Dispensed after cancellation",
    DISPENSE_AFTER_EXPIRY: "Dispensed outside the validity period",
    DISPENSE_AFTER_REVOCATION: "Dispensed after the signer's key was revoked",
    DOUBLE_BOOKING: "Double-booked slot",
    PATIENT_FIELD: "Concurrent edit of patient data",
    PAPER_MISMATCH: "Paper record mismatch",
    IDENTITY_CLASH: "Identity clash",
    "clinic": "clinic", "pharmacy": "pharmacy",
    "key": "key event", "related": "related event",
    "identity_conflict": "Two devices use this node's identity",
}
# Sentences made in Python, as msgids.
TEXT = {
    "csrf": "The form expired; reload the page and send it again",
    "sign_in_first": "Sign in to use this page",
    "expired": "Your session has ended; sign in again",
    "signed_out": "You have signed out",
    "acknowledged": "Conflict acknowledged",
    "resolved": "Conflict resolved",
    "days": "%(days)s d %(hours)s h",
    "hours": "%(hours)s h %(minutes)s min",
    "minutes": "%(minutes)s min",
    "seconds": "%(seconds)s s",
}


def init_app(app: Flask) -> None:
    """Wire the staff pages into a hub app: the staff table, sessions, the routes."""
    current = app.extensions[EXTENSION]
    app.session_interface = StaffSessions(current.storage)
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE, SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_SECURE=bool(app.config["SECURE_COOKIES"]),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        SESSION_REFRESH_EACH_REQUEST=False)  # the lifetime counts from sign-in
    app.register_blueprint(bp)


class StaffSessions(SecureCookieSessionInterface):
    """Flask's signed cookie session, opened for the staff pages only (the sync API and the
    other pages have none) and keyed by the secret all hub workers share, read or made on
    first use."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(STAFF_PATHS):
            return None  # a null session: nothing is read or written
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            app.secret_key = staff.session_secret(self.storage)
        return super().get_signing_serializer(app)


# -- the one count the views need ----------------------------------------------------------

def review_counts(storage: Storage) -> dict[str, Any]:
    """Open conflicts by kind and quarantined events still open."""
    by_kind = open_by_kind(storage)
    return {"open_by_kind": by_kind, "open": sum(by_kind.values()),
            "quarantined": quarantine.open_count(storage)}


# -- sign-in state, CSRF and headers --------------------------------------------------------

@bp.before_request
def require_staff():
    g.staff = _signed_in()
    if g.staff is not None or request.endpoint in PUBLIC:
        return None
    if request.method in ("GET", "HEAD"):
        return redirect(url_for("staff_pages.sign_in_form", next=_here(), lang=select_locale(),
                                expired="1" if g.get("expired") else None))
    return _render("dashboard/denied.html", 403, message=_text("sign_in_first"))


def _signed_in() -> dict[str, Any] | None:
    staff_id, started = session.get("staff_id"), session.get("signed_in_at")
    if not staff_id or not isinstance(started, str):
        return None
    try:
        age = hub().now() - from_instant(started)
    except ValueError:
        age = SESSION_LIFETIME
    if not -CLOCK_SKEW <= age < SESSION_LIFETIME:
        session.clear()
        g.expired = True
        return None
    account = staff.get_staff(hub().storage, staff_id)
    # disabled, removed or given a new password since sign-in
    if account is None or account["session_epoch"] != session.get("epoch"):
        session.clear()
        return None
    return account


def _here() -> str:
    query = request.query_string.decode("ascii", "replace")
    return request.path + (f"?{query}" if query else "")


def safe_next(value: str | None) -> str:
    """A local dashboard path to go to after sign-in; anything else gives the dashboard."""
    if value and len(value) <= MAX_NEXT and "//" not in value and NEXT_RE.fullmatch(value):
        return value
    return DASHBOARD


def _csrf_ok() -> bool:
    token = request.cookies.get(CSRF_COOKIE, "")
    given = request.form.get("csrf", "")
    return bool(token) and hmac.compare_digest(token.encode(), given.encode())


@bp.after_request
def page_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# -- rendering ------------------------------------------------------------------------------

def _translate() -> Callable[[str], str]:
    return page_translations(select_locale()).gettext


def _text(key: str, **params: Any) -> str:
    translated = _translate()(TEXT[key])
    return translated % params if params else translated


def message_of(error: ProtocolError) -> str:
    """An error's message in the page's language; state codes in it translated too."""
    translate = _translate()
    params = {k: translate(LABELS[v]) if isinstance(v, str) and v in LABELS else v
              for k, v in error.message_params.items()}
    try:
        translated = translate(error.message)
        return translated % params if "%(" in translated else translated
    except (KeyError, TypeError, ValueError):
        return error.text


def _render(template: str, status: int = 200, *, page: tuple[str, dict[str, Any]] | None = None,
            **context: Any) -> Response:
    """A staff page; `page` is the GET page (endpoint, values) the language links point to."""
    translate = _translate()
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    endpoint, values = page or (request.endpoint or "", request.view_args or {})

    def lang_link(code: str) -> str:
        return url_for(endpoint, **{**values, **request.args.to_dict(), "lang": code})

    def name(code: str | None) -> str:
        return translate(NAMES.get(code or "") or LABELS.get(code or "") or code or "")

    def hlc_local(hlc: str | None) -> str:
        return local(HlcTimestamp.parse(hlc).to_instant()) if hlc else ""

    response = render_page(template, status, csrf=token, staff=g.get("staff"),
                           lang_link=lang_link, name=name, hlc_local=hlc_local, show=show,
                           lag=lag_text, **context)
    response.set_cookie(CSRF_COOKIE, token, samesite="Strict", httponly=True,
                        secure=bool(hub().config["SECURE_COOKIES"]))
    return response


def show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def lag_text(seconds: int | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return _text("days", days=days, hours=hours)
    if hours:
        return _text("hours", hours=hours, minutes=minutes)
    if minutes:
        return _text("minutes", minutes=minutes)
    return _text("seconds", seconds=secs)


# -- sign-in and sign-out -------------------------------------------------------------------

@bp.get("/staff/sign-in")
def sign_in_form():
    target = safe_next(request.args.get("next"))
    if g.staff is not None:
        return redirect(target)
    notice = (_text("expired") if request.args.get("expired") else
              _text("signed_out") if request.args.get("signed_out") else None)
    return _render("dashboard/sign_in.html", next=target, login="", error=None, notice=notice)


@bp.post("/staff/sign-in")
def sign_in():
    target = safe_next(request.form.get("next"))
    login = request.form.get("login", "").strip()[:MAX_LOGIN_FIELD]
    page = ("staff_pages.sign_in_form", {})
    if not _csrf_ok():
        return _render("dashboard/sign_in.html", 400, page=page, next=target, login=login,
                       error=_text("csrf"), notice=None)
    try:
        account = staff.authenticate(hub().storage, login, request.form.get("password", ""),
                                     now=hub().now())
    except HubError as e:
        return _render("dashboard/sign_in.html", e.http_status, page=page, next=target,
                       login=login, error=message_of(e), notice=None)
    session.clear()
    session.permanent = True
    session["staff_id"] = account["staff_id"]
    session["signed_in_at"] = to_instant(hub().now())
    session["epoch"] = account["session_epoch"]
    return redirect(target, code=303)


@bp.post("/staff/sign-out")
def sign_out():
    if not _csrf_ok():
        return _render("dashboard/denied.html", 400, message=_text("csrf"))
    if g.staff is not None:
        log.info("hub staff %s signed out", g.staff["login"])
    session.clear()
    return redirect(url_for("staff_pages.sign_in_form", signed_out="1", lang=select_locale()),
                    code=303)


# -- the pages ------------------------------------------------------------------------------

@bp.get("/dashboard")
def overview():
    current = hub()
    rows = nodes.list_nodes(current.storage, current.now())
    for row in rows:
        lagging = row["lag_seconds"] is None or row["lag_seconds"] > LAG_WARNING_SECONDS
        row["lagging"] = lagging
        row["attention"] = lagging or row["error_is_current"] or bool(row["flag"])
    return _render("dashboard/overview.html", nodes=rows, counts=review_counts(current.storage),
                   kinds=CONFLICT_KINDS,
                   refused=refusals.list_refusals(current.storage, REFUSALS_SHOWN))


@bp.get("/dashboard/conflicts")
def conflicts():
    state = request.args.get("state", "")
    kind = request.args.get("kind", "")
    try:
        items = list_conflicts(hub().storage, state=state or None, kind=kind or None)
        error = None
    except HubError as e:
        items, error = [], message_of(e)
    return _render("dashboard/conflicts.html", 400 if error else 200, items=items,
                   error=error, state=state, kind=kind, states=STATES, kinds=CONFLICT_KINDS,
                   limit=DEFAULT_LIMIT)


@bp.get("/dashboard/offline-dispenses")
def offline_dispenses():
    """Dispenses made without the hub's claim, for review whether or not they conflict."""
    return _render("dashboard/offline_dispenses.html",
                   items=claims.offline_dispenses(hub().storage),
                   limit=claims.OFFLINE_REVIEW_LIMIT)


@bp.get("/dashboard/conflicts/<conflict_id>")
def conflict(conflict_id: str):
    done = request.args.get("done")
    notice = _text(done) if done in (ACKNOWLEDGED, RESOLVED) else None
    return _conflict_page(conflict_id, notice=notice)


@bp.post("/dashboard/conflicts/<conflict_id>/<any(acknowledge, resolve):action>")
def review(conflict_id: str, action: str):
    note = request.form.get("note", "")
    if not _csrf_ok():
        return _conflict_page(conflict_id, error=_text("csrf"), status=400, note=note,
                              action=action)
    try:
        change_state(hub().storage, conflict_id, ACTIONS[action],
                     by=staff.display_name(g.staff), note=note)
    except HubError as e:
        return _conflict_page(conflict_id, error=message_of(e), status=e.http_status,
                              note=note, action=action)
    return redirect(url_for("staff_pages.conflict", conflict_id=conflict_id,
                            done=ACTIONS[action], lang=select_locale()), code=303)


def _conflict_page(conflict_id: str, *, error: str | None = None, status: int = 200,
                   notice: str | None = None, note: str = "", action: str = "") -> Response:
    try:
        item = get_conflict(hub().storage, conflict_id)
    except ConflictNotFound as e:
        item, error, status = None, message_of(e), 404
    return _render("dashboard/conflict.html", status,
                   page=("staff_pages.conflict", {"conflict_id": conflict_id}),
                   conflict=item, error=error, notice=notice, note=note, action=action,
                   can_acknowledge=bool(item) and item["state"] == OPEN,
                   can_resolve=bool(item) and item["state"] in (OPEN, ACKNOWLEDGED))
