"""API: the node's sync state, and "sync now"."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from ..errors import Conflict
from ..services import node_status
from ..sync.agent import sync_status
from .context import store, sync_agent
from .endpoint import endpoint

bp = Blueprint("sync", __name__, url_prefix="/api/v1")


@endpoint(bp, "GET", "/sync/status", public=True,
          summary="Online or offline (since when), changes waiting, last success and error")
def status():
    return jsonify(sync_status(store(), configured=sync_agent() is not None))


@endpoint(bp, "POST", "/sync/run", summary="Sync with the hub now (any signed-in staff)")
def run():
    agent = sync_agent()
    if agent is None:
        raise Conflict("This node has no hub configured (DMED_HUB_URL)", code="no_hub")
    return jsonify({**agent.sync_now(), "status": sync_status(store(), configured=True)})


@endpoint(bp, "GET", "/sync/problems", summary="Events the hub refused and events this node "
          "could not apply (admin)")
def problems():
    return jsonify(node_status.sync_problems(store(), g.actor))
