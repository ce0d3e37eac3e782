"""One error handler: every error becomes ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from sync_protocol.errors import InvalidIdentifier, ProtocolError

log = logging.getLogger(__name__)


def translate(error: ProtocolError) -> str:
    """The message in the request's language; parameters are filled in after translation."""
    return translate_text(error.message, error.message_params)


def translate_text(message: str, params: dict | None = None) -> str:
    translated = gettext(message)
    for text in (translated, message):
        try:
            return text % params if params and "%(" in text else text
        except (KeyError, ValueError, TypeError):
            continue  # a translation with a broken placeholder must not hide the message
    return message


def error_body(code: str, message: str, field: str | None) -> dict:
    return {"error": {"code": code, "message": message, "field": field}}


def http_headers(error: HTTPException) -> list[tuple[str, str]]:
    """The headers HTTP asks of this error (a 405's Allow) but its HTML content type."""
    return [(name, value) for name, value in error.get_headers()
            if name.lower() != "content-type"]


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ProtocolError)
    def protocol_error(error: ProtocolError):
        status = getattr(error, "http_status", 422 if isinstance(error, InvalidIdentifier)
                         else 400)
        return jsonify(error_body(error.code, translate(error), error.field)), status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        return (jsonify(error_body(code, error.description or error.name, None)), error.code,
                http_headers(error))

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.error("unexpected error", exc_info=error)
        return jsonify(error_body("internal", gettext("Something went wrong on this node; the "
                                                      "change was not saved"), None)), 500
