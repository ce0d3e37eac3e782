"""The device cookie on the wire: read at sign-in, set after a successful one (API and screens).

The cookie is HttpOnly and SameSite=Strict: no script and no other site ever sends or reads
it; its value is signed with the node's secret key (see services.sign_in_guard).
"""

from __future__ import annotations

from flask import Response, current_app, request

from ..services import sign_in_guard as guard


def secret() -> bytes:
    return str(current_app.config.get("SECRET_KEY") or "").encode()


def presented(username: str) -> str | None:
    return request.cookies.get(guard.device_cookie_name(str(username or "").strip().lower()))


def client() -> str:
    return request.remote_addr or "unknown"


def remember(response: Response, username: str, value: str | None) -> Response:
    if value:
        response.set_cookie(guard.device_cookie_name(username), value, httponly=True,
                            samesite="Strict",
                            secure=request.is_secure
                            or bool(current_app.config.get("SESSION_COOKIE_SECURE")),
                            max_age=int(guard.DEVICE_COOKIE_MAX_AGE.total_seconds()))
    return response
