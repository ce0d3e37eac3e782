"""What every screen gets: a CSRF token on each form, strict headers, no caching of pages.

CSRF: one random token per session, put into every form by ``csrf_token()`` and checked on
every POST before the view runs. No extra dependency: the session is already signed.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from flask import Blueprint, Response, request, session
from werkzeug.exceptions import BadRequest

log = logging.getLogger(__name__)

CSRF_FIELD = "csrf_token"
CSRF_SESSION_KEY = "csrf"
CSRF_TOKEN_BYTES = 32
# Everything the pages need is on this node: no CDN, no inline script, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


class CsrfRefused(BadRequest):
    """A POST without the session's token: an old tab, or another site's form."""

    description = "csrf"


def csrf_token() -> str:
    token = session.get(CSRF_SESSION_KEY)
    if not token:
        token = session[CSRF_SESSION_KEY] = secrets.token_urlsafe(CSRF_TOKEN_BYTES)
    return token


def check_csrf() -> None:
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return
    expected = session.get(CSRF_SESSION_KEY, "")
    sent = request.form.get(CSRF_FIELD, "")
    if not (expected and sent and hmac.compare_digest(str(expected), str(sent))):
        log.info("refused a %s to %s without a valid CSRF token", request.method, request.path)
        raise CsrfRefused()


def secure_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    if not request.path.startswith("/ui/static/"):
        # Pages carry patient data: never keep them in the browser or a proxy cache, so the
        # back button after sign-out or a kiosk timeout asks the server (which says no).
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def protect(bp: Blueprint) -> None:
    """CSRF on every POST and strict headers on every response of this blueprint."""
    bp.before_request(check_csrf)
    bp.after_request(secure_headers)
