"""The node's screens: reception kiosk, registrar and doctor workstation, pharmacy counter.

``register(app)`` is called by edge_node's app factory through the entry-point group
``dmed_edge.node_blueprints``; edge_node never imports this package.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, redirect, url_for

from . import (
    banner,
    common,
    conflict_screens,
    counter,
    desk,
    desk_visits,
    doctor,
    i18n,
    kiosk,
    pages,
    paper_screens,
    prescribe,
    remote_screens,
    sync_now,
)

log = logging.getLogger(__name__)

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
# A kiosk left alone for this long ends its session and clears the screen.
DEFAULT_KIOSK_IDLE_SECONDS = 60
# The kiosk warns this long before it ends an idle session, with a countdown and a button to
# go on: long enough to read the warning and touch the screen, short of the whole limit.
DEFAULT_KIOSK_IDLE_WARNING_SECONDS = 15


def register(app: Flask) -> None:
    """Entry point called by edge_node's app factory (group dmed_edge.node_blueprints)."""
    _add_translations(app)
    app.config.setdefault("KIOSK_IDLE_SECONDS", DEFAULT_KIOSK_IDLE_SECONDS)
    app.config.setdefault("KIOSK_IDLE_WARNING_SECONDS", DEFAULT_KIOSK_IDLE_WARNING_SECONDS)
    app.config.setdefault("SESSION_COOKIE_SECURE", False)  # True behind HTTPS (see README)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict")
    i18n.install(app)
    common.install_template_helpers(app)
    banner.install(app)
    app.jinja_env.globals.update(sync_available=sync_now.sync_available,
                                 open_requests_count=remote_screens.open_count,
                                 open_conflicts_count=conflict_screens.open_count)
    for blueprint in (pages.bp, kiosk.bp, desk.bp, desk_visits.bp, doctor.bp, prescribe.bp,
                      counter.bp, paper_screens.bp, sync_now.bp, remote_screens.bp,
                      conflict_screens.bp):
        app.register_blueprint(blueprint)
    app.add_url_rule("/", endpoint="ui_root", view_func=lambda: redirect(url_for("ui.index")))


def _add_translations(app: Flask) -> None:
    """Add our catalogues to the node's. Babel has already read the config string by now, so
    its resolved list is extended too (changing the string alone would be ignored)."""
    here = str(TRANSLATIONS)
    dirs = [d for d in app.config.get("BABEL_TRANSLATION_DIRECTORIES", "").split(";") if d]
    if here not in dirs:
        app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join([*dirs, here])
    babel = app.extensions.get("babel")
    if babel is not None and here not in babel.translation_directories:
        babel.translation_directories.append(here)
