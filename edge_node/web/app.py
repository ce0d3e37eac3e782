"""The node's Flask app factory."""

from __future__ import annotations

import logging
import os
import secrets
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import Babel
from itsdangerous import URLSafeTimedSerializer

from ..credentials import NodeCredentials, load_credentials
from ..store import NodeStore
from ..sync.agent import SyncAgent
from ..sync.client import HubClient
from . import (
    api_care,
    api_identity,
    api_node,
    api_paper,
    api_patients,
    api_people,
    api_remote,
    api_rx,
    api_sync,
    context,
)
from .config import load_config
from .errors import register_error_handlers

log = logging.getLogger(__name__)

LOCALES = ("uz", "ru", "en")
# Screens (kiosk_ui) plug in through this entry-point group, so the node never imports them.
BLUEPRINT_GROUP = "dmed_edge.node_blueprints"


def create_app(config: dict[str, Any] | None = None, *, store: NodeStore | None = None,
               credentials: NodeCredentials | None = None) -> Flask:
    settings = load_config(overrides=config)
    app = Flask(__name__)
    app.session_interface = KeptSerializerSessionInterface()
    app.config.update(settings)
    app.config["SECRET_KEY"] = settings["SECRET_KEY"] or _secret_key(Path(settings["DATABASE"]))
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(_translation_dirs())
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict")
    if store is None:
        Path(settings["DATABASE"]).parent.mkdir(parents=True, exist_ok=True)
        store = NodeStore(settings["DATABASE"])
    Babel(app, locale_selector=lambda: select_locale(app))
    bundle = settings.get("NODE_BUNDLE") or store.state("bundle_path")
    if credentials is None and bundle:
        credentials = load_credentials(bundle)
    agent = None
    if credentials is not None and settings["HUB_URL"]:
        client = HubClient(settings["HUB_URL"], credentials, store.node_id)
        agent = SyncAgent(store, client, credentials)
    context.install(app, store, credentials, agent)
    for module in (api_people, api_patients, api_care, api_node, api_rx, api_paper, api_remote,
                   api_sync, api_identity):
        app.register_blueprint(module.bp)
    for plugin in entry_points(group=BLUEPRINT_GROUP):
        plugin.load()(app)
    register_error_handlers(app)
    from . import metrics
    metrics.init_app(app)  # /metrics and request timing
    return app


class KeptSerializerSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per key instead
    of on every request (building it serialises a test value: a fifth of opening a session).
    """

    def __init__(self) -> None:
        self._kept: tuple[tuple, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        kept = self._kept
        if kept is None or kept[0] != key:
            kept = self._kept = (key, super().get_signing_serializer(app))
        return kept[1]


def select_locale(app: Flask) -> str:
    chosen = request.args.get("lang") or request.cookies.get("lang")
    if chosen in LOCALES:
        return chosen
    return request.accept_languages.best_match(LOCALES) or app.config["DEFAULT_LOCALE"]


def _translation_dirs() -> list[str]:
    here = Path(__file__).resolve().parents[1] / "translations"
    return [str(here)]


def _secret_key(database: Path) -> str:
    """A per-node random key kept beside the database, readable by the node user only."""
    path = database.parent / "secret_key"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
