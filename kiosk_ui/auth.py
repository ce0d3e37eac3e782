"""Staff sign-in for the workstation screens: the API token lives in the signed session.

Every request resolves the token again (``staff.actor_for_token``), so signing out or an
expired token ends the session at once, on every tab.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import g, redirect, request, session, url_for

from edge_node.errors import NotSignedIn
from edge_node.services import staff
from edge_node.services.access import Actor
from edge_node.web.context import store

log = logging.getLogger(__name__)

TOKEN_KEY = "staff_token"  # noqa: S105 - a session key name, not a secret


def current_staff() -> Actor:
    token = session.get(TOKEN_KEY)
    if not token:
        raise NotSignedIn("Sign in first (the session may have expired)")
    try:
        return staff.actor_for_token(store(), token)
    except NotSignedIn:
        session.clear()  # a dead token must not linger in the cookie
        raise


def signed_in(view: Callable) -> Callable:
    """The view runs with ``g.actor`` set, or the browser goes to the sign-in page."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.actor = current_staff()
        return view(*args, **kwargs)

    return wrapper


def safe_next(target: str | None, default: str) -> str:
    """Only a path on this node (never another site) may be returned to."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def to_sign_in(_error: NotSignedIn):
    nxt = request.full_path if request.method == "GET" else None
    return redirect(url_for("desk.sign_in", next=safe_next(nxt, "") or None))
