"""Errors on screens: a page in the reader's language, never a stack trace or a blank page.

Registered per blueprint, so the JSON API under /api/v1 keeps its JSON errors. Forms catch
the services' errors themselves and show them beside the form; these handlers are the net.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from edge_node.errors import NotSignedIn
from sync_protocol.errors import InvalidIdentifier, ProtocolError

from .common import error_text
from .security import CsrfRefused

log = logging.getLogger(__name__)


def _http_message(error: HTTPException) -> str:
    if isinstance(error, CsrfRefused):
        return gettext("This form has expired or was sent from elsewhere. Go back, reload the"
                       " page and try again.")
    messages = {
        403: gettext("You may not open this page."),
        404: gettext("This page does not exist."),
        405: gettext("This page cannot be used that way."),
        413: gettext("What was sent is too large."),
    }
    return messages.get(error.code or 0, gettext("The request could not be handled."))


def render_error(message: str, status: int, area: str) -> tuple[str, int]:
    if request.path.startswith("/ui/kiosk"):  # an unknown kiosk address keeps the kiosk look
        area = "kiosk"
    try:
        return render_template("error.html", message=message, area=area, status=status), status
    except Exception:  # even a broken template or database must not leave a blank page
        log.exception("error page failed to render")
        return (f"<!doctype html><title>DMED</title><p>{escape(message)}</p>", status)


def register_html_errors(bp: Blueprint, area: str,
                         not_signed_in: Callable[[NotSignedIn], Response]) -> None:
    """HTML error pages for one blueprint; ``area`` picks the header (kiosk or desk)."""

    @bp.errorhandler(NotSignedIn)
    def signed_out(error: NotSignedIn):
        return not_signed_in(error)

    @bp.errorhandler(ProtocolError)
    def protocol_error(error: ProtocolError):
        status = getattr(error, "http_status", 422 if isinstance(error, InvalidIdentifier)
                         else 400)
        return render_error(error_text(error), status, area)

    @bp.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return render_error(_http_message(error), error.code or 500, area)

    @bp.errorhandler(Exception)
    def unexpected(error: Exception):
        log.error("unexpected error on a screen", exc_info=error)
        return render_error(gettext("Something went wrong on this node; the change was not"
                                    " saved"), 500, area)
