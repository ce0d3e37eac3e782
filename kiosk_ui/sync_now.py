""""Sync now" from any staff screen: one run of the node's sync agent, then back to the page.

The banner on every page (_node_status.html) offers the button to signed-in staff when this
node has a sync agent (a hub and credentials are configured).
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, flash, g, redirect, request, url_for
from flask_babel import gettext

from edge_node.services.access import ROLES, Actor
from edge_node.web.context import sync_agent

from . import banner
from .auth import safe_next, signed_in, to_sign_in
from .common import remember_language
from .errors import register_html_errors
from .security import protect

log = logging.getLogger(__name__)

bp = Blueprint("sync_ui", __name__, url_prefix="/ui/sync")
protect(bp)
bp.after_request(remember_language)
register_html_errors(bp, "desk", to_sign_in)

def sync_available(actor) -> bool:
    """Whether the banner shows "Sync now": staff signed in, and an agent to run."""
    return (isinstance(actor, Actor) and actor.role in ROLES
            and sync_agent() is not None)


@bp.post("/run")
@signed_in
def run():
    back = safe_next(request.form.get("next"), url_for("desk.home"))
    agent = sync_agent()
    if agent is None:
        flash(gettext("This node has no hub configured: there is nothing to sync with."),
              "error")
        return redirect(back)
    report = agent.sync_now()
    banner.forget(current_app)
    log.info("sync run by %s: %s", g.actor.actor_id, "ok" if report.get("ok") else "failed")
    if report.get("ok"):
        flash(gettext("Synced: %(pushed)s changes sent, %(pulled)s received.",
                      pushed=report.get("pushed", 0), pulled=report.get("pulled", 0)), "ok")
    else:
        flash(gettext("The hub cannot be reached now. Work goes on; changes stay queued on"
                      " this node and are sent later."), "error")
    return redirect(back)
