"""The hub's Flask app factory, its services and its one error handler."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from sync_protocol.errors import ProtocolError
from sync_protocol.timeutil import utc_now

from .. import composition, reconciliation
from ..config import load_config
from ..errors import Busy, HubError
from ..ingest import Hook, Ingestor
from ..nonces import NonceStore
from ..projector import BACKGROUND, INLINE, MODES
from ..storage import Storage
from ..trust_store import TrustStore
from . import (
    api_claims,
    api_conflicts,
    api_dashboard,
    api_paper,
    api_sync,
    call_centre_pages,
    dashboard_fleet,
    dashboard_pages,
    fhir_api,
    metrics,
    openapi,
)
from .context import EXTENSION, Hub, error_body, hub

log = logging.getLogger(__name__)

def create_app(config: dict[str, Any] | None = None, *, storage: Storage | None = None,
               on_accepted: Iterable[Hook] = (),
               clock: Callable[[], datetime] = utc_now, builtin_hooks: bool = True) -> Flask:
    """`storage` defaults to the DATABASE setting; `on_accepted` hooks run inside ingest,
    after the hub's own (central_hub.composition.ingest_hooks) unless `builtin_hooks` is
    False."""
    settings = load_config(overrides=config)
    app = Flask(__name__)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings["MAX_BODY_BYTES"]
    if storage is None:
        storage = composition.open_storage(settings["DATABASE"])
    else:
        storage.migrate()  # a storage handed in may have been opened without migrating
    reconciliation.e_prescription_inns()  # a missing drug catalogue fails here, not in ingest
    hooks = [*composition.ingest_hooks(), *on_accepted] if builtin_hooks else list(on_accepted)
    mode = settings["PROJECTOR"]
    if mode not in MODES:
        raise ValueError(f"PROJECTOR must be one of {', '.join(MODES)}, not {mode!r}")
    app.extensions[EXTENSION] = Hub(
        storage=storage, trust=TrustStore(storage), nonces=NonceStore(storage),
        ingestor=Ingestor(storage, hooks, clock=clock, background=mode == BACKGROUND),
        sync_gate=threading.BoundedSemaphore(settings["MAX_CONCURRENT_SYNCS"]),
        clock=clock, config=settings)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(api_sync.bp)
    app.register_blueprint(api_dashboard.bp)
    app.register_blueprint(api_conflicts.bp)
    api_paper.init_app(app)  # pads, sync contacts, the reconciliation report
    call_centre_pages.init_app(app)
    api_claims.init_app(app)  # claims: online dispensing prevented, not detected
    dashboard_pages.init_app(app)  # staff sign-in and the dashboard pages
    fhir_api.init_app(app, app.extensions[EXTENSION])  # read-only FHIR R4 at /fhir/r4/
    metrics.init_app(app)  # /metrics, sync timing and the monitoring history
    dashboard_fleet.init_app(app)  # the fleet pages (regions, nodes, charts, conflicts)
    register_error_handlers(app)
    app.before_request(refuse_nul_parameters)
    if mode == INLINE:  # a background projector starts with what waits
        app.extensions[EXTENSION].ingestor.catch_up()
    return app


def refuse_nul_parameters() -> None:
    """PostgreSQL text holds no NUL character: refuse one in a parameter (400), as SQLite
    hubs do too, rather than fail in the database."""
    if "\x00" in request.path or any(
            "\x00" in value for _name, value in request.args.items(multi=True)):
        raise HubError("Parameters cannot contain the NUL character", code="bad_parameter")


# Codes for plain HTTP errors, stable for clients (413 is the one nodes act on: halve).
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ProtocolError)
    def protocol_error(error: ProtocolError):
        status = getattr(error, "http_status", 400)
        response = jsonify(error_body(error.code, error.text, error.field))
        response.status_code = status
        if isinstance(error, Busy):
            response.headers["Retry-After"] = str(hub().config["RETRY_AFTER_SECONDS"])
        if status == 401:
            response.headers["WWW-Authenticate"] = "DMED-SYNC-1"
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = HTTP_CODES.get(error.code or 0) or (error.name or "error").lower().replace(" ", "_")
        message = error.description or error.name
        if error.code == 413:
            message = (f"Request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes; "
                       "send smaller batches")
        # A 405 says which methods there are (Allow); the HTML content type is not ours.
        headers = [(name, value) for name, value in error.get_headers()
                   if name.lower() != "content-type"]
        return jsonify(error_body(code, message, None)), error.code, headers

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.error("unexpected error", exc_info=error)
        return jsonify(error_body("internal", "Something went wrong at the hub; nothing was "
                                  "stored, please retry", None)), 500
